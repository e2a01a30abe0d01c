# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Names on Docker networks: which peers each container resolves (portlayer/network/peers.py), the hosts
request both sides check (protocol.py), and the /etc/hosts the tether writes with them (agent/rootfs.py)."""

import os
import stat

import pytest
from ansible_collections.vic.containers.services.portlayer.containers.model import Container
from ansible_collections.vic.containers.services.portlayer.network.peers import PeerIndex, parse_link
from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.services.tether.agent import rootfs

ON, OFF = {"runtime.powerState": "poweredOn"}, {"runtime.powerState": "poweredOff"}


def container(name, networks, running=True, hostname="", links=(), removing=False):
    """A container as the live cache decodes it: ``networks`` is {network: (ip or None, aliases[, links])}."""
    cid = (name.encode().hex() * 64)[:64]
    endpoints = {net: {"ip": spec[0], "aliases": list(spec[1]), "links": list(spec[2]) if len(spec) > 2 else []}
                 for net, spec in networks.items()}
    record = {"id": cid, "name": name, "config": {"Hostname": hostname}, "host_config": {"Links": list(links)},
              "networks": endpoints}
    return Container("vm-" + name, dict(ON if running else OFF), record, {}, removing=removing)


def entries(containers, name):
    index = PeerIndex(containers)
    return index.entries(index.find(name))


def test_a_user_network_gives_each_running_peer_by_name_aliases_short_id_and_hostname():
    db = container("db", {"app": ("10.1.0.2", ["database", "db"])}, hostname="dbhost")
    web = container("web", {"app": ("10.1.0.3", [])})
    stopped = container("old", {"app": ("10.1.0.4", [])}, running=False)
    going = container("going", {"app": ("10.1.0.5", [])}, removing=True)
    dhcp = container("dhcp", {"app": (None, [])})
    other = container("other", {"elsewhere": ("10.2.0.2", [])})
    everyone = [db, web, stopped, going, dhcp, other]
    # dockerd's DNSNames order, each name once (the alias "db" is its name already).
    assert entries(everyone, "web") == [("10.1.0.2", ["db", "database", db.id[:12], "dbhost"])]
    assert entries(everyone, "db") == [("10.1.0.3", ["web", web.id[:12]])]
    assert entries(everyone, "other") == []
    # A container the cache shows off yet, whose tether connects, is given its peers all the same.
    assert entries(everyone, "old") == [("10.1.0.2", ["db", "database", db.id[:12], "dbhost"]),
                                        ("10.1.0.3", ["web", web.id[:12]])]


def test_the_default_bridge_gives_only_links_with_alias_hostname_and_name():
    target = container("target", {"bridge": ("172.16.0.2", [])})
    linked = container("linked", {"bridge": ("172.16.0.3", [])}, links=["target:tgt", "/target:/linked/same"])
    plain = container("plain", {"bridge": ("172.16.0.4", [])})
    named = container("named", {"bridge": ("172.16.0.5", [])}, links=["target"])
    missing = container("missing", {"bridge": ("172.16.0.6", [])}, links=["nobody:x"])
    everyone = [target, linked, plain, named, missing]
    assert entries(everyone, "linked") == [("172.16.0.2", ["tgt", target.id[:12], "target", "same"])]
    assert entries(everyone, "named") == [("172.16.0.2", ["target", target.id[:12]])]   # alias = name: once
    assert entries(everyone, "plain") == [] and entries(everyone, "target") == [] and entries(everyone, "missing") == []
    assert entries([linked, container("target", {"bridge": ("172.16.0.2", [])}, running=False)], "linked") == []


def test_a_network_link_adds_its_alias_for_the_linking_container_only():
    db = container("db", {"app": ("10.1.0.2", [])})
    web = container("web", {"app": ("10.1.0.3", [], ["db:store"])})
    api = container("api", {"app": ("10.1.0.4", [])})
    assert entries([db, web, api], "web") == [("10.1.0.4", ["api", api.id[:12]]),
                                              ("10.1.0.2", ["db", db.id[:12], "store"])]
    assert ("10.1.0.2", ["db", db.id[:12]]) in entries([db, web, api], "api")


def test_a_peer_on_two_shared_networks_has_a_line_on_each_in_the_containers_network_order():
    db = container("db", {"front": ("10.1.0.2", ["a"]), "back": ("10.2.0.2", ["b"])})
    web = container("web", {"back": ("10.2.0.3", []), "front": ("10.1.0.3", [])})
    assert entries([db, web], "web") == [("10.2.0.2", ["db", "b", db.id[:12]]), ("10.1.0.2", ["db", "a", db.id[:12]])]


def test_names_a_hosts_file_cannot_hold_are_left_out_and_the_rest_kept():
    # dockerd takes any network alias; these could not stand in a hosts line (or would comment the rest out).
    refused = ["two words", "#comment", "", "tab\there", "new\nline", "x" * 256, "nul\x00"]
    accepted = ["under_score", "UPPER", "dot.ted", "dash-ed", "über", "1.2.3.4", "x" * 255]
    db = container("db", {"app": ("10.1.0.2", refused + accepted)})
    web = container("web", {"app": ("10.1.0.3", [])})
    assert entries([db, web], "web") == [("10.1.0.2", ["db"] + accepted + [db.id[:12]])]
    assert [protocol.host_name(n) for n in refused] == [False] * len(refused)


def test_links_parse_as_the_cli_sends_them_and_as_dockerd_stores_them():
    assert parse_link("db") == ("db", "db")
    assert parse_link("db:alias") == ("db", "alias")
    assert parse_link("/db:/web/alias") == ("db", "alias")
    assert parse_link(":x") == ("", "x")


# -- the request --------------------------------------------------------------------------------------


def test_the_hosts_request_round_trips_and_refuses_what_a_hosts_file_cannot_hold():
    sent = protocol.decode(protocol.encode(dict(protocol.hosts_request([("10.1.0.2", ["db", "database"])]), seq=3)))
    assert sent["op"] == protocol.HOSTS and protocol.parse_hosts(sent) == [("10.1.0.2", ["db", "database"])]
    assert protocol.parse_hosts({"entries": []}) == []
    assert protocol.parse_hosts({"entries": [["fd00::2", ["v6"]]]}) == [("fd00::2", ["v6"])]
    for bad in (None, "x", [["10.1.0.2"]], [["10.1.0.2", []]], [["nope", ["db"]]], [["10.1.0.2", ["a b"]]],
                [["10.1.0.2", "db"]], [[None, ["db"]]]):
        with pytest.raises(protocol.ProtocolError):
            protocol.parse_hosts({"entries": bad})


# -- /etc/hosts --------------------------------------------------------------------------------------

SPEC = {"hostname": "web", "domainname": "", "hosts": ["10.0.0.9\textra"],
        "nics": [{"mac": "", "addresses": ["10.1.0.3/16"]}]}


def test_the_peers_follow_dockers_lines_the_add_host_lines_and_the_own_name():
    text = rootfs.hosts_text(SPEC, [("10.1.0.2", ["db", "database"]), ("10.2.0.2", ["db"])])
    assert text == rootfs.hosts_text(SPEC) + "10.1.0.2\tdb database\n10.2.0.2\tdb\n"
    assert rootfs.hosts_text(SPEC).endswith("10.0.0.9\textra\n10.1.0.3\tweb\n")


def _root(tmp_path):
    etc = tmp_path / "container" / "etc"
    etc.mkdir(parents=True)
    (etc / "hosts").write_text(rootfs.hosts_text(SPEC))
    return str(tmp_path / "container"), etc


def test_hosts_is_replaced_whole_and_readable_by_every_user_whatever_the_umask(tmp_path):
    root, etc = _root(tmp_path)
    before = os.stat(etc / "hosts").st_ino
    old = os.umask(0o077)
    try:
        rootfs.rewrite_hosts(SPEC, root, [("10.1.0.2", ["db"])])
    finally:
        os.umask(old)
    assert (etc / "hosts").read_text() == rootfs.hosts_text(SPEC, [("10.1.0.2", ["db"])])
    info = os.stat(etc / "hosts")
    assert info.st_ino != before and stat.S_IMODE(info.st_mode) == 0o644     # a new file, renamed over it
    assert sorted(os.listdir(etc)) == ["hosts"]


def test_a_link_the_container_left_at_the_temporary_name_is_not_followed(tmp_path):
    root, etc = _root(tmp_path)
    outside = tmp_path / "outside"
    outside.write_text("mine\n")
    os.symlink(str(outside), etc / ".hosts.tether-new")
    rootfs.rewrite_hosts(SPEC, root, [("10.1.0.2", ["db"])])
    assert outside.read_text() == "mine\n" and (etc / "hosts").read_text().endswith("10.1.0.2\tdb\n")
    assert sorted(os.listdir(etc)) == ["hosts"]
