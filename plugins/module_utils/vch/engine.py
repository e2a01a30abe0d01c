# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The VCH engine: desired spec -> observed state -> plan -> apply; private to the collection.

A plan is the ordered list of steps that takes vSphere from what it has to
what was asked. Its descriptions are the module's ``changes`` (the check-mode
prediction); running its steps is the apply. Steps are ordered so that the
endpoint VM, which carries the VCH record, is created last: a fault midway
leaves a pool that the next run completes or ``state: absent`` removes.
"""

from __future__ import annotations

import copy
import os

from ansible_collections.vic.containers.plugins.module_utils._errors import (
    NotFound, RefusedChangeError, SpecError, VicError)
from ansible_collections.vic.containers.plugins.module_utils import _certs as certs
from ansible_collections.vic.containers.plugins.module_utils._version import VERSION as PRODUCT_VERSION
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore
from ansible_collections.vic.containers.plugins.module_utils.docker import connection as docker_connection
from ansible_collections.vic.containers.plugins.module_utils._plan import Plan
from ansible_collections.vic.containers.plugins.module_utils.vch import actions, tether_iso
from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.plugins.module_utils.vch import observe
from ansible_collections.vic.containers.plugins.module_utils.vch import spec as vch_spec
from ansible_collections.vic.containers.plugins.module_utils.vsphere import inventory as inventory_reader

# Options fixed at create (vic-machine configure could not change them).
FIXED = ("compute", "image_store", "bridge_network", "bridge_network_range", "public_network",
         "client_network", "management_network", "endpoint", "base_image_size_gb", "appliance_iso",
         "bootstrap_iso", "registry.insecure", "registry.whitelist")


class _Context:
    """What every step of one run shares: the session, inventory and the objects made so far."""

    def __init__(self, session, params):
        self.session = session
        self.params = params
        self.timeout = params["timeout"]
        self.inventory = inventory_reader.read(session)
        self.datacenter = self.inventory.datacenter(params.get("datacenter"))
        self.compute = self.parent_pool = self.compute_path = None
        if params.get("compute"):
            self.compute, self.parent_pool = self.inventory.compute(params["compute"], self.datacenter)
            root = self.parent_pool.ref == self.compute.get("resourcePool")
            # Recorded as the user named it: a cluster or host, or a pool below its root pool.
            self.compute_path = self.path(self.compute if root else self.parent_pool)
        self.made = {}

    @property
    def dc_name(self):
        return self.datacenter.get("name")

    @property
    def dc_ref(self):
        return self.datacenter.ref

    def path(self, obj):
        return self.inventory.path(obj)


def plan_present(session, params):
    spec = vch_spec.desired(params)
    tls = vch_spec.tls_options(params)
    ctx = _Context(session, params)
    vch = observe.find(ctx.inventory, params["name"], ctx.datacenter, ctx.parent_pool)
    if vch is not None and vch.complete:
        plan = _plan_update(ctx, spec, tls, vch)
    else:
        plan = _plan_create(ctx, spec, tls, vch)
    return ctx, plan


def plan_absent(session, params):
    ctx = _Context(session, params)
    vch = observe.find(ctx.inventory, params["name"], ctx.datacenter, ctx.parent_pool)
    if vch is not None and ctx.parent_pool is not None \
            and not inventory_reader.same(ctx.inventory.parent(vch.pool), ctx.parent_pool):
        raise VicError("VCH %s is in %s, not under compute %s; nothing was deleted."
                       % (vch.name, ctx.path(vch.pool), params["compute"]))
    bridges = observe.bridge_port_groups(ctx.inventory, params["name"], ctx.datacenter)
    plan = Plan(before=observe.display(vch.config) if vch and vch.config else ({} if vch or bridges else None),
                after=None)
    bridges = _unused(ctx, vch, bridges, plan)
    # As vic-machine did, the endpoint VM, which holds the record of what the VCH made, goes after what it
    # made (a half-made VCH's trace file is deleted last of the folders); the pool goes last: while anything
    # else is left (a step failed), it is the trace by which the next absent finds the VCH and deletes the rest.
    if vch is not None:
        stores = _stores(ctx, vch, plan)
        created = _created(ctx, vch, stores)
        _plan_stop(ctx, vch, plan)
        _plan_remove_host_bridge(ctx, vch, created, plan)
        _plan_delete_folders(ctx, vch, stores, created, plan)
        if vch.vm is not None:
            vm_path = ctx.path(vch.vm)
            plan.add("destroy endpoint VM " + vm_path,
                     lambda: actions.destroy_vms(session, [vch.vm], lambda vm: vm_path, ctx.timeout))
        if stores is not None:
            # Its own folder, which vSphere may leave (files it did not make, such as the image store's).
            vm_folder = (observe.split_store(stores["image_store"])[0], vch.name)
            plan.add("delete datastore folder " + datastore.ds_path(*vm_folder),
                     lambda: actions.delete_folders(session, ctx.dc_ref, [vm_folder], ctx.timeout))
    if bridges:
        # Also when nothing else is left: a create that failed right after making its bridge.
        plan.add("destroy bridge port group(s) " + ", ".join(sorted(pg.get("name") for pg in bridges)),
                 lambda: actions.destroy_port_groups(session, bridges, ctx.path, ctx.timeout))
    if vch is not None:
        pool_path = ctx.path(vch.pool)
        plan.add("destroy %s %s" % (_pool_kind(vch.pool), pool_path),
                 lambda: actions.destroy_pool(session, vch.pool, pool_path, ctx.timeout))
    return ctx, plan


def _plan_stop(ctx, vch, plan):
    """Power off the VCH's VMs and destroy its container VMs (refused when its pool holds VMs it did not make)."""
    session = ctx.session
    ours, foreign = vch.vms()
    if foreign:
        raise VicError("VCH %s: pool %s holds VMs it did not make (%s); move or delete them first."
                       % (vch.name, ctx.path(vch.pool), ", ".join(sorted(v.get("name") for v in foreign))))
    containers = [vm for vm in ours if vm is not vch.vm]
    what = ["destroy %d container VM(s)" % len(containers)] if containers else []
    if vch.vm is not None and vch.vm.get("runtime.powerState") == "poweredOn":
        what.append("power off endpoint VM " + ctx.path(vch.vm))
    if what:
        def stop():
            actions.power_off(session, ours, ctx.path, ctx.timeout)
            actions.destroy_vms(session, containers, ctx.path, ctx.timeout)
        plan.add(" and ".join(what), stop)


def _plan_delete_folders(ctx, vch, stores, created, plan):
    folders = _folders_to_delete(ctx, vch, stores, created, plan)
    if folders:
        # A half-made VCH's trace file goes last (while the endpoint VM is there, its record is the trace).
        phases = observe.last_with(folders, *observe.trace_file(stores)) if vch.vm is None else [folders]
        plan.add("delete datastore folders " + ", ".join(datastore.ds_path(*f) for f in folders),
                 lambda: [actions.delete_folders(ctx.session, ctx.dc_ref, phase, ctx.timeout)
                          for phase in phases if phase])


def _stores(ctx, vch, plan):
    """The VCH's uuid, image store and volume stores: from its record, or for a half-made VCH (no record)
    from its pool and the options given; None when those do not say (image_store not given)."""
    if vch.config is not None:
        return vch.config
    spec = vch_spec.desired(ctx.params)
    if spec["image_store"] is None:
        plan.warnings.append("VCH %s was half-made and image_store was not given: any folders it created on a "
                             "datastore%s are left." % (vch.name, "" if ctx.session.is_vcenter else
                                                        " and any bridge port group it made on the host"))
        return None
    return {"uuid": observe.vch_uuid(ctx.session, vch.pool.moid), "image_store": spec["image_store"],
            "volume_stores": spec["volume_stores"] or {}}


def _created(ctx, vch, stores):
    """What the VCH made: its record says; a half-made VCH's trace file, if the create got that far."""
    if vch.config is not None or stores is None:
        return (vch.config or {}).get("created")
    return _read_trace(ctx, stores)


def _read_trace(ctx, config):
    ds_name, path = observe.trace_file(config)
    return codec.decode_created(datastore.download(ctx.session, ctx.dc_name, ds_name, path))


def _folders_to_delete(ctx, vch, config, created, plan):
    """The VCH's own folders (its image store, its volume stores when asked) and the folders above them it
    made that hold nothing else (listed now: check mode shows the same); its VM's folder goes apart."""
    if config is None:
        return []
    image_ds = observe.split_store(config["image_store"])[0]
    leaves = [observe.image_store_folder(config)]
    stores = config.get("volume_stores") or {}
    if ctx.params.get("delete_volume_stores"):
        leaves.extend(observe.volume_store_folder(store) for store in stores.values())
    elif stores:
        plan.warnings.append("Volume stores of VCH %s are kept (%s); set delete_volume_stores: true to delete them."
                             % (vch.name, ", ".join(observe.volume_store_path(s) for s in stores.values())))
    datastores = {ds.get("name"): ds for ds in ctx.inventory.of_type("Datastore")
                  if ctx.inventory.within(ds, ctx.datacenter)}
    # Not the VM's own folder (with the default image store path, the top folder of the image store): it goes
    # after the VM.
    made = [f for f in observe.beyond(observe.made_folders(created), leaves + [(image_ds, vch.name)])
            if f[0] in datastores]
    if made:
        trees = actions.list_trees(ctx.session, datastores, made, ctx.timeout)
        leaves.extend(observe.removable(made, leaves, trees))
    return observe.outermost(leaves)


def _plan_remove_host_bridge(ctx, vch, created, plan):
    """On ESXi, the standard port group the VCH made for its bridge (its record says; there is no description)."""
    name = (created or {}).get("port_group")
    if ctx.session.is_vcenter or not name:
        return
    network = ctx.inventory.network(name, ctx.datacenter, "bridge_network", required=False)
    hosts = [h for h in ctx.inventory.of_type("HostSystem") if ctx.inventory.within(h, ctx.datacenter)]
    if network is None or not hosts or not _unused(ctx, vch, [network], plan):
        return
    vm_path = ctx.path(vch.vm) if vch.vm is not None else None

    def remove():
        if vm_path is not None:
            # ESXi refuses to remove a port group a VM uses; the endpoint VM goes later (it holds the record).
            actions.remove_nics(ctx.session, vch.vm, vm_path, ctx.timeout)
        actions.remove_host_portgroup(hosts[0], name)
    plan.add("remove bridge port group %s from %s" % (name, hosts[0].get("name")), remove)


def _unused(ctx, vch, port_groups, plan):
    """The bridge port groups the VCH made that no other VCH has as its bridge too (vSphere would refuse to
    destroy one in use): those are kept, with a warning. The records say, from the inventory already read."""
    if not port_groups:
        return []
    users = {}
    for other in observe.endpoints(ctx.inventory):
        if other.pool is not None and ctx.inventory.within(other.pool, ctx.datacenter) \
                and (vch is None or other.vm is not vch.vm):
            users.setdefault(other.config.get("bridge_network"), []).append(other.name)
    kept = [pg for pg in port_groups if pg.get("name") in users]
    for pg in kept:
        name = pg.get("name")
        plan.warnings.append("Bridge port group %s, made by VCH %s, is kept: VCH %s has it as its bridge network; "
                             "delete it once they are gone." % (name, ctx.params["name"], ", ".join(sorted(users[name]))))
    return [pg for pg in port_groups if pg not in kept]


def _pool_kind(pool):
    return "vApp" if pool.type == "VirtualApp" else "resource pool"


def _merge(base, spec):
    """``base`` with every option the user gave; a dict option merges key by key.

    ``volume_stores`` is replaced whole: its labels are the set the user wants,
    so a label left out is a removal (which an existing VCH refuses).
    """
    merged = copy.deepcopy(base)
    for key, value in spec.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in ("volume_stores",):
            merged[key] = dict(merged[key], **{k: v for k, v in value.items() if v is not None})
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _new_config(ctx, spec, tls_config, vch_uuid):
    config = _merge(vch_spec.DEFAULTS, spec)
    for network in ("client_network", "management_network"):
        # vic-machine put the client and management roles on the public network by default.
        if config.get(network) is None:
            config[network] = {"port_group": config["public_network"]["port_group"], "ip": None, "gateway": None}
        elif config[network]["port_group"] is None:
            raise SpecError(network, "a static address needs the port group (%s) as well." % network)
    config.update(
        uuid=vch_uuid,
        datacenter=ctx.dc_name,
        compute=ctx.compute_path,
        bridge_network=spec["bridge_network"] or spec["name"],
        ops_user=spec["ops_user"] or ctx.session.username,
        tls=tls_config,
        product_version=PRODUCT_VERSION,
    )
    return config


def _plan_create(ctx, spec, tls, half_made):
    name = spec["name"]
    if ctx.compute is None:
        raise SpecError("compute", "required to create VCH %s: a cluster, host or resource pool path." % name)
    if spec["image_store"] is None:
        raise SpecError("image_store", "required to create VCH %s: 'datastore/path'." % name)
    taken = ctx.inventory.child_pool(ctx.parent_pool, name) if half_made is None else None
    if taken is not None:
        raise VicError("%s %s already exists and is not a VCH made by vic.containers; choose another name "
                       "or compute." % (_pool_kind(taken), ctx.path(taken)))
    session = ctx.session
    vapp = session.is_vcenter
    tls_plan = _tls(tls, name, spec["public_network"])
    pool_uuid = observe.vch_uuid(session, half_made.pool.moid) if half_made else "(assigned at creation)"
    config = _new_config(ctx, spec, tls_plan.record, pool_uuid)
    networks = _resolve_networks(ctx, config)
    image_ds = observe.split_store(config["image_store"])[0]
    ctx.inventory.datastore(image_ds, ctx.datacenter, "image_store")
    _check_stores(ctx, config["volume_stores"])
    for option in ("appliance_iso", "bootstrap_iso"):
        if config[option]:
            ctx.inventory.datastore(datastore.parse_ds_path(config[option])[0], ctx.datacenter, option)

    plan = Plan(before={} if half_made else None, after=observe.display(config))
    plan.warnings.extend(tls_plan.warnings)
    if tls_plan.generate:
        _add_generate_step(plan, ctx, tls, config)
    bridge = networks["bridge"]
    # What this VCH makes, recorded so that absent removes it and nothing else; a half-made VCH's trace
    # file says what the earlier run made (its port group now exists, its folders too).
    config["created"] = codec.new_created(config["bridge_network"] if bridge["create"] is not None else None)
    if half_made is None:
        parent_path = ctx.path(ctx.parent_pool)
        plan.add("create %s %s/%s" % ("vApp" if vapp else "resource pool", parent_path, name),
                 lambda: _create_pool(ctx, config, vapp))
    else:
        ctx.made["pool"] = half_made.pool.ref
        plan.warnings.append("Completing VCH %s, which an earlier run left half-made." % name)
        earlier = _read_trace(ctx, config) or {}
        config["created"]["port_group"] = config["created"]["port_group"] or earlier.get("port_group")
        config["created"]["folders"] = list(earlier.get("folders") or ())
    folders_text = ", ".join([observe.image_store_path(dict(config, uuid="<uuid>"))] +
                             [observe.volume_store_path(s) for s in config["volume_stores"].values()])
    plan.add("create datastore folders " + folders_text, lambda: _create_folders(ctx, config))
    # After the folders: the trace file that lists it is written before it is made.
    if bridge["create"] is not None:
        plan.add("create bridge port group %s on %s" % (config["bridge_network"], bridge["create"].get("name")),
                 lambda: _create_bridge(ctx, config, bridge))
    _add_tether_iso_step(plan, ctx, config, None)
    plan.add("create endpoint VM %s (%d vCPU, %d MB)" % (name, config["endpoint"]["cpus"],
                                                         config["endpoint"]["memory_mb"]),
             lambda: _create_endpoint(ctx, config, networks, tls_plan.material, vapp))
    vm_path = "%s/%s/%s" % (ctx.path(ctx.parent_pool), name, name)
    plan.add("power on endpoint VM %s" % name,
             lambda: actions.power_on(session, ctx.made["vm"], vm_path, ctx.timeout))
    return plan


def _add_tether_iso_step(plan, ctx, config, observed_version):
    """Upload the tether ISO as the image store's bootstrap.iso when the VCH does not have that version yet.

    The version goes into the VCH record by a later step of the same plan, so a failed
    upload leaves the record naming the ISO that is really there."""
    version = config.get("tether_iso_version")
    if not version or version == observed_version:
        return
    local = ctx.params["tether_iso"]

    def upload():
        # Read the folder at run time: a new VCH's uuid is known only once its pool exists.
        ds_name, folder = observe.image_store_folder(config)
        datastore.upload_file(ctx.session, ctx.dc_name, ds_name, folder + "/" + tether_iso.ISO_NAME, local)

    plan.add("upload tether ISO %s from %s to the image store as %s" % (version, local, tether_iso.ISO_NAME), upload)


def _create_bridge(ctx, config, bridge):
    if ctx.session.is_vcenter:
        bridge["dv"] = actions.create_dv_portgroup(ctx.session, bridge["create"], config["bridge_network"],
                                                   ctx.timeout, codec.BRIDGE_DESCRIPTION % config["name"])
    else:
        actions.create_host_portgroup(bridge["create"], config["bridge_network"])


def _create_pool(ctx, config, vapp):
    spec = actions.allocation_spec(config["cpu"], config["memory"])
    ref = actions.create_pool(ctx.parent_pool, config["name"], spec, vapp, ctx.datacenter.get("vmFolder"),
                              "%s/%s" % (ctx.path(ctx.parent_pool), config["name"]))
    ctx.made["pool"] = ref
    config["uuid"] = observe.vch_uuid(ctx.session, ref._moId)


def _create_folders(ctx, config):
    """The image store's folders, then the volume stores', then the trace file in the former (also when a
    volume store's folder fails): before the next step can fail, it says what absent is to remove."""
    image_ds, image_folder = observe.image_store_folder(config)
    _make_folders(ctx, config["created"], [(image_ds, image_folder + "/images")])
    try:
        _make_folders(ctx, config["created"],
                      [observe.volume_store_folder(s) for s in config["volume_stores"].values()])
    except VicError as exc:
        try:
            _write_trace(ctx, config)
        except VicError as trace_exc:
            raise VicError("%s Its trace could not be written either (%s): folders above it may be left."
                           % (exc, trace_exc)) from exc
        raise
    _write_trace(ctx, config)


def _make_folders(ctx, created, folders):
    """Make each (datastore, path) folder, recording in ``created`` the top-most folder made of each."""
    for ds, path in folders:
        top = actions.make_folder(ctx.session, ctx.dc_ref, ds, path)
        if top is not None and datastore.ds_path(ds, top) not in created["folders"]:
            created["folders"].append(datastore.ds_path(ds, top))


def _make_volume_folders(ctx, after, folders):
    """A new volume store's folders, recorded by the record update that follows, and in the trace file at
    once (what absent reads when the endpoint VM is gone, say destroyed by hand)."""
    _make_folders(ctx, after["created"], folders)
    _write_trace(ctx, after)


def _write_trace(ctx, config):
    ds_name, path = observe.trace_file(config)
    datastore.upload(ctx.session, ctx.dc_name, ds_name, path, codec.encode_created(config["created"]))


def _create_endpoint(ctx, config, networks, material, vapp):
    material = ctx.made.get("material", material)
    if material is not None:
        config["tls"] = _tls_record(config["tls"], material)
    key = codec.new_key()
    secrets = {"ops_password": ctx.params.get("ops_password") or ctx.session.password,
               "server_key": material.server_key_pem if material is not None else None}
    _upload_key(ctx.session, ctx.dc_name, config, key, secrets)
    image_ds = observe.image_store_folder(config)[0]
    extra = codec.encode(config, codec.seal(secrets, key, config["uuid"]), codec.key_id(key))
    devices = actions.nic_specs(_nic_backings(networks, config))
    if config["appliance_iso"]:
        devices.append(actions.cdrom_spec(config["appliance_iso"]))
    ctx.made["vm"] = actions.create_endpoint_vm(
        ctx.session, ctx.made["pool"], vapp, ctx.datacenter.get("vmFolder"), config, extra, devices, image_ds,
        "%s/%s/%s" % (ctx.path(ctx.parent_pool), config["name"], config["name"]), ctx.timeout)


def _nic_backings(networks, config):
    """One NIC per distinct port group among bridge, public, client and management."""
    seen, backings = set(), []
    for role in ("bridge", "public", "client", "management"):
        net = networks[role]
        name = config["bridge_network"] if role == "bridge" else config[role + "_network"]["port_group"]
        if name in seen:
            continue
        seen.add(name)
        dv = net.get("dv")
        backings.append((name, dv[0] if dv else None, dv[1] if dv else None))
    return backings


def _resolve_networks(ctx, config):
    """The port groups the endpoint VM attaches to; the bridge one may still need creating."""
    inv, dc = ctx.inventory, ctx.datacenter
    networks = {}
    for role in ("public", "client", "management"):
        net = inv.network(config[role + "_network"]["port_group"], dc, role + "_network")
        networks[role] = {"dv": actions.dv_backing(inv, net)}
    for i, item in enumerate(config["container_networks"]):
        inv.network(item["port_group"], dc, "container_networks[%d].port_group" % i)
    bridge_name = config["bridge_network"]
    others = {config[r + "_network"]["port_group"] for r in ("public", "client", "management")}
    others.update(n["port_group"] for n in config["container_networks"])
    if bridge_name in others:
        raise SpecError("bridge_network", "%r is also a public, client, management or container network; "
                                          "the bridge network must be a port group of its own." % bridge_name)
    existing = inv.network(bridge_name, dc, "bridge_network", required=False)
    bridge = {"dv": actions.dv_backing(inv, existing) if existing else None, "create": None}
    if existing is None:
        bridge["create"] = _bridge_home(ctx, bridge_name)
    networks["bridge"] = bridge
    return networks


def _bridge_home(ctx, name):
    """Where a missing bridge port group is made: the one distributed switch, or the ESXi host."""
    if not ctx.session.is_vcenter:
        hosts = ctx.inventory.hosts(ctx.compute)
        return hosts[0]
    switches = ctx.inventory.switches(ctx.datacenter)
    if len(switches) != 1:
        raise SpecError("bridge_network", "port group %r does not exist and datacenter %s has %s distributed "
                                          "switches to create it on; create it first."
                        % (name, ctx.dc_name, len(switches) or "no"))
    return switches[0]


def _check_stores(ctx, stores):
    for label, store in stores.items():
        ctx.inventory.datastore(observe.split_store(store)[0], ctx.datacenter, "volume_stores.%s" % label)


# --- TLS -------------------------------------------------------------------

class _TlsPlan:
    """What the TLS options come to: material in hand, the record, whether to generate, a warning."""

    def __init__(self, record, material=None, generate=False, warnings=()):
        self.record = record
        self.material = material
        self.generate = generate
        self.warnings = list(warnings)


def _endpoint_ips(public_network):
    address = (public_network or {}).get("ip")
    return [address.split("/")[0]] if address else []


def _tls(tls, name, public_network, observed_tls=None):
    """The TLS plan for the options; nothing is written here."""
    if not tls["enabled"]:
        return _TlsPlan({"enabled": False, "verify": False})
    ips = _endpoint_ips(public_network)
    cname = tls.get("cname") or (ips[0] if ips else name)
    try:
        if tls.get("server_cert"):
            material = certs.load_given(tls["server_cert"], tls["server_key"], tls.get("ca_cert"), tls.get("cname"))
        elif certs.plan_only(tls["cert_path"]):
            if observed_tls and observed_tls.get("server_cert"):
                return _TlsPlan(dict(observed_tls), warnings=[
                    "TLS files are missing from %s: VCH %s keeps its certificates; restore the files there "
                    "to use its client certificate." % (tls["cert_path"], name)])
            record = {"enabled": True, "verify": tls["verify"], "cname": cname, "server_cert": None,
                      "client_ca": None}
            return _TlsPlan(record, generate=True)
        else:
            material = _generate(tls, cname, ips)
    except certs.CertError as exc:
        raise SpecError("tls", str(exc))
    record = {"enabled": True, "verify": tls["verify"], "cname": material.cname or cname}
    return _TlsPlan(_tls_record(record, material), material=material, warnings=material.warnings)


def _add_generate_step(plan, ctx, tls, config):
    plan.add("generate TLS certificates in %s" % tls["cert_path"],
             lambda: ctx.made.update(material=_generate(tls, config["tls"]["cname"],
                                                        _endpoint_ips(config["public_network"]))))


def _tls_record(record, material):
    return dict(record, server_cert=material.server_cert_pem,
                client_ca=material.ca_cert_pem if record.get("verify") else None)


def _generate(tls, cname, ips):
    """Generate into cert_path, or reuse a complete set already there."""
    try:
        return certs.load_or_generate(tls["cert_path"], cname, ips=ips, organization=tls["organization"],
                                      key_size=tls["key_size"])
    except certs.CertError as exc:
        raise SpecError("tls", str(exc))


# --- update of an existing VCH ------------------------------------------------

def _plan_update(ctx, spec, tls, vch):
    observed = vch.config
    if ctx.compute is not None:
        spec = dict(spec, compute=ctx.compute_path)
    after = _merge(observed, spec)
    tls_plan = _TlsPlan(dict(observed.get("tls") or {}))
    if ctx.params.get("tls") is not None:
        # Suboptions left out keep what the VCH has, as every other option does.
        for key in ("enabled", "verify"):
            if ctx.params["tls"].get(key) is None and key in tls_plan.record:
                tls[key] = tls_plan.record[key]
        tls_plan = _tls(tls, vch.name, after["public_network"], observed_tls=observed.get("tls"))
    after["tls"] = tls_plan.record
    after["product_version"] = observed.get("product_version", PRODUCT_VERSION)
    _refuse_fixed(observed, after)
    plan = Plan(before=observe.display(observed), after=observe.display(after))
    plan.warnings.extend(tls_plan.warnings)
    _check_stores(ctx, {k: v for k, v in after["volume_stores"].items() if k not in observed["volume_stores"]})
    for i, item in enumerate(after["container_networks"]):
        ctx.inventory.network(item["port_group"], ctx.datacenter, "container_networks[%d].port_group" % i)

    if tls_plan.generate:
        _add_generate_step(plan, ctx, tls, after)
    cpu, memory = actions.observed_allocation(vch.pool)
    want_cpu, want_memory = after["cpu"], after["memory"]
    if (cpu, memory) != (want_cpu, want_memory):
        pool_path = ctx.path(vch.pool)
        plan.add("update CPU and memory allocation of %s" % pool_path,
                 lambda: actions.update_pool(vch.pool, actions.allocation_spec(want_cpu, want_memory),
                                             "updating " + pool_path))
    added = {k: v for k, v in after["volume_stores"].items() if k not in observed["volume_stores"]}
    if added:
        folders = [observe.volume_store_folder(s) for s in added.values()]
        after.setdefault("created", codec.new_created())
        plan.add("create volume store folders " + ", ".join(datastore.ds_path(*f) for f in folders),
                 lambda: _make_volume_folders(ctx, after, folders))
    _add_tether_iso_step(plan, ctx, after, observed.get("tether_iso_version"))
    secrets_change = _secrets_change(ctx, vch, tls_plan.material, after)
    changed_keys = sorted(k for k in set(after) | set(observed) if after.get(k) != observed.get(k))
    if secrets_change:
        changed_keys = sorted(set(changed_keys) | set(secrets_change))
    if changed_keys or tls_plan.generate:
        plan.add("update the VCH record on %s: %s" % (ctx.path(vch.vm), ", ".join(changed_keys or ["tls"])),
                 lambda: _update_record(ctx, vch, after))
    if vch.vm.get("runtime.powerState") != "poweredOn":
        plan.add("power on endpoint VM %s" % vch.name,
                 lambda: actions.power_on(ctx.session, vch.vm.ref, ctx.path(vch.vm), ctx.timeout))
    return plan


def _refuse_fixed(observed, after):
    refused = []
    for option in FIXED:
        before, now = _lookup(observed, option), _lookup(after, option)
        if before != now:
            refused.append("%s (%s -> %s)" % (option, _short(before), _short(now)))
    gone = sorted(set(observed["volume_stores"]) - set(after["volume_stores"]))
    refused.extend("volume_stores.%s (removed)" % label for label in gone)
    refused.extend("volume_stores.%s (%s -> %s)" % (label, observed["volume_stores"][label], path)
                   for label, path in after["volume_stores"].items()
                   if label in observed["volume_stores"] and observed["volume_stores"][label] != path)
    old_nets = {n["name"]: n for n in observed["container_networks"]}
    new_nets = {n["name"]: n for n in after["container_networks"]}
    refused.extend("container_networks.%s (%s)" % (name, "removed" if name not in new_nets else "changed")
                   for name in sorted(old_nets) if new_nets.get(name) != old_nets[name])
    if refused:
        raise RefusedChangeError(
            "VCH %s: these cannot change on an existing VCH (vic-machine configure could not change them "
            "either): %s. Delete and re-create the VCH to change them." % (observed["name"], "; ".join(refused)))


def _lookup(config, dotted):
    value = config
    for part in dotted.split("."):
        value = (value or {}).get(part)
    return value


def _short(value):
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _secrets_change(ctx, vch, material, after):
    """The record keys whose secrets change; reading them needs the key from the image store."""
    wanted = {}
    if ctx.params.get("ops_password") is not None:
        wanted["ops_password"] = ctx.params["ops_password"]
    if material is not None and after["tls"].get("server_cert") != (vch.config.get("tls") or {}).get("server_cert"):
        wanted["server_key"] = material.server_key_pem
    if not after["tls"].get("enabled") and (vch.config.get("tls") or {}).get("enabled"):
        wanted["server_key"] = None
    if not wanted:
        return []
    key, secrets, opened_by = _open_secrets(ctx.session, ctx.dc_name, vch, _key_materials(ctx, material))
    changed = sorted(n for n in wanted if secrets.get(n) != wanted[n])
    # Wrapped again when it did not open with the ops password the endpoint will hold: a key file an earlier
    # version wrote (the key in clear), or one the administrator's TLS files opened after a password change.
    stale = opened_by != (codec.BY_PASSWORD, dict(secrets, **wanted)["ops_password"])
    if changed or stale:
        ctx.made.update(key=key, new_secrets=dict(secrets, **wanted))
    return ["tls" if n == "server_key" else n for n in changed] + (["key_file"] if stale else [])


def _key_materials(ctx, material=None):
    """What a run may open the VCH key with: the ops password it is given, its own password (the ops
    password unless ops_user is set), the TLS server key in hand (the administrator's files)."""
    found = [(codec.BY_PASSWORD, ctx.params.get("ops_password")), (codec.BY_PASSWORD, ctx.session.password)]
    material = ctx.made.get("material", material)
    if material is not None:
        found.append((codec.BY_SERVER_KEY, material.server_key_pem))
    return found


def _upload_key(session, dc_name, config, key, secrets):
    """The key file, the key wrapped under the secrets it is opened with (docs/security.md)."""
    image_ds, folder = observe.image_store_folder(config)
    datastore.upload(session, dc_name, image_ds, folder + "/" + codec.KEY_FILE,
                     codec.wrap_key(key, config["uuid"], secrets["ops_password"], secrets.get("server_key")))


def _open_secrets(session, dc_name, vch, materials):
    """(key, secrets, the pair of ``materials`` that opened the key: None for a key file in clear) of a VCH: the
    key comes from its image store, never from beside the secrets, and opens with one of ``materials``."""
    image_ds, folder = observe.image_store_folder(vch.config)
    where = datastore.ds_path(image_ds, folder + "/" + codec.KEY_FILE)
    content = datastore.download(session, dc_name, image_ds, folder + "/" + codec.KEY_FILE)
    key, opened_by = codec.opening(content, vch.config["uuid"], materials) if content is not None else (None, None)
    if content is not None and key is None:
        raise VicError("VCH %s: its key file %s does not open with this ops password (nor with the TLS server key "
                       "in tls.cert_path, if any); its secrets cannot be read. After the ops password changed, "
                       "run vic_vch once with the previous password as `password`, or with tls.cert_path holding "
                       "the VCH's certificates, and the new one as `ops_password`." % (vch.name, where))
    if key is None or codec.key_id(key) != vch.key_id:
        raise VicError("VCH %s: its key file %s is missing or does not match the record; its secrets "
                       "(ops_password, TLS key) cannot be read." % (vch.name, where))
    return key, codec.unseal(vch.sealed, key, vch.config["uuid"]), opened_by


def _update_record(ctx, vch, after):
    material = ctx.made.get("material")
    if material is not None:
        # Certificates generated by this run: their key joins the secrets.
        after["tls"] = _tls_record(after["tls"], material)
        if "key" not in ctx.made:
            key, secrets = _open_secrets(ctx.session, ctx.dc_name, vch, _key_materials(ctx, material))[:2]
            ctx.made.update(key=key, new_secrets=secrets)
        ctx.made["new_secrets"] = dict(ctx.made["new_secrets"], server_key=material.server_key_pem)
    sealed, key_id = vch.sealed, vch.key_id
    if ctx.made.get("new_secrets") is not None:
        sealed = codec.seal(ctx.made["new_secrets"], ctx.made["key"], after["uuid"])
        key_id = codec.key_id(ctx.made["key"])
        # Wrapped again under the secrets as they now are (a new ops password; a key file of an earlier version).
        _upload_key(ctx.session, ctx.dc_name, after, ctx.made["key"], ctx.made["new_secrets"])
    actions.reconfigure_record(ctx.session, vch.vm, ctx.path(vch.vm), vch.extra_config,
                               codec.encode(after, sealed, key_id),
                               ctx.timeout)


def result(ctx, params, check_mode, plan):
    """The vch result: re-read after a change, else from the state already read."""
    if plan.changed and not check_mode:
        ctx.inventory = inventory_reader.read(ctx.session)
    vch = observe.find(ctx.inventory, params["name"], ctx.datacenter, ctx.parent_pool)
    if vch is None or vch.config is None:
        return None
    return _summary(vch, client_cert_path(params, vch.config))


def _summary(vch, cert_path=None):
    """A VCH as vic_vch and vic_vch_info return it, with the connection options of its Docker API
    (what module_defaults of group/vic.containers.docker take, as community.docker names them)."""
    summary = observe.summary(vch, cert_path=cert_path)
    summary["docker_connection"] = docker_connection.for_vch(summary, (vch.config or {}).get("tls"), cert_path)
    return summary


def client_cert_path(params, config):
    """The folder with the client certificates this run generated or reused, if any."""
    tls = vch_spec.tls_options(params)
    if not (config.get("tls") or {}).get("enabled") or tls.get("server_cert"):
        return None
    return tls["cert_path"] if os.path.isfile(os.path.join(tls["cert_path"], "cert.pem")) else None


def info(session, datacenter=None, compute=None, name=None):
    """Every VCH (under a datacenter or compute target, or by name), from one inventory read."""
    inv = inventory_reader.read(session)
    datacenters = [inv.datacenter(datacenter)] if datacenter or compute else inv.of_type("Datacenter")
    under = None
    if compute:
        target, pool = inv.compute(compute, datacenters[0])
        under = inv.path(pool if pool is not None else target)
    found = []
    for vch in observe.endpoints(inv):
        if vch.pool is None or not any(inventory_reader.same(inv.datacenter_of(vch.pool), dc) for dc in datacenters):
            continue
        if under is not None and not inv.path(vch.pool).startswith(under + "/"):
            continue
        if name is not None and vch.name != name:
            continue
        found.append(_summary(vch))
    return sorted(found, key=lambda v: (v["datacenter"] or "", v["name"]))


def load(session, name, datacenter=None):
    """(vch, key, secrets) of a complete VCH: all an endpoint needs to start, from vSphere alone."""
    inv = inventory_reader.read(session)
    dc = inv.datacenter(datacenter)
    vch = observe.find(inv, name, dc)
    if vch is None or not vch.complete:
        raise NotFound("No VCH %r in datacenter %s." % (name, dc.get("name")))
    # The endpoint holds the ops password (it logs in with it): the key opens with that alone.
    key, secrets = _open_secrets(session, dc.get("name"), vch, [(codec.BY_PASSWORD, session.password)])[:2]
    return vch, key, secrets
