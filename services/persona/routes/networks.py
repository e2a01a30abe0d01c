# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Docker API routes of networks: port groups of the VCH (see portlayer/network/networks.py)."""

from aiohttp import web

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput
from ansible_collections.vic.containers.services.persona import container_config as spec
from ansible_collections.vic.containers.services.persona import validation
from ansible_collections.vic.containers.services.persona import views
from ansible_collections.vic.containers.services.persona.query import json_body, portlayer, query_bool, query_filters
from ansible_collections.vic.containers.services.portlayer.containers.model import parse_time
from ansible_collections.vic.containers.services.portlayer.filters import keep, label_matches, until_seconds


def _matches(net, filters):
    tests = {
        "name": lambda v: v in net.name,
        "id": net.id.startswith,
        "driver": lambda v: v == net.driver,
        "type": lambda v: v == ("builtin" if net.builtin else "custom"),
        "scope": lambda v: v == "local",
        "label": lambda v: label_matches(net.labels, v),
    }
    return keep(filters, tests)


async def list_networks(request):
    state = portlayer(request)
    filters = query_filters(request)
    return web.json_response([views.network(n) for n in state.networks.all() if _matches(n, filters)])


async def inspect(request):
    state = portlayer(request)
    net = state.networks.find(request.match_info["id"])
    return web.json_response(views.network(net, state.containers.using_network(net.name)))


async def create(request):
    state = portlayer(request)
    body = validation.check(await json_body(request), validation.NETWORK_CREATE)
    unknown = sorted(set(body) - {"Name", "CheckDuplicate", "Driver", "Internal", "Attachable", "Ingress", "IPAM",
                                  "EnableIPv6", "Options", "Labels", "Scope", "ConfigOnly", "ConfigFrom"})
    if unknown:
        raise InvalidInput("unknown field%s in the network configuration: %s"
                           % ("s" if len(unknown) > 1 else "", ", ".join(unknown)))
    if body.get("EnableIPv6"):
        raise InvalidInput("IPv6 networks are not supported by vSphere Integrated Containers")
    net = await state.networks.create(body)
    state.events.publish("network", "create", net.id, {"name": net.name, "type": net.driver})
    return web.json_response({"Id": net.id, "Warning": ""}, status=201)


async def remove(request):
    state = portlayer(request)
    net = state.networks.find(request.match_info["id"])
    await state.networks.remove(net, state.containers.using_network(net.name))
    state.events.publish("network", "destroy", net.id, {"name": net.name, "type": net.driver})
    return web.Response(status=204)


async def _membership(request):
    """(state, the network, the request body, the container it names) of a connect or disconnect."""
    state = portlayer(request)
    net = state.networks.find(request.match_info["id"])
    body = validation.check(await json_body(request), validation.NETWORK_CONNECT)
    return state, net, body, await state.containers.look_up(body.get("Container") or "")


async def connect(request):
    state, net, body, container = await _membership(request)
    address, aliases = spec.endpoint_request(body.get("EndpointConfig"))
    validation.check_address(net, address)
    await state.containers.connect(container, net, address, aliases)
    state.events.publish("network", "connect", net.id, {"name": net.name, "type": net.driver,
                                                        "container": container.id})
    return web.Response(status=200)


async def disconnect(request):
    state, net, body, container = await _membership(request)
    await state.containers.disconnect(container, net, query_bool(request, "force") or bool(body.get("Force")))
    state.events.publish("network", "disconnect", net.id, {"name": net.name, "type": net.driver,
                                                           "container": container.id})
    return web.Response(status=200)


async def prune(request):
    """``docker network prune``: the user-created networks no container is on (``label`` / ``until`` filters)."""
    state = portlayer(request)
    filters = query_filters(request)
    deleted = []
    for net in state.networks.user():
        if state.containers.using_network(net.name) or not keep(filters, {
                "label": lambda v, n=net: label_matches(n.labels, v),
                "label!": lambda v, n=net: not label_matches(n.labels, v),
                "until": lambda v, n=net: parse_time(n.created).timestamp() < until_seconds(v)}):
            continue
        await state.networks.remove(net, ())
        state.events.publish("network", "destroy", net.id, {"name": net.name, "type": net.driver})
        deleted.append(net.name)
    return web.json_response({"NetworksDeleted": deleted or None})


ROUTES = (
    ("POST", "/networks/prune", prune),
    ("GET", "/networks", list_networks),
    ("POST", "/networks/create", create),
    ("GET", "/networks/{id}", inspect),
    ("DELETE", "/networks/{id}", remove),
    ("POST", "/networks/{id}/connect", connect),
    ("POST", "/networks/{id}/disconnect", disconnect),
)
