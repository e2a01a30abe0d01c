# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The engine-wide routes: ``/_ping``, ``/version`` and ``/info``."""

import ipaddress
import json
import platform

from aiohttp import web

from ansible_collections.vic.containers.services.imagec.auth import credentials_from_header
from ansible_collections.vic.containers.services.imagec.reference import parse_reference
from ansible_collections.vic.containers.services.persona import views
from ansible_collections.vic.containers.services.persona.errors import docker_error
from ansible_collections.vic.containers.services.persona.query import portlayer
from ansible_collections.vic.containers.services.portlayer import pool
from ansible_collections.vic.containers.services.portlayer.containers import usage

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
    cpus, memory = await state.call(pool.size, state.session, state.pool_ref)
    return web.json_response(request.app["facts"].info(len(containers), running, len(state.images.list()),
                                                       cpus=cpus, memory=memory))


# dockerd's answers on a node that is in no swarm: clients (the Docker SDK's users, test frameworks)
# treat a 503 from /swarm/leave as "nothing to leave" and go on with their clean-up.
_NOT_IN_SWARM = "This node is not part of a swarm"
_NOT_A_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
                  "this node to swarm and try again.")
SWARM_INACTIVE = {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None}


async def swarm_leave(request):
    return docker_error(503, _NOT_IN_SWARM)


async def swarm_manager_only(request):
    return docker_error(503, _NOT_A_MANAGER)


async def distribution(request):
    """``GET /distribution/{name}/json``: the registry's descriptor of a reference and its platforms."""
    ref = parse_reference(request.match_info["name"])
    creds = credentials_from_header(request.headers.get("X-Registry-Auth"))
    async with portlayer(request).images.registry_client(creds) as client:
        data, descriptor = await client.descriptor(ref)
        if "manifests" in data:
            platforms = [entry.get("platform") or {} for entry in data.get("manifests") or ()]
        else:
            config = json.loads(await client.blob_bytes(ref, data["config"]))
            platforms = [{key: config[key] for key in ("architecture", "os", "variant") if config.get(key)}]
    return web.json_response({"Descriptor": descriptor, "Platforms": platforms})


async def disk_usage(request):
    """``docker system df``: what the images, containers and volumes of the VCH hold."""
    state = portlayer(request)
    images = state.images.list()
    users = {}
    for container in state.containers.all():
        users[container.image_id] = users.get(container.image_id, 0) + 1
    summaries = [dict(image.summary(), Containers=users.get(image.id, 0)) for image in images]
    containers = state.containers.all()
    sizes = await state.call(usage.own_sizes, state.session, [c.ref for c in containers])  # one read for all
    image_sizes = {image.id: image.size for image in images}
    rows = [dict(json.loads(views.row(c, state.containers.restarting(c.id), address=state.ports.address)), SizeRw=sizes.get(c.moid, 0),
                 SizeRootFs=sizes.get(c.moid, 0) + image_sizes.get(c.image_id, 0)) for c in containers]
    volumes = [views.volume(v, state.containers.using_volume(v.name)) for v in state.volumes.list()]
    return web.json_response({"LayersSize": sum(image.size for image in images), "Images": summaries,
                              "Containers": rows, "Volumes": volumes, "BuildCache": []})


class VchFacts:
    """What the endpoint reports about its VCH: its record read at start, counts from the live port layer."""

    def __init__(self, summary, config):
        self.summary = summary
        self.config = config

    def info(self, containers=None, running=None, images=0, cpus=0, memory=0):
        if containers is None:
            found = self.summary["containers"]
            containers = len(found)
            running = sum(1 for c in found if c["power_state"] == "poweredOn")
        cpu, memory_config = self.config["cpu"], self.config["memory"]
        registry = self.config["registry"]
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
                             ["VCH memory limit", _limit(memory_config["limit_mb"], "MB")],
                             ["VCH CPU shares", cpu["shares"]], ["VCH memory shares", memory_config["shares"]],
                             ["Registry Whitelist Mode", "enabled" if registry["whitelist"] else "disabled"]]
            + ([["Whitelisted Registries", ", ".join(registry["whitelist"])]] if registry["whitelist"] else [])
            + [["Volume store " + label, path] for label, path in sorted(self.summary["volume_stores"].items())],
            "Plugins": {"Volume": ["vsphere"], "Network": ["bridge", "external"], "Authorization": [], "Log": ["json-file"]},
            "NCPU": cpus,
            "MemTotal": memory,
            "OperatingSystem": "vSphere Integrated Containers",
            "OSType": "linux",
            "Architecture": "x86_64",
            "KernelVersion": "",
            "ServerVersion": PRODUCT_VERSION,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": registry_config(registry["insecure"] or ()),
            "ExperimentalBuild": False,
            "Swarm": SWARM_INACTIVE,
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


def registry_config(insecure):
    """dockerd's RegistryConfig: insecure registries given as networks are CIDRs (loopback always is one),
    the others index configurations that are not secure; Docker Hub is the official index."""
    cidrs = ["127.0.0.0/8"]
    indexes = {"docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": True, "Official": True}}
    for entry in insecure:
        if "/" in entry:
            try:
                cidrs.append(str(ipaddress.ip_network(entry, strict=False)))
                continue
            except ValueError:
                pass
        indexes[entry] = {"Name": entry, "Mirrors": [], "Secure": False, "Official": False}
    return {"AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": list(dict.fromkeys(cidrs)), "IndexConfigs": indexes, "Mirrors": []}


def _limit(value, unit):
    return "unlimited" if value is None or value < 0 else "%d %s" % (value, unit)


ROUTES = (
    ("GET", "/_ping", ping),
    ("HEAD", "/_ping", ping),
    ("GET", "/version", version),
    ("GET", "/info", info),
    ("POST", "/swarm/leave", swarm_leave),
    ("GET", "/swarm", swarm_manager_only),
    ("GET", "/swarm/unlockkey", swarm_manager_only),
    ("GET", "/nodes", swarm_manager_only),
    ("GET", "/services", swarm_manager_only),
    ("GET", "/tasks", swarm_manager_only),
    ("GET", "/secrets", swarm_manager_only),
    ("GET", "/configs", swarm_manager_only),
    ("GET", r"/distribution/{name:.+}/json", distribution),
    ("GET", "/system/df", disk_usage),
)
