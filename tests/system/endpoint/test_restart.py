# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Restart policies, started reports, stats from the guest and the log's exit line, end to end: the docker CLI
and SDK -> the endpoint -> vSphere (vcsim) and a tether peer booted for each power-on of a container VM."""

import json
import threading

import docker
import pytest

from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore, tasks
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli, sdk
from ansible_collections.vic.containers.tools.harness.tether_peer import TetherPeer
from ansible_collections.vic.containers.tools.harness.waiting import until
from test_container_streams import PeerLoop
from test_containers import container_vms, run, session_of, vim


class Booter(PeerLoop):
    """Plays the host emulator for chosen containers: a fresh tether peer (from the VM's boot spec) at each
    power-on of their VMs, stopped once the VM is off. ``boots[cid]`` counts the peers started."""

    def __init__(self, vch):
        super().__init__()
        self.vch = vch
        self.watched = {}
        self.boots = {}
        self.stopping = threading.Event()
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()

    def watch(self, cid):
        self.boots.setdefault(cid, 0)
        self.watched.setdefault(cid, None)

    def _watch(self):
        # A run ends with its exit recorded before the next power-on: a VM that is on with an exit record
        # newer than the one its peer booted with is on for a new run (a restart can be quicker than a poll).
        while not self.stopping.wait(0.1):
            if not self.watched:
                continue
            vms = container_vms(self.vch["sim"])
            for cid, booted in list(self.watched.items()):
                vm = vms.get(cid)
                on = vm is not None and vm["vm"].get("runtime.powerState") == "poweredOn"
                ended = vm["exit"].get("finished_at") if vm is not None else None
                if booted is not None and (not on or booted[1] != ended):
                    self.run(booted[0].stop())
                    self.watched[cid] = booted = None
                if on and booted is None:
                    self.watched[cid] = (self.run(self._boot(vm["boot"])), ended)
                    self.boots[cid] += 1

    async def _boot(self, spec):
        peer = TetherPeer.from_boot_spec(spec, wait_for_attach=False)
        await peer.start("127.0.0.1", self.vch["endpoint"].tether_port)
        return peer

    def close(self):
        self.stopping.set()
        self.watcher.join(10)
        self.peers.extend(booted[0] for booted in self.watched.values() if booted is not None)
        super().close()


@pytest.fixture(scope="module")
def rs(vcsim, tmp_path_factory, registries):
    certs = tmp_path_factory.mktemp("certs") / "rs"
    summary = deploy(vcsim, "rs", certs, registry=registries.trusted())
    vch = {"summary": summary, "certs": certs, "sim": vcsim, "endpoint": Endpoint(vcsim, "rs")}
    vch["host"] = "tcp://127.0.0.1:%d" % vch["endpoint"].port
    vch["image"] = registries.get("anonymous").host + "/library/busybox"
    run(vch, "pull", vch["image"])
    vch["booter"] = Booter(vch)
    yield vch
    vch["booter"].close()
    vch["endpoint"].stop()


def inspect(vch, ref):
    return json.loads(run(vch, "inspect", ref))[0]


def test_on_failure_restarts_up_to_its_count_with_the_back_off(rs):
    cid = run(rs, "create", "--restart", "on-failure:2", "--name", "flaky", rs["image"], "sh", "-c", "exit 1")
    rs["booter"].watch(cid)
    run(rs, "start", "flaky")
    until(lambda: rs["booter"].boots[cid] == 3 and inspect(rs, "flaky")["State"]["Status"] == "exited",
          lambda: "the third run of flaky to end (%d boots); the endpoint's log:\n%s"
          % (rs["booter"].boots[cid], rs["endpoint"].log()[-4000:]), timeout=60)
    shown = inspect(rs, "flaky")
    assert shown["RestartCount"] == 2 and shown["State"]["ExitCode"] == 1 and not shown["State"]["Restarting"]
    recorded = container_vms(rs["sim"])[cid]["exit"]
    assert recorded["restart_count"] == 2 and recorded["restart_due"] is False and recorded["code"] == 1
    log = rs["endpoint"].log()
    assert "restart 1 in 0.1s" in log and "restart 2 in 0.2s" in log, log[-3000:]


def test_always_restarts_until_docker_stop(rs):
    cid = run(rs, "run", "-d", "--restart", "always", "--name", "forever", rs["image"], "sh", "-c", "exit 3")
    rs["booter"].watch(cid)
    until(lambda: inspect(rs, "forever")["RestartCount"] >= 2,
          lambda: "forever to be restarted twice; the endpoint's log:\n" + rs["endpoint"].log()[-4000:], timeout=60)
    run(rs, "stop", "-t", "1", "forever")
    shown = inspect(rs, "forever")
    assert not shown["State"]["Running"] and not shown["State"]["Restarting"]
    recorded = container_vms(rs["sim"])[cid]["exit"]
    assert recorded["stopped"] is True and recorded["restart_due"] is False
    run(rs, "rm", "forever")  # an endpoint start would run it again, as a daemon restart does


def test_policies_are_checked_as_dockerd_does_and_docker_update_changes_them(rs):
    client = sdk(rs)
    try:
        for policy, extra, message in (
                ({"Name": "bogus"}, {}, "invalid restart policy: unknown policy 'bogus'"),
                ({"Name": "always", "MaximumRetryCount": 3}, {},
                 "maximum retry count can only be used with 'on-failure'"),
                ({"Name": "always"}, {"auto_remove": True}, "Conflicting options: --restart and --rm")):
            config = client.api.create_host_config(restart_policy=policy, **extra)
            with pytest.raises(docker.errors.APIError) as refused:
                client.api.create_container(rs["image"], "true", host_config=config)
            assert refused.value.status_code == 400 and message in refused.value.explanation
    finally:
        client.close()
    run(rs, "create", "--name", "later", rs["image"], "true")
    run(rs, "update", "--restart", "on-failure:4", "later")
    assert inspect(rs, "later")["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 4}
    # Memory and CPUs are the VM's size (test_fid_answers_api.py); cgroup limits a VM has none of.
    refused = docker_cli(rs, "update", "--cpu-shares", "512", "later")
    assert refused.returncode != 0 and "not supported" in refused.stderr


def test_started_gives_pid_and_started_at_and_stats_come_from_the_guest(rs):
    cid = run(rs, "run", "-d", "--name", "busy", rs["image"], "sleep", "600")
    rs["booter"].watch(cid)
    until(lambda: inspect(rs, "busy")["State"]["Pid"], "the tether's started report")
    peer = rs["booter"].watched[cid][0]
    shown = inspect(rs, "busy")
    assert shown["State"]["Pid"] == peer.primary.pid and shown["State"]["StartedAt"] == peer.primary.started_at
    client = sdk(rs)
    try:
        sample = client.api.stats(cid, stream=False)
        samples = client.api.stats(cid, stream=True, decode=True)
        first, second = next(samples), next(samples)
        samples.close()
    finally:
        client.close()
    # Streaming: one a second, each counting from the one before (docker stats' CPU % is their difference).
    assert second["precpu_stats"] == first["cpu_stats"] and second["preread"] == first["read"]
    assert second["cpu_stats"]["system_cpu_usage"] > first["cpu_stats"]["system_cpu_usage"]
    assert sample["pids_stats"] == {"current": 1} and sample["memory_stats"]["usage"] > 0
    assert sample["cpu_stats"]["system_cpu_usage"] > 0 and sample["cpu_stats"]["online_cpus"] >= 1
    shown = run(rs, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "busy")
    assert shown == "busy 1"
    run(rs, "rm", "-f", "busy")


def test_a_vm_powered_off_outside_takes_its_exit_code_from_the_logs_exit_line(rs):
    cid = run(rs, "run", "-d", "--name", "halted", rs["image"], "sleep", "600")
    vm = container_vms(rs["sim"])[cid]["vm"]
    datastore_name = rs["summary"]["image_store"].split("] ", 1)[0].lstrip("[")
    lines = [{"log": "bye\n", "stream": "stdout", "time": "2099-01-01T00:00:00.5Z"},
             {"exit": 42, "time": "2099-01-01T00:00:01.25Z"}]
    with session_of(rs["sim"]) as session:
        # What the tether writes last before it halts the VM (here without telling the endpoint).
        datastore.upload(session, "DC0", datastore_name, "halted-%s/output.log" % cid[:12],
                         "".join(json.dumps(line) + "\n" for line in lines).encode())
        tasks.wait(session, {vim.VirtualMachine(vm.moid, session.stub).PowerOffVM_Task(): "power off"})
    until(lambda: inspect(rs, "halted")["State"]["Status"] == "exited", "the endpoint to record the halt")
    shown = inspect(rs, "halted")
    assert shown["State"]["ExitCode"] == 42 and shown["State"]["FinishedAt"] == "2099-01-01T00:00:01.250000Z"
    assert run(rs, "logs", "halted") == "bye"


def test_an_exit_while_the_endpoint_was_down_is_read_from_the_log_at_its_start(rs, vcsim):
    cid = run(rs, "run", "-d", "--name", "unseen", rs["image"], "sleep", "600")
    again = run(rs, "run", "-d", "--restart", "on-failure", "--name", "revived", rs["image"], "sleep", "600")
    old = rs["endpoint"]
    old.kill()
    datastore_name = rs["summary"]["image_store"].split("] ", 1)[0].lstrip("[")
    lines = [{"start": True, "time": "2099-01-31T23:59:59.5Z"},
             {"log": "done\n", "stream": "stdout", "time": "2099-02-01T00:00:00Z"},
             {"exit": 7, "time": "2099-02-01T00:00:01Z"}]
    with session_of(rs["sim"]) as session:
        for name, ref in (("unseen", cid), ("revived", again)):
            datastore.upload(session, "DC0", datastore_name, "%s-%s/output.log" % (name, ref[:12]),
                             "".join(json.dumps(line) + "\n" for line in lines).encode())
            moid = container_vms(rs["sim"])[ref]["vm"].moid
            tasks.wait(session, {vim.VirtualMachine(moid, session.stub).PowerOffVM_Task(): "power off"})
    rs["endpoint"] = Endpoint(vcsim, "rs", port=old.port, tether_port=old.tether_port)
    until(lambda: container_vms(rs["sim"])[cid]["exit"].get("code") == 7,
          lambda: "the restarted endpoint to record the exit; its log:\n" + rs["endpoint"].log()[-3000:])
    shown = inspect(rs, "unseen")
    assert shown["State"]["Status"] == "exited" and shown["State"]["ExitCode"] == 7
    assert shown["State"]["FinishedAt"] == "2099-02-01T00:00:01.000000Z"
    assert shown["State"]["StartedAt"] == "2099-01-31T23:59:59.500000Z"  # the run's start line
    # on-failure: the exit learnt at start is a failure, so the container runs again.
    until(lambda: container_vms(rs["sim"])[again]["vm"].get("runtime.powerState") == "poweredOn",
          lambda: "revived to be restarted; the endpoint's log:\n" + rs["endpoint"].log()[-3000:])
    assert inspect(rs, "revived")["RestartCount"] == 1
    run(rs, "rm", "-f", "revived")
