# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The inventory a VCH needs, read in one PropertyCollector call; private to the collection.

One call from the root folder reads datacenters, folders, compute resources,
hosts, resource pools and vApps, datastores, networks and switches, and the
VMs of every *child* resource pool. VMs of a cluster's or host's root pool are
never read: a VCH always lives in a pool of its own, so the cost of a look-up
does not grow with the VMs that are not ours.
"""

from __future__ import annotations

from ansible_collections.vic.containers.plugins.module_utils._errors import NotFound
from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc

VM_PATHS = (
    "name", "resourcePool", "config.managedBy", "config.extraConfig", "config.hardware.numCPU",
    "config.hardware.memoryMB", "config.files.vmPathName", "runtime.powerState", "guest.ipAddress",
)

PATHS = {
    "ManagedEntity": ("name", "parent"),
    "Datacenter": ("name", "parent", "vmFolder"),
    "ComputeResource": ("name", "parent", "resourcePool", "host"),
    "HostSystem": ("name", "parent", "configManager.networkSystem"),
    "ResourcePool": ("name", "parent", "owner", "config", "vm"),
    "VirtualApp": ("name", "parent", "owner", "config", "vm", "vAppConfig.annotation"),
    "Datastore": ("name", "parent", "summary"),
    "DistributedVirtualPortgroup": ("name", "parent", "key", "config.distributedVirtualSwitch", "config.description"),
    "DistributedVirtualSwitch": ("name", "parent", "uuid"),
    "VirtualMachine": VM_PATHS,
}

# Named traversal specs. A spec is followed only from the objects the specs
# naming it reach, so the root pool's VMs stay out (crToPool selects only
# the pool's children).
_TRAVERSALS = (
    ("folderChildren", "Folder", "childEntity",
     ("folderChildren", "dcHosts", "dcDatastores", "dcNetworks", "crToPool", "crHosts")),
    ("dcHosts", "Datacenter", "hostFolder", ("folderChildren",)),
    ("dcDatastores", "Datacenter", "datastoreFolder", ("folderChildren",)),
    ("dcNetworks", "Datacenter", "networkFolder", ("folderChildren",)),
    ("crToPool", "ComputeResource", "resourcePool", ("poolChildren",)),
    ("crHosts", "ComputeResource", "host", ()),
    ("poolChildren", "ResourcePool", "resourcePool", ("poolChildren", "poolVms")),
    ("poolVms", "ResourcePool", "vm", ()),
)

COMPUTE_TYPES = ("ClusterComputeResource", "ComputeResource")
POOL_TYPES = ("ResourcePool", "VirtualApp")
NETWORK_TYPES = ("Network", "DistributedVirtualPortgroup", "OpaqueNetwork")


def read(session):
    """Read the whole inventory a VCH needs: one round trip."""
    specs = [pc.traversal(*t) for t in _TRAVERSALS]
    root = pc.object_spec(session.content.rootFolder, specs)
    return Inventory(pc.retrieve(session, [root], PATHS))


def same(a, b):
    """The same managed object, whichever read it came from."""
    return a is not None and b is not None and a.moid == b.moid


class Inventory:
    """A snapshot of the inventory with path look-ups, no further calls."""

    def __init__(self, objects):
        self.objects = {o.moid: o for o in objects if "name" in o.props}
        self._paths = {}

    def __iter__(self):
        return iter(self.objects.values())

    def of_type(self, *types):
        return [o for o in self.objects.values() if o.type in types]

    def get(self, ref):
        if ref is None:
            return None
        return self.objects.get(ref._moId)

    def parent(self, obj):
        # A VM is placed by its pool (the folders of the VM view are not read).
        if obj.type == "VirtualMachine":
            return self.get(obj.get("resourcePool"))
        return self.get(obj.get("parent"))

    def path(self, obj):
        """Inventory path, e.g. ``/DC0/host/DC0_C0/Resources/vch``."""
        cached = self._paths.get(obj.moid)
        if cached is None:
            parent = self.parent(obj)
            if parent is None:
                cached = "" if obj.type == "Folder" else "/" + obj.get("name")
            else:
                cached = self.path(parent) + "/" + obj.get("name")
            self._paths[obj.moid] = cached
        return cached

    def datacenter_of(self, obj):
        while obj is not None and obj.type != "Datacenter":
            obj = self.parent(obj)
        return obj

    def within(self, obj, datacenter):
        return same(self.datacenter_of(obj), datacenter)

    def datacenter(self, name=None):
        """The datacenter named ``name``, or the only one when no name is given."""
        dcs = self.of_type("Datacenter")
        if name is None:
            if len(dcs) == 1:
                return dcs[0]
            raise NotFound("datacenter: more than one datacenter exists (%s); name one."
                           % ", ".join(sorted(d.get("name") for d in dcs)))
        wanted = name.strip("/")
        for dc in dcs:
            if wanted in (dc.get("name"), self.path(dc).strip("/")):
                return dc
        raise NotFound("datacenter: no datacenter %r; found %s."
                       % (name, ", ".join(sorted(d.get("name") for d in dcs)) or "none"))

    def compute(self, value, datacenter):
        """The pool a VCH goes in and its compute resource, from a path or name.

        Accepts what vic-machine's --compute-resource did: an inventory path
        (``/DC0/host/DC0_C0/Resources/pool``), a cluster or host name, or a
        path relative to the host folder, with or without ``Resources``.
        """
        candidates = {}
        base = self.path(datacenter) + "/host/"
        for obj in self.of_type(*(COMPUTE_TYPES + POOL_TYPES)):
            full = self.path(obj)
            if not full.startswith(base):
                continue
            rel = full[len(base):]
            keys = (full, rel, rel.replace("/Resources", ""), full.replace("/Resources", ""))
            for key in sorted(set(k.rstrip("/") for k in keys)):
                candidates.setdefault(key, []).append(obj)
        matches = candidates.get(value.rstrip("/"), [])
        if not matches:
            raise NotFound("compute: no cluster, host or resource pool %r in datacenter %s."
                           % (value, datacenter.get("name")))
        # A compute resource and its root pool share a name; the resource wins.
        matches.sort(key=lambda o: o.type not in COMPUTE_TYPES)
        target = matches[0]
        if target.type in COMPUTE_TYPES:
            return target, self.get(target.get("resourcePool"))
        return self.owner(target), target

    def owner(self, pool):
        return self.get(pool.get("owner"))

    def hosts(self, compute):
        return [self.get(h) for h in compute.get("host") or () if self.get(h)]

    def datastore(self, name, datacenter, option):
        for ds in self.of_type("Datastore"):
            if ds.get("name") == name and self.within(ds, datacenter):
                return ds
        known = sorted(d.get("name") for d in self.of_type("Datastore") if self.within(d, datacenter))
        raise NotFound("%s: no datastore %r in datacenter %s; found %s."
                       % (option, name, datacenter.get("name"), ", ".join(known) or "none"))

    def network(self, name, datacenter, option, required=True):
        found = [n for n in self.of_type(*NETWORK_TYPES)
                 if n.get("name") == name and self.within(n, datacenter)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise NotFound("%s: more than one network is named %r in datacenter %s."
                           % (option, name, datacenter.get("name")))
        if not required:
            return None
        known = sorted({n.get("name") for n in self.of_type(*NETWORK_TYPES) if self.within(n, datacenter)})
        raise NotFound("%s: no port group %r in datacenter %s; found %s."
                       % (option, name, datacenter.get("name"), ", ".join(known) or "none"))

    def switches(self, datacenter):
        return [s for s in self.of_type("VmwareDistributedVirtualSwitch", "DistributedVirtualSwitch")
                if self.within(s, datacenter)]

    def child_pool(self, parent, name):
        for pool in self.of_type(*POOL_TYPES):
            if pool.get("name") == name and same(self.parent(pool), parent):
                return pool
        return None

    def vms_in(self, pool):
        return [self.get(ref) for ref in pool.get("vm") or () if self.get(ref)]
