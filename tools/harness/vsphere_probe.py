"""Read what the simulator holds, independently of the collection's own code."""

import contextlib

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim


@contextlib.contextmanager
def connect(sim):
    si = SmartConnect(**sim.connect_kwargs())
    try:
        yield si.RetrieveContent()
    finally:
        Disconnect(si)


def find(sim, vimtype, name):
    """The objects of ``vimtype`` called ``name``, as {moid, name, extra} dicts."""
    with connect(sim) as content:
        view = content.viewManager.CreateContainerView(content.rootFolder, [vimtype], True)
        try:
            found = []
            for obj in view.view:
                if obj.name != name:
                    continue
                item = {"moid": obj._moId, "name": obj.name, "type": type(obj).__name__.split(".")[-1]}
                if isinstance(obj, vim.VirtualMachine):
                    item["extra"] = {o.key: o.value for o in obj.config.extraConfig}
                    item["power"] = obj.runtime.powerState
                    item["cpus"] = obj.config.hardware.numCPU
                    item["memory_mb"] = obj.config.hardware.memoryMB
                    item["managed_by"] = (obj.config.managedBy.extensionKey, obj.config.managedBy.type) \
                        if obj.config.managedBy else None
                    item["pool"] = obj.resourcePool.name if obj.resourcePool else None
                    item["networks"] = sorted(n.name for n in obj.network)
                if isinstance(obj, vim.ResourcePool):
                    cpu, mem = obj.config.cpuAllocation, obj.config.memoryAllocation
                    item["cpu"] = (cpu.limit, cpu.reservation, cpu.shares.level)
                    item["memory"] = (mem.limit, mem.reservation, mem.shares.level)
                    item["parent"] = obj.parent.name
                found.append(item)
            return found
        finally:
            view.DestroyView()


def one(sim, vimtype, name):
    found = find(sim, vimtype, name)
    assert len(found) == 1, "expected one %s %r, found %r" % (vimtype.__name__, name, found)
    return found[0]
