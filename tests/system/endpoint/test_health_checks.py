# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Health checks and the restart policies at an endpoint start, as dockerd has them, end to end: the docker CLI
-> the endpoint -> vcsim -> the host emulator running the real tether, which runs each probe in the container."""

import json
import time

import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, docker_cli, running_vch
from ansible_collections.vic.containers.tools.harness.waiting import until


@pytest.fixture(scope="module")
def hc(vcsim, tmp_path_factory, registries, emulator):  # pylint: disable=redefined-outer-name
    found = running_vch(vcsim, "hc", tmp_path_factory.mktemp("certs") / "hc", registries, emulator)
    yield found
    found["endpoint"].stop()


def logs(vch):
    return "endpoint:\n%s\nemulator:\n%s" % (vch["endpoint"].log()[-3000:], vch["emulator"].log()[-2000:])


def docker(vch, *args):
    ran = docker_cli(vch, *args)
    assert ran.returncode == 0, (args, ran.stderr, logs(vch))
    return ran.stdout


def state(vch, name):
    return json.loads(docker(vch, "inspect", name))[0]["State"]


def health_of(vch, name):
    return (state(vch, name).get("Health") or {}).get("Status")


def wait_health(vch, name, status):
    until(lambda: health_of(vch, name) == status, lambda: "%s to be %s\n%s" % (name, status, logs(vch)), timeout=60)


def test_a_probe_makes_a_container_unhealthy_then_healthy_and_ps_events_and_filters_say_so(hc):
    since = str(int(time.time()) - 1)
    docker(hc, "run", "-d", "--name", "probed", "--health-cmd", "test -e /tmp/ok", "--health-interval", "1s",
           "--health-retries", "2", hc["image"], "sleep", "600")
    try:
        assert health_of(hc, "probed") in (None, "starting")
        wait_health(hc, "probed", "unhealthy")
        shown = state(hc, "probed")["Health"]
        assert shown["FailingStreak"] >= 2 and all(entry["ExitCode"] == 1 for entry in shown["Log"])
        assert "(unhealthy)" in docker(hc, "ps", "--filter", "name=probed", "--format", "{{.Status}}")
        docker(hc, "exec", "probed", "sh", "-c", ": > /tmp/ok")
        wait_health(hc, "probed", "healthy")
        shown = state(hc, "probed")["Health"]
        assert shown["FailingStreak"] == 0 and shown["Log"][-1]["ExitCode"] == 0 and len(shown["Log"]) <= 5
        assert docker(hc, "ps", "--filter", "health=healthy", "--format", "{{.Names}}").split() == ["probed"]
        assert "probed" not in docker(hc, "ps", "--filter", "health=none", "--format", "{{.Names}}")
        assert docker(hc, "ps", "--filter", "name=probed", "--format", "{{.Status}}").strip().endswith("(healthy)")
        seen = docker(hc, "events", "--since", since, "--until", str(int(time.time()) + 1), "--filter",
                      "container=probed", "--filter", "event=health_status", "--format", "{{.Action}}").split("\n")
        assert [line for line in seen if line] == ["health_status: unhealthy", "health_status: healthy"], seen
    finally:
        docker(hc, "rm", "-f", "probed")


def test_a_probe_that_outlives_its_timeout_fails_with_dockerds_words(hc):
    docker(hc, "run", "-d", "--name", "slow", "--health-cmd", "sleep 30", "--health-interval", "1s",
           "--health-timeout", "1s", "--health-retries", "1", hc["image"], "sleep", "600")
    try:
        wait_health(hc, "slow", "unhealthy")
        entry = state(hc, "slow")["Health"]["Log"][0]
        assert entry["ExitCode"] == -1 and entry["Output"] == "Health check exceeded timeout (1s)", entry
    finally:
        docker(hc, "rm", "-f", "slow")


def test_no_healthcheck_means_no_health(hc):
    docker(hc, "run", "-d", "--name", "plain", "--no-healthcheck", hc["image"], "sleep", "600")
    try:
        assert "Health" not in state(hc, "plain")
        assert docker(hc, "ps", "--filter", "health=none", "--format", "{{.Names}}").split() == ["plain"]
        refused = docker_cli(hc, "run", "-d", "--health-cmd", "true", "--health-interval", "1us", hc["image"], "true")
        assert refused.returncode != 0 and "Interval in Healthcheck cannot be less than 1ms" in refused.stderr
    finally:
        docker(hc, "rm", "-f", "plain")


def test_an_endpoint_start_is_a_daemon_restart_for_restart_policies_and_probes_go_on(hc):
    for name, policy in (("keeper", "always"), ("resting", "unless-stopped")):
        docker(hc, "run", "-d", "--name", name, "--restart", policy, hc["image"], "sleep", "600")
        docker(hc, "stop", "-t", "1", name)
    docker(hc, "run", "-d", "--name", "watched", "--health-cmd", "true", "--health-interval", "1s", hc["image"],
           "sleep", "600")
    try:
        wait_health(hc, "watched", "healthy")
        old = hc["endpoint"]
        old.kill()
        hc["endpoint"] = Endpoint(hc["sim"], "hc", port=old.port, tether_port=old.tether_port)
        # As dockerd after a restart: "always" runs a stopped container again, "unless-stopped" does not.
        until(lambda: state(hc, "keeper")["Running"], lambda: "keeper to run again\n" + logs(hc), timeout=90)
        assert json.loads(docker(hc, "inspect", "keeper"))[0]["RestartCount"] == 1
        assert state(hc, "resting")["Status"] == "exited"
        # Health is the endpoint's memory, as dockerd's: the new endpoint probes again from the tether's report.
        wait_health(hc, "watched", "healthy")
    finally:
        for name in ("keeper", "resting", "watched"):
            docker(hc, "rm", "-f", name)
    until(lambda: hc["emulator"].processes() == [], lambda: "the containers' processes to end\n" + logs(hc))
