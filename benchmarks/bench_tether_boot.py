# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether ISO: its size, its build time (cold and cached), and QEMU (TCG) boots of it.

Targets (issue 11): ISO <= 30 MB; boot to the tether's first byte on the serial channel <= 10 s
under TCG. Each boot runs `echo hello` from a SquashFS layer of a static busybox, as
tests/system/tether/test_iso.py does, and times from QEMU's start: the first byte on the log
port (the first serial port, a file), the process's output there, and the first byte on the
tether channel (the second serial port, a TCP client of this script). Figures only, no
assertion; KVM is unusable on these machines, so TCG is a worst case (ESXi boots ~10x faster).
Needs the packages of bindep.txt (and apt's lists, for the first build).

    python3 benchmarks/bench_tether_boot.py [--boots 3] [--no-cold]
"""

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / ".build" / "collections"), str(REPO / "tests" / "system" / "tether")]

from ansible_collections.vic.containers.services.tether.iso import build, builder  # noqa: E402
import test_iso  # noqa: E402  # the test's disks and boot spec: one copy of how a container VM is made

TARGET_MB, TARGET_BOOT_S = 30, 10.0
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


def first_channel_byte(listener, start, found):
    """Thread: accept QEMU's connection and note when the first byte arrives."""
    listener.settimeout(300)
    try:
        connection, _unused = listener.accept()
        with connection:
            connection.settimeout(300)
            if connection.recv(1):
                found["channel"] = time.monotonic() - start
    except OSError:
        pass


def boot_once(built, scratch, index):
    directory = scratch / f"boot-{index}"
    figures = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        start = time.monotonic()
        vm = test_iso._boot(built, directory, listener)  # pylint: disable=protected-access
        watcher = threading.Thread(target=first_channel_byte, args=(listener, start, figures), daemon=True)
        watcher.start()
        log = directory / "output.log"
        try:
            while vm.poll() is None and "output" not in figures and time.monotonic() - start < 300:
                text = log.read_bytes() if log.exists() else b""
                if text and "log" not in figures:
                    figures["log"] = time.monotonic() - start
                if b'"stream": "stdout"' in text:
                    figures["output"] = time.monotonic() - start
                time.sleep(POLL_S)
            watcher.join(timeout=5 if "channel" not in figures else 0)
        finally:
            test_iso._stopped(vm, directory)  # pylint: disable=protected-access
    return figures


def summary(values):
    if not values:
        return "never (n/a)"
    return f"median {statistics.median(values):5.2f} s  (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold build (~1-2 min)")
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
        boots = [boot_once(built, scratch, index) for index in range(options.boots)]
        print(f"QEMU TCG boot, first byte on the log port:     {summary([b['log'] for b in boots if 'log' in b])}")
        print(f"QEMU TCG boot, the process's output (log):     {summary([b['output'] for b in boots if 'output' in b])}")
        print(f"QEMU TCG boot, first byte on the channel:      {summary([b['channel'] for b in boots if 'channel' in b])}"
              f"  (target <= {TARGET_BOOT_S:.0f} s)")
        print(f"load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    finally:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
