# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether's embedded DNS server (services/tether/agent/dns_server.py, dns_answers.py) on real sockets on
loopback, asked by dnspython's client; forwarded questions go to a DNS server of the test's own on 127.0.0.x
(tools/harness/dns_upstream.py); and the resolv.conf the tether writes with it."""

import socket
import time

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from ansible_collections.vic.containers.services.tether.agent import dns_server, rootfs
from ansible_collections.vic.containers.tools.harness.dns_upstream import EmbeddedServer, Upstream, free_port

SERVER, FIRST, SECOND = "127.0.0.12", "127.0.0.13", "127.0.0.14"
PEERS = [("10.0.0.5", ["db", "database", "0123456789ab"]), ("10.0.0.6", ["web"]), ("10.0.0.7", ["pool"]),
         ("10.0.0.8", ["pool"])]


@pytest.fixture
def upstreams():
    port = free_port(FIRST)
    first = Upstream(FIRST, port, {"outside.test": "10.9.8.7"}, failing=["flaky.test"])
    second = Upstream(SECOND, port, {"flaky.test": "10.9.8.8"})
    yield first, second
    first.close()
    second.close()


@pytest.fixture
def server(upstreams):
    running = EmbeddedServer(SERVER, [FIRST, SECOND], ["example.com"], upstreams[0].port, PEERS)
    yield running
    running.close()
    # Nothing left: the port is free again for both protocols.
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind((SERVER, running.port))


def ask(server, name, rdtype="A", tcp=False, **options):
    query = dns.message.make_query(name, rdtype, **options)
    return (dns.query.tcp if tcp else dns.query.udp)(query, SERVER, port=server.port, timeout=10)


def addresses(reply):
    return sorted(item.address for rrset in reply.answer for item in rrset)


def test_peers_resolve_by_name_alias_and_short_id_case_insensitive_and_with_a_search_domain(server, upstreams):
    for name in ("db", "database", "0123456789ab", "DB.", "Database.Example.COM"):
        reply = ask(server, name)
        assert reply.rcode() == dns.rcode.NOERROR and addresses(reply) == ["10.0.0.5"], (name, reply)
        assert reply.answer[0].ttl == 600 and reply.flags & dns.flags.RA
    # A name several peers share (an alias) gives each of them, each first in turn (shuffled, as dockerd).
    firsts = set()
    for _number in range(40):
        reply = ask(server, "pool")
        assert addresses(reply) == ["10.0.0.7", "10.0.0.8"]
        firsts.add(next(iter(reply.answer[0])).address)
    assert firsts == {"10.0.0.7", "10.0.0.8"}
    # Known, no IPv6 address: an empty NOERROR, not forwarded (as dockerd); MX the same (implicit MX).
    for rdtype in ("AAAA", "MX"):
        reply = ask(server, "db", rdtype)
        assert reply.rcode() == dns.rcode.NOERROR and not reply.answer, reply
    reply = ask(server, "5.0.0.10.in-addr.arpa", "PTR")
    assert [item.target.to_text() for item in reply.answer[0]] == ["db."]
    assert upstreams[0].questions == [] and upstreams[1].questions == []


def test_names_follow_each_update_a_removed_or_renamed_peer_stops_resolving(server):
    assert addresses(ask(server, "web")) == ["10.0.0.6"]
    server.update([("10.0.0.5", ["db"]), ("10.0.0.6", ["renamed"])])
    assert addresses(ask(server, "renamed")) == ["10.0.0.6"]
    # The old name is not the server's any more: forwarded, and the test's upstream does not know it.
    assert ask(server, "web").rcode() == dns.rcode.NXDOMAIN
    server.update([])
    assert ask(server, "db").rcode() == dns.rcode.NXDOMAIN


def test_other_names_are_forwarded_to_the_upstreams_in_turn(server, upstreams):
    first, second = upstreams
    reply = ask(server, "outside.test")
    assert addresses(reply) == ["10.9.8.7"] and reply.answer[0].ttl == 60
    # The first upstream fails it: the second is asked (dockerd goes on after SERVFAIL and REFUSED).
    assert addresses(ask(server, "flaky.test")) == ["10.9.8.8"]
    assert first.questions == ["outside.test", "flaky.test"] and second.questions == ["flaky.test"]
    # An authoritative NXDOMAIN is the answer, as the upstream gave it.
    assert ask(server, "nowhere.test").rcode() == dns.rcode.NXDOMAIN
    # Over TCP, forwarded over TCP.
    assert addresses(ask(server, "outside.test", tcp=True)) == ["10.9.8.7"]
    assert first.questions[-1] == "outside.test"


def test_without_an_upstream_an_unknown_name_is_servfail_at_once():
    lone = EmbeddedServer(SERVER, [], entries=PEERS)
    try:
        started = time.monotonic()
        reply = ask(lone, "unknown.test")
        assert reply.rcode() == dns.rcode.SERVFAIL and time.monotonic() - started < 2
        assert addresses(ask(lone, "db")) == ["10.0.0.5"]
    finally:
        lone.close()


def test_with_ndots_set_a_single_label_name_it_does_not_hold_is_answered_empty_not_forwarded(upstreams):
    strict = EmbeddedServer(SERVER, [FIRST], upstream_port=upstreams[0].port, entries=PEERS, options=["ndots:2"])
    try:
        reply = ask(strict, "elsewhere")
        assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
        assert addresses(ask(strict, "db")) == ["10.0.0.5"]
        assert addresses(ask(strict, "outside.test")) == ["10.9.8.7"]
        assert upstreams[0].questions == ["outside.test"]
    finally:
        strict.close()
    assert [dns_server.ndots_set(o) for o in (["ndots:0"], ["timeout:2"], ["ndots:1"], ["ndots:x"])] == [
        False, False, True, False]


def test_an_upstream_that_does_not_answer_is_servfail(upstreams):
    # Nothing listens at this port of 127.0.0.15: the datagram is refused there, and the next server is tried.
    silent = EmbeddedServer(SERVER, ["127.0.0.15"], upstream_port=free_port("127.0.0.15"))
    try:
        assert ask(silent, "outside.test").rcode() == dns.rcode.SERVFAIL
    finally:
        silent.close()
    assert dns_server.upstreams(["not-an-address", "127.0.0.11", "10.0.0.1", "10.0.0.2", "fe80::1", "10.0.0.3"]) == [
        ("10.0.0.1", 53), ("10.0.0.2", 53), ("fe80::1", 53)]


def test_a_silent_upstream_is_given_up_and_questions_beyond_the_limit_are_refused(monkeypatch):
    monkeypatch.setattr(dns_server, "FORWARD_TIMEOUT", 1.0)
    monkeypatch.setattr(dns_server, "MAX_FORWARDS", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:     # takes the questions, never answers
        silent.bind(("127.0.0.16", 0))
        waiting = EmbeddedServer(SERVER, ["127.0.0.16"], upstream_port=silent.getsockname()[1])
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.settimeout(5)
                for ident, name in ((1, "first.test"), (2, "second.test")):
                    query = dns.message.make_query(name, "A", id=ident)
                    client.sendto(query.to_wire(), (SERVER, waiting.port))
                started = time.monotonic()
                replies = [dns.message.from_wire(client.recv(512)) for _number in range(2)]
            # The second, beyond the limit, at once; the first once its upstream's time is up.
            assert [(r.id, r.rcode()) for r in replies] == [(2, dns.rcode.REFUSED), (1, dns.rcode.SERVFAIL)]
            assert time.monotonic() - started < 3
            assert silent.recv(512)     # the first question did reach the upstream
        finally:
            waiting.close()


def test_an_answer_too_long_for_a_datagram_is_truncated_and_whole_over_tcp(server):
    many = [("10.1.%d.%d" % (i // 200, i % 200 + 1), ["crowd"]) for i in range(100)]
    server.update(many)
    udp = ask(server, "crowd")
    assert udp.flags & dns.flags.TC and not udp.answer
    assert len(addresses(ask(server, "crowd", tcp=True))) == 100
    # EDNS lets a client take a longer datagram.
    assert len(addresses(ask(server, "crowd", use_edns=0, payload=4096))) == 100


def test_what_is_not_a_question_gets_formerr_or_nothing(server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xff", (SERVER, server.port))
        reply = dns.message.from_wire(sock.recv(512))
        assert reply.id == 0x1234 and reply.rcode() == dns.rcode.FORMERR
        sock.sendto(b"\x00\x01", (SERVER, server.port))
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sock.recv(512)
    # Not a QUERY: NOTIMP.
    query = dns.message.make_query("db", "A")
    query.set_opcode(dns.opcode.STATUS)
    assert dns.query.udp(query, SERVER, port=server.port, timeout=5).rcode() == dns.rcode.NOTIMP


def test_the_entries_are_the_containers_own_names_and_its_peers():
    spec = {"hostname": "web", "domainname": "example.org", "nics": [{"addresses": ["10.0.0.9/24"]}]}
    assert rootfs.dns_entries(spec, PEERS[:1]) == [("10.0.0.9", ["web.example.org", "web"]), PEERS[0]]


def test_resolv_conf_names_the_embedded_server_only_on_a_user_defined_network():
    dns_spec = {"servers": ["10.0.0.53"], "search": ["example.com"], "options": ["timeout:2"]}
    assert rootfs.resolv_text(dns_spec) == "nameserver 10.0.0.53\nsearch example.com\noptions timeout:2\n"
    assert rootfs.resolv_text(dict(dns_spec, embedded=True)) == (
        "nameserver 127.0.0.11\nsearch example.com\noptions timeout:2 ndots:0\n\n# ExtServers: [10.0.0.53]\n")
    # ndots given by the user stays the user's.
    assert "options ndots:2\n" in rootfs.resolv_text({"servers": [], "options": ["ndots:2"], "embedded": True})
