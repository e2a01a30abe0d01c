# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The emulator's records: what a dead emulator left is cleared by the next one, a living one's never."""

import json
import os
import subprocess

from ansible_collections.vic.containers.services.emulator import records
from ansible_collections.vic.containers.tools.harness.waiting import until


def _finished_pid():
    probe = subprocess.Popen(["true"])
    probe.wait()
    return probe.pid


def _vm_process(base):
    # A VM process as the emulator starts one: its environment names its boot's run directory under base.
    rundir = os.path.join(base, "vm-1")
    os.makedirs(rundir, exist_ok=True)
    return subprocess.Popen(["sleep", "300"], env=dict(os.environ, **{records.MARKER_ENV: rundir}))


def test_the_run_directory_of_a_dead_emulator_is_cleared_and_its_vm_processes_killed(tmp_path):
    dead = records.make_base(str(tmp_path))
    with open(os.path.join(dead, records.RECORD), "w", encoding="utf-8") as record:
        json.dump({"pid": _finished_pid(), "start": 1}, record)
    orphan = _vm_process(dead)
    try:
        until(lambda: records.marked_processes(dead) == [orphan.pid], "the VM process to start")
        assert records.clear_previous(str(tmp_path)) == [dead]
        assert orphan.wait(10) == -9
        assert not os.path.exists(dead)
    finally:
        orphan.kill()
        orphan.wait()


def test_a_living_emulators_run_directory_and_what_has_no_record_are_left_alone(tmp_path):
    alive = records.make_base(str(tmp_path))        # this process's record: a living emulator
    foreign = tmp_path / (records.PREFIX + "isos-old")
    foreign.mkdir()                                  # no record: not an emulator's run directory
    running = _vm_process(alive)
    try:
        assert records.clear_previous(str(tmp_path)) == []
        assert running.poll() is None and os.path.isdir(alive) and foreign.is_dir()
        assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(alive), foreign.name])
    finally:
        running.kill()
        running.wait()
