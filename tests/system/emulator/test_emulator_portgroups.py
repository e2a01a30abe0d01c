# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Port groups are Linux bridges inside namespaces the host emulator owns (services/emulator/portgroups.py):
containers on one Docker network reach each other (busybox ping, by address and by name), a container on
another network does not reach them, one on both reaches both; this machine's own namespace gets no link,
address or route of theirs, and once the containers are gone and the emulator has stopped nothing is left.
Real vcsim, a VCH's endpoint, the emulator running the real tether (from the ISO built from this tree),
the real docker CLI."""

import ipaddress
import json
import os
import re
import subprocess

import pytest

from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc
from ansible_collections.vic.containers.plugins.module_utils.vsphere.session import Session

from ansible_collections.vic.containers.services.emulator import portgroups
from ansible_collections.vic.containers.services.tether import iso
from ansible_collections.vic.containers.tools.harness.emulator import emulated, install_tether_iso
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli
from ansible_collections.vic.containers.tools.harness.waiting import until

try:
    from pyVmomi import vim
except ImportError:  # pragma: no cover
    vim = None

SLEEP = ("sleep", "600")


def root_namespace():
    """This machine's own network namespace: its links' MACs and names, its addresses, its routes, its named
    namespaces."""
    def ip(*args):
        return json.loads(subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout or "[]")
    links = ip("link", "show")
    return {"macs": {link.get("address") for link in links}, "names": {link["ifname"] for link in links},
            "addresses": {a["local"] for link in ip("address", "show") for a in link.get("addr_info", ())},
            "routes": [r["dst"] for r in ip("route", "show", "table", "all") if r.get("dst") not in (None, "default")],
            "netns": {n["name"] for n in ip("netns", "list")}}


def nothing_of(networks, macs, root):
    """What ``root`` (root_namespace()) holds of the containers' networks and NICs: [] when nothing. The
    bridges and their ports (``pg``, ``p<n>``) are never there; nor the VMs' ends (their MACs)."""
    found = sorted(mac for mac in macs if mac in root["macs"])
    found += sorted(name for name in root["names"] if name == portgroups.BRIDGE or re.fullmatch(r"p[0-9]+", name))
    for subnet, gateway in networks:
        found += [a for a in root["addresses"] if a == gateway]
        found += [r for r in root["routes"] if "/" in r and ipaddress.ip_network(r, strict=False).overlaps(subnet)]
    return found


@pytest.fixture(scope="module")
def vch(vcsim, tmp_path_factory, registries):
    before = root_namespace()
    tether_iso = iso.build(tmp_path_factory.mktemp("iso") / "tether.iso").path  # from this tree, cached
    # The tether from the VM's ISO, unpacked, as the VM would boot it ($VIC_TEST_TETHER_PYTHON=host: the agent
    # with this machine's Python). On leaving: stopped, and checked it left no process, mount or file.
    with emulated(vcsim, tether_python=os.environ.get("VIC_TEST_TETHER_PYTHON", "iso")) as emulator:
        certs = tmp_path_factory.mktemp("certs") / "pg"
        deploy(vcsim, "pg", certs, registry=registries.trusted())
        install_tether_iso(vcsim, "pg", tether_iso)
        endpoint = Endpoint(vcsim, "pg")
        found = {"sim": vcsim, "certs": certs, "host": "tcp://127.0.0.1:%d" % endpoint.port, "emulator": emulator,
                 "endpoint": endpoint, "image": registries.get("anonymous").host + "/library/busybox"}
        try:
            pulled = docker_cli(found, "pull", found["image"], timeout=300)
            assert pulled.returncode == 0, pulled.stderr
            yield found
        finally:
            endpoint.stop()
    # The emulator has stopped: no namespace of its (their holders are its processes, which emulated checked),
    # and nothing in this machine's namespace.
    after = root_namespace()
    assert after["netns"] <= before["netns"]
    assert nothing_of(found.get("networks", ()), found.get("macs", ()), after) == []


def logs(vch):
    return "endpoint:\n%s\nemulator:\n%s" % (vch["endpoint"].log()[-3000:], vch["emulator"].log()[-4000:])


def docker(vch, *args):
    done = docker_cli(vch, *args, timeout=120)
    assert done.returncode == 0, (args, done.stderr, logs(vch))
    return done.stdout.strip()


def ping(vch, container, target):
    """The exit status of ``busybox ping -c1 -W2 target`` in ``container`` (0: it answered)."""
    return docker_cli(vch, "exec", container, "busybox", "ping", "-c1", "-W2", target, timeout=60).returncode


def address_of(vch, container, network):
    settings = json.loads(docker(vch, "inspect", "--format", "{{json .NetworkSettings.Networks}}", container))
    return settings[network]["IPAddress"]


def vm_macs(sim):
    """{container name: [the MACs of its VM's NICs, in device order]}, as vSphere has them."""
    with Session(sim.host, sim.username, sim.password, sim.port, validate_certs=False) as session:
        view = session.content.viewManager.CreateContainerView(session.content.rootFolder, [vim.VirtualMachine], True)
        try:
            found = pc.retrieve(session, [pc.object_spec(view, [pc.traversal("v", "ContainerView", "view")], skip=True)],
                                {"VirtualMachine": ("name", "config.hardware.device")})
        finally:
            view.Destroy()
    macs = {}
    for props in found:
        devices = props.get("config.hardware.device") or ()
        macs[props.get("name").rsplit("-", 1)[0]] = [d.macAddress for d in devices
                                                     if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    return macs


NAMES = ("a1", "a2", "b1", "ab")


@pytest.fixture(scope="module")
def containers(vch):
    """a1 and a2 on net-a, b1 on net-b, ab on both; {name: address on its first network}, the networks'
    (subnet, gateway) and the VMs' MACs kept in ``vch`` for the fixture's last checks."""
    for network in ("net-a", "net-b"):
        docker(vch, "network", "create", network)
    vch["networks"] = [(ipaddress.ip_network(config["Subnet"]), config["Gateway"])
                       for network in ("net-a", "net-b")
                       for config in json.loads(docker(vch, "network", "inspect", network))[0]["IPAM"]["Config"]]
    docker(vch, "run", "-d", "--name", "a1", "--network", "net-a", vch["image"], *SLEEP)
    docker(vch, "run", "-d", "--name", "a2", "--network", "net-a", vch["image"], *SLEEP)
    docker(vch, "run", "-d", "--name", "b1", "--network", "net-b", vch["image"], *SLEEP)
    docker(vch, "create", "--name", "ab", "--network", "net-a", vch["image"], *SLEEP)
    docker(vch, "network", "connect", "net-b", "ab")
    docker(vch, "start", "ab")
    macs = vm_macs(vch["sim"])
    vch["macs"] = {mac for name in NAMES for mac in macs[name]}
    yield {"a1": address_of(vch, "a1", "net-a"), "a2": address_of(vch, "a2", "net-a"),
           "b1": address_of(vch, "b1", "net-b"), "macs": macs}
    docker_cli(vch, "rm", "-f", *NAMES, timeout=120)
    for network in ("net-a", "net-b"):
        docker_cli(vch, "network", "rm", network)


def test_the_nics_are_the_vms_own_in_its_order_with_their_macs(vch, containers):
    shown = docker(vch, "exec", "ab", "cat", "/sys/class/net/eth0/address", "/sys/class/net/eth1/address")
    assert shown.split() == containers["macs"]["ab"] and len(vch["macs"]) == 5, (shown, containers, logs(vch))


def test_containers_on_one_network_reach_each_other_and_its_gateway(vch, containers):
    assert ping(vch, "a2", containers["a1"]) == 0, logs(vch)
    assert ping(vch, "a1", containers["a2"]) == 0, logs(vch)
    # The gateway answers, as the endpoint VM's bridge NIC would.
    assert ping(vch, "a1", vch["networks"][0][1]) == 0, logs(vch)


def test_containers_on_one_network_reach_each_other_by_name(vch, containers):
    # The peers' names are in /etc/hosts (docs/containers.md, "Names on networks").
    assert ping(vch, "a2", "a1") == 0, logs(vch)


def test_a_container_on_another_network_does_not_reach_them(vch, containers):
    assert ping(vch, "b1", containers["a1"]) != 0, logs(vch)
    assert ping(vch, "a1", containers["b1"]) != 0, logs(vch)


def test_a_container_on_two_networks_reaches_both(vch, containers):
    assert ping(vch, "ab", containers["a1"]) == 0, logs(vch)
    assert ping(vch, "ab", containers["b1"]) == 0, logs(vch)


def test_nothing_of_theirs_is_in_this_machines_namespace_and_one_bridge_serves_both_networks(vch, containers):
    assert nothing_of(vch["networks"], vch["macs"], root_namespace()) == []
    # Both networks are on the VCH's bridge port group: one namespace, one holder process.
    assert vch["emulator"].log().count("bridge in the namespace of pid") == 1, logs(vch)


def test_once_the_containers_are_gone_so_is_the_bridge(vch, containers):
    docker(vch, "rm", "-f", *NAMES)
    emulator = vch["emulator"]
    # The holder of the port group's namespace is the emulator's last process once every VM has ended.
    until(lambda: emulator.processes() == [], lambda: "the VMs and the bridge to end\n" + logs(vch))
    # Logged once the emulator reaped the holder, a moment after the process is gone.
    until(lambda: "bridge ended" in emulator.log(), lambda: "the bridge's end in the log\n" + logs(vch))
    assert nothing_of(vch["networks"], vch["macs"], root_namespace()) == []
