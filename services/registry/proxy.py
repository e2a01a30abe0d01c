# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``/v2/`` passed to Distribution as a stream (bodies are never held, except manifests, which are
small), the bearer token passed through for Distribution to check, and the project quota checked on
blob uploads and manifest puts (Harbor answers 403 DENIED)."""

import contextlib
import hashlib
import json
import os
import re
import socket

import aiohttp
import jwt
from aiohttp import web
from multidict import CIMultiDict
from sqlalchemy import select

from ansible_collections.vic.containers.services.registry import errors, gc
from ansible_collections.vic.containers.services.registry.api_projects import usage
from ansible_collections.vic.containers.services.registry.index import project_name, project_of
from ansible_collections.vic.containers.services.registry.store import UNLIMITED, ManifestBlob, Project, ProjectBlob
from ansible_collections.vic.containers.services.registry.views import state_of

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "host"})
MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
UPLOAD_START = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/?$")
BLOB = re.compile(r"^/v2/(?P<name>.+)/blobs/sha256:(?P<hex>[0-9a-f]{64})$")
MANIFEST_LIMIT = 4 << 20  # Distribution refuses larger manifests too
# An upload is read in pieces of this size (what one recv of the event loop takes; see _pieces_of).
PIECE = 256 << 10


def human(size):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (size, unit)
        size /= 1024.0
    return str(size)


def quota_exceeded(adding, used, limit):
    return web.Response(status=403, content_type="application/json", text=errors.body(
        "DENIED", "Quota exceeded when processing the request of adding %s of storage resource, which when updated "
        "to current usage of %s will exceed the configured upper limit of %s."
        % (human(adding), human(used), human(limit))))


def referenced_blobs(manifest, raw):
    """{digest: size} a manifest adds to its project: itself, its config and layers."""
    blobs = {"sha256:" + hashlib.sha256(raw).hexdigest(): len(raw)}
    for descriptor in [manifest.get("config") or {}] + list(manifest.get("layers") or []):
        if isinstance(descriptor, dict) and descriptor.get("digest"):
            blobs[descriptor["digest"]] = int(descriptor.get("size") or 0)
    return blobs


def _granted(state, request, name, action):
    """Whether the request carries a valid token of ours granting ``action`` on ``name`` (others are left
    to Distribution, which answers 401)."""
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    try:
        return state.signer.granted(state.signer.verify(token.strip()), name, action)
    except jwt.InvalidTokenError:
        return False


def _pushing(state, request, name):
    return _granted(state, request, name, "push")


def _headers(request, state):
    # A multidict: clients send several Accept headers (one per manifest type) and all must pass.
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP)
    # Distribution builds Location URLs from these: clients come back through us.
    headers["Host"] = request.host
    headers["X-Forwarded-Proto"] = state.scheme
    return headers


async def _body(content):
    """A body (of a request or of Distribution's answer) as it comes, piece by piece as it was received:
    iter_any() joins what has piled up into a new bytes object, a copy of every byte of a blob upload
    (half of what relaying one cost)."""
    while True:
        piece, end_of_chunk = await content.readchunk()
        if piece:
            yield piece
        elif not end_of_chunk:  # (b"", True) only marks the end of an HTTP chunk of a chunked body
            return


@contextlib.contextmanager
def _pieces_of(request):
    """The request's body as an async iterator, read in pieces of PIECE bytes where it can be.

    Clients write an upload in small pieces (Go's 32 KiB), and taking each as it comes costs a wake-up
    of this process and two turns of its loop: most of the CPU the service spent relaying a blob. On a
    plain TCP connection, the socket's low-water mark (SO_RCVLOWAT) makes the kernel report it readable
    only once PIECE bytes, or all the body not yet read if less, are there: the last piece is never
    waited for. On leaving, the mark goes back to one byte for the next request on the connection.
    Not over TLS: bytes already read and decrypted are not the socket's to count."""
    sock = request.transport.get_extra_info("socket") if request.transport is not None else None
    length = request.content_length
    if (not length or length <= PIECE or sock is None or not hasattr(socket, "SO_RCVLOWAT")
            or request.transport.get_extra_info("sslcontext") is not None):
        yield _body(request.content)
        return

    done = False

    async def pieces(content):
        while True:
            # Distribution may answer before it has read the whole body: its request (and this reader)
            # may then outlive the handler, which has set the mark back already.
            if not done:
                _low_water(sock, min(PIECE, length - content.total_bytes))
            piece, _end_of_chunk = await content.readchunk()  # a length, so no HTTP chunks
            if not piece:
                return
            yield piece
    try:
        yield pieces(request.content)
    finally:
        done = True
        _low_water(sock, 1)


def _low_water(sock, size):
    with contextlib.suppress(OSError):  # the client may be gone, and its socket closed
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, max(1, size))


async def _relay(request, upstream):
    response = web.StreamResponse(status=upstream.status)
    for key, value in upstream.headers.items():
        if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
            response.headers.add(key, value)
    if upstream.content_length is not None:
        response.content_length = upstream.content_length
    await response.prepare(request)
    if request.method != "HEAD":
        async for piece in _body(upstream.content):
            await response.write(piece)
    await response.write_eof()
    return response


async def _manifest_put(request, state, name):
    pieces, size = [], 0
    async for piece in request.content.iter_any():  # read(n) may return less than the body: read to EOF
        pieces.append(piece)
        size += len(piece)
        if size > MANIFEST_LIMIT:
            break
    raw = b"".join(pieces)
    if len(raw) > MANIFEST_LIMIT:
        return web.Response(status=413, content_type="application/json",
                            text=errors.body("SIZE_INVALID", "the manifest is larger than 4 MiB"))
    try:
        blobs = referenced_blobs(json.loads(raw), raw)
    except (ValueError, TypeError, AttributeError):
        blobs = None  # Distribution tells the client what is wrong with it
    if blobs and _pushing(state, request, name):
        with state.engine.connect() as connection:
            project = _limited_project(connection, name)
            if project is not None:
                known = set(connection.scalars(select(ProjectBlob.digest).where(
                    ProjectBlob.project_id == project.id, ProjectBlob.digest.in_(list(blobs)))))
                adding = sum(size for digest, size in blobs.items() if digest not in known)
                used = usage(connection, project.id)
                if used + adding > project.storage_limit:
                    return quota_exceeded(adding, used, project.storage_limit)
    async with state.http.request("PUT", state.upstream + request.rel_url.raw_path_qs, data=raw,
                                  headers=_headers(request, state)) as upstream:
        response = await _relay(request, upstream)
        if upstream.status == 201 and blobs:
            _count(state, name, blobs)
        return response


def _count(state, name, blobs):
    with state.sessions.begin() as session:
        project = project_of(session, name)
        if project is None:
            return
        known = set(session.scalars(select(ProjectBlob.digest).where(
            ProjectBlob.project_id == project.id, ProjectBlob.digest.in_(list(blobs)))))
        session.add_all(ProjectBlob(project_id=project.id, digest=digest, size=size)
                        for digest, size in blobs.items() if digest not in known)
        manifest = next(iter(blobs))  # referenced_blobs puts the manifest itself first
        linked = set(session.scalars(select(ManifestBlob.blob_digest).where(
            ManifestBlob.project_id == project.id, ManifestBlob.manifest_digest == manifest)))
        session.add_all(ManifestBlob(project_id=project.id, manifest_digest=manifest, blob_digest=digest)
                        for digest in blobs if digest not in linked)


def _limited_project(connection, name):
    """(id, storage_limit) of the project of repository ``name`` when it has a storage limit, else None.
    Core, not ORM: this runs for every upload and manifest push."""
    project = project_name(name)
    if project is None:
        return None
    row = connection.execute(select(Project.id, Project.storage_limit).where(Project.name == project)).first()
    return row if row is not None and row.storage_limit != UNLIMITED else None


def _full(state, name):
    """(used, limit) when the project of ``name`` has no room left at all (a new upload is refused
    early), else None."""
    with state.engine.connect() as connection:
        project = _limited_project(connection, name)
        if project is None:
            return None
        used = usage(connection, project.id)
        return (used, project.storage_limit) if used >= project.storage_limit else None


def _blob_file(state, request, name, hexdigest):
    """The file of a blob a pull may be served from directly (sendfile, no copy through Python): only
    with a valid token of ours granting pull on ``name``, and only a blob linked into that repository,
    as Distribution itself checks; None sends the request on to Distribution (and its answer)."""
    if state.storage_root is None or not _granted(state, request, name, "pull"):
        return None
    v2 = state.storage_root / "docker" / "registry" / "v2"
    if ".." in name.split("/") or not (v2 / "repositories" / name / "_layers" / "sha256" / hexdigest / "link").is_file():
        return None
    data = v2 / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data"
    return data if os.access(data, os.R_OK) else None


async def _send_blob(request, path, hexdigest):
    response = web.FileResponse(path, chunk_size=1 << 20, headers={
        "Content-Type": "application/octet-stream", "Docker-Content-Digest": "sha256:" + hexdigest,
        "Cache-Control": "max-age=31536000", "Docker-Distribution-Api-Version": "registry/2.0"})
    return response


async def proxy(request):
    state = state_of(request)
    path = request.rel_url.raw_path
    if request.method in gc.WRITES and gc.read_only(state):
        return gc.refuse_write()
    manifest = MANIFEST.match(path)
    if manifest and request.method == "PUT":
        return await _manifest_put(request, state, manifest["name"])
    blob = BLOB.match(path) if request.method in ("GET", "HEAD") else None
    if blob:
        found = _blob_file(state, request, blob["name"], blob["hex"])
        if found is not None:
            return await _send_blob(request, found, blob["hex"])
    upload = UPLOAD_START.match(path)
    if upload and request.method == "POST" and _pushing(state, request, upload["name"]):
        full = _full(state, upload["name"])
        if full:
            return quota_exceeded(int(request.headers.get("Content-Length") or 0), *full)
    try:
        with _pieces_of(request) as body:
            async with state.http.request(request.method, state.upstream + request.rel_url.raw_path_qs,
                                          data=body if request.body_exists else None,
                                          headers=_headers(request, state), allow_redirects=False) as upstream:
                return await _relay(request, upstream)
    except aiohttp.ClientConnectionError as error:
        return web.Response(status=503, content_type="application/json",
                            text=errors.body("UNAVAILABLE", "the storage registry is not reachable: %s" % error))
