# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The network engine of vic_network / vic_network_info: one inspect, a plan, apply; private.

Options as community.docker's docker_network has them. A network whose options differ is
recreated, as docker_network does; ``connected`` is the list of its containers (``appends``
keeps the others). Unlike docker_network, a task without ``connected`` leaves the network's
containers alone (docker_network disconnects them all), and a network with containers on it
is never removed or recreated behind their back: that needs ``force``, and a recreated
network gets back the containers that stay on it, so nothing is lost.
"""

from __future__ import annotations

from ansible_collections.vic.containers.plugins.module_utils._errors import Conflict, SpecError
from ansible_collections.vic.containers.plugins.module_utils._plan import Plan
from ansible_collections.vic.containers.plugins.module_utils.docker import options as model
from ansible_collections.vic.containers.plugins.module_utils.docker import values
from ansible_collections.vic.containers.plugins.module_utils.docker.options import Option

# ipam_config's keys and the API's names for them.
_IPAM_KEYS = {"subnet": "Subnet", "gateway": "Gateway", "iprange": "IPRange", "aux_addresses": "AuxiliaryAddresses"}


def _ipam_config(value, name):
    """The task's ipam_config: only the keys it gives, aux_addresses as strings; compared against the
    network's entries key by key (a gateway the VCH chose is not a difference when none is asked)."""
    configs = []
    for index, entry in enumerate(value):
        given = {key: entry[key] for key in _IPAM_KEYS if entry.get(key) not in (None, "", {})}
        if "aux_addresses" in given:
            given["aux_addresses"] = values.string_map(given["aux_addresses"], "%s[%d].aux_addresses" % (name, index))
        if not given.get("subnet") and len(given) > 0:
            raise SpecError(name, "entry %d gives %s without a subnet" % (index + 1, ", ".join(sorted(given))))
        configs.append(given)
    return configs


def _observe_ipam(obj, _extra):
    return [{key: entry[api] for key, api in _IPAM_KEYS.items() if entry.get(api)}
            for entry in (obj.get("IPAM") or {}).get("Config") or []]


def _options_shown(obj, _extra):
    # The VCH adds the port group the network is on; it is not an option anyone sets.
    return {k: v for k, v in (obj.get("Options") or {}).items() if k != "vic.port_group"}


OPTIONS = (
    Option("driver", "str", default="bridge", observe=lambda obj, _extra: obj.get("Driver")),
    Option("driver_options", "dict", shape="dict", normalize=values.string_map, observe=_options_shown),
    Option("ipam_driver", "str", observe=lambda obj, _extra: (obj.get("IPAM") or {}).get("Driver") or "default"),
    Option("ipam_config", "list", elements="dict", normalize=_ipam_config, observe=_observe_ipam,
           suboptions={"subnet": {"type": "str"}, "gateway": {"type": "str"}, "iprange": {"type": "str"},
                       "aux_addresses": {"type": "dict"}}),
    Option("internal", "bool", observe=lambda obj, _extra: bool(obj.get("Internal"))),
    Option("enable_ipv6", "bool", observe=lambda obj, _extra: bool(obj.get("EnableIPv6"))),
    Option("labels", "dict", shape="dict", normalize=values.string_map,
           observe=lambda obj, _extra: obj.get("Labels") or {}),
)


def argument_spec():
    spec = model.argument_spec(OPTIONS)
    spec.update(
        name=dict(type="str", required=True, aliases=["network_name"]),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        connected=dict(type="list", elements="str", aliases=["containers"]),
        appends=dict(type="bool", default=False, aliases=["incremental"]),
        force=dict(type="bool", default=False),
    )
    return spec


def _same_ipam(want, have):
    """Each entry asked for matches the network's entry at its place, on the keys it gives."""
    return len(want) == len(have) and all(all(have_entry.get(key) == value for key, value in want_entry.items())
                                          for want_entry, have_entry in zip(want, have))


def _differences(want, network):
    differ, before, after = model.differences(OPTIONS, want, network)
    if "ipam_config" in differ and _same_ipam(want["ipam_config"], before["ipam_config"]):
        differ.remove("ipam_config")
    return differ, before, after


def _members(network):
    """{container id: name} of the containers on the network."""
    return {cid: entry.get("Name") or cid for cid, entry in (network.get("Containers") or {}).items()}


def _matches(ref, cid, name):
    return ref in (name, "/" + name) or (len(ref) >= 12 and cid.startswith(ref))


def plan(client, params):
    name = params["name"]
    network = client.inspect("inspecting network %s" % name, client.api.inspect_network, name)
    if network is not None and network.get("Name") != name:
        network = None      # found by an id prefix that happens to equal the name: another network
    result = Plan({}, {})
    result.network = network
    members = _members(network) if network else {}
    if params["state"] == "absent":
        if network is not None:
            _refuse_with_members(client, name, members, params, "remove it")
            result.before, result.after = _shown(network, members), {}
            _disconnect_steps(result, client, name, members)
            result.add("remove network %s" % name, lambda: _remove(client, name))
        return result
    want = model.desired(OPTIONS, params)
    if want.get("enable_ipv6"):
        raise SpecError("enable_ipv6", "a VCH's networks are IPv4 only (vSphere Integrated Containers has no IPv6)")
    if network is None:
        result.after = dict(want, connected=sorted(params["connected"] or ()))
        result.add("create network %s" % name, lambda: _create(client, name, want))
        for ref in params["connected"] or ():
            result.add("connect container %s to network %s" % (ref, name),
                       lambda ref=ref: _connect(client, name, ref))
        return result
    differ, before, after = _differences(want, network)
    before["connected"] = sorted(members.values())
    listed = params["connected"]
    # No list: the network's containers are not this task's business; an empty one disconnects them all.
    staying = members if params["appends"] or listed is None else {
        cid: member for cid, member in members.items() if any(_matches(ref, cid, member) for ref in listed)}
    joining = [ref for ref in listed or () if not any(_matches(ref, cid, member) for cid, member in staying.items())]
    if differ:
        why = model.differ_phrase(differ)
        _refuse_with_members(client, name, members, params, "recreate it (%s)" % why)
        _disconnect_steps(result, client, name, members)
        result.add("recreate network %s (%s)" % (name, why), lambda: (_remove(client, name), _create(client, name, want)))
        # The containers that stay (all of them with appends, else those listed) join the new network.
        joining = sorted(staying.values()) + joining
    else:
        _disconnect_steps(result, client, name, {cid: m for cid, m in members.items() if cid not in staying})
    for ref in joining:
        result.add("connect container %s to network %s" % (ref, name), lambda ref=ref: _connect(client, name, ref))
    after["connected"] = sorted(set(staying.values()) | set(joining))
    result.before, result.after = before, after
    return result


def _disconnect_steps(result, client, name, members):
    for cid, member in sorted(members.items(), key=lambda item: item[1]):
        result.add("disconnect container %s from network %s" % (member, name),
                   lambda cid=cid: _disconnect(client, name, cid))


def _refuse_with_members(client, name, members, params, doing):
    if members and not params["force"]:
        names = sorted(members.values())
        raise Conflict("Network %s on Docker host %s has %d container%s on it (%s): set force: true to disconnect "
                       "%s and %s." % (name, client.host, len(names), "" if len(names) == 1 else "s",
                                       ", ".join(names), "it" if len(names) == 1 else "them", doing))


def _shown(network, members):
    shown = {option.name: option.observe(network) for option in OPTIONS}
    shown["connected"] = sorted(members.values())
    return shown


def _create(client, name, want):
    ipam = None
    if want.get("ipam_config") or want.get("ipam_driver"):
        pools = [{_IPAM_KEYS[key]: value for key, value in entry.items()} for entry in want.get("ipam_config") or []]
        ipam = {"Driver": want.get("ipam_driver") or "default", "Config": pools}
    client.call("creating network %s" % name, client.api.create_network, name, driver=want.get("driver") or "bridge",
                options=want.get("driver_options") or None, ipam=ipam, internal=bool(want.get("internal")),
                labels=want.get("labels") or None, check_duplicate=True)


def _remove(client, name):
    client.call("removing network %s" % name, client.api.remove_network, name)


def _connect(client, name, ref):
    client.call("connecting container %s to network %s" % (ref, name), client.api.connect_container_to_network,
                ref, name)


def _disconnect(client, name, ref):
    client.call("disconnecting container %s from network %s" % (ref, name),
                client.api.disconnect_container_from_network, ref, name)


def result(client, params, plan_, check_mode):
    if params["state"] == "absent":
        return plan_.network if check_mode else None
    if plan_.changed and not check_mode:
        return info(client, params["name"])
    return plan_.network


def info(client, name):
    network = client.inspect("inspecting network %s" % name, client.api.inspect_network, name)
    return network if network is not None and network.get("Name") == name else None
