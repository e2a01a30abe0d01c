# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the VCH's pool can give its containers (``docker info``'s CPUs and memory), read from vSphere."""

import math

from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc

_POOL_PATHS = ("config.cpuAllocation.limit", "config.memoryAllocation.limit", "owner")
_COMPUTE_PATHS = ("summary.numCpuCores", "summary.totalCpu", "summary.effectiveMemory", "summary.totalMemory")


def size(session, pool_ref):
    """(CPUs, memory bytes) of the pool: its compute resource's, bounded by the pool's own limits
    (a CPU limit in MHz counts as that many of the hosts' cores). Two PropertyCollector reads."""
    pool = pc.retrieve_objects(session, [pool_ref], _POOL_PATHS)[0]
    compute = pc.retrieve_objects(session, [pool.get("owner")], _COMPUTE_PATHS)[0]
    cores = compute.get("summary.numCpuCores") or 0
    total_mhz = compute.get("summary.totalCpu") or 0
    cpus = cores
    cpu_limit = pool.get("config.cpuAllocation.limit")
    if cores and total_mhz and cpu_limit is not None and cpu_limit >= 0:
        cpus = min(cores, max(1, math.ceil(cpu_limit / (total_mhz / cores))))
    # effectiveMemory is MB (what the cluster can run VMs in); a host's totalMemory is bytes.
    memory = (compute.get("summary.effectiveMemory") or 0) * 1024 * 1024 or compute.get("summary.totalMemory") or 0
    memory_limit = pool.get("config.memoryAllocation.limit")
    if memory_limit is not None and memory_limit >= 0:
        memory = min(memory, memory_limit * 1024 * 1024) if memory else memory_limit * 1024 * 1024
    return cpus, memory
