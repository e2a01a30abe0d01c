# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Container networks: which port group each Docker network is, and its addresses.

* ``bridge`` (the default) is the VCH's bridge port group, on the first /16 of
  ``bridge_network_range``; the endpoint is its gateway.
* The VCH's container networks (vic-machine ``--container-network``) map
  existing port groups, listed with their docker names (driver ``external``, as
  VIC showed them); addresses come from their ``ip_range``, else DHCP.
* ``docker network create`` makes a bridge network: the next free /16 of the
  bridge range on the same bridge port group (as VIC did: separated by subnet).
  The list of these lives on the endpoint VM (``guestinfo.vice..networks``),
  where the live cache reads it back after a restart.

Addresses are handed out at ``docker create`` / ``network connect`` and kept in
each container's record on its VM, so the allocation is rebuilt from vSphere.
"""

import contextlib
import hashlib
import ipaddress
import json
import re
import time

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput, Conflict, Forbidden, NotFound
from ansible_collections.vic.containers.plugins.module_utils.vch import actions
from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks

try:
    from pyVmomi import vim
except ImportError:  # pragma: no cover - the endpoint's requirements install it
    vim = None

USER_NETWORKS_KEY = "guestinfo.vice..networks"
_BRIDGE_PREFIX = 16
# dockerd takes any name (spaces too) but an empty one; control characters and slashes would not survive
# a record or an API path.
_NAME = re.compile(r"^[^\x00-\x1f\x7f/]+$")


def network_id(vch_uuid, name):
    """A stable 64-hex id, so a network keeps its id across endpoint restarts."""
    return hashlib.sha256(("%s/network/%s" % (vch_uuid, name)).encode()).hexdigest()


class Network:
    """One Docker network of the VCH."""

    def __init__(self, vch_uuid, name, port_group, driver, subnet=None, gateway=None, pool=None, dns=(),
                 builtin=True, created=None, labels=None, internal=False, options=None, ip_range=None, aux=None):
        self.id = network_id(vch_uuid, name)
        self.name = name
        self.port_group = port_group
        self.driver = driver
        self.subnet = ipaddress.ip_network(subnet) if subnet else None
        self.gateway = ipaddress.ip_address(gateway) if gateway else None
        self.pool = pool  # (first, last) addresses handed out, or None for DHCP
        self.dns = list(dns)
        self.builtin = builtin
        self.created = created or "0001-01-01T00:00:00Z"
        self.labels = labels or {}
        self.internal = internal
        self.options = options or {}
        self.ip_range = ipaddress.ip_network(ip_range) if ip_range else None  # IPAM IPRange, as given
        self.aux = dict(aux or {})  # IPAM AuxiliaryAddresses: name -> address never handed out
        if self.ip_range is not None:
            self.pool = (self.ip_range.network_address, self.ip_range.broadcast_address)

    def record(self):
        """What is kept of a user-created network on the endpoint VM."""
        return {"name": self.name, "subnet": str(self.subnet), "gateway": str(self.gateway),
                "created": self.created, "labels": self.labels, "internal": self.internal,
                "options": self.options, "ip_range": str(self.ip_range) if self.ip_range else None,
                "aux": self.aux}

    def addresses(self):
        if self.pool is None:
            return iter(())
        first, last = (int(a) for a in self.pool)
        return (ipaddress.ip_address(n) for n in range(first, last + 1))


def _pool_of(subnet, gateway):
    hosts = subnet.hosts()
    first = next(hosts)
    if gateway == first:
        first = first + 1
    return first, subnet.broadcast_address - 1 if subnet.num_addresses > 2 else subnet.broadcast_address


class Networks:
    """The VCH's networks: predefined ones from its record, user ones from the endpoint VM."""

    def __init__(self, state):
        self._state = state
        config = state.config
        self.range = ipaddress.ip_network(config["bridge_network_range"])
        self._backings = {}
        self._reserved = set()  # addresses handed out to containers whose records do not hold them yet
        self.builtin = [self._bridge()] + [self._container_network(n) for n in config.get("container_networks") or ()]

    def _bridge(self):
        subnet = next(self.range.subnets(new_prefix=max(_BRIDGE_PREFIX, self.range.prefixlen)))
        gateway = next(subnet.hosts())
        return Network(self._state.uuid, "bridge", self._state.config["bridge_network"], "bridge",
                       subnet, gateway, _pool_of(subnet, gateway))

    def _container_network(self, item):
        gateway = ipaddress.ip_interface(item["gateway"]) if item.get("gateway") else None
        subnet = gateway.network if gateway else None
        pool = None
        if item.get("ip_range"):
            text = item["ip_range"]
            if "-" in text:
                pool = tuple(ipaddress.ip_address(a) for a in text.split("-"))
            else:
                network = ipaddress.ip_network(text)
                pool = _pool_of(network, gateway.ip if gateway else None)
                subnet = subnet or network
        return Network(self._state.uuid, item["name"], item["port_group"], "external", subnet,
                       gateway.ip if gateway else None, pool, item.get("dns") or ())

    def user(self):
        """The networks made with ``docker network create``, as the endpoint VM records them."""
        endpoint = self._state.cache.vms.get(self._state.endpoint_vm_ref._moId) or {}
        text = codec.as_dict(endpoint.get("config.extraConfig")).get(USER_NETWORKS_KEY) or "[]"
        found = []
        for rec in json.loads(text):
            subnet = ipaddress.ip_network(rec["subnet"])
            gateway = ipaddress.ip_address(rec["gateway"])
            found.append(Network(self._state.uuid, rec["name"], self._state.config["bridge_network"], "bridge",
                                 subnet, gateway, _pool_of(subnet, gateway), builtin=False,
                                 created=rec.get("created"), labels=rec.get("labels"),
                                 internal=rec.get("internal", False), options=rec.get("options"),
                                 ip_range=rec.get("ip_range"), aux=rec.get("aux")))
        return found

    def all(self):
        return self.builtin + self.user()

    def find(self, ref):
        """By name, full id or unique id prefix, as ``docker network inspect`` looks up."""
        everything = self.all()
        for net in everything:
            if ref in (net.name, net.id):
                return net
        matches = [n for n in everything if ref and n.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise NotFound("network %s not found" % ref)

    def backing(self, port_group):
        """(port group, dv key, switch uuid) for a NIC, resolved once from the inventory read at start."""
        if port_group not in self._backings:
            inv = self._state.vch.inventory
            datacenter = inv.datacenter_of(self._state.vch.pool)
            net = inv.network(port_group, datacenter, "network")
            dv = actions.dv_backing(inv, net)
            self._backings[port_group] = (port_group, dv[0] if dv else None, dv[1] if dv else None)
        return self._backings[port_group]

    @contextlib.contextmanager
    def reserving(self):
        """A list for ``endpoint``: the addresses it hands out stay reserved until the block ends, by when
        the container's record holds them (or the change failed)."""
        held = []
        try:
            yield held
        finally:
            self._reserved.difference_update(held)

    def endpoint(self, net, wanted_ip, settings, reserved):
        """A container's endpoint on ``net``, with what its EndpointSettings (``settings``) asked for kept as
        dockerd keeps it; its address is reserved (and appended to ``reserved``, a list from ``reserving``)
        until that block ends."""
        settings = settings if isinstance(settings, dict) else {"Aliases": settings}
        taken = {str(ep.get("ip")) for c in self._state.containers.all()
                 for ep in c.record.get("networks", {}).values() if ep.get("ip")}
        taken |= self._reserved
        address = self.allocate(net, {ipaddress.ip_address(a) for a in taken}, wanted_ip)
        if address is not None:
            self._reserved.add(str(address))
            reserved.append(str(address))
        return {"network_id": net.id, "port_group": net.port_group, "ip": str(address) if address else None,
                "gateway": str(net.gateway) if net.gateway else None,
                "prefix": net.subnet.prefixlen if net.subnet else 0, "aliases": list(settings.get("Aliases") or ()),
                "links": list(settings.get("Links") or ()), "driver_opts": dict(settings.get("DriverOpts") or {}),
                "link_local_ips": list((settings.get("IPAMConfig") or {}).get("LinkLocalIPs") or ()),
                "dns": net.dns}

    def nic_additions(self, net):
        """The device change that puts a container VM on ``net``'s port group."""
        return actions.nic_specs([self.backing(net.port_group)])

    def nic_removals(self, container, net, devices, force):
        """The device change that takes the NIC of ``net`` off the container's VM, given its ``devices``.

        Networks sharing a port group have one NIC each, in the order they were
        attached; with ``force``, a VM whose NICs do not match its record loses none.
        """
        same_group = [n for n, ep in container.record["networks"].items() if ep["port_group"] == net.port_group]
        nics = [d for d in devices or ()
                if isinstance(d, vim.vm.device.VirtualEthernetCard) and _on(d, self.backing(net.port_group))]
        if len(nics) != len(same_group):
            if not force:
                raise Conflict("container %s: its VM has %d NIC(s) on port group %s, its record %d; use --force"
                               % (container.name, len(nics), net.port_group, len(same_group)))
            return []
        nic = nics[same_group.index(net.name)]
        return [vim.vm.device.VirtualDeviceSpec(operation="remove", device=nic)]

    def allocate(self, net, taken, wanted=None):
        """An address on ``net`` not in ``taken`` (a set of addresses), or ``wanted`` if it is free."""
        if wanted:
            address = _address(wanted)
            if net.subnet is not None and address not in net.subnet:
                raise InvalidInput("address %s is not in network %s's subnet %s" % (address, net.name, net.subnet))
            if address in taken or address == net.gateway:
                raise Conflict("address %s is already in use on network %s" % (address, net.name))
            return address
        if net.pool is None:
            return None  # DHCP: the guest learns it, the record keeps none
        aux = {ipaddress.ip_address(a) for a in net.aux.values()}
        for address in net.addresses():
            if address not in taken and address != net.gateway and address not in aux:
                return address
        raise Conflict("no free address left on network %s" % net.name)

    async def create(self, body):
        """``docker network create``: a bridge network on the next free subnet of the bridge range."""
        name = body.get("Name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidInput("invalid network name %r: it must be a non-empty name without slashes or control "
                               "characters" % (name,))
        driver = body.get("Driver") or "bridge"
        if driver != "bridge":
            raise InvalidInput("network driver %r is not supported by vSphere Integrated Containers: "
                               "use bridge, or map a port group as a container network of the VCH" % driver)
        existing = self.all()
        if any(n.name == name for n in existing):
            raise Conflict("network with name %s already exists" % name)
        subnet, gateway = self._subnet(body.get("IPAM") or {}, existing)
        ip_range, aux = _range_and_aux((body.get("IPAM") or {}).get("Config") or [{}], subnet)
        net = Network(self._state.uuid, name, self._state.config["bridge_network"], "bridge", subnet, gateway,
                      _pool_of(subnet, gateway), builtin=False,
                      created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      labels=_labels(body.get("Labels")), internal=bool(body.get("Internal")),
                      options={k: str(v) for k, v in (body.get("Options") or {}).items()},
                      ip_range=ip_range, aux=aux)
        await self._save([n.record() for n in self.user()] + [net.record()])
        return net

    def _subnet(self, ipam, existing):
        used = [n.subnet for n in existing if n.subnet is not None]
        configs = ipam.get("Config") or []
        if ipam.get("Driver") not in (None, "", "default"):
            raise InvalidInput("IPAM driver %r is not supported; only the default" % ipam["Driver"])
        if configs:
            try:
                subnet = ipaddress.ip_network(configs[0].get("Subnet"), strict=True)
                gateway = ipaddress.ip_address(configs[0]["Gateway"]) if configs[0].get("Gateway") \
                    else next(subnet.hosts())
            except (TypeError, ValueError) as exc:
                raise InvalidInput("invalid IPAM configuration: %s" % exc)
            if any(subnet.overlaps(u) for u in used):
                raise Conflict("subnet %s overlaps with another network of this VCH" % subnet)
            if gateway not in subnet:
                raise InvalidInput("gateway %s is not in subnet %s" % (gateway, subnet))
            return subnet, gateway
        for subnet in self.range.subnets(new_prefix=max(_BRIDGE_PREFIX, self.range.prefixlen)):
            if not any(subnet.overlaps(u) for u in used):
                return subnet, next(subnet.hosts())
        raise Conflict("the bridge network range %s has no free subnet left" % self.range)

    async def remove(self, net, users):
        if net.builtin:
            raise Forbidden("%s is a pre-defined network and cannot be removed" % net.name)
        if users:
            raise Conflict("error while removing network: network %s id %s has active endpoints"
                           % (net.name, net.id))
        await self._save([n.record() for n in self.user() if n.name != net.name])

    async def _save(self, records):
        text = json.dumps(records, sort_keys=True, separators=(",", ":"))
        ref = self._state.endpoint_vm_ref

        def write():
            what = "recording the networks on the endpoint VM of %s" % self._state.name
            spec = vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key=USER_NETWORKS_KEY, value=text)])
            tasks.wait(self._state.session, {tasks.call(what, ref.ReconfigVM_Task, spec): what})
        await self._state.call(write)
        self._state.cache.put_extra_config(ref, {USER_NETWORKS_KEY: text})


def _range_and_aux(configs, subnet):
    """(IPRange, AuxiliaryAddresses) of a network's first IPAM configuration, checked against its subnet
    as dockerd checks them; (None, {}) when it names none."""
    config = configs[0] if configs else {}
    ip_range, aux = config.get("IPRange") or None, config.get("AuxiliaryAddresses") or {}
    if not isinstance(aux, dict):
        raise InvalidInput("invalid IPAM configuration: AuxiliaryAddresses must be an object")
    try:
        if ip_range is not None and not ipaddress.ip_network(ip_range, strict=True).subnet_of(subnet):
            raise InvalidInput("invalid IPAM configuration: IP range %s is not in subnet %s" % (ip_range, subnet))
        for key, address in aux.items():
            if ipaddress.ip_address(address) not in subnet:
                raise InvalidInput("invalid IPAM configuration: auxiliary address %s=%s is not in subnet %s"
                                   % (key, address, subnet))
    except (TypeError, ValueError) as exc:
        raise InvalidInput("invalid IPAM configuration: %s" % exc) from None
    return ip_range, {str(k): str(v) for k, v in aux.items()}


def _on(device, backing):
    """Whether a NIC is on the port group of ``backing`` (name, dv key, switch uuid)."""
    name, dv_key = backing[0], backing[1]
    if dv_key is not None:
        return getattr(getattr(device.backing, "port", None), "portgroupKey", None) == dv_key
    return getattr(device.backing, "deviceName", None) == name


def _address(text):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidInput("%r is not an IP address" % text)


def _labels(value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("Labels must be an object of strings")
    return {str(k): str(v) for k, v in value.items()}
