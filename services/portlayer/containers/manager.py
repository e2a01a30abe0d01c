# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The port layer's containers: each container is a VM in the VCH pool.

A container VM (display name ``<name>-<short id>``, folder ``[image ds] <id>/``)
boots the tether ISO from its CD-ROM, has its image's layer disks attached
read-only (``independent_nonpersistent``: one copy per image store, shared by
every container), its own thin read-write disk, one disk per volume
(``independent_persistent``), one vmxnet3 NIC per network, and a serial port
that dials the endpoint's tether channel. Its whole configuration is JSON in
its extraConfig (``guestinfo.vice./container``); how its process ended is a
second key (``guestinfo.vice..exit``) so recording an exit never rewrites the
configuration. The live cache holds every container VM, so reads cost nothing.

Round trips: create = CreateVM + task polls (plus one disk per new volume);
start = PowerOn + polls; stop / kill = PowerOff + Reconfig (exit record) +
polls; rm = a device read + Reconfig (detach shared disks) + Destroy + polls; rename = Rename + Reconfig + polls.
"""

import asyncio
import datetime
import json
import logging
import secrets as random
import uuid

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput, Conflict, NotFound
from ansible_collections.vic.containers.plugins.module_utils.vch import actions
from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc
from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks

try:
    from pyVmomi import vim
except ImportError:  # pragma: no cover - the endpoint's requirements install it
    vim = None

LOG = logging.getLogger("vic.endpoint.containers")
RECORD_KEY = codec.PREFIX + "container"
EXIT_KEY = "guestinfo.vice..exit"
GUEST_ID = "other3xLinux64Guest"
LOG_FILE = "output.log"
SCSI_KEY = -300
MAX_DISKS = 15  # SCSI units 0-15 but for the controller's own 7
_TIMEOUT = 300


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment):
    """RFC 3339 with nanosecond-style precision as Docker prints it; the zero time for None."""
    if moment is None:
        return "0001-01-01T00:00:00Z"
    if isinstance(moment, str):
        return moment
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text):
    if not text or text.startswith("0001-"):
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


class Container:
    """One container as its VM shows it (a read-only view built from the live cache)."""

    def __init__(self, moid, props, record, exit_state):
        self.moid = moid
        self.ref = props.get("ref")
        self.props = props
        self.record = record
        self.exit = exit_state or {}
        self.cache = {}  # views built from this state of the VM (see api_containers.row)

    @property
    def id(self):
        return self.record["id"]

    @property
    def name(self):
        return self.record["name"]

    @property
    def config(self):
        return self.record["config"]

    @property
    def host_config(self):
        return self.record["host_config"]

    @property
    def image_id(self):
        return self.record["image"]["id"]

    @property
    def running(self):
        return self.props.get("runtime.powerState") == "poweredOn"

    @property
    def started_at(self):
        boot = self.props.get("summary.runtime.bootTime")
        return boot if self.running and boot is not None else parse_time(self.exit.get("started_at"))

    @property
    def finished_at(self):
        return None if self.running else parse_time(self.exit.get("finished_at"))

    @property
    def exit_code(self):
        return 0 if self.running else int(self.exit.get("code", 0))

    @property
    def status(self):
        """Docker's State.Status."""
        if self.running:
            return "running"
        return "exited" if self.exit.get("finished_at") else "created"

    def volume_names(self):
        return [m["name"] for m in self.record.get("mounts", ())]


def decode(moid, props):
    """The Container on a VM of the pool, or None when the VM is not a container of ours."""
    managed = props.get("config.managedBy")
    if managed is None or managed.type != codec.MANAGED_BY_CONTAINER:
        return None
    values = codec.as_dict(props.get("config.extraConfig"))
    text = codec.join_value(values, RECORD_KEY)
    if not text:
        return None
    try:
        record = json.loads(text)
        exit_state = json.loads(values.get(EXIT_KEY) or "{}")
    except ValueError:
        return None
    return Container(moid, props, record, exit_state)


def new_id():
    return random.token_hex(32)


def vm_folder(datastore, name):
    return "[%s] %s" % (datastore, name)


def vm_name(name, container_id):
    return "%s-%s" % (name, container_id[:12])


def bios_uuid(vch_uuid, container_id):
    """As VIC: derived from the VCH and the container, so the VM is found again by id."""
    return str(uuid.uuid5(uuid.UUID(vch_uuid), container_id))


def record_values(record):
    return codec.split_value(RECORD_KEY, json.dumps(record, sort_keys=True, separators=(",", ":")))


def exit_value(started_at, finished_at, code):
    return json.dumps({"started_at": iso(started_at), "finished_at": iso(finished_at), "code": code},
                      sort_keys=True)


def _disk(key, unit, file_name, mode, capacity_kb, create=False):
    backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=file_name, diskMode=mode, thinProvisioned=True)
    disk = vim.vm.device.VirtualDisk(key=key, controllerKey=SCSI_KEY, unitNumber=unit,
                                     capacityInKB=capacity_kb, backing=backing)
    spec = vim.vm.device.VirtualDeviceSpec(operation="add", device=disk)
    if create:
        spec.fileOperation = "create"
    return spec


def _units():
    """SCSI unit numbers; 7 is the controller's own."""
    unit = 0
    while True:
        if unit != 7:
            yield unit
        unit += 1


def check_disks(layers, volumes):
    """Refuse, before anything is made, a container whose disks would not fit on its controller."""
    needed = layers + 1 + volumes
    if needed > MAX_DISKS:
        raise InvalidInput("a container VM takes at most %d disks on its controller: this one would need %d "
                         "(%d image layers, its own disk, %d volumes)" % (MAX_DISKS, needed, layers, volumes))


def device_specs(folder, layers, capacity_kb, mounts, backings, iso_path, serial_uri):
    """Every device of a new container VM (see the module docstring)."""
    scsi = vim.vm.device.ParaVirtualSCSIController(key=SCSI_KEY, busNumber=0, sharedBus="noSharing")
    specs = [vim.vm.device.VirtualDeviceSpec(operation="add", device=scsi)]
    units = _units()
    for i, layer in enumerate(layers):
        specs.append(_disk(-400 - i, next(units), layer["disk"], "independent_nonpersistent", layer["capacity_kb"]))
    # Datastore only: vSphere names the new disk after the VM, in the VM's folder (named as the VM too).
    specs.append(_disk(-390, next(units), folder.split("]")[0] + "]", "persistent", capacity_kb, create=True))
    for i, mount in enumerate(mounts):
        specs.append(_disk(-500 - i, next(units), mount["disk"], "independent_persistent", mount["capacity_kb"]))
    specs.extend(actions.nic_specs(backings))
    if iso_path:
        specs.append(actions.cdrom_spec(iso_path))
    serial = vim.vm.device.VirtualSerialPort(
        key=-600, yieldOnPoll=True,
        backing=vim.vm.device.VirtualSerialPort.URIBackingInfo(direction="client", serviceURI=serial_uri),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=False))
    specs.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=serial))
    # The tether writes the process's output here (Docker's json-file lines), so ``docker logs`` reads
    # the datastore and works with the endpoint restarted or the container long gone.
    log = vim.vm.device.VirtualSerialPort(
        key=-601, yieldOnPoll=True,
        backing=vim.vm.device.VirtualSerialPort.FileBackingInfo(fileName="%s/%s" % (folder, LOG_FILE)),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=False))
    specs.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=log))
    return specs


class VmOps:
    """The vSphere calls of container operations (blocking; run through ``state.call``)."""

    def __init__(self, state):
        self.state = state

    def _wait(self, task, what, ignore=()):
        return tasks.wait(self.state.session, {task: what}, _TIMEOUT, ignore=ignore)[0]

    def create(self, name, bios, cpus, memory_mb, folder, devices, extra):
        state = self.state
        spec = vim.vm.ConfigSpec(
            name=name, guestId=GUEST_ID, numCPUs=cpus, memoryMB=memory_mb, uuid=bios,
            files=vim.vm.FileInfo(vmPathName="%s/%s.vmx" % (folder, name)),
            managedBy=vim.ext.ManagedByInfo(extensionKey=codec.MANAGED_BY_EXTENSION,
                                            type=codec.MANAGED_BY_CONTAINER),
            annotation="vic.containers container of VCH %s" % state.name,
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

    def destroy(self, ref, name, folder):
        """Detach the disks outside the VM's folder (image layers, volumes), then destroy the VM.

        Destroying a VM deletes every disk attached to it, independent ones too:
        the shared layers and the volumes must not go with it.
        """
        found = pc.retrieve_objects(self.state.session, [ref], ("config.hardware.device",))
        devices = found[0].get("config.hardware.device") if found else ()
        shared = [vim.vm.device.VirtualDeviceSpec(operation="remove", device=d) for d in devices or ()
                  if isinstance(d, vim.vm.device.VirtualDisk) and not d.backing.fileName.startswith(folder + "/")]
        if shared:
            self.reconfigure(ref, name, devices=shared)
        what = "destroying container VM %s" % name
        self._wait(tasks.call(what, ref.Destroy_Task), what, ignore=("ManagedObjectNotFound",))


class Containers:
    """Every container of the VCH, decoded once per VM change from the live cache."""

    def __init__(self, state):
        self.state = state
        self.vm = VmOps(state)
        self._decoded = {}
        self._names = {}
        self._waiters = {}
        self._halting = set()
        self._locks = {}
        self.on_ended = []  # coroutine functions of a container, after each recorded end of a run
        state.cache.listen(self._changed)

    def _changed(self, moid, before, after):
        old = self._decoded.pop(moid, None)
        if old is not None:
            self._names.pop(old.name, None)
        container = decode(moid, after) if after is not None else None
        if container is not None:
            self._decoded[moid] = container
            self._names[container.name] = container
        was_running = bool(before and before.get("runtime.powerState") == "poweredOn")
        running = bool(after and after.get("runtime.powerState") == "poweredOn")
        # Waiters learn of an end once it is recorded (its exit code known), or when the container goes.
        ended = container is None or container.exit.get("finished_at") != old.exit.get("finished_at") \
            if old is not None else False
        if ended and not (container is not None and container.running):
            for future in self._waiters.pop(old.id, ()):
                if not future.done():
                    future.set_result(container)
        if container is not None and was_running and not running and container.id not in self._halting:
            # Powered off by someone else (vCenter, the guest halting): record how it ended, once.
            code = self.state.exit_codes.pop(container.id, 137)
            LOG.info("container %s: its VM was powered off outside the endpoint; exit %s", container.id[:12], code)
            self._halting.add(container.id)
            self.state.spawn(self._record_outside_exit(container, code, before.get("summary.runtime.bootTime")))

    async def _record_outside_exit(self, container, code, started):
        try:
            await self.record_exit(container, code, started)
        finally:
            self._halting.discard(container.id)

    def ending(self, container_id):
        """Whether the container's VM is off but its exit is still being recorded."""
        return container_id in self._halting

    def _lock(self, container_id):
        # Power changes of one container happen one at a time: a tether's exit report can
        # arrive while the start that let the process run is still waiting for its task.
        return self._locks.setdefault(container_id, asyncio.Lock())

    async def power_on(self, container):
        """Start a run; False when the container was running already."""
        async with self._lock(container.id):
            if self.find(container.id).running:
                return False
            self.state.exit_codes.pop(container.id, None)  # a code left from an earlier run
            await self.state.call(self.vm.power_on, container.ref, container.name)
            self.state.cache.put(container.ref, {"runtime.powerState": "poweredOn", "summary.runtime.bootTime": now()})
            return True

    async def halt(self, container, code=None):
        """End the run: power the VM off and record the exit (``code``, the tether's report, else 137: killed).

        Nothing happens when the run has ended already: whoever ended it recorded it.
        """
        async with self._lock(container.id):
            current = self.find(container.id)
            if not current.running:
                return False
            self._halting.add(container.id)
            try:
                started = current.started_at
                await self.state.call(self.vm.power_off, current.ref, current.name)
                self.state.cache.put(current.ref, {"runtime.powerState": "poweredOff", "summary.runtime.bootTime": None})
                reported = self.state.exit_codes.pop(container.id, None)
                if code is None:
                    code = reported if reported is not None else 137
                await self.record_exit(self.find(container.id), code, started)
            finally:
                self._halting.discard(container.id)
            return True

    def all(self):
        return list(self._decoded.values())

    def find(self, ref):
        """By name, full id or unique id prefix, as the docker CLI looks containers up."""
        ref = (ref or "").lstrip("/")
        found = self._names.get(ref)
        if found is not None:
            return found
        matches = [c for c in self._decoded.values() if c.id.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise NotFound("Multiple IDs found with provided prefix: %s" % ref)
        raise NotFound("No such container: %s" % ref)

    def by_name(self, name):
        return self._names.get(name)

    def using_image(self, image_id):
        return [c.id for c in self._decoded.values() if c.image_id == image_id]

    def using_volume(self, name):
        return [c.id for c in self._decoded.values() if name in c.volume_names()]

    def using_network(self, name):
        return [c for c in self._decoded.values() if name in c.record.get("networks", {})]

    def wait_stopped(self, container, loop):
        """A future resolved when the container's run has ended and its exit is recorded, or it goes (None)."""
        future = loop.create_future()
        self._waiters.setdefault(container.id, []).append(future)
        return future

    async def record_exit(self, container, code, started_at):
        """Keep how the container ended on its VM, so it survives an endpoint restart; then tell ``on_ended``."""
        started = started_at or container.started_at
        value = exit_value(started, now(), code)
        await self.state.call(self.vm.reconfigure, container.ref, container.name, {EXIT_KEY: value})
        self.state.cache.put_extra_config(container.ref, {EXIT_KEY: value})
        for callback in self.on_ended:
            self.state.spawn(callback(container))

    async def rewrite(self, container, record, devices=None):
        """Write the container's record (and device changes) on its VM, and through to the cache."""
        values = record_values(record)
        await self.state.call(self.vm.reconfigure, container.ref, container.props.get("name"), values, devices)
        self.state.cache.put_extra_config(container.ref, values)

    def ensure_unique(self, name):
        taken = self._names.get(name)
        if taken is not None:
            raise Conflict('Conflict. The container name "/%s" is already in use by container "%s". You have to '
                           'remove (or rename) that container to be able to reuse that name.' % (name, taken.id))
