# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Loop devices taken by many tethers at once: in the host emulator every VM's tether attaches its disk
files on the host's one set of loop devices, a storm's ten VMs several disks each, beside whatever else
on the host takes loop devices. Every attach gets its own device, and each frees itself when let go."""

import multiprocessing
import os

from ansible_collections.vic.containers.services.tether.agent import disks
from ansible_collections.vic.containers.tools.harness.waiting import until

RACERS, ROUNDS = 32, 20


def _attach(path, start, hold, results):
    start.wait()
    try:
        for _round in range(ROUNDS - 1):    # devices freed and taken all the time, as VMs come and go
            os.close(disks.attach_loop(path, read_only=True)[1])
        device, loop_fd = disks.attach_loop(path, read_only=True)
    except disks.DiskError as exc:
        results.put(("failed", str(exc)))
        hold.wait()
        return
    results.put(("attached", device))
    hold.wait()         # all attached at once: no device may serve two of them
    os.close(loop_fd)


def test_many_tethers_attaching_disks_at_once_each_get_a_device_and_leave_none(tmp_path, kit):
    paths = []
    for index in range(RACERS):
        path = tmp_path / ("disk%d" % index)
        path.write_bytes(b"\0" * 65536)
        paths.append(path)
    context = multiprocessing.get_context("fork")
    start, hold = context.Barrier(RACERS), context.Barrier(RACERS + 1)
    results = context.Queue()
    racers = [context.Process(target=_attach, args=(str(path), start, hold, results)) for path in paths]
    for racer in racers:
        racer.start()
    try:
        outcomes = [results.get(timeout=120) for _racer in racers]
        hold.wait(timeout=60)
    finally:
        for racer in racers:
            racer.join(timeout=60)
            if racer.is_alive():
                racer.kill()
                racer.join()
    failed = [sentence for kind, sentence in outcomes if kind == "failed"]
    devices = [device for kind, device in outcomes if kind == "attached"]
    assert failed == []
    assert len(set(devices)) == RACERS, sorted(devices)
    for path in paths:
        until(lambda path=path: not kit.loops_of(path), "the loop device of %s to clear itself" % path)
