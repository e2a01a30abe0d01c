# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Docker Engine API persona of a VCH endpoint (aiohttp): one application serving the port layer.

The middlewares negotiate the API version (``negotiation``) and answer Docker-style
errors (``errors``); each module of ``routes`` serves one kind of Docker object and
lists its routes in ``ROUTES``.
"""

import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ansible_collections.vic.containers.services.persona.errors import docker_errors
from ansible_collections.vic.containers.services.persona.negotiation import negotiate
from ansible_collections.vic.containers.services.persona.limits import LINGER_SECONDS, READ_TIMEOUT
from ansible_collections.vic.containers.services.persona.routes import (
    archive, containers, events, images, networks, system, volumes)
from ansible_collections.vic.containers.services.persona.routes import exec as exec_routes

ROUTE_MODULES = (system, containers, archive, images, volumes, networks, exec_routes, events)


def route(app, method, path, handler):
    """Serve ``path`` bare and under the /vX.Y prefix clients put before it."""
    app.router.add_route(method, path, handler)
    app.router.add_route(method, r"/v{api_version:\d+\.\d+}" + path, handler)


class _ServerLog(logging.LoggerAdapter):
    """aiohttp's own log of a connection: a request that is not HTTP it can parse (a line too long, a bad header)
    is the client's fault and answered 400: one INFO line, no traceback. Anything else keeps its trace."""

    def exception(self, msg, *args, exc_info=True, **kwargs):
        if isinstance(exc_info, HttpProcessingError):
            reason = (str(exc_info.message).strip().splitlines() or [""])[0]
            self.info(msg + ": %s", *args, reason, **kwargs)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


def make_app(facts, portlayer=None):
    """The persona for one VCH: ``facts`` gives what /info reports (see routes.system.VchFacts),
    ``portlayer`` the port layer the object routes serve (None: only the engine-wide routes answer)."""
    # A connection that has not sent a whole request's headers by READ_TIMEOUT (or sent nothing more since its
    # last answer) is closed (see limits.py); a refused body is drained for at most LINGER_SECONDS.
    limits = {"keepalive_timeout": READ_TIMEOUT, "lingering_time": LINGER_SECONDS,
              "logger": _ServerLog(logging.getLogger("aiohttp.server"), {})}
    app = web.Application(middlewares=[negotiate, docker_errors], client_max_size=64 * 1024 * 1024,
                          handler_args=limits)
    app["facts"] = facts
    app["portlayer"] = portlayer
    for module in ROUTE_MODULES:
        for method, path, handler in module.ROUTES:
            route(app, method, path, handler)
    return app
