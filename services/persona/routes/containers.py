# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Docker API routes of containers: each request read, handed to the port layer, answered as Docker does."""

import asyncio
import json
import signal

from aiohttp import web

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput, Conflict, NotFound
from ansible_collections.vic.containers.services.persona import container_config as spec
from ansible_collections.vic.containers.services.persona import hijack
from ansible_collections.vic.containers.services.persona import validation
from ansible_collections.vic.containers.services.persona import views
from ansible_collections.vic.containers.services.persona.routes.exec import tether_or_end
from ansible_collections.vic.containers.services.persona.query import (json_body, portlayer, query_bool, query_filters,
                                                                       query_int, query_unix_time)
from ansible_collections.vic.containers.services.portlayer import events
from ansible_collections.vic.containers.services.portlayer.containers import logs
from ansible_collections.vic.containers.services.portlayer.containers import update as resize
from ansible_collections.vic.containers.services.portlayer.containers import usage
from ansible_collections.vic.containers.services.portlayer.containers.model import parse_time
from ansible_collections.vic.containers.services.portlayer.network import ports
from ansible_collections.vic.containers.services.portlayer.filters import (check_values, keep, label_matches,
                                                                           name_matches, until_seconds)
from ansible_collections.vic.containers.services.portlayer.network import peers
from ansible_collections.vic.containers.services.portlayer.storage.volumes import DRIVER

DEFAULT_STOP_TIMEOUT = 10


async def _container(request):
    return await portlayer(request).containers.look_up(request.match_info["id"])


# -- create -------------------------------------------------------------------------------------


async def create(request):
    state = portlayer(request)
    name = spec.check_name(request.query.get("name"))
    body = await json_body(request)
    spec.check_fields(body)
    host = body.get("HostConfig") or {}
    spec.refuse_unsupported(host)
    if host.get("Runtime") not in (None, "", "runc"):
        raise InvalidInput("Unknown runtime specified %s" % host["Runtime"])
    _check_log_config(host.get("LogConfig") or {})
    # As dockerd, the settings are checked before the image is looked up (and the CLI pulls a missing one).
    cpus, memory_mb = spec.sizing(host)
    networks = spec.network_requests(host, body.get("NetworkingConfig") or {})
    _check_networks(state, networks)
    _check_links(state, host, networks)
    validation.check_addresses(state.networks, networks)
    image = state.images.resolve(body["Image"])
    config = spec.merge(body, image.config)
    name = name or spec.generate_name(lambda candidate: state.containers.by_name(candidate) is not None)
    volumes = spec.volume_requests(body, host)
    published = ports.requests(config, host)    # -P: the image's exposed ports too
    await _mount_volumes(state, host)
    container_id = await state.containers.create(name, image, config, host, networks, volumes, cpus, memory_mb,
                                                 published)
    state.events.publish("container", "create", container_id, {"name": name, "image": config["Image"]})
    return web.json_response({"Id": container_id, "Warnings": []}, status=201)


# json-file's options in dockerd (daemon/logger/jsonfilelog); the VM's log is json-file whatever is asked.
_JSON_FILE_OPTIONS = frozenset(("max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex",
                                "tag"))


def _check_log_config(log_config):
    """A container VM's output is a json-file log (its serial port): another driver is refused with dockerd's
    words, and so is an option json-file does not know."""
    if not isinstance(log_config, dict):
        raise InvalidInput("LogConfig must be an object")
    driver = log_config.get("Type") or "json-file"
    if driver != "json-file":
        raise InvalidInput("logger: no log driver named '%s' is registered (a VCH keeps json-file logs)" % driver)
    for option in sorted(log_config.get("Config") or {}):
        if option not in _JSON_FILE_OPTIONS:
            raise InvalidInput("unknown log opt '%s' for json-file log driver" % option)


def _check_networks(state, networks):
    """A network that does not exist is refused before the image is looked for: the CLI pulls a missing
    image on any 404 of create, and would pull for a run that cannot be made (so this is a 400)."""
    for ref in networks:
        try:
            state.networks.find(ref)
        except NotFound as exc:
            raise InvalidInput(str(exc)) from None


def _check_links(state, host, networks):
    """``--link NAME[:ALIAS]``: on the default bridge each must name an existing container (dockerd's words;
    a 400, or the CLI would pull); on a user-defined network dockerd ignores the HostConfig's links, which the
    CLI also gives the network's endpoint (its aliases resolve there, peers.py)."""
    links = host.get("Links") or ()
    for link in links:
        name, _alias = peers.parse_link(link)
        if not name:
            raise InvalidInput("invalid link %r: it must be NAME[:ALIAS]" % link)
    if links and not networks:
        raise InvalidInput("conflicting options: --link cannot be used with --network none")
    if peers.DEFAULT_NETWORK not in networks:
        return
    for link in links:
        name, _alias = peers.parse_link(link)
        try:
            state.containers.find(name)
        except NotFound as exc:
            raise InvalidInput("could not get container for %s: %s" % (name, exc)) from None


async def _mount_volumes(state, host):
    """The named volumes ``--mount type=volume,...,volume-opt=K=V`` (or volume-label) asks for, made with
    those options (dockerd creates them with the mount's driver configuration); existing ones are kept."""
    for mount in host.get("Mounts") or ():
        options = mount.get("VolumeOptions") or {}
        driver = options.get("DriverConfig") or {}
        if not mount.get("Source") or state.volumes.exists(mount["Source"]) or not (driver or options.get("Labels")):
            continue
        await state.volumes.create(mount["Source"], driver.get("Name") or DRIVER, driver.get("Options") or {},
                                   options.get("Labels") or {})


# -- lifecycle ----------------------------------------------------------------------------------


async def start(request):
    state = portlayer(request)
    container = await _container(request)
    if not await state.start_container(container):
        return web.Response(status=304)
    state.events.publish("container", "start", container.id, events.container_attributes(container))
    return web.Response(status=204)


def _stop_settings(request, container):
    """(signal, seconds to wait) of docker stop / restart: the request's, else the container's, else Docker's."""
    wanted = request.query.get("signal") or container.config.get("StopSignal") or "SIGTERM"
    return _signal_name(wanted), query_int(request, "t", container.config.get("StopTimeout") or DEFAULT_STOP_TIMEOUT)


async def stop(request):
    state = portlayer(request)
    container = await _container(request)
    if not container.running and not state.containers.restarting(container.id) \
            and not state.containers.unrecorded(container.id):
        return web.Response(status=304)
    await state.containers.stop(container, *_stop_settings(request, container))
    state.events.publish("container", "stop", container.id, events.container_attributes(container))
    return web.Response(status=204)


async def kill(request):
    state = portlayer(request)
    container = await _container(request)
    if not container.running:
        raise Conflict("Cannot kill container: %s: Container %s is not running"
                       % (request.match_info["id"], container.id))
    name = _signal_name(request.query.get("signal") or "SIGKILL")
    await state.containers.kill(container, name)
    state.events.publish("container", "kill", container.id, dict(events.container_attributes(container), signal=name))
    return web.Response(status=204)


async def restart(request):
    state = portlayer(request)
    container = await _container(request)
    if container.running:
        await state.containers.stop(container, *_stop_settings(request, container))
    await state.containers.power_on(state.containers.find(container.id))
    state.events.publish("container", "restart", container.id, events.container_attributes(container))
    return web.Response(status=204)


async def remove(request):
    state = portlayer(request)
    container = await _container(request)
    if state.containers.restarting(container.id) and not query_bool(request, "force"):
        raise Conflict("You cannot remove a restarting container %s. Stop the container before attempting removal "
                       "or force remove" % container.id)
    if container.running:
        if not query_bool(request, "force"):
            raise Conflict("You cannot remove a running container %s. Stop the container before attempting "
                           "removal or force remove" % container.id)
        await state.containers.power_off(container)
    await state.destroy(container, query_bool(request, "v"))
    return web.Response(status=204)


# What ``docker update`` can change of a container VM; the CLI sends every resource, 0 for "unchanged".
_RESIZABLE = ("Memory", "NanoCpus", "CpuCount", "CpusetCpus")
_UPDATE_IGNORED = frozenset(("RestartPolicy", "MemorySwap")) | frozenset(_RESIZABLE)


async def update(request):
    """``docker update``: memory and CPU limits (the VM's size, ``containers/update.py``) and the restart
    policy; what a container VM cannot change is refused naming it."""
    state = portlayer(request)
    container = await _container(request)
    body = validation.check(await json_body(request), validation.UPDATE_REQUEST)
    refused = sorted(key for key, value in body.items() if value and key not in _UPDATE_IGNORED and
                     key in spec.HOST_CONFIG_FIELDS)
    if body.get("MemorySwap") not in (None, 0, -1):
        refused.append("MemorySwap")
    if refused:
        raise InvalidInput("docker update of %s is not supported by vSphere Integrated Containers: a container VM "
                           "has no cgroup limits, only its size (memory, CPUs)" % ", ".join(refused))
    host = dict(container.host_config, **{key: body[key] for key in _RESIZABLE if body.get(key)})
    policy = body.get("RestartPolicy")
    if policy and (policy.get("Name") or policy.get("MaximumRetryCount")):
        if container.host_config.get("AutoRemove") and (policy.get("Name") or "no") != "no":
            raise InvalidInput("Restart policy cannot be updated because AutoRemove is enabled for the container")
        host["RestartPolicy"] = policy
    await resize.update(state.containers, container, host, spec.sizing(host), spec.sizing(container.host_config))
    state.events.publish("container", "update", container.id, events.container_attributes(container))
    return web.json_response({"Warnings": []})


async def rename(request):
    state = portlayer(request)
    container = await _container(request)
    new = spec.check_name(request.query.get("name"))
    if not new:
        raise InvalidInput("name is required to rename a container")
    await state.containers.rename(container, new)
    state.events.publish("container", "rename", container.id,
                         dict(events.container_attributes(container), name=new, oldName="/" + container.name))
    return web.Response(status=204)


async def wait(request):
    state = portlayer(request)
    container = await _container(request)
    condition = request.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise InvalidInput("invalid condition: %r" % condition)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    container = await state.containers.wait(container, condition)
    await response.write(json.dumps({"StatusCode": container.exit_code, "Error": None}).encode() + b"\n")
    await response.write_eof()
    return response


# -- output -------------------------------------------------------------------------------------


async def container_logs(request):
    state = portlayer(request)
    container = await _container(request)
    streams = {n for n, key in ((1, "stdout"), (2, "stderr")) if query_bool(request, key)}
    if not streams:
        raise InvalidInput("You must choose at least one stream")
    tail = request.query.get("tail", "all")
    if tail != "all" and not tail.isdigit():
        raise InvalidInput("invalid value for tail: %r (a number or all)" % tail)
    since = logs.moment(query_unix_time(request, "since"))
    until = logs.moment(query_unix_time(request, "until"))
    timestamps = query_bool(request, "timestamps")
    follow = query_bool(request, "follow") and container.running and until is None
    if follow:  # read where the log ends, to follow on from there
        entries, offset = await state.containers.log_tail(container, 0)
        entries = logs.select(entries, streams, since, None, None if tail == "all" else int(tail))
    else:
        entries = await state.containers.logs(container, streams, since, until, None if tail == "all" else int(tail))
    tty = bool(container.config.get("Tty"))
    response = web.StreamResponse(headers={"Content-Type": hijack.RAW if tty else hijack.MULTIPLEXED})
    await response.prepare(request)
    for stamp, stream, chunk in entries:
        text = logs.render(stamp, chunk, timestamps)
        await response.write(text if tty else hijack.frame(stream, text))
    if follow:
        await _follow(state, container, _LogWriter(state, container, response, streams, tty, timestamps, offset))
    await response.write_eof()
    return response


class _LogWriter:
    """Writes the log's new lines to a follower, read from the VM's log file at the offset it reached, so a
    follower misses nothing and sees nothing twice, whenever it came in."""

    def __init__(self, state, container, response, streams, tty, timestamps, offset):
        self.state, self.container, self.response = state, container, response
        self.streams, self.tty, self.timestamps, self.offset = streams, tty, timestamps, offset
        self.owed = 0               # bytes the process wrote that the file has not given yet
        self.rung = asyncio.Event()
        self.stopping = False

    def stop(self):
        """End ``catch_up`` after the read it is in: a read cancelled between taking lines from the file and
        writing them would lose them (its offset is past them already)."""
        self.stopping = True
        self.rung.set()

    def ring(self, size):
        self.owed += size
        self.rung.set()

    async def read(self):
        entries, self.offset = await self.state.containers.log_tail(self.container, self.offset)
        for stamp, stream, chunk in entries:
            self.owed -= len(chunk)
            if stream in self.streams:
                text = logs.render(stamp, chunk, self.timestamps)
                await self.response.write(text if self.tty else hijack.frame(stream, text))
        return bool(entries)

    async def catch_up(self):
        """Read while output is owed: each read is one HTTPS GET, at most ten a second however much is written."""
        while not self.stopping:
            await self.rung.wait()
            self.rung.clear()
            for _unused in range(_LOG_READS_PER_RING):
                if self.stopping:
                    break       # the follower's last read comes next
                await self.read()
                if self.owed <= 0:
                    self.owed = 0
                    break
                await asyncio.sleep(_LOG_READ_INTERVAL)  # the file lags the channel: read again shortly


_LOG_READS_PER_RING = 30
_LOG_READ_INTERVAL = 0.1


async def _follow(state, container, writer):
    """Follow the log until the run ends or the client leaves. The tether channel is the doorbell (its output
    says the log has grown); the lines come from the log file. A tether that redials is followed again, one
    that has not dialled in yet is waited for."""
    reading = asyncio.ensure_future(writer.catch_up())
    try:
        # Checked and waited for with no await between them: an end cannot slip through unseen.
        while _still_running(state, container) and await tether_or_end(state, container):
            try:
                attachment = await state.tether.attach(container.id, tty=writer.tty, stdin=False)
            except Conflict:
                break  # gone between the check and the attach: the run is ending
            writer.ring(0)  # what was written before the channel opened is in the file, not on the channel
            try:
                async for _stream, chunk in attachment:
                    writer.ring(len(chunk))
                if await attachment.exit_code() is not None:
                    break  # the process ended
            finally:
                attachment.close()
    finally:
        writer.stop()
        await asyncio.gather(reading, return_exceptions=True)
    await writer.read()  # what the process wrote last


async def _stats_sample(state, container, previous):
    """The guest's figures through the tether; vSphere's quick stats (one PropertyCollector read) when the
    tether is not connected (nor for a stopped container's maintenance boot: it has no process to count)."""
    if container.running and state.tether.connected(container.id):
        try:
            return views.guest_stats(container, await state.tether.stats(container.id), previous)
        except Conflict:
            pass  # the process ended, or the tether went, since connected() said yes
    return views.stats(container, await state.containers.usage(container), previous)


def _still_running(state, container):
    try:
        return state.containers.find(container.id).running
    except NotFound:
        return False


async def stats(request):
    """``docker stats``: one sample, or one a second while the container runs (``stream``)."""
    state = portlayer(request)
    container = await _container(request)
    stream = query_bool(request, "stream", True) and not query_bool(request, "one-shot")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    previous = views.no_stats()
    while True:
        sample = await _stats_sample(state, container, previous)
        await response.write(json.dumps(sample).encode() + b"\n")
        if not stream or not state.containers.find(container.id).running:
            break
        previous = sample
        await asyncio.sleep(1)
    await response.write_eof()
    return response


# -- reads --------------------------------------------------------------------------------------


# dockerd's container states (``container.IsValidStateString``): another status filter is an error.
_STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def _ancestors(state, ref):
    """The image ids ``--filter ancestor=ref`` names: the image that ref (any tag, id or id prefix) resolves
    to, as dockerd looks it up; none when there is no such image."""
    try:
        return {state.images.resolve(ref).id}
    except NotFound:
        return set()


async def list_containers(request):
    state = portlayer(request)
    filters = query_filters(request)
    check_values(filters, "status", _STATES)
    ancestors = {ref: _ancestors(state, ref) for ref in filters.get("ancestor") or ()}  # looked up once
    everything = query_bool(request, "all") or bool(filters.get("status"))
    restarting = state.containers.restarting
    # As dockerd, a container in its restart back-off is listed with the running ones.
    found = [c for c in state.containers.all() if (everything or c.running or restarting(c.id)) and
             _matches(state, c, filters, ancestors)]
    found.sort(key=lambda c: c.record["created"], reverse=True)
    limit = query_int(request, "limit", -1)
    if limit > 0:
        found = found[:limit]
    health = state.health.status
    rows = (views.row(c, restarting(c.id), health(c), state.ports.address) for c in found)
    return web.Response(body=b"[" + b",".join(rows) + b"]",
                        content_type="application/json")


def _matches(state, container, filters, ancestors):
    tests = {
        "id": container.id.startswith,
        "name": lambda v: name_matches(v, container.name),
        "status": lambda v: v == ("restarting" if state.containers.restarting(container.id) else container.status),
        "ancestor": lambda v: container.image_id in ancestors[v],
        "label": lambda v: label_matches(container.config.get("Labels") or {}, v),
        "network": lambda v: v in container.record.get("networks", {}) or
        any(ep["network_id"].startswith(v) for ep in container.record.get("networks", {}).values()),
        "volume": lambda v: v in container.volume_names() or
        any(m["destination"] == v for m in container.record.get("mounts", ())),
        "exited": lambda v: not container.running and container.status == "exited" and
        str(container.exit_code) == v,
        "health": lambda v: v == state.health.status(container),
        "before": lambda v: container.record["created"] < state.containers.find(v).record["created"],
        "since": lambda v: container.record["created"] > state.containers.find(v).record["created"],
    }
    return keep(filters, tests)


async def inspect(request):
    state = portlayer(request)
    container = await _container(request)
    exec_ids = [e["ID"] for e in state.execs.values() if e["ContainerID"] == container.id and e["Running"]]
    containers = state.containers
    shown = views.inspect(container, state.name, exec_ids, containers.process(container),
                          containers.restarting(container.id), containers.restart_count(container),
                          state.health.view(container), state.ports.address)
    if query_bool(request, "size"):
        # One PropertyCollector read: what the VM's own files (its read-write disk, logs) take on the datastore.
        sizes = await state.call(usage.own_sizes, state.session, [container.ref])
        shown["SizeRw"] = sizes.get(container.moid, 0)
        shown["SizeRootFs"] = shown["SizeRw"] + state.images.resolve(container.image_id).size
    return web.json_response(shown)


async def prune(request):
    """``docker container prune``: every container that is not running (and no restart is due for), with
    dockerd's ``until`` and ``label`` filters."""
    state = portlayer(request)
    filters = query_filters(request)
    deleted = []
    for container in list(state.containers.all()):
        if container.running or state.containers.restarting(container.id) or not _prunable(container, filters):
            continue
        await state.destroy(container, False)
        deleted.append(container.id)
    return web.json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": 0})


def _prunable(container, filters):
    labels = container.config.get("Labels") or {}
    tests = {"label": lambda v: label_matches(labels, v), "label!": lambda v: not label_matches(labels, v),
             "until": lambda v: parse_time(container.record["created"]).timestamp() < until_seconds(v)}
    return keep(filters, tests)


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
    ("POST", "/containers/prune", prune),
    ("GET", "/containers/{id}/json", inspect),
    ("POST", "/containers/{id}/start", start),
    ("POST", "/containers/{id}/stop", stop),
    ("POST", "/containers/{id}/kill", kill),
    ("POST", "/containers/{id}/restart", restart),
    ("POST", "/containers/{id}/rename", rename),
    ("POST", "/containers/{id}/update", update),
    ("POST", "/containers/{id}/wait", wait),
    ("GET", "/containers/{id}/logs", container_logs),
    ("GET", "/containers/{id}/stats", stats),
    ("DELETE", "/containers/{id}", remove),
)
