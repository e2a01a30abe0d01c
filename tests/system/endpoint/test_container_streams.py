"""attach, exec, stop, wait, top and logs end to end: the docker CLI -> the endpoint -> the tether channel.

The tether itself (PID 1 in the container VM) comes with the next issue; here
``tools/harness/tether_peer.py`` plays its side of the channel for each container,
configured from the boot spec the container VM holds in vSphere, as the tether is. Its processes run on this machine.
"""

import asyncio
import json
import os
import subprocess
import threading

import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import docker_cli, docker_command, response_validator, running_vch, sdk
from ansible_collections.vic.containers.tools.harness.tether_peer import TetherPeer
from test_containers import container_vms, run
from ansible_collections.vic.containers.services.persona.negotiation import API_VERSION
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore
from ansible_collections.vic.containers.plugins.module_utils.vsphere.session import Session
from ansible_collections.vic.containers.tools.harness.waiting import until


class PeerLoop:
    """An event loop on a thread of its own for the tether peers, while the test drives the CLI."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.peers = []

    def run(self, coroutine, timeout=30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def tether_on_power_on(self, vch, cid, **options):
        """Dial in once the container VM is powered on, as a booting VM's tether (and the host emulator) will."""
        def boot():
            # A failure here only shows on stderr; the test then fails at the attach that got no tether.
            until(lambda: container_vms(vch["sim"])[cid]["vm"].get("runtime.powerState") == "poweredOn",
                  "container VM %s to power on" % cid)
            self.tether(vch, cid, **options)
        thread = threading.Thread(target=boot, daemon=True)
        thread.start()
        return thread

    def tether(self, vch, cid, **options):
        """A peer for container ``cid`` built from the boot spec its VM holds, dialing the endpoint's tether port.
        It starts the process at once unless told ``wait_for_attach`` (the boot spec's RunBlock is the real
        tether's business, with its 5 s grace)."""
        found = container_vms(vch["sim"])[cid]
        spec = found["boot"]
        options.setdefault("wait_for_attach", False)
        # The VM's output.log on vcsim's datastore directory: the peer writes it as the tether does.
        ds_name, folder = datastore.parse_ds_path(found["record"]["folder"])
        options.setdefault("log_path", os.path.join(vch["sim"].datastores[ds_name], folder, "output.log"))

        async def start():
            peer = TetherPeer.from_boot_spec(spec, **options)
            await peer.start("127.0.0.1", vch["endpoint"].tether_port)
            return peer
        peer = self.run(start())
        self.peers.append(peer)
        return peer

    def close(self):
        for peer in self.peers:
            self.run(peer.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def streams(vcsim, tmp_path_factory, registries):
    vch = running_vch(vcsim, "st", tmp_path_factory.mktemp("certs") / "st", registries)
    loop = PeerLoop()
    vch["peers"] = loop
    yield vch
    loop.close()
    vch["endpoint"].stop()


def wait_connected(vch, cid):
    """The endpoint answers exec only once the tether is in; docker top is the cheapest probe."""
    until(lambda: docker_cli(vch, "top", cid).returncode == 0, "the tether of %s to connect" % cid)


def test_a_process_exit_reported_by_the_tether_ends_the_container(streams):
    cid = run(streams, "create", "--name", "three", streams["image"], "sh", "-c", "echo out; exit 3")
    run(streams, "start", "three")
    streams["peers"].tether(streams, cid)
    waited = docker_cli(streams, "wait", "three")
    assert waited.returncode == 0 and waited.stdout.strip() == "3", (container_vms(streams["sim"])[cid]["exit"], streams["endpoint"].log())
    vm = container_vms(streams["sim"])[cid]
    assert vm["vm"].get("runtime.powerState") == "poweredOff" and vm["exit"]["code"] == 3, streams["endpoint"].log()
    status = run(streams, "ps", "-a", "--filter", "name=three", "--format", "{{.Status}}")
    assert status.startswith("Exited (3)"), (container_vms(streams["sim"])[cid]["exit"], streams["endpoint"].log())


def test_a_client_hanging_up_on_docker_wait_is_no_failure_of_the_endpoint(streams):
    run(streams, "create", "--name", "waited", streams["image"], "sleep", "600")
    run(streams, "start", "waited")
    client = sdk(streams)
    try:
        # Its headers come back at once (the answer streams); the client then hangs up, as an
        # interrupted docker wait does.
        url = "%s/v%s/containers/waited/wait" % (client.api.base_url, client.api.api_version)
        waiting = client.api.post(url, stream=True)
        assert waiting.status_code == 200
        waiting.close()
    finally:
        client.close()
    run(streams, "kill", "waited")  # the endpoint now writes the exit to the closed connection
    until(lambda: "the client hung up" in streams["endpoint"].log(),
          lambda: "the endpoint to log the hang-up; its log:\n" + streams["endpoint"].log()[-3000:])
    log = streams["endpoint"].log()
    assert "POST /v%s/containers/waited/wait: the client hung up before the answer was written" % API_VERSION in log, log
    assert "Traceback" not in log and "ERROR" not in log, log
    run(streams, "rm", "waited")


def test_docker_start_attach_carries_stdin_and_output_and_the_exit_code(streams):
    cid = run(streams, "create", "-i", "--name", "talk", streams["image"], "sh", "-c",
              "read line; echo got $line; echo oops >&2; exit 4")
    booted = streams["peers"].tether_on_power_on(streams, cid, wait_for_attach=True)
    try:
        result = docker_cli(streams, "start", "-a", "-i", "talk", stdin="hello\n", timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError(streams["endpoint"].log())
    booted.join(10)
    assert result.stdout == "got hello\n"
    assert result.stderr == "oops\n"
    assert result.returncode == 4
    assert container_vms(streams["sim"])[cid]["exit"]["code"] == 4


def test_exec_and_top_run_in_the_container_and_stop_signals_its_process(streams):
    cid = run(streams, "run", "-d", "--name", "svc", streams["image"], "sleep", "600")
    streams["peers"].tether(streams, cid)
    wait_connected(streams, cid)
    assert run(streams, "exec", "svc", "sh", "-c", "echo $((6*7))") == "42"
    assert run(streams, "exec", "-e", "GREETING=hi", "svc", "sh", "-c", "echo $GREETING") == "hi"
    failed = docker_cli(streams, "exec", "svc", "sh", "-c", "exit 5")
    assert failed.returncode == 5
    client = sdk(streams)
    try:
        made = client.api.exec_create(cid, ["true"])
        client.api.exec_start(made["Id"])
        shown = client.api.exec_inspect(made["Id"])
        response_validator("/exec/{id}/json").validate(shown)
        assert shown["ExitCode"] == 0 and shown["Running"] is False
        response_validator("/containers/{id}/top").validate(client.api.top(cid))
    finally:
        client.close()
    top = run(streams, "top", "svc")
    assert top.splitlines()[0].split()[:2] == ["UID", "PID"]
    run(streams, "stop", "-t", "5", "svc")
    vm = container_vms(streams["sim"])[cid]
    # sleep ends on SIGTERM: 128 + 15, reported by the tether, not a power-off kill (137).
    assert vm["exit"]["code"] == 143 and vm["vm"].get("runtime.powerState") == "poweredOff"
    refused = docker_cli(streams, "exec", "svc", "true")
    assert refused.returncode != 0 and "is not running" in refused.stderr


def test_logs_read_the_json_file_lines_the_tether_writes_to_the_vm_folder(streams):
    cid = run(streams, "create", "--name", "logged", streams["image"], "true")
    lines = [{"log": "first\n", "stream": "stdout", "time": "2026-11-23T10:00:00.000000001Z"},
             {"log": "warning\n", "stream": "stderr", "time": "2026-11-23T10:00:01.5Z"},
             {"log": "last\n", "stream": "stdout", "time": "2026-11-23T10:00:02Z"}]
    sim = streams["sim"]
    datastore_name, _path = streams["summary"]["image_store"].split("] ", 1)
    with Session(sim.host, sim.username, sim.password, sim.port, validate_certs=False) as session:
        # What the tether writes through the VM's file-backed serial port (next issue).
        datastore.upload(session, "DC0", datastore_name.lstrip("["), "logged-%s/output.log" % cid[:12],
                         "".join(json.dumps(line) + "\n" for line in lines).encode())
    result = docker_cli(streams, "logs", "logged")
    assert result.stdout == "first\nlast\n" and result.stderr == "warning\n"
    tail = docker_cli(streams, "logs", "--tail", "1", "--timestamps", "logged")
    assert tail.stdout == "2026-11-23T10:00:02.000000000Z last\n"
    since = docker_cli(streams, "logs", "--since", "2026-11-23T10:00:01Z", "logged")
    assert since.stdout == "last\n" and since.stderr == "warning\n", (since.stderr, streams["endpoint"].log()[-1500:])


def test_run_rm_removes_the_container_vm_and_its_anonymous_volume_when_the_process_ends(streams):
    cid = run(streams, "run", "-d", "--rm", "-v", "/tmp/work", "--name", "once", streams["image"], "sh", "-c", "exit 0")
    anonymous = container_vms(streams["sim"])[cid]["record"]["mounts"][0]["name"]
    streams["peers"].tether(streams, cid)
    until(lambda: cid not in container_vms(streams["sim"]), "--rm to remove container VM %s" % cid)
    assert anonymous not in run(streams, "volume", "ls", "-q").split()


def test_logs_follow_streams_the_live_output_until_the_process_ends(streams):
    cid = run(streams, "run", "-d", "--name", "chatty", streams["image"], "sh", "-c", "echo a; echo b >&2; echo c")
    # The primary process starts at the first attach: here, that of docker logs -f.
    streams["peers"].tether(streams, cid, wait_for_attach=True)
    wait_connected(streams, cid)
    followed = docker_cli(streams, "logs", "-f", "chatty")
    assert followed.returncode == 0
    assert followed.stdout == "a\nc\n" and followed.stderr == "b\n"


def test_an_attach_waiting_for_a_tether_ends_when_the_container_is_removed(streams):
    run(streams, "create", "--name", "silent", streams["image"], "sleep", "600")
    command, env = docker_command(streams, "start", "-a", "silent")
    attached = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        until(lambda: run(streams, "ps", "-q", "--filter", "name=silent"), "docker start -a to start the container")
        run(streams, "rm", "-f", "silent")
        attached.wait(30)  # no tether ever dialled in: the removal ends the attach, nothing hangs
    finally:
        if attached.poll() is None:
            attached.kill()
            attached.wait()
        attached.stdout.close()
        attached.stderr.close()


def test_logs_follow_waits_for_a_tether_not_yet_dialled_in_and_ends_with_the_run(streams):
    cid = run(streams, "run", "-d", "--name", "late", streams["image"], "sh", "-c", "echo late; echo err >&2")
    command, env = docker_command(streams, "logs", "-f", "late")
    follower = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Its request is in once the endpoint has read the (empty) log: then no tether is connected yet.
        until(lambda: "late" in run(streams, "ps", "--format", "{{.Names}}"), "late to run")
        streams["peers"].tether(streams, cid, wait_for_attach=True)  # the process starts at the follower's attach
        out, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert (out, err) == ("late\n", "err\n")
    assert follower.returncode == 0
