"""An endpoint killed while its containers ran, whose container VMs went off meanwhile with no exit line in
their logs after the run's start line (powered off in vSphere, a host crash): at its next start each shows as
dockerd's restore shows a container whose task is gone (exited, 255, finished at the restore), restart policies
and --rm applied, the record written on the VM so a later start agrees. And a start whose power-on failed
says no run began. The docker CLI -> the endpoint -> vcsim; the VMs' logs are what their tethers write (a start
line and output), uploaded as the log port would write them; the VMs are powered off by an administrator's session."""

import datetime
import json

import pytest

from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore, tasks
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, docker_cli, running_vch
from ansible_collections.vic.containers.tools.harness.waiting import until
from test_containers import container_vms, run, session_of, vim


@pytest.fixture(scope="module")
def fcr(vcsim, tmp_path_factory, registries):
    vch = running_vch(vcsim, "fcr", tmp_path_factory.mktemp("certs") / "fcr", registries)
    yield vch
    vcsim.clear_faults()
    vch["endpoint"].stop()


def _restart_endpoint(vch):
    old = vch["endpoint"]
    old.kill()
    vch["endpoint"] = Endpoint(vch["sim"], "fcr", port=old.port, tether_port=old.tether_port)


def _inspect(vch, ref):
    return json.loads(run(vch, "inspect", ref))[0]


def _moment(text):
    return datetime.datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00")


def test_a_run_that_vanished_while_the_endpoint_was_down_is_exited_255_as_dockerd_restores_it(fcr):
    sim = fcr["sim"]
    gone = run(fcr, "run", "-d", "--name", "vanished", fcr["image"], "sleep", "600")
    kept = run(fcr, "run", "-d", "--name", "kept", "--restart", "always", fcr["image"], "sleep", "600")
    temporary = run(fcr, "run", "-d", "--name", "temporary", "--rm", fcr["image"], "sleep", "600")
    skewed = run(fcr, "run", "-d", "--name", "skewed", fcr["image"], "sleep", "600")
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    vms = container_vms(sim)
    fcr["endpoint"].kill()
    killed_at = datetime.datetime.now(datetime.timezone.utc)
    datastore_name = fcr["summary"]["image_store"].split("] ", 1)[0].lstrip("[")
    lines = [{"start": True, "time": started}, {"log": "up\n", "stream": "stdout", "time": started}]
    # A guest whose clock is ahead of the endpoint's (a year, here).
    ahead = [{"start": True, "time": "%d%s" % (int(started[:4]) + 1, started[4:])}]
    with session_of(sim) as admin:
        for cid, name, log in ((gone, "vanished", lines), (kept, "kept", lines), (temporary, "temporary", lines),
                               (skewed, "skewed", ahead)):
            datastore.upload(admin, "DC0", datastore_name, "%s-%s/output.log" % (name, cid[:12]),
                             "".join(json.dumps(line) + "\n" for line in log).encode())
        tasks.wait(admin, {vim.VirtualMachine(vms[cid]["vm"].moid, admin.stub).PowerOffVM_Task(): cid
                           for cid in (gone, kept, temporary, skewed)})
    old = fcr["endpoint"]
    fcr["endpoint"] = Endpoint(sim, "fcr", port=old.port, tether_port=old.tether_port)
    until(lambda: container_vms(sim)[gone]["exit"].get("code") == 255,
          lambda: "the vanished run's record; the endpoint's log:\n" + fcr["endpoint"].log()[-3000:], timeout=60)
    state = _inspect(fcr, "vanished")["State"]
    assert (state["Status"], state["Running"], state["ExitCode"]) == ("exited", False, 255), state
    # The run's start as its start line has it; the end: the restore's time.
    assert _moment(state["StartedAt"]) == _moment(started), state
    assert _moment(state["FinishedAt"]) > killed_at, state
    assert run(fcr, "logs", "vanished") == "up"
    assert run(fcr, "ps", "-a", "--filter", "name=vanished", "--format", "{{.Status}}").startswith("Exited (255)")
    # always: run again, as dockerd's restore runs it; --rm without a policy: removed, as dockerd's restore does.
    until(lambda: container_vms(sim)[kept]["vm"].get("runtime.powerState") == "poweredOn",
          lambda: "kept to run again; the endpoint's log:\n" + fcr["endpoint"].log()[-3000:], timeout=60)
    assert _inspect(fcr, "kept")["RestartCount"] == 1
    until(lambda: temporary not in container_vms(sim), "the --rm container to be removed", timeout=60)
    assert "temporary" not in run(fcr, "ps", "-a", "--format", "{{.Names}}").split()
    # The record says it: the next start shows the same end and makes no other (also when the guest's clock
    # was ahead: the end recorded is never before the start line).
    until(lambda: container_vms(sim)[skewed]["exit"].get("code") == 255, "the skewed run's record", timeout=60)
    shown = {name: _inspect(fcr, name)["State"] for name in ("vanished", "skewed")}
    _restart_endpoint(fcr)
    assert {name: _inspect(fcr, name)["State"] for name in ("vanished", "skewed")} == shown
    run(fcr, "rm", "-f", "kept", "skewed")


def test_a_start_whose_power_on_failed_began_no_run(fcr):
    sim = fcr["sim"]
    cid = run(fcr, "create", "--name", "unstarted", fcr["image"], "sleep", "600")
    sim.inject_fault("PowerOnVM_Task")
    try:
        failed = docker_cli(fcr, "start", "unstarted")
    finally:
        sim.clear_faults()
    assert failed.returncode != 0 and "injected fault in PowerOnVM_Task" in failed.stderr, failed.stderr
    assert container_vms(sim)[cid]["exit"] == {}
    _restart_endpoint(fcr)
    assert run(fcr, "ps", "-a", "--filter", "name=unstarted", "--format", "{{.Status}}") == "Created"
    run(fcr, "start", "unstarted")
    assert _inspect(fcr, "unstarted")["State"]["Running"] is True


def test_a_run_rm_whose_start_failed_is_removed_as_dockerd_removes_it(fcr):
    # The docker CLI waits for a --rm container whose start failed to be removed: dockerd removes it.
    sim = fcr["sim"]
    before = set(container_vms(sim))
    sim.inject_fault("PowerOnVM_Task")
    try:
        failed = docker_cli(fcr, "run", "--rm", "--name", "short-lived", fcr["image"], "true", timeout=60)
    finally:
        sim.clear_faults()
    assert failed.returncode != 0 and "injected fault in PowerOnVM_Task" in failed.stderr, failed.stderr
    assert set(container_vms(sim)) == before
    assert "short-lived" not in run(fcr, "ps", "-a", "--format", "{{.Names}}").split()
