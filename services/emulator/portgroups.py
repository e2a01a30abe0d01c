# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Port groups as Linux bridges inside network namespaces the emulator owns (namespace mode).

One namespace per port group a running VM has a NIC on: made when the first such VM
boots, ended when the last one ends and when the emulator stops. It is held by one
process (``unshare --net`` that ends as ``sleep``), not by a name under /run/netns:
the namespace lives exactly as long as that process, which dies with the emulator
(``records.PARENT_DEATH``) and carries the emulator's run directory in its
environment (``records.MARKER_ENV``), so what an emulator killed with -9 leaves is
cleared by the next one as its VMs are. In it:

* the bridge ``pg``, up; forwarding off, so two networks sharing a port group (every
  bridge network of a VCH is on its bridge port group) stay apart above the wire;
* the gateway address of each network a NIC of a VM on it names (``gateway/prefix``
  of the boot spec), so ``ping <gateway>`` answers, as the endpoint VM's bridge NIC
  does in VIC; nothing routes beyond it.

Each NIC of a booting VM is a veth pair made inside the port group's namespace: one end
a port of ``pg``, the other moved straight into the VM's network namespace as
``eth<n>`` (n: the NIC's place on the VM) with the NIC's MAC, where the tether finds and
configures it as in a VM. Nothing is ever made in this machine's own namespace (no link,
address or route): the bridge ranges may be the host's own networks. The pair goes
when the VM's namespace goes (its end with it, the peer with that end).
"""

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import signal
import time

from ansible_collections.vic.containers.services.emulator import machine as machines
from ansible_collections.vic.containers.services.emulator import records

LOG = logging.getLogger("vic.emulator.portgroups")
BRIDGE = "pg"
# The holder's whole life: its namespace made ready, then nothing but being there.
_HOLD = ("ip link set lo up; ip link add %s type bridge; ip link set %s up; "
         "echo 0 > /proc/sys/net/ipv4/ip_forward; echo ready; exec sleep infinity") % (BRIDGE, BRIDGE)
_READY_TIMEOUT = 10


def own_netns(pid):
    """Whether process ``pid`` is in this process's network namespace (or is gone)."""
    try:
        return os.readlink("/proc/%d/ns/net" % pid) == os.readlink("/proc/self/ns/net")
    except OSError:
        return True


def plumbing(nics, spec_nics, vm_pid, first_port):
    """{port group: [``ip -batch`` lines]} that give the VM in ``vm_pid``'s network namespace its NICs
    (``machine.Nic``, in the VM's order; ``spec_nics`` the boot spec's, in the same order)."""
    lines = {}
    for index, nic in enumerate(nics):
        port = "p%d" % (first_port + index)
        peer = "eth%d" % index + (" address %s" % nic.mac if nic.mac else "")
        group = lines.setdefault(nic.port_group, [])
        group += ["link add %s type veth peer name %s netns %d" % (port, peer, vm_pid),
                  "link set %s master %s up" % (port, BRIDGE)]
        spec = spec_nics[index] if index < len(spec_nics) else {}
        if spec.get("gateway") and spec.get("addresses"):
            prefix = ipaddress.ip_interface(spec["addresses"][0]).network.prefixlen
            group.append("address replace %s/%d dev %s" % (spec["gateway"], prefix, BRIDGE))
    return lines


class _Group:
    """One port group's namespace: its holder process and the VMs (owners) with a NIC on it."""

    def __init__(self, proc):
        self.proc = proc
        self.owners = set()


class PortGroups:
    """The port groups of the running VMs, each a bridge in a namespace of its own (see the module)."""

    def __init__(self, base):
        self.base = base        # the emulator's run directory: the holders' marker
        self._groups = {}       # port group -> _Group
        self._lock = asyncio.Lock()
        self._ports = 0         # bridge ports made so far: each a name of its own

    def holders(self):
        """{port group: the pid holding its namespace}."""
        return {name: group.proc.pid for name, group in self._groups.items()}

    async def attach(self, owner, vm, vm_pid):
        """Give ``vm`` (a Machine whose network namespace ``vm_pid`` is in) its NICs on their port groups."""
        if not vm.nics:
            return
        if own_netns(vm_pid):
            raise machines.MachineError("container VM %s: its process %d is not in a network namespace of its own"
                                        % (vm.name, vm_pid))
        spec_nics = json.loads(vm.boot_spec).get("nics") or []
        started = time.monotonic()
        # Only the bookkeeping is one VM at a time: a port group's namespace is made once, and one the VM is
        # an owner of is not ended under it; the ip commands of several VMs run at once.
        async with self._lock:
            lines = plumbing(vm.nics, spec_nics, vm_pid, self._ports)
            self._ports += len(vm.nics)
            holders = {}
            for port_group in lines:
                group = await self._group(port_group)
                group.owners.add(owner)
                holders[port_group] = group.proc.pid
        for port_group, batch in lines.items():
            await _ip(holders[port_group], batch, "%s: NICs on port group %s" % (vm.name, port_group))
        placed = ", ".join("eth%d on %s" % (index, nic.port_group) for index, nic in enumerate(vm.nics))
        LOG.info("%s: NICs %s (%.1f ms)", vm.name, placed, (time.monotonic() - started) * 1000)

    async def detach(self, owner):
        """``owner`` (a VM) uses no port group any more: end the namespaces nothing else uses."""
        async with self._lock:
            for port_group, group in list(self._groups.items()):
                group.owners.discard(owner)
                if not group.owners:
                    await self._end(port_group)

    async def close(self):
        """End every namespace (the emulator stops)."""
        async with self._lock:
            for port_group in list(self._groups):
                await self._end(port_group)

    async def _group(self, port_group):
        group = self._groups.get(port_group)
        if group is not None:
            return group
        proc = await asyncio.create_subprocess_exec(
            *records.PARENT_DEATH, "unshare", "--net", "--", "sh", "-ec", _HOLD, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=dict(os.environ, **{records.MARKER_ENV: self.base}))
        group = self._groups[port_group] = _Group(proc)
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), _READY_TIMEOUT)
        except asyncio.TimeoutError:
            line = b""
        if line.strip() != b"ready" or own_netns(proc.pid):
            await self._end(port_group)
            said = (await proc.stderr.read()).decode("utf-8", "replace").strip()
            raise machines.MachineError("cannot make the bridge of port group %s: %s" % (port_group, said or line))
        LOG.info("port group %s: bridge in the namespace of pid %d", port_group, proc.pid)
        return group

    async def _end(self, port_group):
        group = self._groups.pop(port_group)
        with contextlib.suppress(ProcessLookupError):
            os.kill(group.proc.pid, signal.SIGKILL)
        await group.proc.wait()
        LOG.info("port group %s: bridge ended", port_group)


async def _ip(pid, batch, what):
    """``ip -batch`` inside the network namespace of process ``pid``."""
    proc = await asyncio.create_subprocess_exec(
        "nsenter", "--target", str(pid), "--net", "--", "ip", "-batch", "-", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _out, err = await proc.communicate("\n".join(batch).encode() + b"\n")
    if proc.returncode != 0:
        raise machines.MachineError("%s: ip failed: %s" % (what, err.decode("utf-8", "replace").strip()))
