"""The endpoint's vSphere session: logged in again when vSphere ends it (the live cache resynchronised, a stale
view refused rather than served), and taken back after a kill -9 instead of one more left open each restart.
The docker CLI -> the endpoint -> vcsim, whose sessions and faults are driven from the test."""

import json
import os

import pytest

from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli
from ansible_collections.vic.containers.tools.harness.waiting import until
from test_containers import container_vms, run, session_of, vim


def _endpoint(sim, state_dir, old=None):
    # The endpoint's own folder, as systemd's StateDirectory= gives it.
    os.environ["STATE_DIRECTORY"] = str(state_dir)
    try:
        if old is None:
            return Endpoint(sim, "fcs")
        return Endpoint(sim, "fcs", port=old.port, tether_port=old.tether_port)
    finally:
        del os.environ["STATE_DIRECTORY"]


@pytest.fixture(scope="module")
def fcs(vcsim, tmp_path_factory, registries):
    certs = tmp_path_factory.mktemp("certs") / "fcs"
    summary = deploy(vcsim, "fcs", certs, registry=registries.trusted())
    state_dir = tmp_path_factory.mktemp("endpoint-state")
    vch = {"summary": summary, "certs": certs, "sim": vcsim, "state_dir": state_dir,
           "endpoint": _endpoint(vcsim, state_dir)}
    vch["host"] = "tcp://127.0.0.1:%d" % vch["endpoint"].port
    vch["image"] = registries.get("anonymous").host + "/library/busybox"
    run(vch, "pull", vch["image"])
    yield vch
    vcsim.clear_faults()
    vch["endpoint"].stop()
    assert not (state_dir / "vsphere-session-fcs").exists(), "a stopped endpoint logs out and forgets its cookie"


def _sessions(sim):
    """The keys of the sessions vSphere holds, but the one that asks."""
    with session_of(sim) as admin:
        own = admin.content.sessionManager.currentSession.key
        return {s.key for s in admin.content.sessionManager.sessionList} - {own}


def _failed(result):
    return result if result.returncode else None


def _endpoint_session(vch):
    cookie = (vch["state_dir"] / "vsphere-session-fcs").read_text()
    return cookie.split(";")[0].split("=", 1)[1].strip('"')


def test_a_terminated_session_is_logged_in_again_and_the_cache_resynchronised(fcs):
    sim = fcs["sim"]
    running = run(fcs, "run", "-d", "--name", "up", fcs["image"], "sleep", "600")
    doomed = run(fcs, "create", "--name", "doomed", fcs["image"], "true")
    vms = container_vms(sim)
    before = _sessions(sim)
    (key,) = before  # the endpoint's: the deployment logged out
    # The feed stops following vSphere (its waits fail) while an administrator ends the endpoint's
    # session, powers one container VM off and unregisters another.
    sim.inject_fault("WaitForUpdatesEx", count=100000)
    try:
        with session_of(sim) as admin:
            admin.content.sessionManager.TerminateSession([key])
            tasks.wait(admin, {vim.VirtualMachine(vms[running]["vm"].moid, admin.stub).PowerOffVM_Task(): "off"})
            # Unregistered, not destroyed: a Destroy would take the image's shared layer disks with it.
            vim.VirtualMachine(vms[doomed]["vm"].moid, admin.stub).UnregisterVM()
        # A view the endpoint cannot keep up to date is refused, not served.
        refused = until(lambda: _failed(docker_cli(fcs, "ps", "-a")), "docker ps to be refused while the feed is down",
                        timeout=60)
        assert "cannot be read from vSphere" in refused.stderr, refused.stderr
    finally:
        sim.clear_faults()

    def caught_up():
        shown = docker_cli(fcs, "ps", "-a", "--format", "{{.Names}} {{.Status}}")
        return shown.stdout if shown.returncode == 0 and "doomed" not in shown.stdout \
            and "up Exited (137)" in shown.stdout else None
    until(caught_up, lambda: "docker ps to show what changed meanwhile (%s); log:\n%s"
          % (docker_cli(fcs, "ps", "-a").stdout, fcs["endpoint"].log()[-3000:]),
          timeout=60)
    # Changes work again (the exit of "up" was recorded on its VM, in the new session), with one session.
    assert container_vms(sim)[running]["exit"]["code"] == 137
    run(fcs, "create", "--name", "after", fcs["image"], "true")
    after = _sessions(sim)
    assert key not in after and len(after) == 1, (before, after)
    assert _endpoint_session(fcs) in after


def test_an_endpoint_killed_and_started_again_takes_its_session_back(fcs):
    sim = fcs["sim"]
    before = _sessions(sim)
    for _round in range(2):
        old = fcs["endpoint"]
        old.kill()
        fcs["endpoint"] = _endpoint(sim, fcs["state_dir"], old)
        run(fcs, "ps", "-a")
    assert _sessions(sim) == before


def test_a_kept_cookie_of_an_ended_session_is_replaced_by_a_login(fcs):
    sim = fcs["sim"]
    old = fcs["endpoint"]
    old.kill()
    key = _endpoint_session(fcs)
    with session_of(sim) as admin:
        admin.content.sessionManager.TerminateSession([key])
    before = _sessions(sim)
    fcs["endpoint"] = _endpoint(sim, fcs["state_dir"], old)
    run(fcs, "ps", "-a")
    after = _sessions(sim)
    assert len(after) == len(before) + 1 and _endpoint_session(fcs) in after


def test_a_single_container_read_while_the_feed_is_stale_is_read_from_vsphere_or_refused(fcs):
    sim = fcs["sim"]
    seen = run(fcs, "run", "-d", "--name", "seen", fcs["image"], "sleep", "600")
    goner = run(fcs, "create", "--name", "goner", fcs["image"], "true")
    vms = container_vms(sim)
    # The feed stops following vSphere; then an administrator powers one container VM off and unregisters
    # another: what the endpoint last saw of them is stale.
    sim.inject_fault("WaitForUpdatesEx", count=100000)
    try:
        # Once the feed has failed for a while (its wait under way when the fault was set has ended).
        until(lambda: _failed(docker_cli(fcs, "ps", "-a")), "docker ps to be refused while the feed is down",
              timeout=60)
        with session_of(sim) as admin:
            tasks.wait(admin, {vim.VirtualMachine(vms[seen]["vm"].moid, admin.stub).PowerOffVM_Task(): "off"})
            vim.VirtualMachine(vms[goner]["vm"].moid, admin.stub).UnregisterVM()
        # inspect (and every other read of one container) reads it from vSphere: off, and gone.
        assert json.loads(run(fcs, "inspect", "seen"))[0]["State"]["Running"] is False
        # The power-off it read is recorded as any power-off from outside is (its exit from the log, else 137).
        until(lambda: json.loads(run(fcs, "inspect", "seen"))[0]["State"]["Status"] == "exited",
              "the exit of seen to be recorded", timeout=60)
        missing = docker_cli(fcs, "container", "inspect", "goner")
        assert missing.returncode != 0 and "No such container: goner" in missing.stderr, missing.stderr
        # When vSphere cannot be read at all, the read is refused as docker ps is, never served stale.
        sim.inject_fault("RetrievePropertiesEx", count=100000)
        refused = docker_cli(fcs, "inspect", "seen")
        assert refused.returncode != 0 and "cannot be read from vSphere" in refused.stderr, refused.stderr
    finally:
        sim.clear_faults()
    until(lambda: docker_cli(fcs, "ps", "-a").returncode == 0, "docker ps to be served again", timeout=60)
    assert "goner" not in run(fcs, "ps", "-a", "--format", "{{.Names}}").split()
