# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``-p`` / ``-P`` as a create body carries them (what the docker CLI 28 and the SDK send), the host ports the
endpoint chooses, what inspect and ps show of them, and what the tether lets a direct-tcpip channel reach."""

import socket
import types

import pytest

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput
from ansible_collections.vic.containers.services.persona import views
from ansible_collections.vic.containers.services.portlayer.network import ports
from ansible_collections.vic.containers.services.tether import protocol

R = ports.Request


def test_the_clis_bindings_become_requests():
    # docker run -p 8080:80 -p 127.0.0.1::443 -p 9000-9010:90 -p 81 (the CLI expands ranges into keys itself)
    host = {"PortBindings": {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}], "443/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
        "90/tcp": [{"HostIp": "", "HostPort": "9000-9010"}], "81/tcp": [{"HostIp": "", "HostPort": ""}], "82": None}}
    assert ports.requests({}, host) == [R(443, "127.0.0.1", ""), R(80, "", "8080"), R(81, "", ""), R(82, "", ""),
                                        R(90, "", "9000-9010")]


def test_publish_all_adds_a_random_port_for_each_exposed_port_not_bound():
    config = {"ExposedPorts": {"80/tcp": {}, "8443/tcp": {}}}
    host = {"PublishAllPorts": True, "PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}
    assert ports.requests(config, host) == [R(80, "", "8080"), R(8443, "", "")]
    assert ports.requests(config, {}) == []


@pytest.mark.parametrize("host, config, words", [
    ({"PortBindings": {"53/udp": [{"HostPort": "53"}]}}, {}, "-p 53/udp: only TCP ports can be published"),
    ({"PortBindings": {"9/sctp": [{}]}}, {}, "-p 9/sctp: only TCP ports"),
    ({"PublishAllPorts": True}, {"ExposedPorts": {"53/udp": {}}}, "-P (the container exposes it) 53/udp"),
    ({"PortBindings": {"0/tcp": [{}]}}, {}, "invalid container port"),
    ({"PortBindings": {"80/tcp": [{"HostPort": "70000"}]}}, {}, "invalid host port"),
    ({"PortBindings": {"80/tcp": [{"HostPort": "90-80"}]}}, {}, "invalid host port range '90-80'"),
    ({"PortBindings": {"80/tcp": [{"HostIp": "nowhere", "HostPort": "1"}]}}, {}, "invalid host IP 'nowhere'"),
    ({"PortBindings": {"80/icmp": [{}]}}, {}, 'invalid port specification: "80/icmp"'),
])
def test_what_cannot_be_published_is_refused_naming_it(host, config, words):
    with pytest.raises(InvalidInput, match=words.replace("(", r"\(").replace(")", r"\)")):
        ports.requests(config, host)
    if "udp" in words and "-P" not in words:
        with pytest.raises(InvalidInput) as refused:
            ports.requests(config, host)
        assert "tether channel, which carries TCP only" in str(refused.value)


def test_random_and_range_host_ports_are_chosen_free_and_never_twice():
    publisher = ports.Publisher(tether=None, address="127.0.0.1")
    low, high = ports.local_range()
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        first = held.getsockname()[1]
        wanted = [R(80, "", ""), R(81, "", ""), R(82, "", "%d-%d" % (first, first + 50)), R(83, "", "8080")]
        chosen = publisher.choose(wanted, taken_by_records={("127.0.0.1", first + 1)})
    assert [entry["port"] for entry in chosen] == [80, 81, 82, 83]
    assert all(low <= entry["host_port"] <= high for entry in chosen[:2]), chosen
    assert chosen[0]["host_port"] != chosen[1]["host_port"]
    # The range's first port is held by a listener and its second recorded by another container.
    assert chosen[2] == {"port": 82, "host_ip": "", "host_port": first + 2, "range": [first, first + 50]}
    assert chosen[3] == {"port": 83, "host_ip": "", "host_port": 8080, "range": None}


def test_a_random_port_on_an_address_the_endpoint_has_not_is_refused_at_create():
    publisher = ports.Publisher(tether=None, address="127.0.0.1")
    with pytest.raises(InvalidInput, match="cannot publish port 80 on 192.0.2.1: Cannot assign requested address"):
        publisher.choose([R(80, "192.0.2.1", "")], set())


def _container(running, record_ports, exposed=None):
    return types.SimpleNamespace(running=running, record={"ports": record_ports},
                                 config={"ExposedPorts": exposed or {}})


def test_inspect_and_ps_show_the_bindings_of_a_running_container_as_dockerd():
    container = _container(True, [{"port": 80, "host_ip": "", "host_port": 8080, "range": None},
                                  {"port": 80, "host_ip": "::1", "host_port": 8081, "range": None}],
                           {"80/tcp": {}, "443/tcp": {}, "53/udp": {}})
    assert views._ports_inspect(container, "127.0.0.1") == {  # pylint: disable=protected-access
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}, {"HostIp": "::1", "HostPort": "8081"}],
        "443/tcp": None, "53/udp": None}
    assert views._ports_row(container, "127.0.0.1") == [  # pylint: disable=protected-access
        {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "::1", "PrivatePort": 80, "PublicPort": 8081, "Type": "tcp"},
        {"PrivatePort": 53, "Type": "udp"}, {"PrivatePort": 443, "Type": "tcp"}]
    stopped = _container(False, container.record["ports"], container.config["ExposedPorts"])
    assert views._ports_inspect(stopped, "127.0.0.1") == {}  # pylint: disable=protected-access
    assert views._ports_row(stopped, "127.0.0.1") == []  # pylint: disable=protected-access


SPEC = {"ports": [80, 8080], "nics": [{"mac": "", "addresses": ["172.16.0.5/16", "bogus"], "gateway": "172.16.0.1"}]}


@pytest.mark.parametrize("host, port", [("127.0.0.1", 80), ("127.0.0.2", 8080), ("::1", 80), ("172.16.0.5", 80)])
def test_the_tether_forwards_to_a_published_port_of_its_own(host, port):
    assert protocol.forward_refusal(SPEC, host, port) is None


@pytest.mark.parametrize("host, port, words", [
    ("127.0.0.1", 22, "port 22 is not published"),
    ("172.16.0.6", 80, "172.16.0.6 is not an address of this container"),
    ("10.0.0.1", 8080, "not an address of this container"),
    ("localhost", 80, "'localhost' is not an IP address"),
    ("registry.example", 80, "is not an IP address"),
])
def test_the_tether_refuses_any_other_destination(host, port, words):
    assert words in protocol.forward_refusal(SPEC, host, port)


def test_a_boot_spec_carries_the_published_ports_and_an_earlier_one_publishes_none():
    private, public = protocol.new_host_key()
    spec = protocol.boot_spec("c1", private, public, {"Cmd": ["true"]}, hostname="c1", layers=[0], rw=1,
                              ports=[8080, 80, 80])
    assert spec["ports"] == [80, 8080]
    del spec["ports"]
    assert protocol.parse_boot_spec(spec)["ports"] == []
    with pytest.raises(protocol.ProtocolError, match="ports must be a list of TCP ports"):
        protocol.parse_boot_spec(dict(spec, ports=[0]))
