# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Docker API routes of containers, served from the port layer (containers as VMs)."""

import asyncio
import ipaddress
import json
import random

from aiohttp import web

from ansible_collections.vic.containers.appliance import container_config as spec
from ansible_collections.vic.containers.appliance import containers as port
from ansible_collections.vic.containers.appliance.cache import LiveCache
from ansible_collections.vic.containers.appliance.errors import BadRequest, Conflict, NotFound
from ansible_collections.vic.containers.appliance.events import Events
from ansible_collections.vic.containers.appliance.networks import Networks
from ansible_collections.vic.containers.appliance.persona import json_body, query_bool, query_filters
from ansible_collections.vic.containers.plugins.module_utils import _vch_actions as actions
from ansible_collections.vic.containers.plugins.module_utils import _vch_config as codec

try:
    from pyVmomi import vim
except ImportError:  # pragma: no cover - the endpoint's requirements install it
    vim = None

DEFAULT_STOP_TIMEOUT = 10
# Exit codes Docker reports for a process ended by a signal: 128 + the signal number.
SIGNALS = {"SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGKILL": 9, "SIGUSR1": 10, "SIGUSR2": 12, "SIGTERM": 15}
_ADJECTIVES = ("brave", "calm", "eager", "fervent", "gallant", "happy", "jolly", "keen", "lucid", "modest",
               "nifty", "quirky", "serene", "sharp", "stoic", "tender", "vibrant", "wizardly", "zealous", "bold")
_NAMES = ("babbage", "curie", "dijkstra", "euler", "fermat", "galois", "hopper", "hypatia", "kepler", "lamport",
          "lovelace", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wirth", "yonath", "zuse")


def setup(app):
    state = app["vch"]
    state.events = Events()
    state.cache = LiveCache(state)
    state.networks = Networks(state)
    state.containers = port.Containers(state)
    state.reserved_names = set()
    state.reserved_addresses = set()

    async def start_cache(app):
        await state.cache.start()

    async def stop_cache(app):
        state.cache.stop()
    app.on_startup.append(start_cache)
    app.on_cleanup.append(stop_cache)


def _state(request):
    return request.app["vch"]


def _container(request):
    return _state(request).containers.find(request.match_info["id"])


def _generate_name(containers):
    for _attempt in range(100):
        name = "%s_%s" % (random.choice(_ADJECTIVES), random.choice(_NAMES))
        if containers.by_name(name) is None:
            return name
    return "%s_%d" % (random.choice(_NAMES), random.randrange(10 ** 6))


# -- create -------------------------------------------------------------------------------------


async def create(request):
    state = _state(request)
    name = spec.check_name(request.query.get("name"))
    body = await json_body(request)
    spec.check_fields(body)
    host = body.get("HostConfig") or {}
    spec.refuse_unsupported(host)
    image = state.images.resolve(body["Image"])
    config = spec.merge(body, image.config)
    cpus, memory_mb = spec.sizing(host)
    name = name or _generate_name(state.containers)
    state.containers.ensure_unique(name)
    if name in state.reserved_names:
        raise Conflict('Conflict. The container name "/%s" is already being created.' % name)
    state.reserved_names.add(name)
    addresses = []
    try:
        networks = _plan_networks(state, host, body.get("NetworkingConfig") or {}, addresses)
        mounts = await _mounts(state, body, host)
        container_id = port.new_id()
        record = _record(state, container_id, name, image, config, host, mounts, networks)
        await _create_vm(state, record, image, mounts, networks, cpus, memory_mb)
    finally:
        state.reserved_names.discard(name)
        state.reserved_addresses.difference_update(addresses)
    state.events.publish("container", "create", container_id, {"name": name, "image": config["Image"]})
    return web.json_response({"Id": container_id, "Warnings": []}, status=201)


def _plan_networks(state, host, networking, addresses):
    """{network name: endpoint} for the container; addresses are reserved until the VM exists."""
    mode = host.get("NetworkMode") or "default"
    if mode == "none":
        return {}
    wanted = dict(networking.get("EndpointsConfig") or {})
    primary = "bridge" if mode == "default" else mode
    wanted.setdefault(primary, {})
    planned = {}
    for ref, endpoint in wanted.items():
        net = state.networks.find(ref)
        endpoint = endpoint or {}
        ipam = endpoint.get("IPAMConfig") or {}
        planned[net.name] = _endpoint(state, net, ipam.get("IPv4Address"), endpoint.get("Aliases"), addresses)
    return planned


def _endpoint(state, net, wanted_ip, aliases, addresses):
    taken = {str(ep.get("ip")) for c in state.containers.all()
             for ep in c.record.get("networks", {}).values() if ep.get("ip")}
    taken |= state.reserved_addresses
    address = state.networks.allocate(net, {ipaddress.ip_address(a) for a in taken}, wanted_ip)
    if address is not None:
        state.reserved_addresses.add(str(address))
        addresses.append(str(address))
    return {"network_id": net.id, "port_group": net.port_group, "ip": str(address) if address else None,
            "gateway": str(net.gateway) if net.gateway else None,
            "prefix": net.subnet.prefixlen if net.subnet else 0, "aliases": list(aliases or ()),
            "dns": net.dns}


async def _mounts(state, body, host):
    mounts = []
    for name, target, readonly in spec.volume_requests(body, host):
        volume = await state.volumes.ensure(name)
        mounts.append({"name": volume.name, "destination": target, "rw": not readonly, "disk": volume.disk,
                       "capacity_kb": volume.capacity_kb, "anonymous": name is None, "store": volume.store})
    return mounts


def _record(state, container_id, name, image, config, host, mounts, networks):
    from ansible_collections.vic.containers.appliance import tether_channel as channel  # lands with the channel
    host_key, host_key_pub = channel.new_host_key()
    return {
        "id": container_id, "name": name, "created": port.iso(port.now()),
        "image": {"id": image.id, "name": config["Image"], "layers": [layer["id"] for layer in image.layers]},
        "config": config, "host_config": host, "mounts": mounts, "networks": networks,
        "tether": {"host_key": host_key, "host_key_pub": host_key_pub,
                   "endpoint_key": channel.public_key_text(state.tether_client_key),
                   "serial_uri": state.tether.serial_uri},
    }


async def _create_vm(state, record, image, mounts, networks, cpus, memory_mb):
    image_ds = state.image_store[0]
    folder = "[%s] %s" % (image_ds, record["id"])
    backings = [state.networks.backing(ep["port_group"]) for ep in networks.values()]
    iso_path = state.config.get("bootstrap_iso") or "[%s] %s/bootstrap.iso" % state.image_store
    capacity_kb = int(state.config.get("base_image_size_gb") or 8) * 1024 * 1024
    devices = port.device_specs(folder, image.layers, capacity_kb, mounts, backings, iso_path,
                                state.tether.serial_uri)
    extra = port.record_values(record)
    display = port.vm_name(record["name"], record["id"])
    ref = await state.call(state.containers.vm.create, display, port.bios_uuid(state.uuid, record["id"]),
                           cpus, memory_mb, folder, devices, extra)
    state.cache.put(ref, {
        "name": display, "config.extraConfig": actions.option_values(extra),
        "config.managedBy": vim.ext.ManagedByInfo(extensionKey=codec.MANAGED_BY_EXTENSION,
                                                  type=codec.MANAGED_BY_CONTAINER),
        "runtime.powerState": "poweredOff"})


# -- lifecycle ----------------------------------------------------------------------------------


async def start(request):
    state = _state(request)
    container = _container(request)
    if container.running:
        return web.Response(status=304)
    await state.call(state.containers.vm.power_on, container.ref, container.name)
    state.cache.put(container.ref, {"runtime.powerState": "poweredOn",
                                    "summary.runtime.bootTime": port.now()})
    state.events.publish("container", "start", container.id, _attributes(container))
    return web.Response(status=204)


async def _halt(state, container, signal, timeout):
    """Signal the container's process through the tether, then power the VM off if it is still on.

    Returns the exit code Docker reports: the process's own when the tether
    reported one, else 128 + the signal that ended it.
    """
    started = container.started_at
    code = 128 + SIGNALS.get(signal, 9)
    if state.tether.connected(container.id) and signal != "SIGKILL":
        await state.tether.signal(container.id, signal)
        stopped = state.containers.wait_stopped(container, asyncio.get_running_loop())
        try:
            await asyncio.wait_for(asyncio.shield(stopped), timeout)
        except asyncio.TimeoutError:
            code = 137
    reported = state.exit_codes.pop(container.id, None)
    if reported is not None:
        code = reported
    current = state.containers.find(container.id)
    if current.running:
        await state.call(state.containers.vm.power_off, container.ref, container.name)
        state.cache.put(container.ref, {"runtime.powerState": "poweredOff", "summary.runtime.bootTime": None})
    await state.containers.record_exit(state.containers.find(container.id), code, started)
    return code


async def stop(request):
    state = _state(request)
    container = _container(request)
    if not container.running:
        return web.Response(status=304)
    timeout = _int_query(request, "t", container.config.get("StopTimeout") or DEFAULT_STOP_TIMEOUT)
    signal = request.query.get("signal") or container.config.get("StopSignal") or "SIGTERM"
    await _halt(state, container, _signal_name(signal), timeout)
    state.events.publish("container", "stop", container.id, _attributes(container))
    return web.Response(status=204)


async def kill(request):
    state = _state(request)
    container = _container(request)
    if not container.running:
        raise Conflict("Cannot kill container: %s: Container %s is not running"
                       % (request.match_info["id"], container.id))
    signal = _signal_name(request.query.get("signal") or "SIGKILL")
    if signal == "SIGKILL" or not state.tether.connected(container.id):
        await _halt(state, container, "SIGKILL", 0)
    else:
        await state.tether.signal(container.id, signal)
    state.events.publish("container", "kill", container.id, dict(_attributes(container), signal=signal))
    return web.Response(status=204)


async def restart(request):
    state = _state(request)
    container = _container(request)
    if container.running:
        timeout = _int_query(request, "t", container.config.get("StopTimeout") or DEFAULT_STOP_TIMEOUT)
        await _halt(state, container, _signal_name(container.config.get("StopSignal") or "SIGTERM"), timeout)
    await state.call(state.containers.vm.power_on, container.ref, container.name)
    state.cache.put(container.ref, {"runtime.powerState": "poweredOn", "summary.runtime.bootTime": port.now()})
    state.events.publish("container", "restart", container.id, _attributes(container))
    return web.Response(status=204)


async def remove(request):
    state = _state(request)
    container = _container(request)
    if container.running:
        if not query_bool(request, "force"):
            raise Conflict("You cannot remove a running container %s. Stop the container before attempting "
                           "removal or force remove" % container.id)
        await state.call(state.containers.vm.power_off, container.ref, container.name)
    await state.call(state.containers.vm.destroy, container.ref, container.name)
    state.cache.drop(container.moid)
    if query_bool(request, "v"):
        for mount in container.record.get("mounts", ()):
            if mount.get("anonymous") and not state.containers.using_volume(mount["name"]):
                await state.volumes.remove(mount["name"])
    state.events.publish("container", "destroy", container.id, _attributes(container))
    return web.Response(status=204)


async def rename(request):
    state = _state(request)
    container = _container(request)
    new = spec.check_name(request.query.get("name"))
    if not new:
        raise BadRequest("name is required to rename a container")
    if new == container.name:
        raise Conflict("Renaming a container with the same name as its current name")
    state.containers.ensure_unique(new)
    record = dict(container.record, name=new)
    values = port.record_values(record)
    old_display = container.props.get("name")
    display = port.vm_name(new, container.id)
    await state.call(state.containers.vm.rename, container.ref, old_display, display)
    await state.call(state.containers.vm.reconfigure, container.ref, display, values)
    extra = {o.key: o.value for o in container.props.get("config.extraConfig") or ()}
    extra.update(values)
    state.cache.put(container.ref, {"name": display, "config.extraConfig": actions.option_values(extra)})
    state.events.publish("container", "rename", container.id,
                         dict(_attributes(container), name=new, oldName="/" + container.name))
    return web.Response(status=204)


async def wait(request):
    state = _state(request)
    container = _container(request)
    condition = request.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise BadRequest("invalid condition: %r" % condition)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    if container.running or condition in ("next-exit", "removed"):
        await state.containers.wait_stopped(container, asyncio.get_running_loop())
        if condition == "removed":
            while state.containers.by_name(container.name) is not None:
                await state.containers.wait_stopped(container, asyncio.get_running_loop())
    try:
        container = state.containers.find(container.id)
    except NotFound:
        pass
    await response.write(json.dumps({"StatusCode": container.exit_code, "Error": None}).encode() + b"\n")
    await response.write_eof()
    return response


# -- reads --------------------------------------------------------------------------------------


async def list_containers(request):
    state = _state(request)
    filters = query_filters(request)
    everything = query_bool(request, "all") or bool(filters.get("status"))
    found = [c for c in state.containers.all() if (everything or c.running) and _matches(state, c, filters)]
    found.sort(key=lambda c: c.record["created"], reverse=True)
    limit = _int_query(request, "limit", -1)
    if limit > 0:
        found = found[:limit]
    return web.json_response([summary(state, c) for c in found])


def _matches(state, container, filters):
    tests = {
        "id": lambda v: container.id.startswith(v),
        "name": lambda v: v.lstrip("/") in container.name,
        "status": lambda v: v == container.status,
        "ancestor": lambda v: v in (container.config.get("Image"), container.image_id) or
        container.image_id.startswith("sha256:" + v),
        "label": lambda v: _label_matches(container.config.get("Labels") or {}, v),
        "network": lambda v: v in container.record.get("networks", {}) or
        any(ep["network_id"].startswith(v) for ep in container.record.get("networks", {}).values()),
        "volume": lambda v: v in container.volume_names() or
        any(m["destination"] == v for m in container.record.get("mounts", ())),
        "exited": lambda v: not container.running and container.status == "exited" and
        str(container.exit_code) == v,
        "before": lambda v: container.record["created"] < state.containers.find(v).record["created"],
        "since": lambda v: container.record["created"] > state.containers.find(v).record["created"],
    }
    for key, values in filters.items():
        test = tests.get(key)
        if test is None:
            raise BadRequest("invalid filter '%s'" % key)
        if not any(test(v) for v in values):
            return False
    return True


def _label_matches(labels, wanted):
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _command(config):
    return " ".join((config.get("Entrypoint") or []) + (config.get("Cmd") or []))


def _status_text(container):
    if container.running:
        return "Up %s" % _ago(container.started_at)
    if container.status == "created":
        return "Created"
    return "Exited (%d) %s ago" % (container.exit_code, _ago(container.finished_at))


def _ago(moment):
    if moment is None:
        return "less than a second"
    seconds = max(0, int((port.now() - moment).total_seconds()))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds // size
            return "%d %s%s" % (count, unit, "s" if count > 1 else "")
    return "%d seconds" % seconds if seconds > 1 else "Less than a second"


def _network_settings(container):
    networks = {}
    for name, ep in container.record.get("networks", {}).items():
        networks[name] = {"IPAMConfig": None, "Links": None, "Aliases": ep.get("aliases") or None,
                          "NetworkID": ep["network_id"], "EndpointID": container.id if container.running else "",
                          "Gateway": ep.get("gateway") or "", "IPAddress": ep.get("ip") or "",
                          "IPPrefixLen": ep.get("prefix") or 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                          "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}
    return networks


def _mounts_view(container):
    return [{"Type": "volume", "Name": m["name"], "Source": m["disk"], "Destination": m["destination"],
             "Driver": "vsphere", "Mode": "" if m["rw"] else "ro", "RW": m["rw"], "Propagation": ""}
            for m in container.record.get("mounts", ())]


def summary(state, container):
    """One ``docker ps`` row."""
    created = port.parse_time(container.record["created"])
    return {
        "Id": container.id, "Names": ["/" + container.name], "Image": container.config.get("Image"),
        "ImageID": container.image_id, "Command": _command(container.config),
        "Created": int(created.timestamp()), "Ports": [], "Labels": container.config.get("Labels") or {},
        "State": container.status, "Status": _status_text(container),
        "HostConfig": {"NetworkMode": container.host_config.get("NetworkMode") or "default"},
        "NetworkSettings": {"Networks": _network_settings(container)}, "Mounts": _mounts_view(container),
    }


async def inspect(request):
    state = _state(request)
    container = _container(request)
    config = dict(container.config)
    argv = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    host = dict(container.host_config)
    host.setdefault("NetworkMode", "default")
    cpus, memory_mb = spec.sizing(container.host_config)
    host.update(NanoCpus=host.get("NanoCpus") or 0, Memory=memory_mb * 1024 * 1024)
    return web.json_response({
        "Id": container.id, "Created": container.record["created"], "Path": argv[0] if argv else "",
        "Args": argv[1:], "Name": "/" + container.name, "Image": container.image_id,
        "State": {"Status": container.status, "Running": container.running, "Paused": False, "Restarting": False,
                  "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": container.exit_code, "Error": "",
                  "StartedAt": port.iso(container.started_at), "FinishedAt": port.iso(container.finished_at)},
        "ResolvConfPath": "", "HostnamePath": "", "HostsPath": "", "LogPath": "", "RestartCount": 0,
        "Driver": "vsphere", "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "ExecIDs": None, "HostConfig": host,
        "GraphDriver": {"Name": "vsphere", "Data": {
            "VM": container.props.get("name"), "VCH": state.name, "vCPUs": str(cpus),
            "Layers": ",".join(container.record["image"].get("layers", ()))}},
        "Mounts": _mounts_view(container), "Config": config,
        "NetworkSettings": {"Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
                            "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": "",
                            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "",
                            "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "",
                            "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
                            "Networks": _network_settings(container)},
    })


def _attributes(container):
    return dict(container.config.get("Labels") or {}, name=container.name, image=container.config.get("Image"))


def _int_query(request, name, default):
    value = request.query.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest("invalid value for %s: %r is not an integer" % (name, value))


def _signal_name(text):
    name = str(text).upper()
    if name.isdigit():
        for known, number in SIGNALS.items():
            if number == int(name):
                return known
        raise BadRequest("Invalid signal: %s" % text)
    name = name if name.startswith("SIG") else "SIG" + name
    if name not in SIGNALS:
        raise BadRequest("Invalid signal: %s" % text)
    return name


ROUTES = (
    ("POST", "/containers/create", create),
    ("GET", "/containers/json", list_containers),
    ("GET", "/containers/{id}/json", inspect),
    ("POST", "/containers/{id}/start", start),
    ("POST", "/containers/{id}/stop", stop),
    ("POST", "/containers/{id}/kill", kill),
    ("POST", "/containers/{id}/restart", restart),
    ("POST", "/containers/{id}/rename", rename),
    ("POST", "/containers/{id}/wait", wait),
    ("DELETE", "/containers/{id}", remove),
)
