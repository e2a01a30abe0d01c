# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``docker cp`` and the archive API (``HEAD|GET|PUT /containers/{id}/archive?path=``), ``docker export``
and ``docker diff``, through the tether.

The files are in the container VM's disks, which only its tether sees: each
request is one ``archive@vic`` session on the tether channel
(``docs/tether-protocol.md``); for a created or exited container, on the tether of
a maintenance boot of its VM (portlayer/containers/maintenance.py), as dockerd
serves these on a stopped container.
"""

import base64
import contextlib
import json

from aiohttp import web

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput, NotFound
from ansible_collections.vic.containers.services.persona.query import portlayer, query_bool
from ansible_collections.vic.containers.services.portlayer.attach import sessions

STAT_HEADER = "X-Docker-Container-Path-Stat"
_CHUNK = 64 * 1024


def _path(request):
    path = request.query.get("path")
    if not path:
        raise InvalidInput("bad parameter: path cannot be empty")
    if not path.startswith("/"):
        raise InvalidInput("the path %s in the container is not absolute" % path)
    return path


@contextlib.asynccontextmanager
async def _opened(request, op, path=None, **options):
    """The container's reference, its path (the request's ``path``, unless given), and an archive session
    for ``op`` on its tether: its running one, else a maintenance boot's (a created or exited container)."""
    state = portlayer(request)
    ref = request.match_info["id"]
    container = await state.containers.look_up(ref)
    path = path or _path(request)
    async with state.containers.maintenance.archive(container.id, sessions.archive_request(op, path, **options)) \
            as session:
        yield ref, path, session


async def _result(session, ref, path, answer=None):
    """The tether's answer (``answer``: how to get it, ``session.result`` by default), its refusal of a
    missing path in dockerd's words."""
    try:
        return await (answer or session.result)()
    except NotFound:
        raise NotFound("Could not find the file %s in container %s" % (path, ref)) from None


def _stat_header(stat):
    return base64.b64encode(json.dumps(stat).encode()).decode()


async def head(request):
    async with _opened(request, sessions.ARCHIVE_STAT) as (ref, path, session):
        stat = await _result(session, ref, path)
    return web.Response(status=200, headers={STAT_HEADER: _stat_header(stat), "Content-Type": "application/json"})


async def get(request):
    async with _opened(request, sessions.ARCHIVE_GET) as (ref, path, session):
        stat = await _result(session, ref, path)
        return await _relay(request, session, {STAT_HEADER: _stat_header(stat), "Content-Type": "application/x-tar"})


async def export(request):
    """``docker export``: the container's root filesystem as a tar (its volumes, /proc, /sys and /dev
    left out, as dockerd leaves them out)."""
    async with _opened(request, sessions.ARCHIVE_EXPORT, path="/") as (ref, path, session):
        await _result(session, ref, path)
        return await _relay(request, session, {"Content-Type": "application/x-tar"})


async def changes(request):
    """``docker diff``: what the container changed in its root filesystem (its overlay's upper dir)."""
    async with _opened(request, sessions.ARCHIVE_CHANGES, path="/") as (ref, path, session):
        await _result(session, ref, path)
        found = await session.changes()
    # dockerd's list is null when nothing changed (a nil slice), and clients expect that.
    return web.json_response(found or None)


async def _relay(request, session, headers):
    """The tar stream the tether sends after its result line, as the response's body."""
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    while chunk := await session.read():
        await response.write(chunk)
    await response.write_eof()
    return response


async def put(request):
    async with _opened(request, sessions.ARCHIVE_PUT,
                       no_overwrite_dir_non_dir=query_bool(request, "noOverwriteDirNonDir")) as (ref, path, session):
        while chunk := await request.content.read(_CHUNK):
            await session.write(chunk)
        await _result(session, ref, path, session.finish)
    return web.Response(status=200)


ROUTES = (
    ("HEAD", "/containers/{id}/archive", head),
    ("GET", "/containers/{id}/archive", get),
    ("PUT", "/containers/{id}/archive", put),
    ("GET", "/containers/{id}/export", export),
    ("GET", "/containers/{id}/changes", changes),
)
