# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether agent for real: a busybox SquashFS layer, blank disks, the agent under ``unshare`` as PID 1
of fresh namespaces, dialing a real ``Concentrator`` on 127.0.0.1 (needs root, unshare, tar2sqfs, mke2fs).

Each test starts few agents and drives many cases through each. After every run the test checks that
nothing is left: the agent's processes, its loop devices (``losetup -j`` of the disk files), its mounts
(they lived in its own mount namespace, which is gone with it)."""

import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import types

import pytest
from ansible_collections.vic.containers.services.portlayer.attach import concentrator
from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.services.tether.agent import disks as agent_disks
from ansible_collections.vic.containers.tools.harness.waiting import until, until_async

VCH_KEY = bytes(range(32))
TIMEOUT = 30
BUSYBOX = "/bin/busybox"
AGENT = "ansible_collections.vic.containers.services.tether.agent"
# The agent's interpreter: another one (e.g. a venv with Debian's asyncssh 2.10.1, as the ISO carries) checks
# the agent against the asyncssh it ships with, while the endpoint side stays on this one's.
AGENT_PYTHON = os.environ.get("TETHER_AGENT_PYTHON", sys.executable)

PASSWD = """root:x:0:0:root:/root:/bin/sh
alice:x:1000:1000:Alice:/home/alice:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
alice:x:1000:
staff:x:2000:alice
nogroup:x:65534:
"""


@pytest.fixture(autouse=True)
def _requirements():
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("unshare", "tar2sqfs", "mke2fs", "losetup")) \
            or not os.path.exists(BUSYBOX):
        pytest.skip("needs root, unshare, tar2sqfs, mke2fs, losetup and busybox-static")


def _add(tar, name, kind=tarfile.REGTYPE, data=b"", mode=0o644, target=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, target
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def busybox_layer_tar():
    """A busybox-static root filesystem as a layer tar: every applet linked in /bin, a passwd with
    root, alice (uid 1000, also in group staff) and nobody, a non-executable file for exec errors."""
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("bin", "etc", "proc", "sys", "dev", "tmp", "root", "home", "home/alice", "data"):
            _add(tar, directory, tarfile.DIRTYPE, mode=0o1777 if directory == "tmp" else 0o755)
        with open(BUSYBOX, "rb") as binary:
            _add(tar, "bin/busybox", data=binary.read(), mode=0o755)
        for applet in applets:
            if applet != "busybox":
                _add(tar, f"bin/{applet}", tarfile.SYMTYPE, target="busybox")
        _add(tar, "etc/passwd", data=PASSWD.encode())
        _add(tar, "etc/group", data=GROUP.encode())
        _add(tar, "etc/motd", data=b"welcome\n")
        _add(tar, "etc/link-to-motd", tarfile.SYMTYPE, target="motd")
        _add(tar, "etc/escape", tarfile.SYMTYPE, target="../../../../../../etc")
        _add(tar, "bin/not-executable", data=b"#!/bin/sh\necho no\n", mode=0o644)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def busybox_layer(tmp_path_factory):
    """The busybox layer disk: a SquashFS image (what the endpoint attaches read-only)."""
    path = tmp_path_factory.mktemp("layer") / "busybox.sqfs"
    subprocess.run(["tar2sqfs", "-q", "-c", "gzip", str(path)], input=busybox_layer_tar(), check=True,
                   capture_output=True)
    return path


def blank_disk(path, size="64M"):
    subprocess.run(["truncate", "-s", size, str(path)], check=True)
    return path


def rw_disk(path, size="64M"):
    """A container's read-write disk as the endpoint makes it: a child of the formatted template, so ext4."""
    agent_disks.make_ext4(str(blank_disk(path, size)), agent_disks.TEMPLATE_OPTIONS)
    return path


def loops_of(path):
    """The loop devices attached to a disk file (losetup -j)."""
    return subprocess.run(["losetup", "-j", str(path)], capture_output=True, text=True, check=True).stdout.strip()


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as file:
            return [int(p) for p in file.read().split()]
    except FileNotFoundError:
        return []


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as file:
            return file.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class World:
    """A concentrator that knows the containers' host keys, and the exits it was told."""

    def __init__(self):
        self.keys = {}
        self.exits = {}
        self.starts = {}
        self.client_key = concentrator.endpoint_client_key(VCH_KEY)
        self.concentrator = concentrator.Concentrator(self.keys.get, self.client_key, self._on_exit,
                                                      on_started=self._on_started)
        self.port = None

    def _on_started(self, container_id, pid, started_at):
        self.starts.setdefault(container_id, []).append((pid, started_at))

    def _on_exit(self, container_id, code, finished_at):
        self.exits.setdefault(container_id, []).append((code, finished_at))

    def boot_spec(self, container_id, process, layers=(0,), rw=1, mounts=(), **extra):
        private, public = protocol.new_host_key()
        self.keys[container_id] = public
        process = dict({"Env": ["PATH=/bin", "GREETING=hi"], "User": "", "WorkingDir": ""}, **process)
        return protocol.boot_spec(container_id, private, protocol.public_key_text(self.client_key), process,
                                  hostname=extra.pop("hostname", container_id[:12]), layers=list(layers), rw=rw,
                                  mounts=mounts, **extra)

    async def exit_of(self, container_id):
        await until_async(lambda: self.exits.get(container_id), f"the exit of {container_id}", timeout=TIMEOUT)
        return self.exits[container_id][-1][0]

    async def connected(self, container_id):
        await self.concentrator.wait_connected(container_id, TIMEOUT)

    def conn(self, container_id):
        # The live SSH connection: the archive tests read the tether's answers on the wire, as sent.
        return self.concentrator._link(container_id).conn  # pylint: disable=protected-access


@contextlib.asynccontextmanager
async def world():
    w = World()
    await w.concentrator.start("127.0.0.1", 0)
    w.port = int(w.concentrator.serial_uri.rsplit(":", 1)[1])
    try:
        yield w
    finally:
        await w.concentrator.stop()


class Agent:
    """One tether under ``unshare --mount --pid --fork --uts --ipc``, as the host emulator runs it."""

    # The emulator's namespaces; ``MOUNT_ONLY`` keeps the host's pids and /dev/pts (a host pty as a serial line).
    NAMESPACES = ("--mount", "--pid", "--fork", "--uts", "--ipc")
    MOUNT_ONLY = ("--mount", "--fork", "--uts", "--ipc")

    def __init__(self, workdir, spec, disks, port, no_halt=False, channel=None, namespaces=NAMESPACES):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.spec_path = workdir / "boot.json"
        self.log_path = workdir / "output.log"
        self.stderr_path = workdir / "tether.stderr"
        self.root = workdir / "root"
        self.disks = disks
        self.channel = channel or f"tcp://127.0.0.1:{port}"
        self.no_halt = no_halt
        self.namespaces = namespaces
        self.proc = None
        self.spec_path.write_text(json.dumps(spec))

    def argv(self):
        argv = ["unshare", *self.namespaces, "--kill-child=KILL", "--",
                AGENT_PYTHON, "-W", "ignore::DeprecationWarning", "-m", AGENT, "--boot-spec", str(self.spec_path), "--channel",
                self.channel, "--log", str(self.log_path), "--root", str(self.root)]
        for unit, path in self.disks.items():
            argv += ["--disk", f"{unit}={path}"]
        return argv + (["--no-halt"] if self.no_halt else [])

    async def start(self):
        self.root.mkdir(exist_ok=True)
        with open(self.stderr_path, "wb") as stderr:
            self.proc = await asyncio.create_subprocess_exec(*self.argv(), stdin=subprocess.DEVNULL,
                                                             stdout=stderr, stderr=stderr)
        return self

    def tether_pid(self):
        return until(lambda: children(self.proc.pid), "the tether under unshare")[0]

    async def stop(self):
        """SIGTERM to the tether (as the emulator stops a VM), then wait for it and unshare to end."""
        if self.proc.returncode is None:
            for pid in children(self.proc.pid):
                os.kill(pid, signal.SIGTERM)
        return await self.wait()

    async def wait(self):
        try:
            return await asyncio.wait_for(self.proc.wait(), TIMEOUT)
        except asyncio.TimeoutError:
            self.proc.kill()     # --kill-child takes the tether and its namespace with it
            await self.proc.wait()
            raise

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def log_entries(self, starts=False):
        """The log port's json-file lines (without the runs' start lines unless ``starts``)."""
        entries = [json.loads(line) for line in self.log_path.read_text().splitlines()]
        return [entry for entry in entries if starts or "start" not in entry]

    def assert_nothing_left(self):
        """No process, no loop device on the disk files; the mounts went with the mount namespace."""
        assert self.proc.returncode is not None
        for path in self.disks.values():
            until(lambda path=path: not loops_of(path), f"the loop devices of {path} to clear")
        leftovers = [pid for pid in os.listdir("/proc") if pid.isdigit() and _cmdline_mentions(pid, str(self.workdir))]
        assert not leftovers, f"processes left: {leftovers}"
        with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
            assert str(self.workdir) not in mountinfo.read()


def _cmdline_mentions(pid, text):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return text.encode() in file.read()
    except OSError:
        return False


@contextlib.asynccontextmanager
async def running(workdir, spec, disks, port, no_halt=False, channel=None, namespaces=Agent.NAMESPACES):
    """An agent for the block (dialing the concentrator's port, or ``channel``); stopped (if still running)
    and checked for leftovers after it."""
    agent = await Agent(workdir, spec, disks, port, no_halt, channel, namespaces).start()
    try:
        yield agent
    finally:
        await agent.stop()
        agent.assert_nothing_left()


async def collect(attachment):
    """(stdout, stderr) of an attachment until its process ends."""
    out, err = b"", b""
    async for stream, data in attachment:
        if stream == protocol.STDERR:
            err += data
        else:
            out += data
    return out, err


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


@pytest.fixture(name="kit")
def _kit():
    """This module's helpers, for the test modules (helpers are shared through a fixture, not an import)."""
    return types.SimpleNamespace(world=world, running=running, collect=collect, run=run, blank_disk=blank_disk,
                                 rw_disk=rw_disk,
                                 loops_of=loops_of, Agent=Agent, TIMEOUT=TIMEOUT)
