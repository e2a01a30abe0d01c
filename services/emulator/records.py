# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The emulator's own records, so that a killed emulator (kill -9) leaves nothing that outlives the next one.

Two parts:

* every VM process it starts (``unshare`` of the namespace mode, QEMU), and each process
  holding a port group's network namespace (``portgroups.py``), is started through
  ``setpriv --pdeathsig KILL``: the kernel kills it when the emulator dies, and with it
  the VM's pid namespace (its init dies with ``unshare --kill-child``), mounts and loop
  devices (AUTOCLEAR), or the port group's bridge;
* its run directory (``vic-emulator-*``, every boot's files, the unpacked ISOs) holds
  ``emulator.json``: its pid and the pid's start time. At start an emulator clears
  the run directories whose recorded emulator is gone: it kills (SIGKILL, by pid)
  what still carries that directory in its ``VIC_EMULATOR_RUN`` environment and
  removes the directory. A directory without a record, or whose emulator lives (its
  pid with the same start time: a reused pid is not it), is never touched: other
  emulators may run on the same machine.
"""

import json
import logging
import os
import shutil
import signal
import tempfile
import time

LOG = logging.getLogger("vic.emulator.records")
# Prefix of a VM process's command line: SIGKILL when the thread that started it (the emulator's event loop
# thread, which lives as long as the emulator) ends.
PARENT_DEATH = ("setpriv", "--pdeathsig", "KILL", "--")
MARKER_ENV = "VIC_EMULATOR_RUN"     # in every VM process's environment: the boot's run directory
PREFIX = "vic-emulator-"
RECORD = "emulator.json"
_GONE_WAIT = 10.0                   # seconds for killed processes to be reaped by their parents (or init)


def make_base(parent=None):
    """A new run directory under ``parent`` (the temporary directory), with this process's record in it.

    Made under a hidden name and renamed once the record is in: a directory named
    ``vic-emulator-*`` always has its record, so another emulator's ``clear_previous``
    never takes a half-made one for a dead emulator's."""
    parent = parent or tempfile.gettempdir()
    making = tempfile.mkdtemp(prefix="." + PREFIX, dir=parent)
    with open(os.path.join(making, RECORD), "w", encoding="utf-8") as record:
        json.dump({"pid": os.getpid(), "start": process_start(os.getpid())}, record)
    base = os.path.join(parent, os.path.basename(making)[1:])
    os.rename(making, base)
    return base


def remove_base(base):
    """Remove a run directory (the emulator's end, or what a dead one left)."""
    shutil.rmtree(base, ignore_errors=True)


def clear_previous(parent=None):
    """Kill the processes and remove the run directories of emulators that died without cleaning up; the
    directories cleared."""
    parent = parent or tempfile.gettempdir()
    cleared = []
    for name in sorted(os.listdir(parent)):
        base = os.path.join(parent, name)
        if not name.startswith(PREFIX) or not _dead_emulator(base):
            continue
        pids = marked_processes(base)
        LOG.warning("clearing %s, left by an emulator that died: killing %d VM processes", base, len(pids))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + _GONE_WAIT
        while marked_processes(base) and time.monotonic() < deadline:
            time.sleep(0.05)
        remove_base(base)
        cleared.append(base)
    return cleared


def marked_processes(base):
    """Pids of the processes whose environment marks them as VM processes of run directory ``base``."""
    marker = ("%s=%s" % (MARKER_ENV, base)).encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as environ:
                items = environ.read().split(b"\0")
        except OSError:
            continue
        if any(item == marker or item.startswith(marker + b"/") for item in items):
            pids.append(int(entry))
    return pids


def process_start(pid):
    """The start time of process ``pid`` (clock ticks since boot), or None when there is no such process."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii", errors="replace") as stat:
            text = stat.read()
    except OSError:
        return None
    return int(text.rsplit(")", 1)[1].split()[19])  # field 22; the command name may hold spaces and ')'


def _dead_emulator(base):
    try:
        with open(os.path.join(base, RECORD), encoding="utf-8") as record:
            recorded = json.load(record)
        pid, start = int(recorded["pid"]), recorded["start"]
    except (OSError, ValueError, KeyError, TypeError):
        return False    # not an emulator's run directory, or not one this code made: not ours to judge
    return process_start(pid) != start
