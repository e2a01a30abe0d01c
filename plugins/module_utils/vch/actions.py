# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The vSphere changes a VCH plan is made of; private to the collection.

Each function is one step of a plan and costs a known, small number of
round trips; tasks started together are waited for together.
"""

from __future__ import annotations

from ansible_collections.vic.containers.plugins.module_utils._errors import VSphereError
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore
from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc
from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks

try:
    from pyVmomi import vim, vmodl
except ImportError:  # pragma: no cover - reported by the module
    vim = vmodl = None

ENDPOINT_GUEST_ID = "other3xLinux64Guest"
_SHARE_LEVELS = ("low", "normal", "high")


def create_dv_portgroup(session, switch, name, timeout, description=None):
    """Add an early-binding port group to a distributed switch; returns (key, switch uuid)."""
    spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(name=name, type="earlyBinding", numPorts=128,
                                                          description=description)
    what = "creating port group %s on %s" % (name, switch.get("name"))
    task = tasks.call(what, switch.ref.AddDVPortgroup_Task, [spec])
    tasks.wait(session, {task: what}, timeout)
    # The key is assigned by vSphere: read it back with the switch's port groups.
    follow = pc.traversal("dvsPortgroups", "DistributedVirtualSwitch", "portgroup")
    for obj in pc.retrieve(session, [pc.object_spec(switch.ref, [follow], skip=True)],
                           {"DistributedVirtualPortgroup": ("name", "key")}):
        if obj.get("name") == name:
            return obj.get("key"), switch.get("uuid")
    raise VSphereError("vSphere created port group %s but does not list it on %s." % (name, switch.get("name")))


def create_host_portgroup(host, name, vswitch="vSwitch0"):
    """Add a standard port group on a standalone host's vSwitch (what vic-machine did on ESXi)."""
    spec = vim.host.PortGroup.Specification(name=name, vlanId=0, vswitchName=vswitch,
                                            policy=vim.host.NetworkPolicy())
    network_system = host.get("configManager.networkSystem")
    tasks.call("creating port group %s on %s" % (name, host.get("name")), network_system.AddPortGroup, spec)


def remove_host_portgroup(host, name):
    """Remove a standard port group from a standalone host (its VMs gone first); one already gone is fine."""
    network_system = host.get("configManager.networkSystem")
    try:
        network_system.RemovePortGroup(pgName=name)
    except vim.fault.NotFound:
        pass
    except vmodl.MethodFault as fault:
        raise VSphereError(tasks.fault_message(fault, "removing port group %s from %s" % (name, host.get("name"))))


def allocation_spec(cpu, memory):
    """A ResourceConfigSpec from the normalized cpu / memory options."""
    def alloc(values, limit_key, reservation_key):
        shares = values.get("shares") or "normal"
        level = shares if shares in _SHARE_LEVELS else "custom"
        return vim.ResourceAllocationInfo(
            limit=values[limit_key],
            reservation=values.get(reservation_key) or 0,
            expandableReservation=True,
            shares=vim.SharesInfo(level=level, shares=int(shares) if level == "custom" else 0))
    return vim.ResourceConfigSpec(cpuAllocation=alloc(cpu, "limit_mhz", "reservation_mhz"),
                                  memoryAllocation=alloc(memory, "limit_mb", "reservation_mb"))


def observed_allocation(pool):
    """The cpu / memory options as the pool has them, to compare with the desired ones."""
    config = pool.get("config")
    if config is None:
        return None, None

    def values(info, limit_key, reservation_key):
        shares = info.shares.level if info.shares.level != "custom" else str(info.shares.shares)
        return {limit_key: info.limit if info.limit is not None and info.limit >= 0 else -1,
                reservation_key: info.reservation or 0, "shares": shares}
    return (values(config.cpuAllocation, "limit_mhz", "reservation_mhz"),
            values(config.memoryAllocation, "limit_mb", "reservation_mb"))


def create_pool(parent, name, spec, vapp, vm_folder, path):
    """A vApp (vCenter) or a resource pool (ESXi) at inventory ``path``; returns its reference."""
    what = "creating %s %s" % ("vApp" if vapp else "resource pool", path)
    if vapp:
        config = vim.vApp.VAppConfigSpec(annotation=codec.POOL_ANNOTATION % name)
        return tasks.call(what, parent.ref.CreateVApp, name=name, resSpec=spec, configSpec=config,
                          vmFolder=vm_folder)
    return tasks.call(what, parent.ref.CreateResourcePool, name=name, spec=spec)


def update_pool(pool, spec, what):
    tasks.call(what, pool.ref.UpdateConfig, name=None, config=spec)


def make_folder(session, datacenter_ref, ds, path):
    """Create ``[ds] path`` with its parents; returns the top-most folder it made (None: it existed).

    Levels are tried from the top, each on its own, until one is new: the ones
    above it existed, every one below it is new too (made in one more call).
    """
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        level = "/".join(parts[:depth])
        if _make_directory(session, datacenter_ref, ds, level, parents=False):
            if depth < len(parts):
                _make_directory(session, datacenter_ref, ds, path, parents=True)
            return level
    return None


def _make_directory(session, datacenter_ref, ds, path, parents):
    """Whether it made ``[ds] path`` (False: it existed)."""
    try:
        session.content.fileManager.MakeDirectory(name=datastore.ds_path(ds, path), datacenter=datacenter_ref,
                                                  createParentDirectories=parents)
        return True
    except vim.fault.FileAlreadyExists:
        return False
    except vmodl.MethodFault as fault:
        raise VSphereError(tasks.fault_message(fault, "creating folder %s" % datastore.ds_path(ds, path)))


def list_trees(session, datastores, folders, timeout):
    """{(ds, path): {folder: [entry names]}} of each folder and every folder under it ({} when it is gone).

    One read of the datastores' browsers, then one search task per folder, waited for together.
    """
    if not folders:
        return {}
    refs = [datastores[ds].ref for ds in sorted({ds for ds, unused in folders})]
    browsers = {obj.moid: obj.get("browser") for obj in pc.retrieve_objects(session, refs, ["browser"])}
    spec = vim.host.DatastoreBrowser.SearchSpec(matchPattern=["*"])
    started = {}
    for ds, path in folders:
        what = "listing " + datastore.ds_path(ds, path)
        browser = browsers[datastores[ds].moid]
        started[tasks.call(what, browser.SearchDatastoreSubFolders_Task, datastorePath=datastore.ds_path(ds, path),
                           searchSpec=spec)] = what
    trees = {}
    for folder, results in zip(folders, tasks.wait(session, started, timeout, ignore=("FileNotFound",))):
        trees[folder] = {datastore.parse_ds_path(r.folderPath)[1].strip("/"): [f.path for f in r.file or ()]
                         for r in results or ()}
    return trees


def dv_backing(inventory, network):
    """(port group key, switch uuid) of a distributed port group, None for a standard network."""
    if network.type != "DistributedVirtualPortgroup":
        return None
    switch = inventory.get(network.get("config.distributedVirtualSwitch"))
    return (network.get("key"), switch.get("uuid")) if switch else None


def nic_specs(networks):
    """vmxnet3 NICs, one per distinct network, as (backing kind, network object or name) tuples."""
    changes = []
    for i, (network, dv_key, switch_uuid) in enumerate(networks):
        if dv_key is not None:
            backing = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
                port=vim.dvs.PortConnection(portgroupKey=dv_key, switchUuid=switch_uuid))
        else:
            backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                deviceName=network, network=None)
        nic = vim.vm.device.VirtualVmxnet3(key=-100 - i, backing=backing, addressType="generated",
                                           connectable=vim.vm.device.VirtualDevice.ConnectInfo(
                                               startConnected=True, allowGuestControl=True))
        changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=nic))
    return changes


def cdrom_spec(iso):
    device = vim.vm.device.VirtualCdrom(
        key=-200, controllerKey=200, unitNumber=0,
        backing=vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=iso),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True))
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=device)


def option_values(values):
    return [vim.option.OptionValue(key=k, value=v) for k, v in sorted(values.items())]


def create_endpoint_vm(session, pool, vapp, vm_folder, config, extra, devices, vm_datastore, path, timeout):
    """Create the endpoint VM with its whole record; the VCH is complete when it exists."""
    name = config["name"]
    spec = vim.vm.ConfigSpec(
        name=name, guestId=ENDPOINT_GUEST_ID,
        numCPUs=config["endpoint"]["cpus"], memoryMB=config["endpoint"]["memory_mb"],
        files=vim.vm.FileInfo(vmPathName=datastore.ds_path(vm_datastore, "%s/%s.vmx" % (name, name))),
        managedBy=vim.ext.ManagedByInfo(extensionKey=codec.MANAGED_BY_EXTENSION, type=codec.MANAGED_BY_ENDPOINT),
        annotation="vic.containers VCH endpoint",
        extraConfig=option_values(extra), deviceChange=devices)
    what = "creating endpoint VM %s" % path
    if vapp:
        task = tasks.call(what, pool.CreateChildVM_Task, config=spec)
    else:
        task = tasks.call(what, vm_folder.CreateVM_Task, config=spec, pool=pool)
    return tasks.wait(session, {task: what}, timeout)[0]


def reconfigure_record(session, vm, path, old_values, new_values, timeout):
    """Rewrite the VCH record on the endpoint VM (blanking keys it no longer has)."""
    changes = {k: v for k, v in new_values.items() if old_values.get(k) != v}
    changes.update({k: "" for k in codec.removed_keys(old_values, new_values)})
    what = "updating the VCH record on %s" % path
    task = tasks.call(what, vm.ref.ReconfigVM_Task, vim.vm.ConfigSpec(extraConfig=option_values(changes)))
    tasks.wait(session, {task: what}, timeout)


def power_on(session, vm_ref, path, timeout):
    what = "powering on %s" % path
    tasks.wait(session, {tasks.call(what, vm_ref.PowerOnVM_Task): what}, timeout)


def power_off(session, vms, path_of, timeout):
    """Power off the VMs that are on, their tasks waited for together."""
    running = {tasks.call("powering off " + path_of(vm), vm.ref.PowerOffVM_Task): "powering off " + path_of(vm)
               for vm in vms if vm.get("runtime.powerState") == "poweredOn"}
    tasks.wait(session, running, timeout, ignore=("InvalidPowerState",))


def destroy_vms(session, vms, path_of, timeout):
    """Destroy VMs (powered off), their tasks waited for together; one already gone is fine."""
    destroying = {tasks.call("destroying " + path_of(vm), vm.ref.Destroy_Task): "destroying " + path_of(vm)
                  for vm in vms}
    tasks.wait(session, destroying, timeout, ignore=("ManagedObjectNotFound",))


def remove_nics(session, vm, path, timeout):
    """Remove a VM's network cards (what vic-machine did before removing the bridge port group they use)."""
    devices = pc.retrieve_objects(session, [vm.ref], ["config.hardware.device"])[0].get("config.hardware.device")
    nics = [vim.vm.device.VirtualDeviceSpec(operation="remove", device=d) for d in devices or ()
            if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    if nics:
        what = "removing the network cards of " + path
        task = tasks.call(what, vm.ref.ReconfigVM_Task, vim.vm.ConfigSpec(deviceChange=nics))
        tasks.wait(session, {task: what}, timeout)


def destroy_pool(session, pool, path, timeout):
    what = "destroying " + path
    tasks.wait(session, {tasks.call(what, pool.ref.Destroy_Task): what}, timeout)


def destroy_port_groups(session, port_groups, path_of, timeout):
    """Destroy distributed port groups (their VMs gone first); one already gone is fine."""
    started = {tasks.call("destroying " + path_of(pg), pg.ref.Destroy_Task): "destroying " + path_of(pg)
               for pg in port_groups}
    tasks.wait(session, started, timeout, ignore=("ManagedObjectNotFound",))


def delete_folders(session, datacenter_ref, folders, timeout):
    """Delete (datastore, path) folders; one already gone is fine."""
    started = {datastore.start_delete(session, datacenter_ref, ds, path): datastore.ds_path(ds, path)
               for ds, path in folders}
    tasks.wait(session, started, timeout, ignore=("FileNotFound",))
