# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``docker run -p`` / ``-P`` for real: busybox httpd in a container (the host emulator runs its tether in fresh
namespaces, with no route from the test to it) reached from the test with urllib through the port the endpoint
publishes, its connections carried by the tether channel. The docker CLI and the Docker SDK; a host port in use,
stop, rm and a kill -9 of the endpoint."""

import json
import socket
import urllib.error
import urllib.request

import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, docker_cli, free_port, running_vch, sdk
from ansible_collections.vic.containers.tools.harness.waiting import until
from test_containers import container_vms

HTTPD = "mkdir -p /www && echo hello from $HOSTNAME > /www/index.html && exec httpd -f -p %d -h /www"


@pytest.fixture(scope="module")
def pub(vcsim, tmp_path_factory, registries, emulator):
    found = running_vch(vcsim, "pub", tmp_path_factory.mktemp("certs") / "pub", registries, emulator)
    yield found
    until(lambda: emulator.processes() == [], lambda: "the containers' processes to end\n" + logs(found))
    found["endpoint"].stop()


def logs(pub):
    return "endpoint:\n%s\nemulator:\n%s" % (pub["endpoint"].log()[-4000:], pub["emulator"].log()[-2000:])


def docker(pub, *args):
    done = docker_cli(pub, *args)
    assert done.returncode == 0, (args, done.stderr, logs(pub))
    return done.stdout.strip()


def fetch(port):
    """The body of GET / on 127.0.0.1:port, or None while nothing answers there."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10) as answer:
            return answer.read().decode()
    except (urllib.error.URLError, ConnectionError, OSError):
        return None


def served(pub, port, hostname):
    until(lambda: fetch(port) == "hello from %s\n" % hostname,
          lambda: "httpd through 127.0.0.1:%d (got %r)\n%s" % (port, fetch(port), logs(pub)), timeout=90)


def refused(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def inspect(pub, name):
    return json.loads(docker(pub, "inspect", name))[0]


def test_a_published_port_reaches_the_containers_server_and_shows_as_dockerd_shows_it(pub):
    port, default = free_port(), free_port()
    docker(pub, "run", "-d", "--name", "web", "--hostname", "web", "-p", "127.0.0.1:%d:80" % port,
           "-p", "%d:80" % default, pub["image"], "sh", "-c", HTTPD % 80)
    served(pub, port, "web")
    # Without a host IP: the endpoint's own address (its Docker API's, the VCH's public address).
    served(pub, default, "web")
    shown = inspect(pub, "web")
    assert shown["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)},
                                                              {"HostIp": "", "HostPort": str(default)}]}
    assert shown["NetworkSettings"]["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)},
                                                            {"HostIp": "127.0.0.1", "HostPort": str(default)}]}
    assert sorted(docker(pub, "port", "web").splitlines()) == sorted(
        ["80/tcp -> 127.0.0.1:%d" % port, "80/tcp -> 127.0.0.1:%d" % default])
    assert set(docker(pub, "ps", "--filter", "name=web", "--format", "{{.Ports}}").split(", ")) == {
        "127.0.0.1:%d->80/tcp" % port, "127.0.0.1:%d->80/tcp" % default}
    # Many connections, some at once, each its own channel.
    bodies = [fetch(port) for _unused in range(20)]
    assert bodies == ["hello from web\n"] * 20
    # Stop closes the listeners; inspect and docker port show nothing, as dockerd's do.
    docker(pub, "stop", "-t", "1", "web")
    assert refused(port) and refused(default)
    assert inspect(pub, "web")["NetworkSettings"]["Ports"] == {}
    assert docker(pub, "port", "web") == ""
    # Started again: the same ports.
    docker(pub, "start", "web")
    served(pub, port, "web")
    docker(pub, "rm", "-f", "web")
    assert refused(port) and refused(default)


def test_a_host_port_in_use_fails_the_start_with_dockerds_words_and_leaves_nothing_running(pub):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        failed = docker_cli(pub, "run", "-d", "--name", "clash", "-p", "%d:80" % port, pub["image"], "sleep", "600")
        assert failed.returncode == 125, failed.stderr
        assert "Bind for 127.0.0.1:%d failed: port is already allocated" % port in failed.stderr, failed.stderr
        state = inspect(pub, "clash")["State"]
        assert (state["Status"], state["Running"]) == ("created", False), state
    # Held by another container: the same words, and the first keeps its port.
    mine = free_port()
    docker(pub, "run", "-d", "--name", "holder", "--hostname", "holder", "-p", "%d:80" % mine, pub["image"],
           "sh", "-c", HTTPD % 80)
    second = docker_cli(pub, "run", "-d", "--name", "second", "-p", "%d:8080" % mine, pub["image"], "sleep", "600")
    assert "Bind for 127.0.0.1:%d failed: port is already allocated" % mine in second.stderr, second.stderr
    assert inspect(pub, "second")["State"]["Running"] is False
    served(pub, mine, "holder")
    docker(pub, "rm", "-f", "clash", "second", "holder")


def test_publish_all_takes_random_ports_that_survive_a_kill_9_of_the_endpoint(pub):
    docker(pub, "run", "-d", "--name", "random", "--hostname", "random", "-P", "--expose", "8080",
           pub["image"], "sh", "-c", HTTPD % 8080)
    line = docker(pub, "port", "random", "8080")
    port = int(line.rsplit(":", 1)[1])
    served(pub, port, "random")
    old = pub["endpoint"]
    old.kill()
    assert refused(port)
    pub["endpoint"] = Endpoint(pub["sim"], "pub", port=old.port, tether_port=old.tether_port)
    # Listened on again from the container's record, the same port; the tether redials the new endpoint.
    served(pub, port, "random")
    assert docker(pub, "port", "random", "8080") == line
    docker(pub, "rm", "-f", "random")
    assert refused(port)


def test_the_sdk_publishes_and_reads_the_ports(pub):
    port = free_port()
    client = sdk(pub)
    try:
        made = client.containers.run(pub["image"], ["sh", "-c", HTTPD % 80], name="sdkweb", hostname="sdkweb",
                                     detach=True, ports={"80/tcp": ("127.0.0.1", port)})
        served(pub, port, "sdkweb")
        made.reload()
        assert made.ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
        made.remove(force=True)
    finally:
        client.close()
    assert refused(port)


def test_a_random_port_another_process_took_since_the_create_is_chosen_again_and_recorded(pub):
    docker(pub, "create", "--name", "moved", "--hostname", "moved", "-p", "80", pub["image"], "sh", "-c", HTTPD % 80)
    # Chosen at create (kept in the record); held by someone else before the start.
    recorded = [entry["host_port"] for entry in _records(pub)["moved"]["ports"]]
    assert len(recorded) == 1
    # The tether's boot spec lists the container port: the only one its direct-tcpip channels may reach.
    assert [vm["boot"]["ports"] for vm in container_vms(pub["sim"]).values() if vm["record"]["name"] == "moved"] == [[80]]
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", recorded[0]))
        squatter.listen()
        docker(pub, "start", "moved")
        port = int(docker(pub, "port", "moved", "80").rsplit(":", 1)[1])
        assert port != recorded[0]
        served(pub, port, "moved")
    assert [entry["host_port"] for entry in _records(pub)["moved"]["ports"]] == [port]
    docker(pub, "rm", "-f", "moved")


def _records(pub):
    """{container name: its record} as the container VMs keep them in vSphere."""
    return {vm["record"]["name"]: vm["record"] for vm in container_vms(pub["sim"]).values()}
