# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The emulated host: boots a container VM's tether when the VM powers on, ends it when it powers off.

Each power-on is one *boot* (``summary.runtime.bootTime`` tells them apart, so a
power-off and power-on that one feed batch folds together is still a reboot).
A boot runs until either side ends it:

* the tether exits (the process ended, the tether halted): the VM is powered off
  through the API, as a guest shutdown would (``InvalidPowerState`` is fine: the
  endpoint may have powered it off already);
* the API powers the VM off (or destroys it): the VM's namespace is killed.

Either way the boot's relay, socket and run directory are removed.
"""

import asyncio
import logging
import os
import shutil
import tempfile

from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc
from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks
from ansible_collections.vic.containers.services.emulator import machine as machines
from ansible_collections.vic.containers.services.emulator import records
from ansible_collections.vic.containers.services.emulator.channel import SerialRelay
from ansible_collections.vic.containers.services.emulator.feed import VmFeed, in_view

try:
    from pyVmomi import vim
except ImportError:  # pragma: no cover - the emulator's requirements install it
    vim = None

LOG = logging.getLogger("vic.emulator")
BOOT_PATHS = machines.VM_PATHS + ("summary.runtime.bootTime",)
_POWER_OFF_TIMEOUT = 60


class Boot:
    """One power-on of one VM: its run directory, serial relay and tether (or QEMU) process."""

    def __init__(self, vm, boot_time, rundir, relay, runner):
        self.vm = vm
        self.boot_time = boot_time
        self.rundir = rundir
        self.relay = relay
        self.runner = runner
        self.task = None
        self.killed = False     # ended by the API (power-off), not by the tether


class Host:
    """Runs every powered-on container VM of the vCenter ``session`` reaches.

    ``make_runner(vm, rundir, channel_path)`` makes the process of one boot
    (``namespace.Tether`` or the QEMU launcher): ``start()``, ``wait()``,
    ``kill()``, ``stderr()``, ``release()`` (once it has ended).
    """

    def __init__(self, session, make_runner, rundir_base=None):
        self._session = session
        self._make_runner = make_runner
        self.base = records.make_base(rundir_base)
        self._loop = None
        self._feed = None
        self._wanted = {}     # moid -> (props, boot time) of powered-on container VMs
        self._boots = {}      # moid -> Boot
        self._done = {}       # moid -> boot time whose tether ended by itself (not booted again)
        self._locks = {}
        self._datastores = {}
        self.booted = 0       # boots started, for tests and the log
        self._stopping = False

    async def start(self):
        self._loop = asyncio.get_running_loop()
        self._datastores = await asyncio.to_thread(self._read_datastores)
        self._feed = VmFeed(self._session, BOOT_PATHS, self._changed_on_feed)
        await asyncio.to_thread(self._feed.start)
        LOG.info("following %s:%s; run directories under %s", self._session.hostname, self._session.port,
                 self.base)

    async def stop(self):
        """End every VM (and power it off: the host is going away); the caller then removes ``base``."""
        self._stopping = True
        if self._feed is not None:
            await asyncio.to_thread(self._feed.stop)
        self._wanted.clear()
        running = {}

        async def end(moid):
            # A boot under way holds the VM's lock: it finishes first (else its tether would start after
            # this and run on, its VM never powered off), then it is ended like the others.
            async with self._locks.get(moid) or asyncio.Lock():
                boot = self._boots.get(moid)
                if boot is not None:
                    running[moid] = boot.vm.name
            await self._reconcile(moid)
        await asyncio.gather(*(end(moid) for moid in set(self._boots) | set(self._locks)), return_exceptions=True)
        await asyncio.gather(*(self._power_off(moid, name) for moid, name in running.items()))

    def _read_datastores(self):
        content = self._session.content
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.Datastore], True)
        try:
            found = pc.retrieve(self._session, [in_view(view)], {"Datastore": ("name", "info.url")})
        finally:
            view.DestroyView()
        return {ds.get("name"): ds.get("info.url") for ds in found if ds.get("info.url")}

    # -- the feed's thread -> the loop ------------------------------------------------------

    def _changed_on_feed(self, moid, props):
        self._loop.call_soon_threadsafe(self._changed, moid, props)

    def _changed(self, moid, props):
        if self._stopping:
            return  # a change the feed read before it stopped: nothing boots any more
        if props is not None and machines.is_container(props) and props.get("runtime.powerState") == "poweredOn":
            self._wanted[moid] = (props, props.get("summary.runtime.bootTime"))
        else:
            self._wanted.pop(moid, None)
            self._done.pop(moid, None)
        asyncio.ensure_future(self._reconcile(moid))

    # -- one VM at a time ---------------------------------------------------------------------

    async def _reconcile(self, moid):
        """Bring the VM's boot in line with what vSphere says (one step at a time per VM)."""
        lock = self._locks.setdefault(moid, asyncio.Lock())
        async with lock:
            wanted = self._wanted.get(moid)
            boot = self._boots.get(moid)
            if boot is not None and (wanted is None or wanted[1] != boot.boot_time):
                boot.killed = True
                await boot.runner.kill()
                await boot.task
            if wanted is not None and moid not in self._boots and self._done.get(moid, object()) != wanted[1]:
                await self._boot(moid, *wanted)
            if moid not in self._wanted and moid not in self._boots:
                self._locks.pop(moid, None)

    async def _machine(self, moid, props):
        """What the VM boots with; the datastores are read again when the VM uses one added since."""
        try:
            return machines.read(moid, props, self._datastores)
        except machines.MachineError as exc:
            if not isinstance(exc, machines.UnknownDatastore):
                raise
        self._datastores = await asyncio.to_thread(self._read_datastores)
        return machines.read(moid, props, self._datastores)

    async def _boot(self, moid, props, boot_time):
        boot = None
        try:
            vm = await self._machine(moid, props)
            rundir = tempfile.mkdtemp(prefix=moid + "-", dir=self.base)
            relay = SerialRelay(os.path.join(rundir, "channel.sock"), vm.serial_uri, vm.name)
            boot = Boot(vm, boot_time, rundir, relay, None)
            await relay.start()
            # In a thread: the first boot of an ISO unpacks it (seconds), which must not stall the other VMs.
            boot.runner = await asyncio.to_thread(self._make_runner, vm, rundir, relay.path)
            await boot.runner.start()
        except Exception as exc:  # pylint: disable=broad-except
            # As a VM that cannot boot its tether halts: the VM is powered off, and not booted again
            # until it is powered on again.
            name = props.get("name") or moid
            detail = getattr(exc, "stderr", None)  # a failed command (unpacking the ISO) says why there
            LOG.error("%s: cannot boot: %s%s", name, exc, "\n" + _text(detail) if detail else "")
            if boot is not None:
                await self._clean(boot)
            self._done[moid] = boot_time
            await self._power_off(moid, name)
            return
        self.booted += 1
        self._boots[moid] = boot
        boot.task = asyncio.ensure_future(self._run(moid, boot))

    async def _run(self, moid, boot):
        status = await boot.runner.wait()
        if not boot.killed:
            LOG.info("%s: tether ended (status %s); powering the VM off", boot.vm.name, status)
            self._done[moid] = boot.boot_time
        said = boot.runner.stderr()
        if said:  # the tether's own account of a failure; its log port has the process's output
            LOG.info("%s: the tether's stderr:\n%s", boot.vm.name, said)
        await self._clean(boot)
        self._boots.pop(moid, None)
        if not boot.killed:
            await self._power_off(moid, boot.vm.name)
            asyncio.ensure_future(self._reconcile(moid))

    async def _clean(self, boot):
        if boot.runner is not None:
            await boot.runner.release()
        await boot.relay.close()
        await asyncio.to_thread(shutil.rmtree, boot.rundir, True)

    async def _power_off(self, moid, name):
        what = "powering off container VM %s" % name

        def power_off():
            ref = vim.VirtualMachine(moid, self._session.stub)
            task = tasks.call(what, ref.PowerOffVM_Task)
            tasks.wait(self._session, {task: what}, _POWER_OFF_TIMEOUT,
                       ignore=("InvalidPowerState", "ManagedObjectNotFound"))
        try:
            await asyncio.to_thread(power_off)
        except Exception as exc:  # pylint: disable=broad-except
            LOG.warning("%s: could not power the VM off: %s", name, exc)


def _text(output):
    return output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
