# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Containers on a user-defined network ask DNS for their peers, as with dockerd's embedded DNS server: the
docker CLI -> the endpoint -> vcsim, the host emulator running the real tether, which answers at
127.0.0.11:53 inside the container VM (services/tether/agent/dns_server.py). The client is busybox's
``nslookup``, which asks a DNS server itself and never reads /etc/hosts.

A forwarded name goes to a DNS server of the test's own (tools/harness/dns_upstream.py) that listens on the
loopback of the container VM's own network namespace (entered with nsenter): no packet leaves it.
"""

import os
import re
import subprocess
import sys
import time

import pytest

from ansible_collections.vic.containers.tools.harness.emulator import MARKER_ENV
from ansible_collections.vic.containers.tools.harness.endpoint import docker_cli, running_vch
from ansible_collections.vic.containers.tools.harness.waiting import until
from test_containers import container_vms
from test_peer_names import address, docker, logs, remove, resolved, sleeper

_ANSWER = re.compile(r"Name:\s+(\S+)\nAddress:\s+(\d+\.\d+\.\d+\.\d+)")
UPSTREAM = "127.0.0.53"     # on the container VM's own loopback


@pytest.fixture(scope="module")
def vch(vcsim, tmp_path_factory, registries, emulator):  # pylint: disable=redefined-outer-name
    found = running_vch(vcsim, "dns", tmp_path_factory.mktemp("certs") / "dns", registries, emulator)
    yield found
    found["endpoint"].stop()


def nslookup(vch, container, name, *server):
    """(busybox nslookup's run, the IPv4 addresses it printed for ``name``) inside ``container``."""
    ran = docker_cli(vch, "exec", container, "busybox", "nslookup", name, *server, timeout=60)
    return ran, sorted({ip for _name, ip in _ANSWER.findall(ran.stdout)})


def looks_up(vch, container, name, wanted, *server):
    """Wait until DNS gives ``name`` the addresses ``wanted`` (a list; [] for none) inside ``container``."""
    until(lambda: nslookup(vch, container, name, *server)[1] == wanted,
          lambda: "%s to look up %s as %s: %r\n%s" % (container, name, wanted, nslookup(vch, container, name, *server)[0],
                                                      logs(vch)),
          timeout=60, interval=0.5)


def resolv_conf(vch, container):
    return docker(vch, "exec", container, "cat", "/etc/resolv.conf") + "\n"


def test_nslookup_finds_peers_by_name_alias_and_short_id_at_127_0_0_11_and_by_resolv_conf(vch):
    docker(vch, "network", "create", "dnsnet")
    try:
        db = sleeper(vch, "dnsdb", "--network", "dnsnet", "--network-alias", "dbalias")
        sleeper(vch, "dnsweb", "--network", "dnsnet", "--dns-search", "example.com")
        sleeper(vch, "plain", "--dns", "10.0.0.53", "--dns-search", "example.com")     # on the default bridge
        db_ip = address(vch, "dnsdb", "dnsnet")
        for name in ("dnsdb", "dbalias", db[:12], "DNSDB", "dnsdb.example.com"):
            looks_up(vch, "dnsweb", name, [db_ip], "127.0.0.11")
        looks_up(vch, "dnsweb", "dnsdb", [db_ip])       # the server resolv.conf names
        # resolv.conf as dockerd writes it on a user-defined network (its upstreams in a comment: none here) ...
        assert resolv_conf(vch, "dnsweb") == "nameserver 127.0.0.11\nsearch example.com\noptions ndots:0\n\n# ExtServers: []\n"
        # ... and the PTR of a peer's address is its name.
        reverse = ".".join(reversed(db_ip.split("."))) + ".in-addr.arpa"
        ran = docker_cli(vch, "exec", "dnsweb", "busybox", "nslookup", "-type=ptr", reverse, "127.0.0.11", timeout=60)
        assert "name = dnsdb" in ran.stdout, (ran.stdout, ran.stderr)
        # /etc/hosts resolution is as it was.
        assert resolved(vch, "dnsweb", "dbalias") == db_ip
        # The default bridge has no embedded DNS server (as dockerd): resolv.conf is the given servers, as before.
        assert resolv_conf(vch, "plain") == "nameserver 10.0.0.53\nsearch example.com\n"
        ran, found = nslookup(vch, "plain", "dnsdb", "127.0.0.11")
        assert ran.returncode != 0 and not found, (ran.stdout, ran.stderr)
    finally:
        remove(vch, "dnsdb", "dnsweb", "plain")
        docker_cli(vch, "network", "rm", "dnsnet")


def test_a_renamed_or_removed_peer_stops_resolving_and_an_unknown_name_fails_at_once(vch):
    docker(vch, "network", "create", "dnsmoves")
    try:
        sleeper(vch, "asker", "--network", "dnsmoves")
        sleeper(vch, "mover", "--network", "dnsmoves")
        mover_ip = address(vch, "mover", "dnsmoves")
        looks_up(vch, "asker", "mover", [mover_ip])
        docker(vch, "rename", "mover", "moved")
        looks_up(vch, "asker", "moved", [mover_ip])
        looks_up(vch, "asker", "mover", [])
        remove(vch, "moved")
        looks_up(vch, "asker", "moved", [])
        # No upstream server (none given, none on the network): SERVFAIL, as dockerd answers, not a time-out.
        started = time.monotonic()
        ran, found = nslookup(vch, "asker", "nowhere.invalid")
        assert ran.returncode != 0 and not found and "SERVFAIL" in ran.stdout, (ran.stdout, ran.stderr)
        assert time.monotonic() - started < 10, "the lookup of an unknown name hung"
    finally:
        remove(vch, "asker", "moved")
        docker_cli(vch, "network", "rm", "dnsmoves")


def test_other_names_are_forwarded_to_the_dns_servers_given(vch):
    docker(vch, "network", "create", "dnsfwd")
    upstream = None
    try:
        cid = sleeper(vch, "forwarder", "--network", "dnsfwd", "--dns", UPSTREAM)
        assert "# ExtServers: [%s]" % UPSTREAM in resolv_conf(vch, "forwarder")
        upstream = _upstream_in(vch, cid, {"outside.test": "10.9.8.7"})
        looks_up(vch, "forwarder", "outside.test", ["10.9.8.7"])
        ran, found = nslookup(vch, "forwarder", "unheard.test")
        assert not found and "NXDOMAIN" in ran.stdout, (ran.stdout, ran.stderr)
    finally:
        if upstream is not None:
            upstream.kill()
            upstream.wait(10)
        remove(vch, "forwarder")
        docker_cli(vch, "network", "rm", "dnsfwd")


def _upstream_in(vch, container_id, answers):
    """The test's DNS server at UPSTREAM:53 in the network namespace of the container's VM (its tether's), as a
    process the caller kills; started when it says so."""
    moid = container_vms(vch["sim"])[container_id]["vm"].moid
    tether = None
    for pid in vch["emulator"].processes():
        try:
            environ = open("/proc/%d/environ" % pid, "rb").read().split(b"\0")
            command = open("/proc/%d/cmdline" % pid, "rb").read()
        except OSError:
            continue
        rundirs = [item.split(b"=", 1)[1] for item in environ if item.startswith(MARKER_ENV.encode() + b"=")]
        if rundirs and os.path.basename(rundirs[0]).startswith(moid.encode() + b"-") and b"tether.agent" in command:
            tether = pid
    assert tether is not None, "no tether process of VM %s" % moid
    code = ("import sys, time\nfrom ansible_collections.vic.containers.tools.harness.dns_upstream import Upstream\n"
            "Upstream(%r, 53, %r)\nprint('ready', flush=True)\ntime.sleep(600)\n" % (UPSTREAM, answers))
    proc = subprocess.Popen(["nsenter", "--net", "--target", str(tether), "--", sys.executable, "-c", code],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert proc.stdout.readline().strip() == "ready", "the test's DNS server did not start"
    return proc
