# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Docker API routes of volumes: VMDKs in the VCH's volume stores (see volumes.py)."""

import re

from aiohttp import web

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput
from ansible_collections.vic.containers.services.portlayer.filters import keep, label_matches
from ansible_collections.vic.containers.services.persona import validation
from ansible_collections.vic.containers.services.persona import views
from ansible_collections.vic.containers.services.persona.query import json_body, portlayer, query_bool, query_filters
from ansible_collections.vic.containers.services.portlayer.storage.volumes import DRIVER

CREATE_FIELDS = frozenset(("Name", "Driver", "DriverOpts", "Labels", "ClusterVolumeSpec"))


def _view(state, volume):
    return views.volume(volume, state.containers.using_volume(volume.name))


def _matches(state, volume, filters):
    tests = {
        "name": lambda v: v in volume.name,
        "driver": lambda v: v == volume.driver,
        "label": lambda v: label_matches(volume.labels, v),
        "dangling": lambda v: (v.lower() in ("1", "true")) != bool(state.containers.using_volume(volume.name)),
    }
    return keep(filters, tests)


async def list_volumes(request):
    state = portlayer(request)
    filters = query_filters(request)
    return web.json_response({"Volumes": [_view(state, v) for v in state.volumes.list() if _matches(state, v, filters)],
                              "Warnings": []})


async def inspect(request):
    state = portlayer(request)
    return web.json_response(_view(state, state.volumes.get(request.match_info["name"])))


def _create_config(body):
    """(name or None, driver, options, labels) of a create body (typed by validation.VOLUME_CREATE)."""
    unknown = sorted(set(body) - CREATE_FIELDS)
    if unknown:
        raise InvalidInput("unknown field%s in the volume configuration: %s"
                           % ("s" if len(unknown) > 1 else "", ", ".join(unknown)))
    return body.get("Name") or None, body.get("Driver") or DRIVER, body.get("DriverOpts"), body.get("Labels")


async def create(request):
    state = portlayer(request)
    name, driver, options, labels = _create_config(validation.check(await json_body(request), validation.VOLUME_CREATE))
    known = name is not None and state.volumes.exists(name)
    volume = await state.volumes.create(name, driver, options, labels)
    if not known:
        state.events.publish("volume", "create", volume.name, {"driver": volume.driver})
    return web.json_response(_view(state, volume), status=201)


async def remove(request):
    state = portlayer(request)
    name = request.match_info["name"]
    if query_bool(request, "force") and not state.volumes.exists(name):
        return web.Response(status=204)  # Docker's rm -f: a volume already gone is not an error
    await state.volumes.remove(name, state.containers.using_volume(name))
    state.events.publish("volume", "destroy", name, {"driver": DRIVER})
    return web.Response(status=204)


# Docker names an anonymous volume with 64 hex digits, as the endpoint does (volumes.VolumeStores.create).
_ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")


async def prune(request):
    """``docker volume prune``: unused anonymous volumes, every unused one with ``all=true`` (dockerd >= 1.42),
    with the ``label`` filters."""
    state = portlayer(request)
    filters = query_filters(request)
    everything = (filters.pop("all", None) or ["false"])[0].lower() in ("1", "true")
    deleted = []
    for volume in state.volumes.list():
        if state.containers.using_volume(volume.name) or not (everything or _ANONYMOUS.match(volume.name)):
            continue
        if not keep(filters, {"label": lambda v, vol=volume: label_matches(vol.labels, v),
                              "label!": lambda v, vol=volume: not label_matches(vol.labels, v)}):
            continue
        await state.volumes.remove(volume.name)
        state.events.publish("volume", "destroy", volume.name, {"driver": volume.driver})
        deleted.append(volume.name)
    return web.json_response({"VolumesDeleted": deleted or None, "SpaceReclaimed": 0})


ROUTES = (
    ("POST", "/volumes/prune", prune),
    ("GET", "/volumes", list_volumes),
    ("POST", "/volumes/create", create),
    ("GET", "/volumes/{name}", inspect),
    ("DELETE", "/volumes/{name}", remove),
)
