# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A container's VM: its devices and the vSphere calls that make, power, change and destroy it.

A container VM (display name ``<name>-<short id>``, folder ``[image ds] <name>-<short id>/``)
boots the tether ISO from its CD-ROM, has its image's layer disks attached
read-only (``independent_nonpersistent``: one copy per image store, shared by
every container), its own thin read-write disk (a delta disk whose parent is the VCH's formatted
template, storage/rw_template.py), one disk per volume
(``independent_persistent``), on SCSI units ``disk_units`` gives, one vmxnet3 NIC
per network, a file-backed serial port the tether writes the process's output to
(COM1) and a serial port that dials the endpoint's tether channel (COM2).
"""

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput
from ansible_collections.vic.containers.plugins.module_utils.vch import actions
from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore
from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc
from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks
from ansible_collections.vic.containers.services.portlayer.containers.logs import LOG_FILE

try:
    from pyVmomi import vim
except ImportError:  # pragma: no cover - the endpoint's requirements install it
    vim = None

GUEST_ID = "other3xLinux64Guest"
SCSI_KEY = -300
MAX_DISKS = 15  # SCSI units 0-15 but for the controller's own 7
_TIMEOUT = 300


def bootstrap_iso(state):
    """The tether ISO container VMs boot: the VCH's ``bootstrap_iso`` if set, else the one in its image store."""
    return state.config.get("bootstrap_iso") or datastore.ds_path(state.image_store[0],
                                                                  state.image_store[1] + "/bootstrap.iso")


def managed_by(kind=None):
    """How the endpoint tells its container VMs (or, ``kind`` MANAGED_BY_FORMAT, its template's format VM)
    from anything else in the pool."""
    return vim.ext.ManagedByInfo(extensionKey=codec.MANAGED_BY_EXTENSION, type=kind or codec.MANAGED_BY_CONTAINER)


def in_folder(folder, file_name):
    """``[ds] <folder path>/<file_name>``: a file in the VM's folder."""
    datastore_name, path = datastore.parse_ds_path(folder)
    return datastore.ds_path(datastore_name, "%s/%s" % (path, file_name))


def _disk(key, unit, file_name, mode, capacity_kb, create=False, parent=None):
    backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=file_name, diskMode=mode, thinProvisioned=True)
    if parent:
        # A delta disk: it holds only what the guest writes; reads of the rest go to the parent, never written.
        backing.parent = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=parent, diskMode=mode)
    disk = vim.vm.device.VirtualDisk(key=key, controllerKey=SCSI_KEY, unitNumber=unit,
                                     capacityInKB=capacity_kb, backing=backing)
    spec = vim.vm.device.VirtualDeviceSpec(operation="add", device=disk)
    if create:
        spec.fileOperation = "create"
    return spec


def disk_units(layers, volumes):
    """``(layer units base first, the read-write disk's unit, volume units)`` of a container VM with
    ``layers`` image layers and ``volumes`` volumes: the one place the SCSI unit numbers are decided,
    read by the device specs and by the boot spec the tether finds its disks with. 7 is the controller's own."""
    units = [unit for unit in range(MAX_DISKS + 1) if unit != 7][:layers + 1 + volumes]
    return units[:layers], units[layers], units[layers + 1:]


def check_disks(layers, volumes):
    """Refuse, before anything is made, a container whose disks would not fit on its controller."""
    needed = layers + 1 + volumes
    if needed > MAX_DISKS:
        raise InvalidInput("a container VM takes at most %d disks on its controller: this one would need %d "
                           "(%d image layers, its own disk, %d volumes)" % (MAX_DISKS, needed, layers, volumes))


def _serial_port(key, backing):
    connectable = vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=False)
    port = vim.vm.device.VirtualSerialPort(key=key, yieldOnPoll=True, backing=backing, connectable=connectable)
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=port)


def device_specs(folder, layers, capacity_kb, mounts, backings, iso_path, serial_uri, rw_parent=None):
    """Every device of a new container VM (see the module docstring); its read-write disk a child of
    ``rw_parent`` (the VCH's formatted template disk) when given, else blank."""
    layer_units, rw_unit, volume_units = disk_units(len(layers), len(mounts))
    disks = []
    for i, (layer, unit) in enumerate(zip(layers, layer_units)):
        disks.append(_disk(-400 - i, unit, layer["disk"], "independent_nonpersistent", layer["capacity_kb"]))
    # In the VM's folder, named after it, as VIC named a container's delta disk (and as vSphere names a new
    # disk given the datastore only).
    rw_name = datastore.parse_ds_path(folder)[1].rsplit("/", 1)[-1] + ".vmdk"
    disks.append(_disk(-390, rw_unit, in_folder(folder, rw_name), "persistent", capacity_kb, create=True,
                       parent=rw_parent))
    for i, (mount, unit) in enumerate(zip(mounts, volume_units)):
        disks.append(_disk(-500 - i, unit, mount["disk"], "independent_persistent", mount["capacity_kb"]))
    return _vm_devices(folder, disks, backings, iso_path, serial_uri)


def format_vm_devices(folder, disk_path, capacity_kb, iso_path, serial_uri):
    """The devices of the one-shot VM that formats the template disk (made at ``disk_path``, unit 0): as a
    container VM's, so it boots the same way wherever container VMs boot."""
    return _vm_devices(folder, [_disk(-390, 0, disk_path, "persistent", capacity_kb, create=True)], [], iso_path,
                       serial_uri)


def _vm_devices(folder, disks, backings, iso_path, serial_uri):
    scsi = vim.vm.device.ParaVirtualSCSIController(key=SCSI_KEY, busNumber=0, sharedBus="noSharing")
    specs = [vim.vm.device.VirtualDeviceSpec(operation="add", device=scsi)] + disks
    specs.extend(actions.nic_specs(backings))
    if iso_path:
        specs.append(actions.cdrom_spec(iso_path))
    # The order is the guest's: the log port is COM1 (ttyS0), the tether channel COM2 (ttyS1).
    # The tether writes the process's output to the log port (Docker's json-file lines), so ``docker logs``
    # reads the datastore and works with the endpoint restarted or the container long gone.
    specs.append(_serial_port(-600, vim.vm.device.VirtualSerialPort.FileBackingInfo(
        fileName=in_folder(folder, LOG_FILE))))
    specs.append(_serial_port(-601, vim.vm.device.VirtualSerialPort.URIBackingInfo(direction="client",
                                                                                   serviceURI=serial_uri)))
    return specs


class VmOps:
    """The vSphere calls of container operations (blocking; run through ``state.call``)."""

    def __init__(self, state):
        self.state = state

    def _wait(self, task, what, ignore=()):
        return tasks.wait(self.state.session, {task: what}, _TIMEOUT, ignore=ignore)[0]

    def read(self, ref, paths):
        """Fresh ``paths`` of the VM (one PropertyCollector read, not the cache); {} when it is gone."""
        found = pc.retrieve_objects(self.state.session, [ref], paths)
        return found[0] if found else {}

    def devices(self, ref):
        return self.read(ref, ("config.hardware.device",)).get("config.hardware.device") or ()

    def create(self, name, bios, cpus, memory_mb, folder, devices, extra, kind=None):
        """Make the VM in the VCH's vApp (or pool); returns its reference. ``kind``: see ``managed_by``."""
        state = self.state
        spec = vim.vm.ConfigSpec(
            name=name, guestId=GUEST_ID, numCPUs=cpus, memoryMB=memory_mb, uuid=bios,
            files=vim.vm.FileInfo(vmPathName=in_folder(folder, name + ".vmx")), managedBy=managed_by(kind),
            annotation="vic.containers %s of VCH %s" % ("template format VM" if kind else "container", state.name),
            extraConfig=actions.option_values(extra), deviceChange=devices)
        what = "creating container VM %s in VCH %s" % (name, state.name)
        if state.is_vapp:
            task = tasks.call(what, state.pool_ref.CreateChildVM_Task, config=spec)
        else:
            task = tasks.call(what, state.vm_folder_ref.CreateVM_Task, config=spec, pool=state.pool_ref)
        return self._wait(task, what)

    def power_on(self, ref, name):
        what = "powering on container VM %s" % name
        self._wait(tasks.call(what, ref.PowerOnVM_Task), what, ignore=("InvalidPowerState",))

    def power_off(self, ref, name):
        what = "powering off container VM %s" % name
        self._wait(tasks.call(what, ref.PowerOffVM_Task), what, ignore=("InvalidPowerState",))

    def reconfigure(self, ref, name, values=None, devices=None):
        what = "updating container VM %s" % name
        spec = vim.vm.ConfigSpec(extraConfig=actions.option_values(values or {}), deviceChange=devices or [])
        self._wait(tasks.call(what, ref.ReconfigVM_Task, spec), what)

    def rename(self, ref, old, new):
        what = "renaming container VM %s to %s" % (old, new)
        self._wait(tasks.call(what, ref.Rename_Task, new), what)

    def detach_shared(self, ref, name, folder, values):
        """Detach the disks outside the VM's folder (image layers, volumes), writing ``values`` with them;
        False, writing nothing, when there are none.

        Destroying a VM deletes every disk attached to it, independent ones too:
        the shared layers and the volumes must not go with it.
        """
        shared = [vim.vm.device.VirtualDeviceSpec(operation="remove", device=d) for d in self.devices(ref)
                  if isinstance(d, vim.vm.device.VirtualDisk) and not d.backing.fileName.startswith(folder + "/")]
        if not shared:
            return False
        self.reconfigure(ref, name, values, devices=shared)
        return True

    def destroy(self, ref, name):
        what = "destroying container VM %s" % name
        self._wait(tasks.call(what, ref.Destroy_Task), what, ignore=("ManagedObjectNotFound",))
