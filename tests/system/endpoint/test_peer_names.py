# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Containers find each other by name on Docker networks, as with dockerd: the docker CLI -> the endpoint ->
vcsim, the host emulator running the real tether, which writes the peers the endpoint sends into the
container's /etc/hosts (services/portlayer/network/peers.py).

A name counts as resolved when busybox's ``ping`` inside the container (the C library's resolver, which
reads /etc/hosts) prints the address it resolved to: ``PING db (172.17.0.2)``, against ``bad address
'db'``. The emulator's namespaces have no NIC on the port groups yet, so the ping itself cannot reach the
peer; what is checked is that the name resolves to the peer's address, and only where dockerd resolves it.
"""

import collections
import concurrent.futures
import io
import json
import re
import subprocess
import tarfile

import pytest

from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, docker_cli, docker_command, running_vch
from ansible_collections.vic.containers.tools.harness.waiting import until
from test_containers import _quiet_mark, container_vms, session_of, vim

_RESOLVED = re.compile(r"PING (\S+) \((\d+\.\d+\.\d+\.\d+)\)")


@pytest.fixture(scope="module")
def vch(vcsim, tmp_path_factory, registries, emulator):  # pylint: disable=redefined-outer-name
    found = running_vch(vcsim, "peers", tmp_path_factory.mktemp("certs") / "peers", registries, emulator)
    yield found
    found["endpoint"].stop()


def logs(vch):
    return "endpoint:\n%s\nemulator:\n%s" % (vch["endpoint"].log()[-3000:], vch["emulator"].log()[-3000:])


def docker(vch, *args):
    ran = docker_cli(vch, *args, timeout=120)
    assert ran.returncode == 0, (args, ran.stdout, ran.stderr, logs(vch))
    return ran.stdout.strip()


def sleeper(vch, name, *options):
    """A running container ``name`` (its id), made with ``docker run -d`` and ``options``."""
    return docker(vch, "run", "-d", "--name", name, *options, vch["image"], "sleep", "600")


def address(vch, name, network):
    return json.loads(docker(vch, "inspect", name))[0]["NetworkSettings"]["Networks"][network]["IPAddress"]


def resolved(vch, container, name):
    """The address ``name`` resolves to inside ``container``, or None."""
    ran = docker_cli(vch, "exec", container, "busybox", "ping", "-c", "1", "-W", "1", name, timeout=60)
    found = _RESOLVED.search(ran.stdout + ran.stderr)
    if found is None:
        assert "bad address" in ran.stderr, (ran.stdout, ran.stderr, logs(vch))
        return None
    assert found.group(1) == name, (ran.stdout, ran.stderr)
    return found.group(2)


def resolves(vch, container, name, wanted):
    """Wait until ``name`` resolves to ``wanted`` (an address, or None: not at all) inside ``container``."""
    until(lambda: resolved(vch, container, name) == wanted,
          lambda: "%s to resolve %s to %s; /etc/hosts:\n%s\n%s" % (
              container, name, wanted, docker_cli(vch, "exec", container, "cat", "/etc/hosts").stdout, logs(vch)),
          timeout=60, interval=0.5)


def remove(vch, *names):
    docker_cli(vch, "rm", "-f", *names, timeout=120)


def test_containers_on_a_user_network_resolve_each_other_by_name_alias_and_short_id_and_no_one_else_does(vch):
    docker(vch, "network", "create", "app")
    docker(vch, "network", "create", "elsewhere")
    try:
        db = sleeper(vch, "db", "--network", "app", "--network-alias", "database")
        web = sleeper(vch, "web", "--network", "app")
        sleeper(vch, "outsider", "--network", "elsewhere")
        sleeper(vch, "reader", "--network", "app", "--read-only")    # its /etc/hosts cannot be renamed over
        db_ip, web_ip = address(vch, "db", "app"), address(vch, "web", "app")
        for name in ("db", "database", db[:12]):
            resolves(vch, "web", name, db_ip)
        resolves(vch, "db", "web", web_ip)
        resolves(vch, "db", web[:12], web_ip)
        resolves(vch, "reader", "db", db_ip)
        for name in ("db", "database", "web"):
            assert resolved(vch, "outsider", name) is None, logs(vch)
        # A run started after both resolves them as the first thing it does (the peers come before its env).
        ran = docker_cli(vch, "run", "--rm", "--name", "once", "--network", "app", vch["image"], "busybox", "ping",
                         "-c", "1", "-W", "1", "db")
        assert "PING db (%s)" % db_ip in ran.stdout, (ran.stdout, ran.stderr, logs(vch))

        # Readable by any user, and not a change docker diff shows (dockerd keeps it in the init layer); read once
        # the run's own line has gone from it again (its removal reaches web's tether a batch later).
        def hosts_without_once():
            text = docker_cli(vch, "exec", "-u", "65534:65534", "web", "cat", "/etc/hosts").stdout
            return text if "\tonce " not in text else None
        shown = until(hosts_without_once, "the run once to leave web's /etc/hosts", timeout=60, interval=0.5)
        assert "%s\tdb database %s" % (db_ip, db[:12]) in shown, shown
        assert docker(vch, "diff", "web") == ""
        command, env = docker_command(vch, "cp", "web:/etc/hosts", "-")
        copied = subprocess.run(command, env=env, capture_output=True, check=True, timeout=60)
        with tarfile.open(fileobj=io.BytesIO(copied.stdout)) as archive:
            assert archive.extractfile("hosts").read().decode() == shown
    finally:
        remove(vch, "db", "web", "outsider", "reader")
        docker_cli(vch, "network", "rm", "app", "elsewhere")


def test_the_default_bridge_resolves_only_link_names(vch):
    try:
        sleeper(vch, "target")
        sleeper(vch, "linked", "--link", "target:tgt")
        sleeper(vch, "unlinked")
        target_ip = address(vch, "target", "bridge")
        resolves(vch, "linked", "tgt", target_ip)
        resolves(vch, "linked", "target", target_ip)
        assert resolved(vch, "unlinked", "target") is None, logs(vch)
        assert resolved(vch, "target", "linked") is None, logs(vch)
        refused = docker_cli(vch, "run", "-d", "--link", "nobody-here:x", vch["image"], "true")
        assert refused.returncode != 0 and "could not get container for nobody-here" in refused.stderr, refused
    finally:
        remove(vch, "target", "linked", "unlinked")


def test_peers_follow_starts_renames_network_changes_and_removals_without_a_vsphere_call(vch):
    docker(vch, "network", "create", "moves")
    docker(vch, "network", "create", "side")
    try:
        sleeper(vch, "first", "--network", "moves")
        resolves(vch, "first", "second", None)
        sleeper(vch, "second", "--network", "moves")
        second_ip = address(vch, "second", "moves")
        resolves(vch, "first", "second", second_ip)
        # Working out and sending the peers reads nothing of vSphere: a rename that changes a peer's name costs
        # what the rename of a container nobody resolves costs (docs: Rename + Reconfig + task polls, and the
        # live cache's read of each batch its long poll brings), until the endpoint is quiet again.
        sleeper(vch, "alone", "--network", "side")
        alone_costs = _calls_of(vch, lambda: docker(vch, "rename", "alone", "lonely"))
        costs = _calls_of(vch, lambda: (docker(vch, "rename", "second", "renamed"),
                                        resolves(vch, "first", "renamed", second_ip)))
        assert costs == alone_costs and costs["Rename_Task"] == 1, (costs, alone_costs)
        resolves(vch, "first", "second", None)
        docker(vch, "network", "disconnect", "moves", "renamed")
        resolves(vch, "first", "renamed", None)
        docker(vch, "network", "connect", "--alias", "back", "moves", "renamed")
        back_ip = address(vch, "renamed", "moves")
        resolves(vch, "first", "back", back_ip)
        # On a second network they share: the names resolve there too (the first line wins, as for dockerd
        # the network the query came in on).
        docker(vch, "network", "connect", "side", "first")
        docker(vch, "network", "connect", "side", "renamed")
        resolves(vch, "first", "renamed", back_ip)
        docker(vch, "stop", "-t", "1", "renamed")
        resolves(vch, "first", "renamed", None)
        docker(vch, "start", "renamed")
        resolves(vch, "first", "renamed", back_ip)
        remove(vch, "renamed")
        resolves(vch, "first", "back", None)
    finally:
        remove(vch, "first", "renamed", "lonely")
        docker_cli(vch, "network", "rm", "moves", "side")


def test_after_a_storm_of_starts_on_one_network_each_container_resolves_every_other(vch):
    names = ["storm%d" % i for i in range(8)]
    docker(vch, "network", "create", "stormy")
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda name: sleeper(vch, name, "--network", "stormy"), names))
        addresses = {name: address(vch, name, "stormy") for name in names}

        def hosts_lines(name):
            shown = docker_cli(vch, "exec", name, "cat", "/etc/hosts").stdout.splitlines()
            return {line.split("\t")[0]: line.split("\t")[1].split()[0] for line in shown[-len(names) + 1:]}
        for name in names:
            until(lambda name=name: hosts_lines(name) == {ip: peer for peer, ip in addresses.items() if peer != name},
                  lambda name=name: "%s to list every other: %s\n%s" % (name, hosts_lines(name), logs(vch)),
                  timeout=60, interval=0.5)
        resolves(vch, names[0], names[-1], addresses[names[-1]])
    finally:
        remove(vch, *names)
        docker_cli(vch, "network", "rm", "stormy")


def _calls_of(vch, action):
    """The vSphere calls but the live cache's long poll, by method, from a quiet endpoint through ``action``
    until the endpoint is quiet again."""
    sim = vch["sim"]
    mark = _quiet_mark(sim)
    action()
    end = _quiet_mark(sim)
    return collections.Counter(c["method"] for c in sim.calls_since(mark)[:end - mark]
                               if c.get("method") not in (None, "WaitForUpdatesEx"))


def test_after_a_kill_9_of_the_endpoint_each_tether_gets_its_peers_again_and_right(vch):
    docker(vch, "network", "create", "kept")
    try:
        sleeper(vch, "stays", "--network", "kept")
        goes = sleeper(vch, "goes", "--network", "kept")
        resolves(vch, "stays", "goes", address(vch, "goes", "kept"))
        old = vch["endpoint"]
        old.kill()
        # While the endpoint is down, a peer's VM goes off in vSphere (an administrator, a host failure).
        with session_of(vch["sim"]) as admin:
            moid = container_vms(vch["sim"])[goes]["vm"].moid
            tasks.wait(admin, {vim.VirtualMachine(moid, admin.stub).PowerOffVM_Task(): goes})
        vch["endpoint"] = Endpoint(vch["sim"], "peers", port=old.port, tether_port=old.tether_port)
        vch["host"] = "tcp://127.0.0.1:%d" % vch["endpoint"].port
        resolves(vch, "stays", "goes", None)
        docker(vch, "start", "goes")
        resolves(vch, "stays", "goes", address(vch, "goes", "kept"))
    finally:
        remove(vch, "stays", "goes")
        docker_cli(vch, "network", "rm", "kept")
