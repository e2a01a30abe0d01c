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
from ansible_collections.vic.containers.services.portlayer.filters import keep, label_matches

DEFAULT_STOP_TIMEOUT = 10


def _container(request):
    return portlayer(request).containers.find(request.match_info["id"])


# -- create -------------------------------------------------------------------------------------


async def create(request):
    state = portlayer(request)
    name = spec.check_name(request.query.get("name"))
    body = await json_body(request)
    spec.check_fields(body)
    host = body.get("HostConfig") or {}
    spec.refuse_unsupported(host)
    # As dockerd, the settings are checked before the image is looked up (and the CLI pulls a missing one).
    cpus, memory_mb = spec.sizing(host)
    networks = spec.network_requests(host, body.get("NetworkingConfig") or {})
    validation.check_addresses(state.networks, networks)
    image = state.images.resolve(body["Image"])
    config = spec.merge(body, image.config)
    name = name or spec.generate_name(lambda candidate: state.containers.by_name(candidate) is not None)
    volumes = spec.volume_requests(body, host)
    container_id = await state.containers.create(name, image, config, host, networks, volumes, cpus, memory_mb)
    state.events.publish("container", "create", container_id, {"name": name, "image": config["Image"]})
    return web.json_response({"Id": container_id, "Warnings": []}, status=201)


# -- lifecycle ----------------------------------------------------------------------------------


async def start(request):
    state = portlayer(request)
    container = _container(request)
    if not await state.containers.power_on(container):
        return web.Response(status=304)
    state.events.publish("container", "start", container.id, events.container_attributes(container))
    return web.Response(status=204)


def _stop_settings(request, container):
    """(signal, seconds to wait) of docker stop / restart: the request's, else the container's, else Docker's."""
    wanted = request.query.get("signal") or container.config.get("StopSignal") or "SIGTERM"
    return _signal_name(wanted), query_int(request, "t", container.config.get("StopTimeout") or DEFAULT_STOP_TIMEOUT)


async def stop(request):
    state = portlayer(request)
    container = _container(request)
    if not container.running and not state.containers.restarting(container.id):
        return web.Response(status=304)
    await state.containers.stop(container, *_stop_settings(request, container))
    state.events.publish("container", "stop", container.id, events.container_attributes(container))
    return web.Response(status=204)


async def kill(request):
    state = portlayer(request)
    container = _container(request)
    if not container.running:
        raise Conflict("Cannot kill container: %s: Container %s is not running"
                       % (request.match_info["id"], container.id))
    name = _signal_name(request.query.get("signal") or "SIGKILL")
    await state.containers.kill(container, name)
    state.events.publish("container", "kill", container.id, dict(events.container_attributes(container), signal=name))
    return web.Response(status=204)


async def restart(request):
    state = portlayer(request)
    container = _container(request)
    if container.running:
        await state.containers.stop(container, *_stop_settings(request, container))
    await state.containers.power_on(state.containers.find(container.id))
    state.events.publish("container", "restart", container.id, events.container_attributes(container))
    return web.Response(status=204)


async def remove(request):
    state = portlayer(request)
    container = _container(request)
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


# HostConfig's resources as ``docker update`` sends them: only a restart policy can change on a container VM.
_UPDATE_FIELDS = frozenset(spec.HOST_CONFIG_FIELDS) - {"RestartPolicy"}


async def update(request):
    """``docker update``: the restart policy (``--restart``); resources are the VM's size, fixed at create."""
    state = portlayer(request)
    container = _container(request)
    body = validation.check(await json_body(request), validation.UPDATE_REQUEST)
    changed = sorted(key for key, value in body.items() if value and key in _UPDATE_FIELDS)
    if changed:
        raise InvalidInput("docker update of %s is not supported by vSphere Integrated Containers: a container VM's "
                           "size is set when it is created" % ", ".join(changed))
    policy = body.get("RestartPolicy")
    if policy:
        if container.host_config.get("AutoRemove") and (policy.get("Name") or "no") != "no":
            raise InvalidInput("Restart policy cannot be updated because AutoRemove is enabled for the container")
        await state.containers.set_restart_policy(container, policy)
    state.events.publish("container", "update", container.id, events.container_attributes(container))
    return web.json_response({"Warnings": []})


async def rename(request):
    state = portlayer(request)
    container = _container(request)
    new = spec.check_name(request.query.get("name"))
    if not new:
        raise InvalidInput("name is required to rename a container")
    await state.containers.rename(container, new)
    state.events.publish("container", "rename", container.id,
                         dict(events.container_attributes(container), name=new, oldName="/" + container.name))
    return web.Response(status=204)


async def wait(request):
    state = portlayer(request)
    container = _container(request)
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
        while True:
            await self.rung.wait()
            self.rung.clear()
            for _unused in range(_LOG_READS_PER_RING):
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
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
    await writer.read()  # what the process wrote last


async def _stats_sample(state, container, previous):
    """The guest's figures through the tether; vSphere's quick stats (one PropertyCollector read) when the
    tether is not connected."""
    if state.tether.connected(container.id):
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
    container = _container(request)
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


async def list_containers(request):
    state = portlayer(request)
    filters = query_filters(request)
    everything = query_bool(request, "all") or bool(filters.get("status"))
    restarting = state.containers.restarting
    # As dockerd, a container in its restart back-off is listed with the running ones.
    found = [c for c in state.containers.all() if (everything or c.running or restarting(c.id)) and
             _matches(state, c, filters)]
    found.sort(key=lambda c: c.record["created"], reverse=True)
    limit = query_int(request, "limit", -1)
    if limit > 0:
        found = found[:limit]
    return web.Response(body=b"[" + b",".join(views.row(c, restarting(c.id)) for c in found) + b"]",
                        content_type="application/json")


def _matches(state, container, filters):
    tests = {
        "id": container.id.startswith,
        "name": lambda v: v.lstrip("/") in container.name,
        "status": lambda v: v == ("restarting" if state.containers.restarting(container.id) else container.status),
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


async def inspect(request):
    state = portlayer(request)
    container = _container(request)
    exec_ids = [e["ID"] for e in state.execs.values() if e["ContainerID"] == container.id and e["Running"]]
    containers = state.containers
    return web.json_response(views.inspect(container, state.name, exec_ids, containers.process(container),
                                           containers.restarting(container.id), containers.restart_count(container)))


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
    ("POST", "/containers/{id}/update", update),
    ("POST", "/containers/{id}/wait", wait),
    ("GET", "/containers/{id}/logs", container_logs),
    ("GET", "/containers/{id}/stats", stats),
    ("DELETE", "/containers/{id}", remove),
)
