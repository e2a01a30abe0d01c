# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The read-write disk template: a formatted, empty ext4 disk every container's own disk is a child of.

``[ds] <path>/VIC/<vch-uuid>/images/scratch-<N>g/scratch-<N>g.vmdk`` (VIC's "scratch"
disk), ``N`` the VCH's ``base_image_size_gb``, one per image store and size; the
file ``formatted`` beside it, written last, marks it complete. Each container's
read-write disk is made in its CreateVM as a delta disk of it
(``FlatVer2BackingInfo.parent``): already ext4, so the guest formats nothing
(mke2fs in the guest costs ~5 s under emulation), and the container costs no
extra vSphere call.

The endpoint cannot write into a vSphere disk from outside, so the template is
formatted by what boots container VMs: a one-shot VM booted from the tether ISO
whose boot spec (``protocol.format_spec``) asks the tether only to format its
unit 0 and halt. The endpoint then reads the VM's log (its exit line), detaches
the disk, destroys the VM and writes the marker. A folder without the marker
(an endpoint stopped midway, a format that failed) is never used, and is removed
at the next start with any format VM left over.

The making starts in the background when the endpoint starts and finds no
complete template (and, after a failure, again at a container create 60 s later
at the earliest): the containers created before it is complete get a blank disk
and a boot spec that asks the tether to format it (``rw_format``), as before.
Round trips (once per VCH and size): MakeDirectory, CreateVM, PowerOn (+ polls),
the power-off seen on the live cache's feed (+ at most one PropertyCollector read
to confirm it), one HTTPS GET (the log), Reconfig
(detach), Destroy (+ polls), one HTTP PUT (the marker). A container: none.
"""

import asyncio
import json
import logging
import time
import uuid

from ansible_collections.vic.containers.plugins.module_utils._errors import VicError
from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore
from ansible_collections.vic.containers.services.portlayer.containers import logs, model, vm
from ansible_collections.vic.containers.services.tether import protocol

LOG = logging.getLogger("vic.endpoint.images")
MARKER = "formatted"
RETRY_SECONDS = 60          # a failed making is tried again at a container create after this long
FORMAT_VM_MEMORY_MB = 512


def size_gb(config):
    return int(config.get("base_image_size_gb") or 8)


def is_format_vm(props):
    """Whether a VM's properties are those of a template's format VM."""
    managed = props.get("config.managedBy")
    return managed is not None and managed.type == codec.MANAGED_BY_FORMAT


class RwTemplate:
    """The template disk of one image store: complete or not, and its making."""

    def __init__(self, state, layers):
        self.state = state
        self._layers = layers       # the layer store: the same image folder, and its deleting
        self.datastore = state.image_store[0]
        self.capacity_kb = size_gb(state.config) * 1024 * 1024
        self.name = "scratch-%dg" % size_gb(state.config)
        self.folder = "%s/%s" % (layers.folder, self.name)
        self.path = datastore.ds_path(self.datastore, "%s/%s.vmdk" % (self.folder, self.name))
        self._complete = False
        self._making = None
        self._failed_at = None
        self._halts = {}        # moid of a format VM -> the future its halt resolves
        self._powered_on = set()    # moids of format VMs whose power-on returned
        self._confirming = set()    # moids whose power state is being read again
        state.cache.listen(self._changed)

    # -- what exists ----------------------------------------------------------------------------

    def adopt(self, folders):
        """Take the template from the image folder's listing (``datastore.browse``); returns the folder to
        remove when it is there without its marker (a making cut short or failed)."""
        files = folders.get(self.folder)
        if files is None:
            return []
        if MARKER in files and "%s.vmdk" % self.name in files:
            self._complete = True
            return []
        return [self.folder]

    def parent(self):
        """The template's path when it is complete; else None, and its making starts (in the background)
        unless it is under way or failed less than RETRY_SECONDS ago."""
        if self._complete:
            return self.path
        recent_failure = self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_SECONDS
        if self._making is None and not recent_failure:
            self._making = self.state.spawn(self._make())
        return None

    async def remove_leftover_vms(self):
        """At start: destroy the format VMs an earlier endpoint left (stopped while one ran)."""
        for moid, props in list(self.state.cache.vms.items()):
            if is_format_vm(props):
                LOG.info("removing the template format VM %s left by an earlier endpoint", props.get("name"))
                await self._destroy(moid, props.get("name") or moid)

    # -- making ---------------------------------------------------------------------------------

    async def _make(self):
        state = self.state
        ref, name = None, None
        started = time.perf_counter()
        try:
            await state.call(datastore.make_directory, state.session, state.datacenter_ref, self.datastore,
                             self.folder)
            vm_id = model.new_id()
            name = "%s-format-%s" % (self.name, vm_id[:12])
            folder = model.vm_folder(self.datastore, name)
            devices = vm.format_vm_devices(folder, self.path, self.capacity_kb, vm.bootstrap_iso(state),
                                           state.tether.serial_uri)
            extra = model.boot_values(protocol.format_spec(vm_id, [0]))
            ops = vm.VmOps(state)
            ref = await state.call(ops.create, name, str(uuid.uuid4()), 1, FORMAT_VM_MEMORY_MB, folder, devices,
                                   extra, kind=codec.MANAGED_BY_FORMAT)
            halted = self._halts[ref._moId] = asyncio.get_running_loop().create_future()
            await state.call(ops.power_on, ref, name)
            self._powered_on.add(ref._moId)
            seen = state.cache.vms.get(ref._moId)
            if seen is not None:
                self._changed(ref._moId, None, seen)    # it may have halted already
            # No time limit: a format VM that never halts (under the simulator with no host emulator, nothing
            # boots) costs nothing while it waits; containers get blank disks meanwhile, and the next endpoint
            # start removes it and tries again. A give-up timer would make vSphere calls at a random moment.
            await halted
            await self._check_log(folder, name)
            await state.call(ops.detach_shared, ref, name, folder, None)
            await state.call(ops.destroy, ref, name)
            state.cache.drop(ref._moId)
            ref = None
            marker = json.dumps({"capacity_kb": self.capacity_kb, "formatted_by": name}).encode()
            await state.call(datastore.put, state.session, state.datacenter, self.datastore,
                             "%s/%s" % (self.folder, MARKER), lambda: marker, len(marker))
            self._complete = True
            LOG.info("read-write disk template %s made in %.3f s", self.path, time.perf_counter() - started)
        except Exception as exc:  # pylint: disable=broad-except  # whatever failed, nothing half-made stays
            self._failed_at = time.monotonic()
            LOG.warning("could not make the read-write disk template %s (containers get a blank disk their "
                        "tether formats): %s", self.path, exc if isinstance(exc, VicError) else repr(exc))
            await self._clean(ref, name)
        finally:
            self._making = None
            self._halts.clear()
            self._powered_on.clear()

    async def _check_log(self, folder, name):
        """The format VM's exit line must say 0; else its log's last lines say why."""
        state = self.state
        datastore_name, path = datastore.parse_ds_path(folder)
        data = await state.call(datastore.download, state.session, state.datacenter, datastore_name,
                                "%s/%s" % (path, logs.LOG_FILE))
        ended = logs.last_run(data)
        if ended is None or ended.code != 0:
            said = b"".join(entry[2] for entry in logs.parse(data)).decode("utf-8", "replace").strip()
            raise VicError("the format VM %s %s%s" % (name, "ended with code %s" % ended.code
                                                      if ended and ended.code is not None else
                                                      "halted without an exit line", ": " + said if said else ""))

    async def _clean(self, ref, name):
        if ref is not None:
            try:
                await self._destroy(ref._moId, name)
            except Exception as exc:  # pylint: disable=broad-except
                LOG.warning("could not destroy the template format VM %s: %s", name, exc)
        try:
            await self._layers.delete([self.folder])
        except Exception as exc:  # pylint: disable=broad-except
            LOG.warning("could not remove the incomplete template folder %s: %s", self.folder, exc)

    async def _destroy(self, moid, name):
        state = self.state
        ops = vm.VmOps(state)
        ref = vm.vim.VirtualMachine(moid, state.session.stub)
        await state.call(ops.power_off, ref, name)
        await state.call(ops.destroy, ref, name)
        state.cache.drop(moid)

    def _changed(self, moid, before, after):
        """The live cache's listener: the format VM has halted when it leaves, goes from on to off, or shows
        off once powered on (a boot short enough to fold into one feed batch), which one read confirms (the
        batch may have been read before the power-on)."""
        halted = self._halts.get(moid)
        if halted is None or halted.done():
            return
        was_on = bool(before and before.get("runtime.powerState") == "poweredOn")
        off = after is None or after.get("runtime.powerState") != "poweredOn"
        if after is None or (was_on and off):
            halted.set_result(None)
        elif off and moid in self._powered_on and moid not in self._confirming:
            self._confirming.add(moid)
            self.state.spawn(self._confirm_halt(moid, halted, after["ref"]))

    async def _confirm_halt(self, moid, halted, ref):
        try:
            state = (await self.state.call(vm.VmOps(self.state).read, ref, ("runtime.powerState",))).get(
                "runtime.powerState")
            if state != "poweredOn" and not halted.done():
                halted.set_result(None)
        finally:
            self._confirming.discard(moid)
