"""vic_container / vic_container_info through ansible-playbook against a VCH on vcsim, each result checked
with the docker CLI. On this VCH a started container VM powers on; its process may not run yet, so states are
checked by what the endpoint reports (State.Status), never by the process's output."""

import json

import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import docker_cli, free_port

from docker_play import run_tasks


def cli_inspect(vch, name):
    done = docker_cli(vch, "container", "inspect", name)
    return json.loads(done.stdout)[0] if done.returncode == 0 else None


def env_of(container):
    return dict(item.split("=", 1) for item in container["Config"]["Env"])


@pytest.fixture(scope="module")
def image(vch):
    return vch["registry"] + "/library/busybox"


@pytest.fixture(scope="module")
def network(vch):
    made = docker_cli(vch, "network", "create", "dm-net")
    assert made.returncode == 0, made.stderr
    yield "dm-net"
    assert docker_cli(vch, "network", "rm", "dm-net").returncode == 0


def test_container_life_cycle(vch, image, network):
    conn = vch["connection"]
    port = free_port()
    web = {"name": "dm-web", "image": image, "state": "started", "command": ["sleep", "600"],
           "env": {"MODE": "prod"}, "labels": {"app": "web"}, "volumes": ["dm-data:/data"],
           "networks": [{"name": network}], "memory": "512M", "cpus": 1, "hostname": "web",
           "working_dir": "/tmp", "stop_timeout": 5, "published_ports": ["127.0.0.1:%d:80" % port],
           "publish_all_ports": True}
    volume = ("vic.containers.vic_volume", {"name": "dm-data"})
    checked, _out = run_tasks([volume, ("vic.containers.vic_container", web)], conn, check=True, diff=True)
    predicted = checked[1]
    assert predicted["changes"] == ["pull image %s" % image, "create container dm-web", "start container dm-web"]
    assert predicted["container"] is None
    assert cli_inspect(vch, "dm-web") is None

    results, _out = run_tasks([volume, ("vic.containers.vic_container", web), ("vic.containers.vic_container", web),
                               ("vic.containers.vic_container_info", {"name": "dm-web"})], conn, diff=True)
    _vol, created, again, info = results
    assert created["changes"] == predicted["changes"] and created["diff"] == predicted["diff"]
    shown = cli_inspect(vch, "dm-web")
    assert created["container"]["Id"] == shown["Id"] == info["container"]["Id"] and info["exists"]
    assert shown["State"]["Status"] == "running"
    assert shown["Config"]["Cmd"] == ["sleep", "600"] and env_of(shown)["MODE"] == "prod"
    assert shown["Config"]["Labels"]["app"] == "web" and shown["Config"]["Hostname"] == "web"
    assert shown["Config"]["WorkingDir"] == "/tmp" and shown["Config"]["StopTimeout"] == 5
    assert [(m["Name"], m["Destination"]) for m in shown["Mounts"]] == [("dm-data", "/data")]
    assert list(shown["NetworkSettings"]["Networks"]) == [network]
    assert shown["HostConfig"]["Memory"] == 512 * 1024 * 1024 and shown["HostConfig"]["NanoCpus"] == 10 ** 9
    assert shown["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert shown["HostConfig"]["PublishAllPorts"] is True
    assert shown["NetworkSettings"]["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert again["changed"] is False and again["changes"] == []

    # One option changed alone: recreated, and the change says which.
    for option, value in (("env", {"MODE": "dev"}), ("memory", "1G"), ("labels", {"app": "web2"})):
        changed = dict(web, **{option: value})
        before = cli_inspect(vch, "dm-web")["Id"]
        checked, _out = run_tasks([("vic.containers.vic_container", changed)], conn, check=True, diff=True)
        results, _out = run_tasks([("vic.containers.vic_container", changed)], conn, diff=True)
        expected = ["recreate container dm-web (%s differs)" % option, "start container dm-web"]
        assert checked[0]["changes"] == results[0]["changes"] == expected, (checked, results)
        assert checked[0]["diff"] == results[0]["diff"]
        assert results[0]["diff"]["before"][option] != results[0]["diff"]["after"][option]
        now = cli_inspect(vch, "dm-web")
        assert now["Id"] != before and now["State"]["Status"] == "running"
        web = changed
    assert env_of(now)["MODE"] == "dev" and now["HostConfig"]["Memory"] == 1024 ** 3
    assert now["Config"]["Labels"]["app"] == "web2"

    # Ignored by comparisons: no change; more networks than asked: kept (allow_more_present).
    ignored = dict(web, env={"MODE": "other"}, comparisons={"env": "ignore"})
    fewer = dict(web, networks=[])
    results, _out = run_tasks([("vic.containers.vic_container", ignored), ("vic.containers.vic_container", fewer)],
                              conn)
    assert results[0]["changed"] is False and results[1]["changed"] is False, results

    # State transitions: started -> stopped -> started -> present (no change) -> absent.
    steps = [dict(web, state="stopped"), dict(web, state="stopped"), dict(web, state="started"),
             {"name": "dm-web", "state": "present"}, {"name": "dm-web", "state": "absent"},
             {"name": "dm-web", "state": "absent"}, {"name": "dm-web"}]
    checked, _out = run_tasks([("vic.containers.vic_container", steps[0])], conn, check=True)
    assert checked[0]["changes"] == ["stop container dm-web"]
    assert cli_inspect(vch, "dm-web")["State"]["Status"] == "running"
    results, _out = run_tasks([("vic.containers.vic_container", steps[0])], conn)
    assert results[0]["changes"] == ["stop container dm-web"]
    assert cli_inspect(vch, "dm-web")["State"]["Running"] is False
    assert results[0]["container"]["State"]["Running"] is False
    results, _out = run_tasks([("vic.containers.vic_container", step) for step in steps[1:]], conn)
    stopped_again, started, present, absent, absent_again, missing = results
    assert stopped_again["changed"] is False
    assert started["changes"] == ["start container dm-web"] and started["container"]["State"]["Status"] == "running"
    assert present["changed"] is False
    assert absent["changes"] == ["remove container dm-web"] and absent["container"] is None
    assert absent_again["changed"] is False
    assert missing["failed"] and missing["msg"] == "image: is required to create container dm-web"
    assert cli_inspect(vch, "dm-web") is None
    info, _out = run_tasks([("vic.containers.vic_container_info", {"name": "dm-web"})], conn)
    assert info[0]["exists"] is False and info[0]["container"] is None
    assert docker_cli(vch, "volume", "rm", "dm-data").returncode == 0


def test_container_bad_input_names_the_option(vch, image, network):
    conn = vch["connection"]
    base = {"name": "dm-bad", "image": image, "state": "present"}
    cases = [
        (dict(base, image=vch["registry"] + "/library/no-such-image"), "Docker host %s refused pulling image " % vch["host"]),
        (dict(base, published_ports=["80:abc"]), "published_ports[0]: '80:abc': the container port 'abc' is not a port"),
        (dict(base, memory="lots"), "memory: 'lots' is not a size"),
        (dict(base, networks=[{"name": "dm-nowhere"}]),
         "networks[0].name: there is no network 'dm-nowhere' on Docker host %s" % vch["host"]),
        (dict(base, networks=[{"name": network}], network_mode="none"), "network_mode: none conflicts with networks"),
        (dict(base, privileged=True), "privileged: not supported on a VCH"),
        (dict(base, capabilities=["NET_ADMIN"]), "capabilities: not supported on a VCH: a container VM has no host "
                                                 "capabilities to add"),
        (dict(base, volumes=["/etc:/host-etc"]), "volumes[0]: '/etc:/host-etc' mounts a host path"),
        (dict(base, network_mode="host"), "network_mode: 'host' is not possible on a VCH"),
        (dict(base, env={"DEBUG": True}), "env: the value of DEBUG is a boolean"),
        (dict(base, comparisons={"colour": "strict"}), "comparisons: 'colour' is not an option"),
        (dict(base, published_ports=["53:53/udp"]),
         "Docker host %s refused creating container dm-bad: -p 53/udp: only TCP ports" % vch["host"]),
    ]
    results, _out = run_tasks([("vic.containers.vic_container", args) for args, _msg in cases], conn)
    for result, (_args, message) in zip(results, cases):
        assert result["failed"], result
        assert result["msg"].startswith(message), (message, result["msg"])
    assert cli_inspect(vch, "dm-bad") is None


def test_no_change_container_task_costs_two_requests(vch, image, proxy):
    assert docker_cli(vch, "pull", image).returncode == 0
    made = docker_cli(vch, "create", "--name", "dm-count", "-e", "A=1", image, "sleep", "600")
    assert made.returncode == 0, made.stderr
    try:
        conn = dict(vch["connection"], docker_host="tcp://127.0.0.1:%d" % proxy.port)
        args = {"name": "dm-count", "image": image, "state": "present", "command": "sleep 600", "env": {"A": "1"}}
        proxy.reset()
        results, _out = run_tasks([("vic.containers.vic_container", args)], conn)
        assert results[0]["changed"] is False, results
        assert proxy.requests == [("GET", "/containers/dm-count/json"), ("GET", "/v1.43/images/%s/json" % image)]
    finally:
        assert docker_cli(vch, "rm", "-f", "dm-count").returncode == 0


def test_a_vch_warns_when_it_sizes_otherwise(vch, image):
    conn = vch["connection"]
    args = {"name": "dm-cpus", "image": image, "state": "present", "command": ["sleep", "600"], "cpus": 1.5}
    try:
        results, _out = run_tasks([("vic.containers.vic_container", args), ("vic.containers.vic_container", args)],
                                  conn)
        created, again = results
        shown = cli_inspect(vch, "dm-cpus")
        assert shown["GraphDriver"]["Data"]["vCPUs"] == "2" and shown["HostConfig"]["NanoCpus"] == 1.5e9
        note = "cpus: container VM %s has 2 vCPUs for cpus 1.5 (a VCH sizes a container VM in whole vCPUs)" \
            % shown["GraphDriver"]["Data"]["VM"]
        assert created["changed"] and created["warnings"] == [note]
        assert again["changed"] is False and again["warnings"] == [note]
    finally:
        assert docker_cli(vch, "rm", "-f", "dm-cpus").returncode == 0


def test_present_recreates_a_running_container_running(vch, image):
    conn = vch["connection"]
    args = {"name": "dm-present", "image": image, "command": ["sleep", "600"], "env": {"A": "1"}}
    try:
        results, _out = run_tasks([
            ("vic.containers.vic_container", dict(args, state="started")),
            ("vic.containers.vic_container", dict(args, state="present", env={"A": "2"})),
        ], conn)
        started, recreated = results
        assert recreated["changes"] == ["recreate container dm-present (env differs)", "start container dm-present"]
        shown = cli_inspect(vch, "dm-present")
        assert shown["Id"] != started["container"]["Id"] and shown["State"]["Status"] == "running"
        assert env_of(shown)["A"] == "2"
    finally:
        assert docker_cli(vch, "rm", "-f", "dm-present").returncode == 0
