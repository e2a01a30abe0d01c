# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host emulator in tests: its process against a vcsim (stopped by its pid, log in a file), a pytest
fixture for endpoint tests, and the check that it left nothing behind.

    emulator = Emulator(sim, tether_python="host")   # started and following when this returns
    ...
    emulator.stop()                                  # SIGTERM: it ends its VMs and removes what it made
    assert emulator.leftovers() == {}

Run as a module it is a *tether stand-in* (``--tether-module`` of the emulator in host mode), for the
emulator's own tests: it takes the tether's command line, writes what it was given to its log
descriptor, says hello over its channel, and then does what its boot spec's command says
(``exit N``, or ``sleep`` until killed).
"""

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

STAND_IN = "ansible_collections.vic.containers.tools.harness.emulator"
# Marks every process of a VM the emulator runs (namespace.MARKER_ENV): how leftovers are found.
MARKER_ENV = "VIC_EMULATOR_RUN"


class Emulator:
    """The emulator process; ``ready`` is its first output line (JSON), ``base`` where it keeps its VMs' files."""

    def __init__(self, sim, *, hypervisor="namespace", tether_python="host", tether_module=None, log_level="DEBUG"):
        env = dict(os.environ, VMWARE_HOST=sim.host, VMWARE_PORT=str(sim.port), VMWARE_USER=sim.username,
                   VMWARE_PASSWORD=sim.password, VMWARE_VALIDATE_CERTS="false")
        command = [sys.executable, "-m", "ansible_collections.vic.containers.services.emulator",
                   "--hypervisor", hypervisor, "--tether-python", tether_python, "--log-level", log_level]
        if tether_module:
            command += ["--tether-module", tether_module]
        self._log = tempfile.NamedTemporaryFile(prefix="emulator-", suffix=".log", delete=False)
        self.sim = sim
        self.loops_before = loop_devices()
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise AssertionError("emulator did not start: %s" % self.log())
        self.ready = json.loads(line)
        self.base = self.ready["rundir"]

    def log(self):
        return Path(self._log.name).read_text(errors="replace")

    def stop(self, timeout=60):
        """SIGTERM, as an administrator stops it; SIGKILL if it does not end (a failure the log tells)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc.stdout.close()
        return self.proc.returncode

    def close(self):
        """Stop it and remove its log file."""
        self.stop()
        self._log.close()
        os.unlink(self._log.name)

    def finish(self):
        """Stop it, then remove its log: (what its VMs left on this machine, {} when nothing; its log)."""
        self.stop()
        left, log = self.leftovers(), self.log()
        self.close()
        return left, log

    def processes(self):
        return vm_processes(self.base)

    def leftovers(self):
        """What the emulator's VMs left on this machine: {} when nothing."""
        found = {}
        pids = vm_processes(self.base)
        if pids:
            found["processes"] = pids
        mounts = [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if self.base in line]
        if mounts:
            found["mounts"] = mounts
        loops = loop_devices() - self.loops_before
        datastores = tuple(self.sim.datastores.values())
        loops = {loop for loop in loops if loop[1].startswith(datastores) or self.base in loop[1]}
        if loops:
            found["loop devices"] = sorted(loops)
        if os.path.exists(self.base):
            found["files"] = _files(self.base) or [self.base]
        return found


def _files(base):
    """Every path under ``base``; os.walk skips what the running emulator removes while it looks."""
    return sorted(os.path.join(folder, name) for folder, dirs, names in os.walk(base) for name in dirs + names)


def install_tether_iso(sim, vch_name, iso_path, datastore="LocalDS_0"):
    """Put the tether ISO where a VCH's container VMs find it on their CD-ROM, as ``vic_vch`` uploads it:
    ``[image store] <vch>/VIC/<uuid>/bootstrap.iso`` (the datastore's local directory on vcsim)."""
    folders = glob.glob(os.path.join(sim.datastores[datastore], vch_name, "VIC", "*"))
    if not folders:
        raise AssertionError("no image store folder for VCH %s" % vch_name)
    for folder in folders:
        shutil.copy(iso_path, os.path.join(folder, "bootstrap.iso"))


def vm_processes(base):
    """Pids of the processes the emulator started for its VMs (their environment names its run directory).

    Every namespace the emulator makes lives only as long as one of these
    processes (nothing else holds it: no bind mount of it, no open descriptor), so
    no process means no namespace left."""
    marker = ("%s=%s" % (MARKER_ENV, base)).encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path("/proc/%s/environ" % entry).read_bytes()
        except OSError:
            continue
        if any(item.startswith(marker) for item in environ.split(b"\0")):
            pids.append(int(entry))
    return pids


def loop_devices():
    """{(device, backing file)} of this machine's loop devices."""
    result = subprocess.run(["losetup", "--list", "--json", "--output", "NAME,BACK-FILE"], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        return set()
    return {(d["name"], d.get("back-file") or "") for d in json.loads(result.stdout).get("loopdevices", ())}


def start_storm(vch, image, count, batch=10, prefix="storm", wait_timeout=300):
    """``count`` containers that each print their name and exit, started with ``docker run -d`` by the real
    docker CLI, ``batch`` at a time; once all have ended, their exit codes (one ``docker wait`` per batch)
    and output, then removed.

    Returns {name: {"seconds": the ``docker run -d`` call, "run": its (returncode, stderr), "exit": the
    ``docker wait`` code, or what its state was when a batch's wait gave up after ``wait_timeout`` seconds,
    "output": ``docker logs``}} and the wall time of the whole storm. One copy
    for the test (tests/system/emulator/test_start_storm.py) and the benchmark (benchmarks/bench_run.py).
    """
    from concurrent.futures import ThreadPoolExecutor  # pylint: disable=import-outside-toplevel
    from ansible_collections.vic.containers.tools.harness.endpoint import docker_cli  # pylint: disable=import-outside-toplevel
    names = ["%s-%d" % (prefix, index) for index in range(count)]
    results = {name: {"exit": None, "output": None} for name in names}

    def run(name):
        start = time.perf_counter()
        ran = docker_cli(vch, "run", "-d", "--name", name, image, "echo", name, timeout=300)
        results[name].update(seconds=time.perf_counter() - start, run=(ran.returncode, ran.stderr.strip()))

    def ended(group):
        started = [name for name in group if results[name]["run"][0] == 0]
        if not started:
            return
        try:
            waited = docker_cli(vch, "wait", *started, timeout=wait_timeout)
        except subprocess.TimeoutExpired:
            # One of them did not end: say which (its state), and take the others' exit codes.
            states = docker_cli(vch, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", *started,
                                timeout=120).stdout.split("\n")
            for name, state in zip(started, states):
                status, _sep, code = state.partition(" ")
                results[name]["exit"] = int(code) if status == "exited" else "still %s after %ds" % (
                    status, wait_timeout)
            return
        codes = waited.stdout.split() if waited.returncode == 0 else []
        for name, code in zip(started, codes):
            results[name]["exit"] = int(code)

    def output(name):
        if results[name]["run"][0] == 0:
            logs = docker_cli(vch, "logs", name, timeout=120)
            results[name]["output"] = logs.stdout
            if logs.stderr:     # a boot failure's reason (exit 125) is the container's stderr
                results[name]["stderr"] = logs.stderr

    start = time.perf_counter()
    with ThreadPoolExecutor(batch) as pool:
        list(pool.map(run, names))
        list(pool.map(ended, [names[index:index + batch] for index in range(0, count, batch)]))
        list(pool.map(output, names))
    wall = time.perf_counter() - start
    started = [name for name in names if results[name]["run"][0] == 0]
    for index in range(0, len(started), 25):
        docker_cli(vch, "rm", "-f", *started[index:index + 25], timeout=300)
    return results, wall


@contextlib.contextmanager
def emulated(sim, **options):
    """An emulator following ``sim`` for the ``with`` block; on leaving it, stopped, and checked that it left
    nothing behind. ``tether_python`` defaults to $VIC_TEST_TETHER_PYTHON, else ``host`` (the real agent)."""
    options.setdefault("tether_python", os.environ.get("VIC_TEST_TETHER_PYTHON", "host"))
    running = Emulator(sim, **options)
    try:
        yield running
    finally:
        left, log = running.finish()
    assert left == {}, (left, log[-5000:])


@pytest.fixture(scope="module")
def emulator(vcsim):
    """An emulator following the module's vcsim (load with ``pytest_plugins`` or define one with ``emulated``)."""
    with emulated(vcsim) as running:
        yield running


# -- the tether stand-in ---------------------------------------------------------------------------


def interfaces():
    """{name: MAC} of the network interfaces in this process's network namespace but ``lo`` (ioctls: this
    machine's /sys shows its own namespace's)."""
    import fcntl  # pylint: disable=import-outside-toplevel
    found = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in socket.if_nameindex():
            if name != "lo":
                answer = fcntl.ioctl(sock, 0x8927, name.encode().ljust(40, b"\0"))  # SIOCGIFHWADDR
                found[name] = ":".join("%02x" % byte for byte in answer[18:24])
    return found


def stand_in(argv):
    """A tether stand-in: reports its arguments to the log descriptor and its channel, then obeys its command."""
    import argparse  # pylint: disable=import-outside-toplevel
    parser = argparse.ArgumentParser()
    parser.add_argument("--boot-spec", required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--disk", action="append", default=[])
    parser.add_argument("--root")
    args = parser.parse_args(argv)
    with open(args.boot_spec, encoding="utf-8") as spec:
        boot = json.load(spec)
    disks = {}
    for item in args.disk:
        unit, _unused, path = item.partition("=")
        disks[unit] = os.stat(path).st_size
    log = os.fdopen(int(args.log[len("fd:"):]), "a", encoding="utf-8")
    report = {"id": boot["id"], "disks": disks, "pid": os.getpid(), "hostname": socket.gethostname(),
              "nics": interfaces()}
    with socket.socket(socket.AF_UNIX) as channel:
        channel.connect(args.channel[len("unix://"):])
        channel.sendall(("hello %s\n" % boot["id"]).encode())
        report["answer"] = channel.makefile("r", encoding="utf-8").readline().strip()
    log.write(json.dumps(report) + "\n")
    log.flush()
    command = boot["process"]["Cmd"]
    if command[0] == "exit":
        return int(command[1])
    while True:
        time.sleep(60)


if __name__ == "__main__":
    sys.exit(stand_in(sys.argv[1:]))
