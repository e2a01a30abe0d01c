# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Docker Engine API persona of a VCH endpoint (aiohttp).

This module serves API version negotiation (``/_ping``, ``/version``),
``/info``, Docker-style errors and a clear refusal of what VIC does not do; the
``api_*`` modules beside it each serve one kind of Docker object from the port
layer and list their routes in ``ROUTES``.
"""

import importlib
import json
import logging
import platform
import re

from aiohttp import web

from ansible_collections.vic.containers.appliance.errors import ApiError, BadRequest
from ansible_collections.vic.containers.plugins.module_utils._errors import NotFoundError, VicError

PRODUCT_VERSION = "0.1.0"
API_VERSION = "1.43"
MIN_API_VERSION = "1.24"
_VERSION_PREFIX = re.compile(r"^/v\d+\.\d+(?=/)")
# Each serves one kind of Docker object; see their ROUTES.
API_MODULES = ("containers", "images", "volumes", "networks", "exec", "events")
LOG = logging.getLogger("vic.endpoint")

# What VIC never did (REFERENCE.md), by method and path pattern, with the command users know.
UNSUPPORTED = (
    ("POST", r"/build", "docker build"),
    ("POST", r"/commit", "docker commit"),
    ("POST", r"/images/.+/push", "docker push"),
    ("POST", r"/images/load", "docker load"),
    ("GET", r"/images/get", "docker save"),
    ("GET", r"/images/.+/get", "docker save"),
    ("GET", r"/images/search", "docker search"),
    ("GET", r"/images/.+/history", "docker history"),
    ("GET", r"/containers/[^/]+/export", "docker export"),
    ("POST", r"/containers/[^/]+/pause", "docker pause"),
    ("POST", r"/containers/[^/]+/unpause", "docker unpause"),
    ("POST", r"/containers/[^/]+/update", "docker update"),
    ("POST", r"/(containers|images|volumes|networks|build)/prune", "docker system prune"),
    ("GET", r"/system/df", "docker system df"),
    ("*", r"/(swarm|nodes|services|tasks|secrets|configs)(/.*)?", "swarm mode"),
    ("*", r"/plugins(/.*)?", "docker plugin"),
)


def docker_error(status, message):
    """The error body the docker CLI prints: {"message": ...}.

    The CLI reads the message only when the Content-Type is exactly
    ``application/json`` (no charset), else it prints the raw body.
    """
    return web.Response(body=json.dumps({"message": message}).encode(), status=status,
                        content_type="application/json")


def _version_tuple(text):
    return tuple(int(part) for part in text.split("."))


def route(app, method, path, handler):
    """Serve ``path`` bare and under the /vX.Y prefix clients put before it."""
    app.router.add_route(method, path, handler)
    app.router.add_route(method, r"/v{api_version:\d+\.\d+}" + path, handler)


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


@web.middleware
async def docker_errors(request, handler):
    """Every refusal and failure as the Docker-style error the CLI prints; never a traceback."""
    try:
        return await handler(request)
    except json.JSONDecodeError as exc:
        return docker_error(400, "invalid JSON in request body: %s" % exc)
    except ApiError as exc:
        return docker_error(exc.status, str(exc))
    except NotFoundError as exc:
        return docker_error(404, str(exc))
    except VicError as exc:
        # vSphere faults arrive as one sentence naming the object (module_utils._vsphere_tasks).
        LOG.warning("%s %s: %s", request.method, request.path, exc)
        return docker_error(500, str(exc))
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
    """A failure nothing above expects (a bug of ours, mostly): the trace goes to the endpoint's log,
    the client gets one line."""
    LOG.error("%s %s failed", request.method, request.path, exc_info=exc)
    return docker_error(500, "internal error in the VCH endpoint (%s); see its log" % type(exc).__name__)


def make_app(facts, state=None):
    """The persona for one VCH: ``facts`` gives what /info reports (see VchFacts), ``state``
    the port layer the object routes serve (see state.VchState)."""
    app = web.Application(middlewares=[negotiate, docker_errors], client_max_size=64 * 1024 * 1024)
    app["facts"] = facts
    app["vch"] = state
    for method, path, handler in (("GET", "/_ping", ping), ("HEAD", "/_ping", ping),
                                  ("GET", "/version", version), ("GET", "/info", info)):
        route(app, method, path, handler)
    for name in API_MODULES:
        module = importlib.import_module("ansible_collections.vic.containers.appliance.api_" + name)
        for method, path, handler in module.ROUTES:
            route(app, method, path, handler)
        if hasattr(module, "setup"):
            module.setup(app)
    return app


async def json_body(request, kind=dict):
    """The request's JSON body (an empty body is ``kind()``); anything else is the client's fault."""
    text = await request.text()
    if not text.strip():
        return kind()
    body = json.loads(text)
    if not isinstance(body, kind):
        raise BadRequest("the request body must be a JSON %s" % ("object" if kind is dict else "array"))
    return body


async def ping(request):
    response = web.Response(text="OK" if request.method == "GET" else None, content_type="text/plain")
    response.headers["Cache-Control"] = "no-cache, no-store, must-revalidate"
    response.headers["Pragma"] = "no-cache"
    return response


async def version(request):
    engine = {
        "Version": PRODUCT_VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "python%s" % platform.python_version(),
        "Os": "linux",
        "Arch": "amd64",
        "KernelVersion": "",
        "BuildTime": "",
    }
    return web.json_response(dict(engine, Platform={"Name": "vSphere Integrated Containers (vic.containers)"},
                                  Components=[{"Name": "Engine", "Version": PRODUCT_VERSION,
                                               "Details": {k: v for k, v in engine.items() if k != "Version"}}]))


async def info(request):
    state = request.app["vch"]
    if state is None:
        return web.json_response(request.app["facts"].info())
    containers = state.containers.all()
    running = sum(1 for c in containers if c.running)
    return web.json_response(request.app["facts"].info(len(containers), running, len(state.images.list())))


class VchFacts:
    """What the endpoint reports about its VCH: its record read at start, counts from the live port layer."""

    def __init__(self, summary, config):
        self.summary = summary
        self.config = config

    def info(self, containers=None, running=None, images=0):
        if containers is None:
            found = self.summary["containers"]
            containers = len(found)
            running = sum(1 for c in found if c["power_state"] == "poweredOn")
        cpu, memory = self.config["cpu"], self.config["memory"]
        return {
            "ID": self.config["uuid"],
            "Name": self.config["name"],
            "Containers": containers,
            "ContainersRunning": running,
            "ContainersPaused": 0,
            "ContainersStopped": containers - running,
            "Images": images,
            "Driver": "vSphere Integrated Containers Backend Engine",
            "DriverStatus": [["VCH pool", self.summary["pool"]], ["Image store", self.summary["image_store"]]],
            "SystemStatus": [["VCH CPU limit", _limit(cpu["limit_mhz"], "MHz")],
                             ["VCH memory limit", _limit(memory["limit_mb"], "MB")],
                             ["VCH CPU shares", cpu["shares"]], ["VCH memory shares", memory["shares"]]]
            + [["Volume store " + label, path] for label, path in sorted(self.summary["volume_stores"].items())],
            "Plugins": {"Volume": ["vsphere"], "Network": ["bridge", "external"], "Authorization": [], "Log": ["json-file"]},
            "NCPU": 0,
            "MemTotal": memory["limit_mb"] * 1024 * 1024 if memory["limit_mb"] > 0 else 0,
            "OperatingSystem": "vSphere Integrated Containers",
            "OSType": "linux",
            "Architecture": "x86_64",
            "KernelVersion": "",
            "ServerVersion": PRODUCT_VERSION,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"InsecureRegistryCIDRs": [], "IndexConfigs": {},
                               "Mirrors": [], "AllowNondistributableArtifactsCIDRs": []},
            "InsecureRegistries": self.config["registry"]["insecure"],
            "HttpProxy": self.config["proxy"]["http"] or "",
            "HttpsProxy": self.config["proxy"]["https"] or "",
            "NoProxy": ",".join(self.config["proxy"]["no_proxy"] or []),
            "Labels": [],
            "Debug": bool(self.config["debug"]),
            "LoggingDriver": "json-file",
            "CgroupDriver": "none",
            "DockerRootDir": "",
            "SecurityOptions": [],
            "Warnings": [],
        }


def _limit(value, unit):
    return "unlimited" if value is None or value < 0 else "%d %s" % (value, unit)


def query_filters(request):
    """The ``filters`` query parameter as {name: [values]}; Docker accepts lists or {value: true} maps."""
    text = request.query.get("filters")
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        raise BadRequest("invalid filters: %s" % text)
    if not isinstance(raw, dict):
        raise BadRequest("invalid filters: %s" % text)
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
        raise BadRequest("invalid value for %s: %r%s" % (name, text, expected))


def query_bool(request, name, default=False):
    """A boolean query value read as dockerd reads one (``BoolValueOrDefault``).

    Absent is ``default``; present, anything but "", "0", "no", "false" or "none" is true.
    """
    value = request.query.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("", "0", "no", "false", "none")
