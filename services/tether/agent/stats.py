# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``docker stats`` figures from the guest's /proc: the container is every process of the tether's pid
namespace but the tether itself."""

import os

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
