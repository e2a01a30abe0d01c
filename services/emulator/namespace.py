# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A container VM run as a tether in fresh namespaces (``unshare`` mount, pid, uts, ipc, net).

Two ways to get the tether's code:

* ``iso`` (the default): the VM's own tether ISO, unpacked once per ISO file, is the
  tether's root (``enter.py`` gives each VM a private overlay of it and chroots);
  the same bytes ESXi boots.
* ``host`` (a development option): this machine's Python with the collection on its
  path, no chroot; needs no ISO, so it works before one is built.

The tether is the namespace's PID 1: killing it (SIGKILL, by pid) ends every process
of the VM and with them the namespace, its mounts and the loop devices it attached
(AUTOCLEAR). ``unshare`` dies with the emulator (``records.PARENT_DEATH``), and its
child, that init, with it (``--kill-child``).
"""

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile

from ansible_collections.vic.containers.services.emulator import machine as machines
from ansible_collections.vic.containers.services.emulator import records
from ansible_collections.vic.containers.services.emulator.enter import GO, READY

LOG = logging.getLogger("vic.emulator.namespace")
TETHER_MODULE = "ansible_collections.vic.containers.services.tether.agent"
UNSHARE = ("unshare", "--mount", "--pid", "--uts", "--ipc", "--net", "--fork", "--kill-child")
# Where the VM's files appear in the tether's root (iso mode).
_INSIDE = "/.vic"
_ENTER = [sys.executable, "-m", "ansible_collections.vic.containers.services.emulator.enter"]
# The ISO's Python (services/tether/iso/stage.py), isolated: the collection is in its dist-packages.
ISO_PYTHON = ("/usr/bin/python3.11", "-I")
# Set in the environment of every process of a VM (its value: the boot's run directory), so what a VM
# left behind can be found (records.clear_previous, tools/harness/emulator.py).
MARKER_ENV = records.MARKER_ENV


def collections_dir():
    """The directory that holds ``ansible_collections`` (what PYTHONPATH needs to import the collection)."""
    import ansible_collections.vic.containers as collection  # pylint: disable=import-outside-toplevel
    return os.path.dirname(os.path.dirname(os.path.dirname(list(collection.__path__)[0])))


class Tether:
    """The tether process of one VM boot: started by ``start``, ended by itself or by ``kill``."""

    def __init__(self, vm, rundir, channel_path, *, python="host", tether_module=TETHER_MODULE, iso_root=None,
                 network=None):
        self.vm = vm
        self.rundir = rundir
        self.channel_path = channel_path
        self.mode = python
        self.tether_module = tether_module
        self.iso_root = iso_root
        self.network = network      # portgroups.PortGroups: the VM's NICs, on their port groups' bridges
        self.proc = None

    def _tether_args(self, boot_path, channel_path, log_fd, disks):
        args = ["-m", self.tether_module, "--boot-spec", boot_path, "--channel", "unix://" + channel_path,
                "--log", "fd:%d" % log_fd]
        for unit, path in sorted(disks.items()):
            args += ["--disk", "%d=%s" % (unit, path)]
        return args

    def command(self, boot_path, log_fd, ready_fd):
        """The whole command line: unshare, ``enter`` (the VM's files bound in, its root; it waits on
        ``ready_fd`` for its NICs), then the tether."""
        # Each disk is bound at a path of the VM's own: the tether sees its files wherever they are, and
        # in host mode /dev (where vcsim may keep its datastores) is covered by the VM's own.
        if self.mode == "host":
            inside, enter = self.rundir, list(_ENTER)
            # Without a root of its own the tether makes its mount points (layers, disks, the container's
            # root) in the run directory, not on this machine's /.
            root = os.path.join(self.rundir, "root")
            os.mkdir(root)
            python, extra = [sys.executable], ["--root", root]
        else:
            scratch = os.path.join(self.rundir, "scratch")
            os.mkdir(scratch)
            inside = _INSIDE
            enter = _ENTER + ["--root", self.iso_root, "--scratch", scratch, "--bind", "%s=%s" % (self.rundir, inside)]
            python, extra = list(ISO_PYTHON), []
        enter += ["--ready-fd", str(ready_fd)]
        disks = {}
        for unit, (path, _capacity) in sorted(self.vm.disks.items()):
            disks[unit] = "%s/disk%d" % (inside, unit)
            enter += ["--bind", "%s=%s" % (path, disks[unit])]
        channel = "%s/%s" % (inside, os.path.basename(self.channel_path))
        boot = "%s/%s" % (inside, os.path.basename(boot_path))
        return list(records.PARENT_DEATH) + list(UNSHARE) + ["--"] + enter + ["--"] + python + self._tether_args(boot, channel, log_fd, disks) + extra

    async def start(self):
        machines.prepare_disks(self.vm)
        boot_path = os.path.join(self.rundir, "boot.json")
        with open(boot_path, "w", encoding="utf-8") as spec:
            spec.write(self.vm.boot_spec)
        # The log is appended to, as the serial port's file on ESXi: a restarted container's log goes on.
        log_fd = os.open(self.vm.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        ours, theirs = socket.socketpair()
        with ours:
            try:
                env = dict(os.environ, PYTHONPATH=collections_dir(), **{MARKER_ENV: self.rundir})
                with open(os.path.join(self.rundir, "tether.stderr"), "ab") as stderr:
                    self.proc = await asyncio.create_subprocess_exec(
                        *self.command(boot_path, log_fd, theirs.fileno()), env=env, stdin=asyncio.subprocess.DEVNULL,
                        stdout=stderr, stderr=stderr, pass_fds=(log_fd, theirs.fileno()))
            finally:
                os.close(log_fd)
                theirs.close()
            LOG.info("%s: tether started (unshare pid %d)", self.vm.name, self.proc.pid)
            try:
                await self._plug_in(ours)
            except BaseException:
                await self.kill()
                raise

    async def _plug_in(self, sock):
        """The VM's NICs, once ``enter`` says its namespaces are there; then the tether may start."""
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        if await loop.sock_recv(sock, 1) != READY:
            raise machines.MachineError("container VM %s: its namespaces were not made: %s"
                                        % (self.vm.name, self.stderr().strip()[-1000:]))
        if self.network is not None:
            # unshare itself is in the VM's network namespace (only the pid namespace needs its child).
            await self.network.attach(self, self.vm, self.proc.pid)
        await loop.sock_sendall(sock, GO)

    async def release(self):
        """What the boot held outside its namespaces (its place on the port groups), once it has ended."""
        if self.network is not None:
            await self.network.detach(self)

    def init_pid(self):
        """The host pid of the namespace's init (unshare's one child), or None once it is gone."""
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid), encoding="ascii") as children:
                pids = children.read().split()
        except OSError:
            return None
        return int(pids[0]) if pids else None

    async def wait(self):
        """The tether's exit status (unshare passes its child's on)."""
        return await self.proc.wait()

    async def kill(self):
        """End the VM: SIGKILL the namespace's init (the kernel then kills every process in it)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        pid = self.init_pid()
        with contextlib.suppress(ProcessLookupError):
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
            else:
                os.kill(self.proc.pid, signal.SIGKILL)  # unshare has not forked yet; --kill-child covers it
        await self.proc.wait()

    def stderr(self):
        """What the tether wrote to stderr (for the emulator's log when it failed)."""
        try:
            with open(os.path.join(self.rundir, "tether.stderr"), encoding="utf-8", errors="replace") as text:
                return text.read()[-4000:]
        except OSError:
            return ""


class IsoRoots:
    """The tether ISOs the VMs boot, each unpacked once (``services.tether.iso.unpack``, which keys its cache
    by the ISO's content) and shared read-only by every VM that boots it; removed when the emulator stops.
    Kept under the emulator's run directory ``parent``: what a killed emulator left is cleared with it."""

    def __init__(self, parent=None):
        self.parent = parent
        self._cache = None

    def root(self, vm):
        if not vm.iso_path:
            raise machines.MachineError("container VM %s has no tether ISO on its CD-ROM" % vm.name)
        try:
            from ansible_collections.vic.containers.services.tether import iso  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise machines.MachineError("the tether ISO tools (services.tether.iso) are not installed here; "
                                        "run the emulator with --tether-python host") from None
        if self._cache is None:
            self._cache = tempfile.mkdtemp(prefix="isos-", dir=self.parent)
        return str(iso.unpack(vm.iso_path, self._cache))

    def remove(self):
        if self._cache is not None:
            shutil.rmtree(self._cache, ignore_errors=True)
            self._cache = None
