# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a container VM boots with, read from its vSphere properties as ESXi would read its .vmx.

Its disks by SCSI unit (the backing files mapped to the local files vcsim keeps
for each datastore; a child disk's parent chain too), its NICs (port group and MAC),
its serial ports (file-backed: the log; URI-backed: the tether channel), its CD-ROM
(the tether ISO) and its boot spec (extraConfig, split across keys as the container
record is).
"""

import collections
import errno
import os

from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore
from ansible_collections.vic.containers.services.tether import protocol

try:
    from pyVmomi import vim
except ImportError:  # pragma: no cover - the emulator's requirements install it
    vim = None

# What the emulator reads of every VM: enough to pick the container VMs and boot them.
VM_PATHS = ("name", "config.managedBy", "config.extraConfig", "config.hardware.device", "runtime.powerState")
_FLAT_SUFFIX = "-flat.vmdk"


class MachineError(ValueError):
    """A container VM the emulator cannot boot; the sentence says why."""


class UnknownDatastore(MachineError):
    """A VM's file is on a datastore the emulator has not mapped (yet)."""


# One ethernet card of a VM: the port group it is on (a distributed port group's key, else the network's name)
# and the MAC vSphere gave it (None when it gave none).
Nic = collections.namedtuple("Nic", "port_group mac")


def nic_of(device):
    """The Nic of a VirtualEthernetCard."""
    key = getattr(getattr(device.backing, "port", None), "portgroupKey", None)
    return Nic(key or getattr(device.backing, "deviceName", None), device.macAddress or None)


class Machine:
    """One container VM as the emulator boots it (local paths only)."""

    def __init__(self, moid, name, boot_spec, disks, log_path, serial_uri, iso_path, parents=None, nics=()):
        self.moid = moid
        self.name = name
        self.boot_spec = boot_spec      # the boot spec's JSON text, as the endpoint wrote it
        self.disks = disks              # SCSI unit -> (local flat file, capacity in bytes)
        self.parents = parents or {}    # SCSI unit -> the local flat file of a child disk's parent
        self.log_path = log_path        # the file-backed serial port's file (output.log)
        self.serial_uri = serial_uri    # tcp://host:port the URI-backed serial port dials
        self.iso_path = iso_path        # the CD-ROM's ISO, local, or None
        self.nics = list(nics)          # [Nic] in the order of the VM's devices (the boot spec's NIC order)

    @property
    def container_id(self):
        return protocol.parse_boot_spec(self.boot_spec)["id"]


def is_container(props):
    """Whether a VM's properties say it is a container VM of some VCH, or the one-shot VM that formats its
    read-write disk template (``config.managedBy``): the VMs that boot the tether ISO."""
    managed = props.get("config.managedBy")
    return managed is not None and managed.type in (codec.MANAGED_BY_CONTAINER, codec.MANAGED_BY_FORMAT)


def read(moid, props, datastore_urls):
    """The Machine of a container VM's properties (``VM_PATHS``); ``datastore_urls``: name -> local dir."""
    name = props.get("name") or moid
    values = codec.as_dict(props.get("config.extraConfig"))
    boot = codec.join_value(values, protocol.BOOT_KEY)
    if not boot:
        raise MachineError("container VM %s has no boot spec (%s)" % (name, protocol.BOOT_KEY))
    try:
        protocol.parse_boot_spec(boot)
    except protocol.ProtocolError as exc:
        raise MachineError("container VM %s: %s" % (name, exc)) from None
    disks, parents, log_path, serial_uri, iso_path, nics = {}, {}, None, None, None, []
    for device in props.get("config.hardware.device") or ():
        backing = getattr(device, "backing", None)
        if isinstance(device, vim.vm.device.VirtualDisk):
            disks[device.unitNumber] = (flat_file(local_path(backing.fileName, datastore_urls)),
                                        int(device.capacityInKB) * 1024)
            parent = getattr(backing, "parent", None)
            if parent is not None and parent.fileName:
                parents[device.unitNumber] = flat_file(local_path(parent.fileName, datastore_urls))
        elif isinstance(device, vim.vm.device.VirtualEthernetCard):
            nics.append(nic_of(device))
        elif isinstance(device, vim.vm.device.VirtualSerialPort):
            if isinstance(backing, vim.vm.device.VirtualSerialPort.FileBackingInfo):
                log_path = local_path(backing.fileName, datastore_urls)
            elif isinstance(backing, vim.vm.device.VirtualSerialPort.URIBackingInfo):
                serial_uri = backing.serviceURI
        elif isinstance(device, vim.vm.device.VirtualCdrom):
            if isinstance(backing, vim.vm.device.VirtualCdrom.IsoBackingInfo) and backing.fileName:
                iso_path = local_path(backing.fileName, datastore_urls)
    if serial_uri is None or not serial_uri.startswith("tcp://"):
        raise MachineError("container VM %s has no serial port that dials tcp://" % name)
    if log_path is None:
        raise MachineError("container VM %s has no file-backed serial port for its log" % name)
    return Machine(moid, name, boot, disks, log_path, serial_uri, iso_path, parents, nics)


def local_path(ds_path, datastore_urls):
    """The local file of ``[datastore] path``: vcsim keeps each datastore in a local directory (its ``info.url``)."""
    name, path = datastore.parse_ds_path(ds_path)
    if name not in datastore_urls:
        raise UnknownDatastore("no local directory for datastore %s (of %s)" % (name, ds_path))
    return os.path.join(datastore_urls[name], path)


def flat_file(descriptor_path):
    """The raw extent of a flat VMDK: ``name-flat.vmdk`` when there is one (the endpoint writes layer and
    volume disks so), else the file itself (vcsim creates a new disk as one empty file)."""
    if descriptor_path.endswith(".vmdk"):
        flat = descriptor_path[:-len(".vmdk")] + _FLAT_SUFFIX
        if os.path.exists(flat):
            return flat
    return descriptor_path


def prepare_disks(vm):
    """Every disk of ``vm`` ready to boot: a child disk not written yet takes its parent's content (ESXi reads
    through a delta disk to its parent; here the child becomes a sparse copy at its first boot, the parent
    untouched), then each flat file is made as long as its capacity."""
    for unit, (path, capacity) in sorted(vm.disks.items()):
        parent = vm.parents.get(unit)
        if parent is not None and _unwritten(path):
            if not os.path.exists(parent):
                raise MachineError("container VM %s: the parent %s of its disk on SCSI unit %d is missing"
                                   % (vm.name, parent, unit))
            sparse_copy(parent, path)
        extend(path, capacity)


def _unwritten(path):
    try:
        return os.stat(path).st_size == 0
    except FileNotFoundError:
        return True


def sparse_copy(source, target):
    """``target`` made anew as a copy of ``source`` whose holes stay holes: only the data extents
    (SEEK_DATA/SEEK_HOLE) are copied, in the kernel (copy_file_range). Written beside and renamed over
    ``target``, so a copy cut short never passes for a disk."""
    partial = target + ".part"
    with open(source, "rb") as src, open(partial, "wb") as dst:
        size = os.fstat(src.fileno()).st_size
        offset = 0
        while offset < size:
            try:
                start = os.lseek(src.fileno(), offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno != errno.ENXIO:    # ENXIO: no data after offset
                    raise
                break
            offset = os.lseek(src.fileno(), start, os.SEEK_HOLE)
            while start < offset:
                copied = os.copy_file_range(src.fileno(), dst.fileno(), offset - start, start, start)
                if copied == 0:
                    break   # the source shrank under the copy
                start += copied
        dst.truncate(size)
    os.replace(partial, target)


def extend(path, capacity):
    """Make a disk's flat file as long as its capacity: ESXi's thin disk is a full-size device, and vcsim
    creates 0-byte disk files. Sparse, so it costs no space; never shortens a file."""
    with open(path, "ab") as disk:
        if os.fstat(disk.fileno()).st_size < capacity:
            disk.truncate(capacity)
