# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine-wide routes: ``/_ping``, ``/version`` and ``/info``."""

import platform

from aiohttp import web

from ansible_collections.vic.containers.services.persona.query import portlayer

from ansible_collections.vic.containers.plugins.module_utils._version import VERSION as PRODUCT_VERSION
from ansible_collections.vic.containers.services.persona.negotiation import API_VERSION, MIN_API_VERSION


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
    state = portlayer(request)
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


ROUTES = (
    ("GET", "/_ping", ping),
    ("HEAD", "/_ping", ping),
    ("GET", "/version", version),
    ("GET", "/info", info),
)
