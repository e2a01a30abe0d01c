# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Docker's JSON of a container in its restart back-off, of the tether's started report and of the guest's stats
(services/persona/views.py)."""

import json

from ansible_collections.vic.containers.services.persona import views
from ansible_collections.vic.containers.services.portlayer.containers.model import Container, exit_value, parse_time

RECORD = {"id": "a" * 64, "name": "web", "created": "2026-01-01T00:00:00.000000Z",
          "image": {"id": "sha256:" + "b" * 64, "layers": []}, "config": {"Image": "busybox", "Cmd": ["true"]},
          "host_config": {"RestartPolicy": {"Name": "always"}}}


def container(power="poweredOff", **exit_state):
    recorded = json.loads(exit_value("2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", 3, **exit_state))
    return Container("vm-1", {"runtime.powerState": power, "name": "web-aaaaaaaaaaaa"}, RECORD, recorded)


def test_a_container_in_its_back_off_is_restarting_in_ps_and_inspect():
    waiting = container(restart_count=2, restart_due=True)
    row = json.loads(views.row(waiting, restarting=True))
    assert row["State"] == "restarting" and row["Status"].startswith("Restarting (3) ")
    again = json.loads(views.row(waiting))  # the same decoded container, its back-off over
    assert again["State"] == "exited" and again["Status"].startswith("Exited (3) ")
    shown = views.inspect(waiting, "vch", [], restarting=True, restart_count=2)
    assert shown["State"]["Restarting"] and shown["State"]["Running"] and shown["State"]["Status"] == "restarting"
    assert shown["RestartCount"] == 2


def test_inspect_shows_the_tethers_pid_and_start_time():
    running = container("poweredOn")
    shown = views.inspect(running, "vch", [], (42, parse_time("2026-01-01T00:00:05.5Z")))
    assert shown["State"]["Pid"] == 42 and shown["State"]["StartedAt"] == "2026-01-01T00:00:05.500000Z"


def test_guest_stats_are_dockers_shape():
    figures = {"cpu_total_ns": 5, "cpu_system_ns": 100, "online_cpus": 2, "memory_usage": 10, "memory_limit": 20,
               "pids": 3}
    sample = views.guest_stats(container("poweredOn"), figures, views.no_stats())
    assert sample["cpu_stats"]["cpu_usage"]["total_usage"] == 5 and sample["cpu_stats"]["system_cpu_usage"] == 100
    assert sample["cpu_stats"]["online_cpus"] == 2 and sample["precpu_stats"] == views.no_stats()["cpu_stats"]
    assert sample["memory_stats"] == {"usage": 10, "limit": 20, "stats": {}} and sample["pids_stats"] == {"current": 3}
