# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether ISO: its size, its build time (cold and cached), and QEMU (TCG) boots of it.

Targets (issue 11): ISO <= 30 MB; boot to the tether's first byte on the serial channel <= 10 s
under TCG. Each boot runs `echo hello` from a SquashFS layer of a static busybox, as
tests/system/tether/test_iso.py does, and times from QEMU's start: the first byte on the log
port (the first serial port, a file), the process's output there, and the first byte on the
tether channel (the second serial port, a TCP client of this script), and the CPU time QEMU
had used by then (what to compare two ISOs by when the machine is loaded). The process then
prints the tether's memory in the guest: PID 1's RSS and MemTotal - MemAvailable, 1 s after
its start. Figures only, no assertion; KVM is unusable on these machines, so TCG is a worst
case (ESXi boots ~10x faster). Needs the packages of bindep.txt (and apt's lists, for the
first build).

The machine is shared: each boot notes the 1-minute load average, and ``--iso OLD.iso`` boots
another ISO (an earlier build) in turn with this tree's, so the two are compared under the
same load.

Each boot's read-write disk is an 8 GiB child of a formatted template, as a container's is
(portlayer/storage/rw_template.py); ``--rw-blank`` boots in turn with a blank one the tether
formats in the guest, as every container did before the template.

    python3 benchmarks/bench_tether_boot.py [--boots 3] [--no-cold] [--iso OLD.iso ...] [--rw-blank]
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / ".build" / "collections"), str(REPO / "tests" / "system" / "tether")]

from ansible_collections.vic.containers.services.emulator import machine, qemu  # noqa: E402
from ansible_collections.vic.containers.services.tether.agent import disks  # noqa: E402
from ansible_collections.vic.containers.services.tether import protocol  # noqa: E402
from ansible_collections.vic.containers.services.tether.iso import build, builder, image  # noqa: E402
import test_iso  # noqa: E402  # the test's disks: one copy of how a container VM's disks are made

TARGET_MB, TARGET_BOOT_S = 30, 10.0
RW_GIB = 8      # a VCH's default base_image_size_gb: the size of a container's read-write disk
POLL_S = 0.02


def timed_build(output, cache):
    start = time.monotonic()
    built = build(output, cache=cache)
    return built, time.monotonic() - start


def cold_build(scratch):
    """A build from nothing but the downloaded .debs (shared with the default cache)."""
    cache = scratch / "cold-cache"
    cache.mkdir()
    (cache / "debs").symlink_to(builder.DEFAULT_CACHE / "debs")
    try:
        return timed_build(scratch / "cold.iso", cache)
    finally:
        shutil.rmtree(cache)


def cpu_seconds(pid):
    """User + system CPU time process ``pid`` has used so far (0.0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_channel_byte(listener, start, found, pid):
    """Thread: accept QEMU's connection and note when the first byte arrives, and QEMU's CPU time by then."""
    listener.settimeout(300)
    try:
        connection, _unused = listener.accept()
        with connection:
            connection.settimeout(300)
            if connection.recv(1):
                found["channel"] = time.monotonic() - start
                found["channel_cpu"] = cpu_seconds(pid)
    except OSError:
        pass


# Says hello (the output timed), then, once the tether serves, its memory as the guest's kernel counts it.
MEMORY_SCRIPT = ("echo hello; busybox sleep 1; busybox grep VmRSS /proc/1/status; "
                 "busybox grep -E '^(MemTotal|MemAvailable):' /proc/meminfo")


def boot_spec(path, rw_format=False):
    host_key, _unused = protocol.new_host_key()
    _unused, endpoint_key = protocol.new_host_key()
    spec = protocol.boot_spec(test_iso.CONTAINER_ID, host_key, endpoint_key,
                              {"Cmd": ["/bin/sh", "-c", MEMORY_SCRIPT], "Env": ["PATH=/bin"]},
                              hostname="tether-bench", layers=[0], rw=1, rw_format=rw_format)
    path.write_text(json.dumps(spec))
    return path


def rw_template(scratch):
    """An 8 GiB ext4 template as the endpoint's format VM makes it (the tether's mke2fs options), on the host."""
    path = scratch / "template-flat.vmdk"
    with open(path, "wb") as template:
        template.truncate(RW_GIB << 30)
    disks.make_ext4(str(path), disks.TEMPLATE_OPTIONS)
    return path


def rw_disk(disk_set, template, mode):
    """Replace the test's read-write disk with the VCH's: blank (before: the tether formats it, ``rw_format``)
    or a child of the template (now: the emulator's sparse copy of its parent, as QEMU gets it)."""
    path = disk_set[1][0]
    os.unlink(path)
    if mode == "blank":
        with open(path, "wb") as blank:
            blank.truncate(RW_GIB << 30)
    else:
        machine.sparse_copy(str(template), str(path))
    return disk_set


def memory(log_text):
    """{figure: kB} the process printed: VmRSS (the tether's), MemTotal, MemAvailable."""
    found = {}
    for line in log_text.splitlines():
        entry = protocol.parse_log_line(line)
        if entry and entry[0] == protocol.LOG_TEXT:
            match = re.match(r"(VmRSS|MemTotal|MemAvailable):\s+(\d+) kB", entry[2])
            if match:
                found[match.group(1)] = int(match.group(2))
    return found


def boot_once(iso_path, scratch, index, template, rw_mode="template"):
    directory = scratch / f"boot-{index}"
    figures = {"load": os.getloadavg()[0]}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        directory.mkdir()
        disk_set = rw_disk(test_iso._disks(directory), template, rw_mode)  # pylint: disable=protected-access
        spec = boot_spec(directory / "boot.json", rw_format=rw_mode == "blank")
        start = time.monotonic()
        vm = qemu.start(iso_path, disk_set, spec, directory / "output.log", listener.getsockname(),
                        stderr=subprocess.DEVNULL)
        watcher = threading.Thread(target=first_channel_byte, args=(listener, start, figures, vm.pid), daemon=True)
        watcher.start()
        log = directory / "output.log"
        try:
            while vm.poll() is None and time.monotonic() - start < 300:
                text = log.read_bytes() if log.exists() else b""
                if text and "log" not in figures:
                    figures["log"] = time.monotonic() - start
                if b'"stream": "stdout"' in text and "output" not in figures:
                    figures["output"] = time.monotonic() - start
                if b"MemAvailable" in text:
                    break
                time.sleep(POLL_S)
            watcher.join(timeout=5 if "channel" not in figures else 0)
        finally:
            figures.update(memory(test_iso._stopped(vm, directory)))  # pylint: disable=protected-access
    return figures


def summary(values, unit="s", digits=2):
    if not values:
        return "never (n/a)"
    return (f"median {statistics.median(values):6.{digits}f} {unit}  (min {min(values):.{digits}f}, "
            f"max {max(values):.{digits}f}, n={len(values)})")


def report(label, boots):
    print(f"{label}:")
    print(f"  QEMU TCG boot, first byte on the log port:   {summary([b['log'] for b in boots if 'log' in b])}")
    print(f"  QEMU TCG boot, the process's output (log):   {summary([b['output'] for b in boots if 'output' in b])}")
    print(f"  QEMU TCG boot, first byte on the channel:    {summary([b['channel'] for b in boots if 'channel' in b])}"
          f"  (target <= {TARGET_BOOT_S:.0f} s)")
    # The CPU time QEMU used until then barely depends on what else runs: the figure to compare two ISOs by
    # on a shared machine (it leaves out the guest's idle waits, e.g. for the SCSI scan).
    print(f"  QEMU's CPU time until the channel's byte:    {summary([b['channel_cpu'] for b in boots if 'channel_cpu' in b])}")
    print(f"  tether (PID 1) RSS in the guest:             "
          f"{summary([b['VmRSS'] / 1024 for b in boots if 'VmRSS' in b], 'MiB', 1)}")
    print(f"  guest memory used (MemTotal - MemAvailable): "
          f"{summary([(b['MemTotal'] - b['MemAvailable']) / 1024 for b in boots if 'MemAvailable' in b], 'MiB', 1)}")
    loads = " ".join(f"{b['load']:.1f}" for b in boots)
    print(f"  1-minute load average at each boot:          {loads}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold build (~1-2 min)")
    parser.add_argument("--iso", action="append", default=[], type=Path,
                        help="another tether ISO (an earlier build) booted in turn with this tree's")
    parser.add_argument("--rw-blank", action="store_true",
                        help="also boot with a blank read-write disk the tether formats (before the template)")
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-tether-boot-"))
    try:
        built, cached_s = timed_build(scratch / "tether.iso", builder.DEFAULT_CACHE)
        if not options.no_cold:
            _unused, cold_s = cold_build(scratch)
            print(f"build, cold (debs cached):  {cold_s:6.1f} s")
        print(f"build, cached:              {cached_s:6.1f} s{'' if built.cached else ' (was a cold build)'}")
        print(f"ISO size:                   {built.size / 1e6:6.1f} MB  (target <= {TARGET_MB} MB), "
              f"version {built.version}")
        isos = [(f"this tree's ISO {built.version}", built.path)]
        isos += [(f"{path.name} {image.iso_version(path)} ({path.stat().st_size / 1e6:.1f} MB)", path)
                 for path in options.iso]
        template = rw_template(scratch)
        runs = [(label, path, "template") for label, path in isos]
        if options.rw_blank:
            runs.insert(0, (f"this tree's ISO, blank {RW_GIB} GiB read-write disk formatted by the tether (before)",
                            built.path, "blank"))
        boots = {label: [] for label, _path, _mode in runs}
        for index in range(options.boots):  # in turn: each ISO (and disk) sees the same spread of load
            for number, (label, path, mode) in enumerate(runs):
                boots[label].append(boot_once(path, scratch, f"{index}-{number}", template, mode))
        for label, figures in boots.items():
            report(label, figures)
        print(f"on {os.cpu_count()} CPUs; load average now {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
