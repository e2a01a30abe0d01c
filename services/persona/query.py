# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading a Docker API request: its JSON body and query values, as dockerd reads them."""

import json

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput
from ansible_collections.vic.containers.services.persona.limits import read_body


def portlayer(request):
    """The port layer that serves the request's VCH (``app.make_app`` puts it in the application)."""
    return request.app["portlayer"]


async def json_body(request, kind=dict):
    """The request's JSON body (an empty body is ``kind()``); anything else is the client's fault."""
    raw = await read_body(request)
    try:
        # JSON is UTF-8 (RFC 8259), whatever charset a client names.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("invalid JSON in request body: not UTF-8 (byte 0x%02x at offset %d)"
                           % (raw[exc.start], exc.start))
    if not text.strip():
        return kind()
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, too many digits, nesting too deep
        raise InvalidInput("invalid JSON in request body: %s" % (str(exc) or type(exc).__name__))
    if not isinstance(body, kind):
        raise InvalidInput("the request body must be a JSON %s" % ("object" if kind is dict else "array"))
    return body


def query_filters(request):
    """The ``filters`` query parameter as {name: [values]}; Docker accepts lists or {value: true} maps."""
    text = request.query.get("filters")
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidInput("invalid filters: %s" % text)
    if not isinstance(raw, dict):
        raise InvalidInput("invalid filters: %s" % text)
    return {key: list(value) if isinstance(value, (list, dict)) else [str(value)] for key, value in raw.items()}


def query_unix_time(request, name):
    """Docker's ``since`` / ``until`` as the CLI sends them: unix seconds, with an optional fraction."""
    return _query_number(request, name, float, None, " (unix seconds expected)")


def query_int(request, name, default):
    return _query_number(request, name, int, default, " is not an integer")


def _query_number(request, name, convert, default, expected):
    """``convert(value)`` of a query value, ``default`` when it is absent or empty; a value ``convert``
    refuses is a 400 saying what was ``expected``."""
    text = request.query.get(name)
    if text in (None, ""):
        return default
    try:
        return convert(text)
    except ValueError:
        raise InvalidInput("invalid value for %s: %r%s" % (name, text, expected))


def query_bool(request, name, default=False):
    """A boolean query value read as dockerd reads one (``BoolValueOrDefault``).

    Absent is ``default``; present, anything but "", "0", "no", "false" or "none" is true.
    """
    value = request.query.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("", "0", "no", "false", "none")
