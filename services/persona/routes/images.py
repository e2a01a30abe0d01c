# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Docker API routes of images and registry login, served by the port layer's image index
(portlayer/storage/image_index.py) and imagec's registry client and pull."""

import asyncio
import json

from aiohttp import web

from ansible_collections.vic.containers.plugins.module_utils._errors import VicError, InvalidInput, Unsupported
from ansible_collections.vic.containers.services.imagec.auth import credentials, credentials_from_header, registry_of
from ansible_collections.vic.containers.services.imagec.reference import parse_reference
from ansible_collections.vic.containers.services.persona.errors import internal_error_message
from ansible_collections.vic.containers.services.persona import validation
from ansible_collections.vic.containers.services.persona.query import json_body, portlayer, query_bool, query_filters
from ansible_collections.vic.containers.services.portlayer.storage.image_index import reference_matches


async def create(request):
    """``docker pull``: progress streamed as JSON lines once the image's manifest is known."""
    if request.query.get("fromSrc"):
        raise Unsupported("docker import is not supported by vSphere Integrated Containers")
    ref = _pull_reference(request.query.get("fromImage"), request.query.get("tag"))
    platform = _platform(request.query.get("platform"))
    if platform and platform.split("/")[:2] != ["linux", "amd64"]:
        raise InvalidInput("platform %s is not supported: a VCH runs linux/amd64 containers" % platform)
    creds = credentials_from_header(request.headers.get("X-Registry-Auth"))
    queue = asyncio.Queue()
    pull = asyncio.ensure_future(portlayer(request).images.pull(ref, creds, queue.put_nowait))
    response = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({pull, getter}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            response = await _send(request, response, getter.result())
        while not queue.empty():
            response = await _send(request, response, queue.get_nowait())
        failure = pull.exception()
        if failure is None and response is None:
            raise VicError("the pull of %s ended without a word" % ref.familiar())
        if failure is not None:
            if response is None:
                raise failure
            # The answer has begun: a failure can only be the stream's last line, as dockerd sends it.
            message = str(failure) if isinstance(failure, VicError) else internal_error_message(request, failure)
            await response.write(_line({"errorDetail": {"message": message}, "error": message}))
    finally:
        if not pull.done():
            pull.cancel()
    await response.write_eof()
    return response


def _platform(text):
    """A ``--platform`` as dockerd normalises it (containerd's ``platforms.Parse``): an architecture alone is
    on this OS (``amd64`` is ``linux/amd64``), and x86_64 / x86-64 are amd64."""
    if not text:
        return text
    parts = text.lower().split("/")
    if len(parts) == 1 and parts[0] not in ("linux", "windows", "darwin"):
        parts = ["linux"] + parts
    if len(parts) > 1 and parts[1] in ("x86_64", "x86-64"):
        parts[1] = "amd64"
    return "/".join(parts)


def _pull_reference(from_image, wanted):
    if not from_image:
        raise InvalidInput("fromImage is required: the image to pull")
    if wanted and ("@" in from_image or _has_tag(from_image)):
        raise InvalidInput("invalid reference format")
    if wanted:
        separator = "@" if ":" in wanted and wanted.split(":", 1)[0].startswith("sha") else ":"
        text = "%s%s%s" % (from_image, separator, wanted)
    elif "@" in from_image or _has_tag(from_image):
        text = from_image
    else:
        raise Unsupported("pulling every tag of a repository (docker pull --all-tags) is not supported by "
                          "vSphere Integrated Containers; name a tag")
    return parse_reference(text)


def _has_tag(name):
    return ":" in name.rsplit("/", 1)[-1]


async def _send(request, response, message):
    if response is None:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
    await response.write(_line(message))
    return response


def _line(message):
    return json.dumps(message).encode() + b"\r\n"


async def list_images(request):
    filters = query_filters(request)
    images = portlayer(request).images.select(filters)
    summaries = [image.summary() for image in images]
    patterns = filters.get("reference")
    if patterns:
        # As dockerd: an image is listed with the references that matched, not with every tag it has.
        for summary in summaries:
            for key in ("RepoTags", "RepoDigests"):
                summary[key] = [r for r in summary[key] or () if any(reference_matches(p, r) for p in patterns)]
    return web.json_response(summaries)


async def prune(request):
    """``docker image prune``: dangling images (``dangling=false``: every image no container uses)."""
    state = portlayer(request)
    filters = query_filters(request)
    dangling_only = (filters.pop("dangling", None) or ["true"])[0].lower() in ("1", "true")
    used = {c.image_id for c in state.containers.all()}
    deleted, reclaimed = [], 0
    for image in state.images.select(filters):
        if image.id in used or (dangling_only and image.repo_tags):
            continue
        deleted.extend(await state.images.remove(image.id, force=True))
        reclaimed += image.size
    return web.json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed})


async def inspect(request):
    store = portlayer(request).images
    return web.json_response(store.resolve(request.match_info["name"]).inspect(store.location))


async def history(request):
    return web.json_response(portlayer(request).images.resolve(request.match_info["name"]).history())


async def remove(request):
    records = await portlayer(request).images.remove(request.match_info["name"], force=query_bool(request, "force"))
    return web.json_response(records)


async def tag(request):
    await portlayer(request).images.tag(request.match_info["name"], request.query.get("repo"), request.query.get("tag"))
    return web.Response(status=201)


async def elsewhere(request):
    """Other methods and paths under /images/{name}: Docker's answer (a 404, or 501 for what VIC never did)."""
    raise web.HTTPNotFound()


async def auth(request):
    """``docker login``: check the credentials against the registry; nothing of them is kept."""
    body = validation.check_auth(await json_body(request))
    creds = credentials(body)
    host = registry_of(body.get("serveraddress"))
    async with portlayer(request).images.registry_client(creds) as client:
        await client.login(host)
    return web.json_response({"Status": "Login Succeeded", "IdentityToken": ""})


# Names may hold slashes: /images/{name}/json and /tag come before DELETE /images/{name}, and the
# catch-all after it keeps e.g. POST /images/{name}/push a 501 (persona.UNSUPPORTED), not a 405.
ROUTES = (
    ("POST", "/images/create", create),
    ("GET", "/images/json", list_images),
    ("POST", "/images/prune", prune),
    ("GET", r"/images/{name:.+}/json", inspect),
    ("POST", r"/images/{name:.+}/tag", tag),
    ("GET", r"/images/{name:.+}/history", history),
    ("DELETE", r"/images/{name:.+}", remove),
    ("*", r"/images/{name:.+}", elsewhere),
    ("POST", "/auth", auth),
)
