# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``docker stats`` figures and ``docker top`` rows from the guest's /proc: the container is every process
of the tether's pid namespace but the tether itself."""

import os
import time

from ansible_collections.vic.containers.services.tether import protocol

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_NS = 1_000_000_000


def process_figures(stat_text):
    """``(utime + stime in clock ticks, rss in pages)`` of one /proc/PID/stat line."""
    fields = stat_text[stat_text.rindex(")") + 2:].split()     # the command name may hold spaces and parens
    return int(fields[11]) + int(fields[12]), int(fields[21])


def system_cpu_ticks(proc_stat_text):
    """The guest's whole CPU time in clock ticks: the sum of /proc/stat's ``cpu`` line."""
    for line in proc_stat_text.splitlines():
        if line.startswith("cpu "):
            return sum(int(value) for value in line.split()[1:])
    return 0


def mem_total(meminfo_text):
    for line in meminfo_text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _read(path):
    with open(path, encoding="ascii", errors="replace") as file:
        return file.read()


def guest_stats(proc="/proc", own_pid=None):
    """The figures of ``protocol.guest_stats`` for the processes under ``proc`` other than ``own_pid``."""
    own = str(own_pid or os.getpid())
    ticks = pages = count = 0
    for name in os.listdir(proc):
        if not name.isdigit() or name == own:
            continue
        try:
            cpu, rss = process_figures(_read(os.path.join(proc, name, "stat")))
        except (OSError, ValueError, IndexError):
            continue    # it ended while we looked
        ticks, pages, count = ticks + cpu, pages + rss, count + 1
    return protocol.guest_stats(
        cpu_total_ns=ticks * _NS // _TICKS, cpu_system_ns=system_cpu_ticks(_read(os.path.join(proc, "stat"))) * _NS // _TICKS,
        online_cpus=os.sysconf("SC_NPROCESSORS_ONLN"), memory_usage=pages * _PAGE,
        memory_limit=mem_total(_read(os.path.join(proc, "meminfo"))), pids=count)


def _stat_fields(stat_text):
    # The command name may hold spaces and parens: the fields start after its last ")".
    return stat_text[stat_text.rindex(")") + 2:].split()


def _tty_name(tty_nr):
    major, minor = (tty_nr >> 8) & 0xfff, (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00)
    if 136 <= major <= 143:
        return "pts/%d" % ((major - 136) * 256 + minor)
    if major == 4 and minor >= 64:
        return "ttyS%d" % (minor - 64)
    return "?"


def _clock(seconds):
    days, rest = divmod(int(seconds), 86400)
    text = "%02d:%02d:%02d" % (rest // 3600, rest % 3600 // 60, rest % 60)
    return "%d-%s" % (days, text) if days else text


def _uptime(proc):
    return float(_read(os.path.join(proc, "uptime")).split()[0])


def process_rows(users, proc="/proc", own_pid=None, now=None):
    """``ps -ef``'s rows (``protocol.TOP_TITLES``) of the processes under ``proc`` other than ``own_pid``;
    ``users`` maps uids to the container's user names."""
    own = str(own_pid or os.getpid())
    now = time.time() if now is None else now
    uptime = _uptime(proc)
    rows = []
    for name in sorted((n for n in os.listdir(proc) if n.isdigit() and n != own), key=int):
        try:
            fields = _stat_fields(_read(os.path.join(proc, name, "stat")))
            status = _read(os.path.join(proc, name, "status"))
            with open(os.path.join(proc, name, "cmdline"), "rb") as file:
                argv = file.read().rstrip(b"\0").split(b"\0")
        except (OSError, ValueError, IndexError):
            continue    # it ended while we looked
        uid = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:")), 0)
        cpu_seconds = (int(fields[11]) + int(fields[12])) / _TICKS
        running_for = max(uptime - int(fields[19]) / _TICKS, 1e-9)
        started = time.localtime(now - running_for)
        stime = time.strftime("%H:%M", started) if running_for < 86400 else time.strftime("%b%d", started)
        command = b" ".join(argv).decode("utf-8", "replace") if argv != [b""] else "[%s]" % _comm(name, proc)
        rows.append([users.get(uid, str(uid)), name, fields[1], str(min(int(cpu_seconds * 100 / running_for), 99)),
                     stime, _tty_name(int(fields[4])), _clock(cpu_seconds), command])
    return rows


def _comm(pid, proc):
    return _read(os.path.join(proc, pid, "comm")).strip()
