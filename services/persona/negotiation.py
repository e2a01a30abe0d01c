# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""API version negotiation, the headers every answer carries, and a clear refusal of what VIC never did."""

import re

from aiohttp import web

from ansible_collections.vic.containers.plugins.module_utils._version import VERSION as PRODUCT_VERSION
from ansible_collections.vic.containers.services.persona.errors import docker_error

API_VERSION = "1.43"
MIN_API_VERSION = "1.24"
_VERSION_PREFIX = re.compile(r"^/v\d+\.\d+(?=/)")

# What VIC never did (REFERENCE.md), by method and path pattern, with the command users know.
UNSUPPORTED = (
    ("POST", r"/build", "docker build"),
    ("POST", r"/commit", "docker commit"),
    ("POST", r"/images/.+/push", "docker push"),
    ("POST", r"/images/load", "docker load"),
    ("GET", r"/images/get", "docker save"),
    ("GET", r"/images/.+/get", "docker save"),
    ("GET", r"/images/search", "docker search"),
    ("POST", r"/containers/[^/]+/pause", "docker pause"),
    ("POST", r"/containers/[^/]+/unpause", "docker unpause"),
    ("POST", r"/build/prune", "docker builder prune"),
    ("*", r"/(swarm|nodes|services|tasks|secrets|configs)(/.*)?", "swarm mode"),
    ("*", r"/plugins(/.*)?", "docker plugin"),
)


def _version_tuple(text):
    return tuple(int(part) for part in text.split("."))


@web.middleware
async def negotiate(request, handler):
    """Refuse API versions outside what we serve; stamp the headers clients read."""
    asked = request.match_info.get("api_version")
    if asked:
        if _version_tuple(asked) > _version_tuple(API_VERSION):
            response = docker_error(400, "client version %s is too new. Maximum supported API version is %s"
                                    % (asked, API_VERSION))
            return _stamp(response)
        if _version_tuple(asked) < _version_tuple(MIN_API_VERSION):
            response = docker_error(400, "client version %s is too old. Minimum supported API version is %s, "
                                         "please upgrade your client to a newer version" % (asked, MIN_API_VERSION))
            return _stamp(response)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status == 404:
            response = _unsupported(request) or docker_error(404, "page not found")
        elif exc.status == 405:
            response = docker_error(405, "method %s is not allowed on %s" % (request.method, request.path))
        else:
            raise
    return _stamp(response)


def _stamp(response):
    response.headers["Api-Version"] = API_VERSION
    response.headers["Docker-Experimental"] = "false"
    response.headers["Ostype"] = "linux"
    response.headers["Server"] = "vic.containers/%s (linux)" % PRODUCT_VERSION
    return response


def _unsupported(request):
    path = _VERSION_PREFIX.sub("", request.path)
    for method, pattern, what in UNSUPPORTED:
        if method in ("*", request.method) and re.fullmatch(pattern, path):
            return docker_error(501, "%s is not supported by vSphere Integrated Containers" % what)
    return None
