"""Read what the simulator holds, independently of the collection's own code.

Command line (the integration targets, through ``ansible.builtin.command``),
on the simulator recorded by ``vcsim.py start --state FILE``::

    python tools/harness/vsphere_probe.py --state FILE find vapp=VirtualApp:NAME vm=VirtualMachine:NAME ...
    python tools/harness/vsphere_probe.py --state FILE create-vapp NAME [--cluster DC0_C0]

``find`` prints one JSON object: each label to the list of objects of that
type and name ({moid, name, type} and, for VMs and pools, what the targets
check; tuples become lists), all read over one connection. Types are pyVmomi
``vim`` names, dotted below it (``dvs.DistributedVirtualPortgroup``).
``create-vapp`` makes a vApp that is not a VCH, as another tool would, and
prints its moid.

Library use: ``with connect(sim) as content: find(content, vim.VirtualApp, name)``,
where ``sim`` has ``connect_kwargs()`` (a ``vcsim.Simulator``).
"""

import argparse
import contextlib
import json
import sys

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim


@contextlib.contextmanager
def connect(sim):
    si = SmartConnect(**sim.connect_kwargs())
    try:
        yield si.RetrieveContent()
    finally:
        Disconnect(si)


def find(content, vimtype, name):
    """The objects of ``vimtype`` called ``name``, as {moid, name, type, ...} dicts."""
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


def create_vapp(content, name, cluster="DC0_C0", annotation="someone else's"):
    """A vApp that is not a VCH, in ``cluster`` of the first datacenter; returns its moid."""
    dc = content.rootFolder.childEntity[0]
    target = next(c for c in dc.hostFolder.childEntity if c.name == cluster)
    allocation = {"limit": -1, "reservation": 0, "expandableReservation": True,
                  "shares": vim.SharesInfo(level="normal", shares=0)}
    spec = vim.ResourceConfigSpec(cpuAllocation=vim.ResourceAllocationInfo(**allocation),
                                  memoryAllocation=vim.ResourceAllocationInfo(**allocation))
    vapp = target.resourcePool.CreateVApp(name, spec, vim.vApp.VAppConfigSpec(annotation=annotation), dc.vmFolder)
    return vapp._moId


# -- command line ------------------------------------------------------


class _Endpoint:
    """The simulator recorded in a ``vcsim.py start`` state file."""

    def __init__(self, state):
        self.state = state

    def connect_kwargs(self):
        return {"host": self.state["host"], "port": self.state["port"], "user": self.state["username"],
                "pwd": self.state["password"], "disableSslCertValidation": True}


def vim_type(dotted):
    """``VirtualApp`` -> vim.VirtualApp, ``dvs.DistributedVirtualPortgroup`` -> vim.dvs.DistributedVirtualPortgroup."""
    found = vim
    for part in dotted.split("."):
        found = getattr(found, part)
    return found


def _query(text):
    label, sep, rest = text.partition("=")
    typename, sep2, name = rest.partition(":")
    if not (sep and sep2 and label and typename and name):
        raise argparse.ArgumentTypeError("want LABEL=TYPE:NAME, got %r" % text)
    try:
        return label, vim_type(typename), name
    except AttributeError:
        raise argparse.ArgumentTypeError("no vim type %r" % typename) from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--state", required=True, help="state file written by vcsim.py start")
    sub = parser.add_subparsers(dest="command", required=True)
    finder = sub.add_parser("find", help="objects by type and name, as JSON")
    finder.add_argument("queries", nargs="+", type=_query, metavar="LABEL=TYPE:NAME")
    maker = sub.add_parser("create-vapp", help="a vApp that is not a VCH; prints its moid")
    maker.add_argument("name")
    maker.add_argument("--cluster", default="DC0_C0")
    args = parser.parse_args(argv)
    with open(args.state) as handle:
        endpoint = _Endpoint(json.load(handle))
    with connect(endpoint) as content:
        if args.command == "find":
            answer = {label: find(content, vimtype, name) for label, vimtype, name in args.queries}
        else:
            answer = {"moid": create_vapp(content, args.name, args.cluster)}
    print(json.dumps(answer, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
