# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``portgroups.PortGroups`` on its own, with real namespaces (root): VMs stood in by ``unshare --net sleep``,
as the namespace mode's ``unshare`` is in the VM's network namespace. What the whole emulator does not
show: a NIC without a MAC, one without an address, the bridge namespace's addresses and forwarding, and
the refusal to plug a process of this machine's own namespace."""

import asyncio
import json
import subprocess

import pytest

from ansible_collections.vic.containers.services.emulator import machine as machines
from ansible_collections.vic.containers.services.emulator import portgroups
from ansible_collections.vic.containers.tools.harness.emulator import vm_processes


def ip_in(pid, *args):
    """``ip -j ARGS`` in the network namespace of process ``pid``."""
    done = subprocess.run(["nsenter", "--target", str(pid), "--net", "--", "ip", "-j", *args], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout or "[]")


def read_in(pid, path):
    return subprocess.run(["nsenter", "--target", str(pid), "--net", "--", "cat", path], capture_output=True,
                          text=True, check=True).stdout.strip()


def machine(nics, spec_nics):
    return machines.Machine("vm-1", "vm", json.dumps({"nics": spec_nics}), {}, None, None, None, nics=nics)


async def stand_in_vm():
    """A process in a network namespace of its own (unshare execs sleep once it has made it)."""
    proc = await asyncio.create_subprocess_exec("unshare", "--net", "--", "sh", "-c", "echo in; exec sleep 60",
                                                stdout=asyncio.subprocess.PIPE)
    assert await proc.stdout.readline() == b"in\n"
    return proc


async def end(proc):
    proc.kill()
    await proc.wait()


def test_nics_with_and_without_mac_or_address_and_the_bridges_namespace(tmp_path):
    async def scenario():
        groups = portgroups.PortGroups(str(tmp_path))
        vm = await stand_in_vm()
        try:
            nics = [machines.Nic("dvportgroup-1", "00:50:56:aa:bb:01"), machines.Nic("external", None),
                    machines.Nic("dvportgroup-1", "00:50:56:aa:bb:03")]
            spec = [{"mac": "", "addresses": ["172.17.0.2/16"], "gateway": "172.17.0.1"},
                    {"mac": "", "addresses": [], "gateway": ""},             # DHCP: no address, no gateway
                    {"mac": "", "addresses": ["172.18.0.2/16"], "gateway": "172.18.0.1"}]
            await groups.attach(vm, machine(nics, spec), vm.pid)
            holders = groups.holders()
            links = {link["ifname"]: link for link in ip_in(vm.pid, "link", "show")}
            bridge = ip_in(holders["dvportgroup-1"], "address", "show", "dev", portgroups.BRIDGE)[0]
            external = ip_in(holders["external"], "address", "show", "dev", portgroups.BRIDGE)[0]
            forwarding = read_in(holders["dvportgroup-1"], "/proc/sys/net/ipv4/ip_forward")
            ports = ip_in(holders["dvportgroup-1"], "link", "show", "master", portgroups.BRIDGE)
            own = await stand_in_vm_in_our_namespace(groups)
            await groups.detach(vm)
            return holders, links, bridge, external, forwarding, ports, own
        finally:
            await end(vm)
            await groups.close()

    holders, links, bridge, external, forwarding, ports, own = asyncio.run(scenario())
    assert set(holders) == {"dvportgroup-1", "external"}
    assert sorted(links) == ["eth0", "eth1", "eth2", "lo"]
    assert (links["eth0"]["address"], links["eth2"]["address"]) == ("00:50:56:aa:bb:01", "00:50:56:aa:bb:03")
    assert links["eth1"]["address"] not in ("00:50:56:aa:bb:01", "00:50:56:aa:bb:03")  # the kernel's own
    # Each network's gateway on its port group's bridge, with its prefix; none for the DHCP NIC.
    assert {(a["local"], a["prefixlen"]) for a in bridge["addr_info"] if a["family"] == "inet"} == {
        ("172.17.0.1", 16), ("172.18.0.1", 16)}
    assert [a for a in external["addr_info"] if a["family"] == "inet"] == []
    assert forwarding == "0"
    assert len(ports) == 2
    assert "not in a network namespace of its own" in own
    assert vm_processes(str(tmp_path)) == []    # detach and close ended the holders


async def stand_in_vm_in_our_namespace(groups):
    """What attach says of a VM process that is in this machine's namespace (nothing may be made there)."""
    proc = await asyncio.create_subprocess_exec("sleep", "60")
    try:
        with pytest.raises(machines.MachineError) as refused:
            await groups.attach(proc, machine([machines.Nic("dvportgroup-1", None)], [{}]), proc.pid)
        return str(refused.value)
    finally:
        await end(proc)
