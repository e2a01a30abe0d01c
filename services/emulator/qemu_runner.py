# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A container VM booted from its tether ISO in QEMU (``--hypervisor qemu``): the same disks, boot spec,
log and serial URI as the namespace mode, so the ISO is tested end to end.

``qemu.py`` (the ISO's side) makes QEMU's command line; this runs it as one boot of
the emulated host: QEMU runs in this machine's network namespace, so its second
serial port dials the VM's serial URI itself (no relay), and the first writes the
VM's ``output.log``. The guest halting ends QEMU (``-no-reboot``); an API power-off
kills it (SIGKILL by pid: the plug pulled, as the namespace mode kills its init).
"""

import asyncio
import contextlib
import json
import os
import signal
import urllib.parse

from ansible_collections.vic.containers.services.emulator import machine as machines
from ansible_collections.vic.containers.services.emulator import qemu, records
from ansible_collections.vic.containers.services.emulator.namespace import MARKER_ENV


class QemuVm:
    """One boot of one VM in QEMU: ``start()``, ``wait()``, ``kill()``, ``stderr()``, ``release()`` (as
    ``namespace.Tether``)."""

    def __init__(self, vm, rundir, _channel_path):
        self.vm = vm
        self.rundir = rundir
        self.proc = None

    def _disks(self):
        """{unit: (flat file, read only)}: the image's layers are read-only, as are volumes mounted so."""
        spec = json.loads(self.vm.boot_spec)
        read_only = set(spec.get("layers", ())) | {m["unit"] for m in spec.get("mounts", ()) if not m.get("rw", True)}
        return {unit: (path, unit in read_only) for unit, (path, _capacity) in self.vm.disks.items()}

    async def start(self):
        if not self.vm.iso_path:
            raise machines.MachineError("container VM %s has no tether ISO on its CD-ROM" % self.vm.name)
        machines.prepare_disks(self.vm)
        boot_path = os.path.join(self.rundir, "boot.json")
        with open(boot_path, "w", encoding="utf-8") as spec:
            spec.write(self.vm.boot_spec)
        uri = urllib.parse.urlsplit(self.vm.serial_uri)
        command = qemu.command(self.vm.iso_path, self._disks(), boot_path, self.vm.log_path, (uri.hostname, uri.port))
        with open(os.path.join(self.rundir, "qemu.stderr"), "ab") as stderr:
            # Its own session: a signal meant for the emulator's terminal does not reach the VM; but the
            # emulator's death (kill -9) ends it (records.PARENT_DEATH).
            self.proc = await asyncio.create_subprocess_exec(
                *records.PARENT_DEATH, *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
                env=dict(os.environ, **{MARKER_ENV: self.rundir}), start_new_session=True)

    async def wait(self):
        return await self.proc.wait()

    async def kill(self):
        if self.proc is None or self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()

    async def release(self):
        """Nothing outside QEMU to give back: the VM has no NIC (``qemu.command`` gives it none)."""

    def stderr(self):
        try:
            with open(os.path.join(self.rundir, "qemu.stderr"), encoding="utf-8", errors="replace") as text:
                return text.read()[-4000:]
        except OSError:
            return ""
