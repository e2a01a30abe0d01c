# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Docker-style errors: the one table from the domain errors to HTTP statuses, and the middleware
that answers every refusal and failure as the error body the docker CLI prints."""

import json
import logging

from aiohttp import web

from ansible_collections.vic.containers.plugins.module_utils._errors import (
    Conflict, Forbidden, InvalidInput, NotFound, Unauthorized, Unsupported, VicError)

LOG = logging.getLogger("vic.endpoint")
# Most specific first: the first kind an error is an instance of gives its status.
STATUS = (
    (InvalidInput, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Unsupported, 501),
    (VicError, 500),
)


def docker_error(status, message):
    """The error body the docker CLI prints: {"message": ...}.

    The CLI reads the message only when the Content-Type is exactly
    ``application/json`` (no charset), else it prints the raw body.
    """
    return web.Response(body=json.dumps({"message": message}).encode(), status=status,
                        content_type="application/json")


def status_of(error):
    """The HTTP status of a domain error."""
    return next(status for kind, status in STATUS if isinstance(error, kind))


@web.middleware
async def docker_errors(request, handler):
    """Every refusal and failure as the Docker-style error the CLI prints; never a traceback."""
    try:
        return await handler(request)
    except json.JSONDecodeError as exc:
        return docker_error(400, "invalid JSON in request body: %s" % exc)
    except VicError as exc:
        status = status_of(exc)
        if status == 500:
            # vSphere faults arrive as one sentence naming the object (module_utils/vsphere/tasks.py).
            LOG.warning("%s %s: %s", request.method, request.path, exc)
        return docker_error(status, str(exc))
    except web.HTTPException:
        raise
    except ConnectionResetError as exc:
        if request.transport is not None and not request.transport.is_closing():
            return _internal_error(request, exc)  # another connection failed (vSphere's, a registry's)
        # The client hung up before the answer was written (a CLI interrupted while it waits, for
        # one): nothing failed here. aiohttp drops the response below on the closed connection.
        LOG.info("%s %s: the client hung up before the answer was written", request.method, request.path)
        return web.Response(status=499)
    except Exception as exc:  # pylint: disable=broad-except
        return _internal_error(request, exc)


def _internal_error(request, exc):
    return docker_error(500, internal_error_message(request, exc))


def internal_error_message(request, exc):
    """A failure nothing above expects (a bug of ours, mostly): the trace goes to the endpoint's log,
    the client gets one line, which this returns."""
    LOG.error("%s %s failed", request.method, request.path, exc_info=exc)
    return "internal error in the VCH endpoint (%s); see its log" % type(exc).__name__
