# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Docker API routes of containers, served from the port layer (containers as VMs)."""

import asyncio
import json
import logging
import random
import signal

from aiohttp import web

from ansible_collections.vic.containers.services.persona import container_config as spec
from ansible_collections.vic.containers.services.portlayer.containers import manager as port
from ansible_collections.vic.containers.services.persona import hijack
from ansible_collections.vic.containers.services.portlayer.containers import logs
from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput, Conflict, NotFound
from ansible_collections.vic.containers.services.portlayer import events
from ansible_collections.vic.containers.services.portlayer.attach import channel
from ansible_collections.vic.containers.services.portlayer.filters import keep, label_matches
from ansible_collections.vic.containers.services.persona.query import (json_body, query_bool, query_filters, query_int,
                                                                  query_unix_time)
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore
from ansible_collections.vic.containers.plugins.module_utils.vch import actions
from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc

try:
    from pyVmomi import vim
except ImportError:  # pragma: no cover - the endpoint's requirements install it
    vim = None

DEFAULT_STOP_TIMEOUT = 10
LOG = logging.getLogger("vic.endpoint.containers")
_ADJECTIVES = ("brave", "calm", "eager", "fervent", "gallant", "happy", "jolly", "keen", "lucid", "modest",
               "nifty", "quirky", "serene", "sharp", "stoic", "tender", "vibrant", "wizardly", "zealous", "bold")
_NAMES = ("babbage", "curie", "dijkstra", "euler", "fermat", "galois", "hopper", "hypatia", "kepler", "lamport",
          "lovelace", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wirth", "yonath", "zuse")


def _state(request):
    return request.app["portlayer"]


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
    addresses, mounts = [], []
    try:
        networks = _plan_networks(state, host, body.get("NetworkingConfig") or {}, addresses)
        requests = spec.volume_requests(body, host)
        port.check_disks(len(image.layers), len(requests))
        await _mounts(state, requests, mounts)
        container_id = port.new_id()
        record = _record(state, container_id, name, image, config, host, mounts, networks)
        await _create_vm(state, record, image, mounts, networks, cpus, memory_mb)
    except BaseException:
        # The anonymous volumes made for a container that could not be made would be nobody's.
        for mount in mounts:
            if mount["anonymous"]:
                await state.volumes.remove(mount["name"])
        raise
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
    # The CLI names the default network "default" in EndpointsConfig too.
    wanted = {("bridge" if name == "default" else name): endpoint
              for name, endpoint in (networking.get("EndpointsConfig") or {}).items()}
    wanted.setdefault("bridge" if mode == "default" else mode, {})
    planned = {}
    for ref, endpoint in wanted.items():
        net = state.networks.find(ref)
        endpoint = endpoint or {}
        ipam = endpoint.get("IPAMConfig") or {}
        planned[net.name] = state.networks.endpoint(net, ipam.get("IPv4Address"), endpoint.get("Aliases"), addresses)
    return planned


async def _mounts(state, requests, mounts):
    """Each requested volume, made if missing, appended to ``mounts`` as it is ready."""
    for name, target, readonly in requests:
        volume = await state.volumes.ensure(name)
        mounts.append({"name": volume.name, "destination": target, "rw": not readonly, "disk": volume.disk,
                       "capacity_kb": volume.capacity_kb, "anonymous": name is None, "store": volume.store})


def _record(state, container_id, name, image, config, host, mounts, networks):
    host_key, host_key_pub = channel.new_host_key()
    return {
        "id": container_id, "name": name, "created": port.iso(port.now()),
        # The VM's folder keeps the name the VM had when made; docker rename changes only the display name.
        "folder": port.vm_folder(state.image_store[0], port.vm_name(name, container_id)),
        "image": {"id": image.id, "name": config["Image"], "layers": [layer["id"] for layer in image.layers]},
        "config": config, "host_config": host, "mounts": mounts, "networks": networks,
        "tether": {"host_key": host_key, "host_key_pub": host_key_pub,
                   "endpoint_key": channel.public_key_text(state.tether_client_key),
                   "serial_uri": state.tether.serial_uri},
    }


async def _create_vm(state, record, image, mounts, networks, cpus, memory_mb):
    folder = record["folder"]
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
    if not await state.containers.power_on(container):
        return web.Response(status=304)
    state.events.publish("container", "start", container.id, events.container_attributes(container))
    return web.Response(status=204)


async def _halt(state, container, name, timeout):
    """Ask the process to end through the tether (``signal``), wait ``timeout``, then power the VM off.

    The exit recorded is the process's own when the tether reported one, else
    137 (killed), which is what powering a VM off amounts to.
    """
    if state.tether.connected(container.id) and name != "SIGKILL":
        stopped = state.containers.wait_stopped(container, asyncio.get_running_loop())
        await state.tether.signal(container.id, name)
        try:
            await asyncio.wait_for(asyncio.shield(stopped), timeout)
        except asyncio.TimeoutError:
            pass
    current = state.containers.find(container.id)
    if current.running:
        await state.containers.halt(current)


def _stop_settings(request, container):
    """(signal, seconds to wait) of docker stop / restart: the request's, else the container's, else Docker's."""
    wanted = request.query.get("signal") or container.config.get("StopSignal") or "SIGTERM"
    return _signal_name(wanted), query_int(request, "t", container.config.get("StopTimeout") or DEFAULT_STOP_TIMEOUT)


async def stop(request):
    state = _state(request)
    container = _container(request)
    if not container.running:
        return web.Response(status=304)
    await _halt(state, container, *_stop_settings(request, container))
    state.events.publish("container", "stop", container.id, events.container_attributes(container))
    return web.Response(status=204)


async def kill(request):
    state = _state(request)
    container = _container(request)
    if not container.running:
        raise Conflict("Cannot kill container: %s: Container %s is not running"
                       % (request.match_info["id"], container.id))
    name = _signal_name(request.query.get("signal") or "SIGKILL")
    if name == "SIGKILL" or not state.tether.connected(container.id):
        await _halt(state, container, "SIGKILL", 0)
    else:
        await state.tether.signal(container.id, name)
    state.events.publish("container", "kill", container.id, dict(events.container_attributes(container), signal=name))
    return web.Response(status=204)


async def restart(request):
    state = _state(request)
    container = _container(request)
    if container.running:
        await _halt(state, container, *_stop_settings(request, container))
    await state.containers.power_on(state.containers.find(container.id))
    state.events.publish("container", "restart", container.id, events.container_attributes(container))
    return web.Response(status=204)


async def remove(request):
    state = _state(request)
    container = _container(request)
    if container.running:
        if not query_bool(request, "force"):
            raise Conflict("You cannot remove a running container %s. Stop the container before attempting "
                           "removal or force remove" % container.id)
        await state.call(state.containers.vm.power_off, container.ref, container.name)
    await state.destroy(container, query_bool(request, "v"))
    return web.Response(status=204)


async def rename(request):
    state = _state(request)
    container = _container(request)
    new = spec.check_name(request.query.get("name"))
    if not new:
        raise InvalidInput("name is required to rename a container")
    if new == container.name:
        raise Conflict("Renaming a container with the same name as its current name")
    state.containers.ensure_unique(new)
    display = port.vm_name(new, container.id)
    await state.call(state.containers.vm.rename, container.ref, container.props.get("name"), display)
    state.cache.put(container.ref, {"name": display})
    await state.containers.rewrite(state.containers.find(container.id), dict(container.record, name=new))
    state.events.publish("container", "rename", container.id,
                         dict(events.container_attributes(container), name=new, oldName="/" + container.name))
    return web.Response(status=204)


async def wait(request):
    state = _state(request)
    container = _container(request)
    condition = request.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise InvalidInput("invalid condition: %r" % condition)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    if container.running or state.containers.ending(container.id) or condition in ("next-exit", "removed"):
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


async def container_logs(request):
    state = _state(request)
    container = _container(request)
    streams = {n for n, key in ((1, "stdout"), (2, "stderr")) if query_bool(request, key)}
    if not streams:
        raise InvalidInput("You must choose at least one stream")
    tail = request.query.get("tail", "all")
    if tail != "all" and not tail.isdigit():
        raise InvalidInput("invalid value for tail: %r (a number or all)" % tail)
    since = logs.moment(query_unix_time(request, "since"))
    until = logs.moment(query_unix_time(request, "until"))
    timestamps = query_bool(request, "timestamps")
    ds_name, folder = container.record["folder"][1:].split("] ", 1)
    data = await state.call(datastore.download, state.session, state.datacenter, ds_name,
                            "%s/%s" % (folder, port.LOG_FILE))
    entries = logs.select(logs.parse(data), streams, since, until, None if tail == "all" else int(tail))
    tty = bool(container.config.get("Tty"))
    response = web.StreamResponse(headers={"Content-Type": hijack.RAW if tty else hijack.MULTIPLEXED})
    await response.prepare(request)
    for stamp, stream, chunk in entries:
        text = logs.render(stamp, chunk, timestamps)
        await response.write(text if tty else hijack.frame(stream, text))
    if query_bool(request, "follow") and container.running and until is None:
        await _follow(state, container, response, streams, tty, timestamps)
    await response.write_eof()
    return response


async def _follow(state, container, response, streams, tty, timestamps):
    """Live output through the tether channel until the process ends or the client leaves."""
    if not state.tether.connected(container.id):
        return
    attachment = await state.tether.attach(container.id, tty=tty, stdin=False)
    try:
        async for stream, chunk in attachment:
            if stream in streams:
                text = logs.render(port.now(), chunk, timestamps)
                await response.write(text if tty else hijack.frame(stream, text))
    finally:
        attachment.close()


STATS_PATHS = ("summary.quickStats.overallCpuUsage", "summary.quickStats.guestMemoryUsage", "runtime.maxCpuUsage",
               "config.hardware.numCPU", "config.hardware.memoryMB")


async def stats(request):
    """What vSphere's quick stats say of the container VM: one PropertyCollector read per sample."""
    state = _state(request)
    container = _container(request)
    stream = query_bool(request, "stream", True) and not query_bool(request, "one-shot")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    previous = _empty_sample()
    while True:
        sample = await _sample(state, container, previous)
        await response.write(json.dumps(sample).encode() + b"\n")
        if not stream or not state.containers.find(container.id).running:
            break
        previous = sample
        await asyncio.sleep(1)
    await response.write_eof()
    return response


def _empty_sample():
    return {"cpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": 0},
            "read": port.iso(None)}


async def _sample(state, container, previous):
    found = await state.call(pc.retrieve_objects, state.session, [container.ref], STATS_PATHS)
    props = found[0] if found else None
    running = state.containers.find(container.id).running
    cpus = (props.get("config.hardware.numCPU") if props else None) or 1
    memory_mb = (props.get("config.hardware.memoryMB") if props else None) or 0
    used_mhz = (props.get("summary.quickStats.overallCpuUsage") if props and running else 0) or 0
    max_mhz = (props.get("runtime.maxCpuUsage") if props else 0) or 0
    # Docker computes CPU % from counter deltas: advance them by one second of this VM's share.
    system = previous["cpu_stats"]["system_cpu_usage"] + cpus * 1_000_000_000
    total = previous["cpu_stats"]["cpu_usage"]["total_usage"] + int(
        cpus * 1_000_000_000 * (used_mhz / max_mhz if max_mhz else 0))
    memory_used = ((props.get("summary.quickStats.guestMemoryUsage") if props and running else 0) or 0) * 1048576
    return {
        "id": container.id, "name": "/" + container.name, "read": port.iso(port.now()), "preread": previous["read"],
        "num_procs": 0, "pids_stats": {}, "networks": {}, "blkio_stats": {}, "storage_stats": {},
        "cpu_stats": {"cpu_usage": {"total_usage": total, "usage_in_kernelmode": 0, "usage_in_usermode": total},
                      "system_cpu_usage": system, "online_cpus": cpus, "throttling_data": {}},
        "precpu_stats": previous["cpu_stats"],
        "memory_stats": {"usage": memory_used, "limit": memory_mb * 1048576, "stats": {}},
    }


# -- reads --------------------------------------------------------------------------------------


async def list_containers(request):
    state = _state(request)
    filters = query_filters(request)
    everything = query_bool(request, "all") or bool(filters.get("status"))
    found = [c for c in state.containers.all() if (everything or c.running) and _matches(state, c, filters)]
    found.sort(key=lambda c: c.record["created"], reverse=True)
    limit = query_int(request, "limit", -1)
    if limit > 0:
        found = found[:limit]
    return web.Response(body=b"[" + b",".join(row(c) for c in found) + b"]", content_type="application/json")


def _matches(state, container, filters):
    tests = {
        "id": container.id.startswith,
        "name": lambda v: v.lstrip("/") in container.name,
        "status": lambda v: v == container.status,
        "ancestor": lambda v: v in (container.config.get("Image"), container.image_id) or
        container.image_id.startswith("sha256:" + v),
        "label": lambda v: label_matches(container.config.get("Labels") or {}, v),
        "network": lambda v: v in container.record.get("networks", {}) or
        any(ep["network_id"].startswith(v) for ep in container.record.get("networks", {}).values()),
        "volume": lambda v: v in container.volume_names() or
        any(m["destination"] == v for m in container.record.get("mounts", ())),
        "exited": lambda v: not container.running and container.status == "exited" and
        str(container.exit_code) == v,
        "before": lambda v: container.record["created"] < state.containers.find(v).record["created"],
        "since": lambda v: container.record["created"] > state.containers.find(v).record["created"],
    }
    return keep(filters, tests)


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
        networks[name] = {"IPAMConfig": {"IPv4Address": ep.get("ip") or ""}, "Links": [], "Aliases": ep.get("aliases") or [],
                          "NetworkID": ep["network_id"], "EndpointID": container.id if container.running else "",
                          "Gateway": ep.get("gateway") or "", "IPAddress": ep.get("ip") or "",
                          "IPPrefixLen": ep.get("prefix") or 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                          "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": {}}
    return networks


def _mounts_view(container):
    return [{"Type": "volume", "Name": m["name"], "Source": m["disk"], "Destination": m["destination"],
             "Driver": "vsphere", "Mode": "" if m["rw"] else "ro", "RW": m["rw"], "Propagation": ""}
            for m in container.record.get("mounts", ())]


def row(container):
    """One ``docker ps`` row as JSON bytes.

    All but ``Status`` ("Up 5 minutes") is kept with the decoded container,
    which is rebuilt whenever its VM changes, so listing 1,000 containers
    serializes 1,000 short status strings, not 1,000 rows.
    """
    cached = container.cache.get("row")
    if cached is None:
        created = port.parse_time(container.record["created"])
        fixed = {
            "Id": container.id, "Names": ["/" + container.name], "Image": container.config.get("Image"),
            "ImageID": container.image_id, "Command": _command(container.config),
            "Created": int(created.timestamp()), "Ports": [], "Labels": container.config.get("Labels") or {},
            "State": container.status,
            "HostConfig": {"NetworkMode": container.host_config.get("NetworkMode") or "default"},
            "NetworkSettings": {"Networks": _network_settings(container)}, "Mounts": _mounts_view(container),
        }
        cached = container.cache["row"] = json.dumps(fixed).encode()[:-1] + b', "Status": '
    return cached + json.dumps(_status_text(container)).encode() + b"}"


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
        "ExecIDs": [e["ID"] for e in state.execs.values() if e["ContainerID"] == container.id and e["Running"]],
        "HostConfig": host,
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


def _signal_name(text):
    """SIGTERM, TERM or 15 -> "SIGTERM", as ``docker kill -s`` accepts them."""
    name = str(text).upper()
    try:
        if name.isdigit():
            return signal.Signals(int(name)).name
        name = name if name.startswith("SIG") else "SIG" + name
        return signal.Signals[name].name
    except (KeyError, ValueError):
        raise InvalidInput("Invalid signal: %s" % text)


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
    ("GET", "/containers/{id}/logs", container_logs),
    ("GET", "/containers/{id}/stats", stats),
    ("DELETE", "/containers/{id}", remove),
)
