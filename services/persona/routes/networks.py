# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Docker API routes of networks: port groups of the VCH (see networks.py)."""

from aiohttp import web

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput, Conflict, Forbidden
from ansible_collections.vic.containers.services.portlayer.filters import keep, label_matches
from ansible_collections.vic.containers.services.persona.query import json_body, query_bool, query_filters
from ansible_collections.vic.containers.plugins.module_utils.vch import actions
from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc

try:
    from pyVmomi import vim
except ImportError:  # pragma: no cover - the endpoint's requirements install it
    vim = None


def _state(request):
    return request.app["portlayer"]


def view(state, net, verbose=True):
    """A network as ``docker network inspect`` shows it."""
    config = []
    if net.subnet is not None:
        entry = {"Subnet": str(net.subnet)}
        if net.gateway is not None:
            entry["Gateway"] = str(net.gateway)
        if net.pool is not None and net.driver == "external":
            entry["IPRange"] = "%s-%s" % net.pool
        config.append(entry)
    shown = {
        "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local", "Driver": net.driver,
        "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Internal": net.internal, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
        "ConfigOnly": False, "Options": dict(net.options, **{"vic.port_group": net.port_group}),
        "Labels": net.labels,
    }
    if verbose:
        shown["Containers"] = {
            c.id: {"Name": c.name, "EndpointID": c.id if c.running else "", "MacAddress": "",
                   "IPv4Address": _cidr(c.record["networks"][net.name]), "IPv6Address": ""}
            for c in state.containers.using_network(net.name)}
    return shown


def _cidr(endpoint):
    return "%s/%d" % (endpoint["ip"], endpoint["prefix"]) if endpoint.get("ip") else ""


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
    state = _state(request)
    filters = query_filters(request)
    return web.json_response([view(state, n, verbose=False) for n in state.networks.all() if _matches(n, filters)])


async def inspect(request):
    state = _state(request)
    return web.json_response(view(state, state.networks.find(request.match_info["id"])))


async def create(request):
    state = _state(request)
    body = await json_body(request)
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
    state = _state(request)
    net = state.networks.find(request.match_info["id"])
    await state.networks.remove(net, state.containers.using_network(net.name))
    state.events.publish("network", "destroy", net.id, {"name": net.name, "type": net.driver})
    return web.Response(status=204)


async def _membership(request):
    """(state, the network, the request body, the container it names) of a connect or disconnect."""
    state = _state(request)
    net = state.networks.find(request.match_info["id"])
    body = await json_body(request)
    return state, net, body, state.containers.find(body.get("Container") or "")


async def connect(request):
    state, net, body, container = await _membership(request)
    if net.name in container.record.get("networks", {}):
        raise Forbidden("endpoint with name %s already exists in network %s" % (container.name, net.name))
    if not container.record.get("networks") and container.host_config.get("NetworkMode") == "none":
        raise Conflict("container %s is on network none and cannot join another network" % container.name)
    settings = body.get("EndpointConfig") or {}
    addresses = []
    try:
        endpoint = state.networks.endpoint(net, (settings.get("IPAMConfig") or {}).get("IPv4Address"),
                                           settings.get("Aliases"), addresses)
        networks = dict(container.record.get("networks", {}), **{net.name: endpoint})
        devices = actions.nic_specs([state.networks.backing(net.port_group)])
        await state.containers.rewrite(container, dict(container.record, networks=networks), devices)
    finally:
        state.reserved_addresses.difference_update(addresses)
    state.events.publish("network", "connect", net.id, {"name": net.name, "type": net.driver,
                                                        "container": container.id})
    return web.Response(status=200)


async def disconnect(request):
    state, net, body, container = await _membership(request)
    networks = dict(container.record.get("networks", {}))
    if net.name not in networks:
        raise Forbidden("container %s is not connected to network %s" % (container.name, net.name))
    del networks[net.name]
    found = await state.call(pc.retrieve_objects, state.session, [container.ref], ("config.hardware.device",))
    current = found[0].get("config.hardware.device") if found else ()
    devices = _nic_removal(state, container, net, current, query_bool(request, "force") or bool(body.get("Force")))
    await state.containers.rewrite(container, dict(container.record, networks=networks), devices)
    state.events.publish("network", "disconnect", net.id, {"name": net.name, "type": net.driver,
                                                           "container": container.id})
    return web.Response(status=200)


def _nic_removal(state, container, net, devices, force):
    """The NIC of ``net`` among the VM's ``devices`` (read fresh: the cache may lag a just-added NIC):
    the one on its port group, in the order networks were attached."""
    same_group = [n for n, ep in container.record["networks"].items() if ep["port_group"] == net.port_group]
    nics = [d for d in devices or ()
            if isinstance(d, vim.vm.device.VirtualEthernetCard) and _on(d, state.networks.backing(net.port_group))]
    if len(nics) != len(same_group):
        if not force:
            raise Conflict("container %s: its VM has %d NIC(s) on port group %s, its record %d; use --force"
                           % (container.name, len(nics), net.port_group, len(same_group)))
        return []
    nic = nics[same_group.index(net.name)]
    return [vim.vm.device.VirtualDeviceSpec(operation="remove", device=nic)]


def _on(device, backing):
    """Whether a NIC is on the port group of ``backing`` (name, dv key, switch uuid)."""
    name, dv_key = backing[0], backing[1]
    if dv_key is not None:
        return getattr(getattr(device.backing, "port", None), "portgroupKey", None) == dv_key
    return getattr(device.backing, "deviceName", None) == name


ROUTES = (
    ("GET", "/networks", list_networks),
    ("POST", "/networks/create", create),
    ("GET", "/networks/{id}", inspect),
    ("DELETE", "/networks/{id}", remove),
    ("POST", "/networks/{id}/connect", connect),
    ("POST", "/networks/{id}/disconnect", disconnect),
)
