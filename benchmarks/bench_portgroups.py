# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the host emulator's port groups add to a VM's boot (services/emulator/portgroups.py), measured alone.

Stands N VMs in (each a process in a network namespace of its own, ``unshare --net sleep``, as the
namespace mode's ``unshare`` is), gives each its NICs on one port group (``PortGroups.attach``: the
bridge's namespace made at the first, then a veth pair per NIC), P at once, and prints the time of the
first attach (it makes the bridge) and p50 / p90 of the others; then ends the VMs and the port group and
says whether anything is left (a holder process, a link with a VM's MAC in this machine's namespace).
No peer to set beside it: an ESXi host plugs a vNIC into its port group in its own time.

    python3 benchmarks/bench_portgroups.py [--vms 50] [--nics 1] [--parallel 10]

Root, as the emulator.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / ".build" / "collections")]

from ansible_collections.vic.containers.services.emulator import machine as machines  # noqa: E402
from ansible_collections.vic.containers.services.emulator import portgroups  # noqa: E402
from ansible_collections.vic.containers.tools.harness.emulator import vm_processes  # noqa: E402


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def vm(index, nics):
    """A Machine with ``nics`` NICs on the port group "bench", on 10.0.0.0/8 (in the namespaces only)."""
    macs = ["02:00:00:%02x:%02x:%02x" % (index >> 8, index & 0xff, nic) for nic in range(nics)]
    spec = {"nics": [{"mac": "", "addresses": ["10.%d.%d.%d/8" % (nic, index >> 8, index & 0xff + 2)], "gateway": "10.0.0.1"}
                     for nic in range(nics)]}
    return machines.Machine("vm-%d" % index, "bench-%d" % index, json.dumps(spec), {}, None, None, None,
                            nics=[machines.Nic("bench", mac) for mac in macs])


async def bench(count, nics, parallel, base):
    groups = portgroups.PortGroups(base)
    sleepers = [await asyncio.create_subprocess_exec("unshare", "--net", "sleep", "600") for _unused in range(count)]
    await asyncio.sleep(0.5)  # unshare has made each one's namespace (it then execs sleep)
    machines_ = [vm(index, nics) for index in range(count)]
    seconds = []
    start = time.perf_counter()
    await groups.attach(sleepers[0], machines_[0], sleepers[0].pid)
    first = time.perf_counter() - start
    gate = asyncio.Semaphore(parallel)

    async def attach(index):
        async with gate:
            began = time.perf_counter()
            await groups.attach(sleepers[index], machines_[index], sleepers[index].pid)
            seconds.append(time.perf_counter() - began)
    await asyncio.gather(*(attach(index) for index in range(1, count)))
    for sleeper in sleepers:
        sleeper.kill()
        await sleeper.wait()
        await groups.detach(sleeper)
    macs = {nic.mac for machine in machines_ for nic in machine.nics}
    return first, seconds, macs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=50)
    parser.add_argument("--nics", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=10)
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="bench-portgroups-")
    try:
        first, seconds, macs = asyncio.run(bench(args.vms, args.nics, args.parallel, base))
    finally:
        os.rmdir(base)
    print("first attach (makes the bridge's namespace), %d NIC(s): %.1f ms" % (args.nics, first * 1000))
    print("%d more attaches, %d at once, %d NIC(s) each: p50 %.1f ms, p90 %.1f ms, max %.1f ms"
          % (len(seconds), args.parallel, args.nics, percentile(seconds, 0.5) * 1000,
             percentile(seconds, 0.9) * 1000, max(seconds) * 1000))
    links = json.loads(subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout)
    left = vm_processes(base) + sorted(link["ifname"] for link in links if link.get("address") in macs)
    print("left behind on the host: %s" % (left or "nothing"))


if __name__ == "__main__":
    main()
