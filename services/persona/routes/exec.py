# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``docker exec`` and ``docker attach``: streams between the client and the tether channel.

Exec instances live in the endpoint's memory, as in the Docker daemon (an exec
does not outlive the endpoint that ran it); the processes themselves run in the
container VM, started by its tether.
"""

import asyncio
import secrets

from aiohttp import web

from ansible_collections.vic.containers.services.persona import hijack
from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput, Conflict, NotFound
from ansible_collections.vic.containers.services.persona import validation
from ansible_collections.vic.containers.services.persona.query import json_body, portlayer, query_bool

# The API description's ExecConfig, plus what the docker CLI and SDK also send (Container, Detach).
EXEC_FIELDS = frozenset(("AttachStdin", "AttachStdout", "AttachStderr", "ConsoleSize", "Container", "Detach",
                         "DetachKeys", "Tty", "Env", "Cmd", "Privileged", "User", "WorkingDir"))


_TETHER_WAIT = 120  # seconds: a container VM boots and its tether dials in well within this


async def _running(state, ref):
    container = await state.containers.look_up(ref)
    if not container.running:
        raise Conflict("Container %s is not running" % container.id)
    return container


async def exec_create(request):
    state = portlayer(request)
    container = await _running(state, request.match_info["id"])
    body = _canonical_keys(validation.check(await json_body(request), validation.EXEC_CREATE), EXEC_FIELDS)
    unknown = sorted(set(body) - EXEC_FIELDS)
    if unknown:
        raise InvalidInput("unknown field%s in the exec configuration: %s"
                           % ("s" if len(unknown) > 1 else "", ", ".join(unknown)))
    cmd = body.get("Cmd")
    if not cmd or not isinstance(cmd, list) or not all(isinstance(c, str) for c in cmd):
        raise InvalidInput("No exec command specified")
    if body.get("Privileged"):
        raise InvalidInput("--privileged is not supported by vSphere Integrated Containers")
    exec_id = secrets.token_hex(32)
    state.execs[exec_id] = {
        "ID": exec_id, "ContainerID": container.id, "Running": False, "ExitCode": None, "Pid": 0,
        "OpenStdin": bool(body.get("AttachStdin")), "OpenStdout": bool(body.get("AttachStdout")),
        "OpenStderr": bool(body.get("AttachStderr")), "CanRemove": False, "DetachKeys": "",
        "ProcessConfig": {"tty": bool(body.get("Tty")), "entrypoint": cmd[0], "arguments": cmd[1:],
                          "privileged": False, "user": body.get("User") or ""},
        "spec": {"Cmd": cmd, "Env": body.get("Env") or [], "User": body.get("User") or "",
                 "WorkingDir": body.get("WorkingDir") or "", "Tty": bool(body.get("Tty"))},
    }
    state.events.publish("container", "exec_create: " + " ".join(cmd), container.id, {"name": container.name})
    return web.json_response({"Id": exec_id}, status=201)


def _canonical_keys(body, fields):
    """``body`` with its keys spelled as ``fields`` spells them: Go's JSON decoding, which dockerd uses, matches
    field names without regard to case (the Docker SDK sends ``detachKeys``)."""
    spelled = {field.lower(): field for field in fields}
    return {spelled.get(key.lower(), key): value for key, value in body.items()}


def _exec(state, exec_id):
    found = state.execs.get(exec_id)
    if found is None:
        raise NotFound("No such exec instance: %s" % exec_id)
    return found


async def exec_start(request):
    state = portlayer(request)
    instance = _exec(state, request.match_info["id"])
    body = await json_body(request)
    if instance["Running"] or instance["ExitCode"] is not None:
        raise Conflict("exec %s has already been started" % instance["ID"])
    container = await _running(state, instance["ContainerID"])
    # A container inspect calls running may still be booting: its tether dials in shortly. Wait for it, as
    # attach does, so an exec right after docker run -d / start runs instead of answering 409; a tether that
    # never comes (a VM that cannot boot it) is told after a while, not waited for forever.
    try:
        connected = await asyncio.wait_for(tether_or_end(state, container), _TETHER_WAIT)
    except asyncio.TimeoutError:
        raise Conflict("container %s is running but its tether has not connected to the endpoint within %d s; "
                       "docker exec needs it" % (container.id, _TETHER_WAIT)) from None
    if not connected:
        raise Conflict("Container %s is not running" % container.id)
    tty = bool(body.get("Tty", instance["spec"]["Tty"]))
    size = body.get("ConsoleSize") or instance["spec"].get("ConsoleSize")
    attachment = await state.tether.exec(container.id, dict(instance["spec"], Tty=tty, ConsoleSize=size))
    instance["Running"] = True
    instance["attachment"] = attachment
    if body.get("Detach"):
        state.spawn(_finish(instance, attachment))
        return web.Response(status=200)
    stream = await hijack.upgrade(request, tty)
    try:
        await _pump(stream, attachment, instance["OpenStdin"])
    finally:
        await _finish(instance, attachment)
        await stream.close()
    return stream.response


async def _finish(instance, attachment):
    try:
        async for _item in attachment:
            pass  # detached: the output is not kept, as with docker exec -d
        instance["ExitCode"] = await attachment.exit_code()
    finally:
        instance["Running"] = False
        instance["attachment"] = None
        attachment.close()


async def _pump(stream, attachment, stdin):
    """Client stdin -> the process, the process's stdout/stderr -> the client, until the process ends."""
    async def feed():
        while True:
            data = await stream.read()
            if not data:
                attachment.close_stdin()
                return
            await attachment.write_stdin(data)
    feeder = asyncio.ensure_future(feed()) if stdin else None
    try:
        async for number, chunk in attachment:
            await stream.write(number, chunk)
    finally:
        if feeder is not None:
            feeder.cancel()


async def exec_inspect(request):
    state = portlayer(request)
    instance = _exec(state, request.match_info["id"])
    return web.json_response({k: v for k, v in instance.items() if k not in ("spec", "attachment")})


async def exec_resize(request):
    state = portlayer(request)
    instance = _exec(state, request.match_info["id"])
    height, width = _size_query(request)
    if not (height and width):
        return web.Response(status=200)
    instance["spec"]["ConsoleSize"] = [height, width]
    if instance.get("attachment") is not None:
        instance["attachment"].resize(height, width)
    return web.Response(status=200)


async def attach(request):
    """``docker attach`` / ``docker run`` without -d: the primary process's streams."""
    state = portlayer(request)
    container = await state.containers.look_up(request.match_info["id"])
    if not query_bool(request, "stream", False) and not query_bool(request, "logs", False):
        raise InvalidInput("attach needs stream=1 or logs=1")
    tty = bool(container.config.get("Tty"))
    stdin = query_bool(request, "stdin")
    stream = await hijack.upgrade(request, tty)
    try:
        # docker run attaches before it starts the container: wait for the tether to dial in,
        # unless the run ends (or the container goes) first.
        if not await tether_or_end(state, container):
            return stream.response
        attachment = await state.tether.attach(container.id, tty=tty, stdin=stdin,
                                               term_size=_term_size(state, container))
        state.attachments.setdefault(container.id, set()).add(attachment)
        if tty and container.id in state.term_sizes:  # a resize may have come while the channel opened
            attachment.resize(*reversed(state.term_sizes[container.id]))
        try:
            await _pump(stream, attachment, stdin)
            code = await attachment.exit_code()
            if code is not None:
                state.exit_codes[container.id] = code
        finally:
            state.attachments[container.id].discard(attachment)
            attachment.close()
    finally:
        await stream.close()
    return stream.response


async def tether_or_end(state, container):
    """True once the container's tether is connected; False if its run ends or it is removed first."""
    if state.tether.connected(container.id):
        return True
    connected = asyncio.ensure_future(state.tether.wait_connected(container.id, None))
    ended = state.containers.wait_stopped(container, asyncio.get_running_loop())
    try:
        await asyncio.wait((connected, ended), return_when=asyncio.FIRST_COMPLETED)
    finally:
        connected.cancel()
        ended.cancel()
    return state.tether.connected(container.id)


def _term_size(state, container):
    """(columns, rows) of the container's terminal: the last resize, else the create's ConsoleSize ([rows, columns])."""
    if container.id in state.term_sizes:
        return state.term_sizes[container.id]
    size = container.host_config.get("ConsoleSize")
    return (size[1], size[0]) if isinstance(size, list) and len(size) == 2 and all(size) else None


def _size_query(request):
    try:
        height, width = int(request.query.get("h", "0")), int(request.query.get("w", "0"))
    except ValueError:
        raise InvalidInput("h and w must be numbers") from None
    if height < 0 or width < 0:
        raise InvalidInput("h and w must not be negative")
    return height, width


async def resize(request):
    """``docker run -it`` / ``attach`` resize: the open attachments, and the size an attach opened later gets
    (the CLI resizes once right after start, often before the tether has dialled in)."""
    state = portlayer(request)
    container = await state.containers.look_up(request.match_info["id"])
    height, width = _size_query(request)
    if not (height and width):
        return web.Response(status=200)  # a client that does not know its size yet
    state.term_sizes[container.id] = (width, height)
    for attachment in state.attachments.get(container.id, ()):
        attachment.resize(height, width)
    return web.Response(status=200)


async def top(request):
    """``docker top``: the tether lists the container's processes as ``ps -ef`` does (the image needs no
    ``ps``); other ``ps_args`` run the image's own ``ps`` through the tether, parsed as Docker shows it."""
    state = portlayer(request)
    container = await _running(state, request.match_info["id"])
    args = (request.query.get("ps_args") or "-ef").split()
    if args == ["-ef"]:
        titles, rows = await state.tether.top(container.id)
        return web.json_response({"Titles": titles, "Processes": rows})
    attachment = await state.tether.exec(container.id, {"Cmd": ["ps"] + args, "Tty": False})
    out, err = [], []
    try:
        async for number, chunk in attachment:
            (out if number == 1 else err).append(chunk)
        code = await attachment.exit_code()
    finally:
        attachment.close()
    if code:
        reason = b"".join(err).decode(errors="replace").strip()
        raise Conflict("ps in container %s failed (exit %s): %s" % (container.id, code, reason))
    lines = b"".join(out).decode(errors="replace").splitlines()
    if not lines:
        return web.json_response({"Titles": [], "Processes": []})
    titles = lines[0].split()
    return web.json_response({"Titles": titles,
                              "Processes": [line.split(None, len(titles) - 1) for line in lines[1:] if line.strip()]})


ROUTES = (
    ("GET", "/containers/{id}/top", top),
    ("POST", "/containers/{id}/exec", exec_create),
    ("POST", "/exec/{id}/start", exec_start),
    ("GET", "/exec/{id}/json", exec_inspect),
    ("POST", "/exec/{id}/resize", exec_resize),
    ("POST", "/containers/{id}/attach", attach),
    ("POST", "/containers/{id}/resize", resize),
)
