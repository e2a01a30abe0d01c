# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every VM of the vCenter as it changes: one PropertyCollector filter over a ContainerView, ``WaitForUpdatesEx``.

The first wait returns every VM (one call however many there are); later ones
block until something changes. The emulator is no VCH's: it watches the whole
inventory, as a host runs whatever VM is powered on on it, and picks the
container VMs itself.
"""

import logging

from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc, updates

try:
    from pyVmomi import vim, vmodl
except ImportError:  # pragma: no cover - the emulator's requirements install it
    vim = vmodl = None

LOG = logging.getLogger("vic.emulator.feed")


def in_view(view):
    """The object spec that selects every object a ContainerView holds (not the view itself)."""
    return pc.object_spec(view, [pc.traversal("inView", "ContainerView", "view")], skip=True)


class VmFeed:
    """Calls ``on_change(moid, props)`` (``props`` None when the VM left) from a thread of its own."""

    def __init__(self, session, paths, on_change):
        self._session = session
        self._paths = paths
        self._on_change = on_change
        self._collector = None
        self._view = None
        self._follower = None
        self.vms = {}  # moid -> {property: value}, read only on the feed's thread

    def start(self):
        content = self._session.content
        self._view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        self._collector = updates.own_collector(self._session, vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[in_view(self._view)], propSet=pc.property_specs({"VirtualMachine": self._paths})))
        self._follower = updates.Follower(self._collector, self._apply, "vm-feed")
        self._follower.start()

    def stop(self):
        if self._follower is not None:
            self._follower.stop(join=True)
        for obj, destroy in ((self._collector, "DestroyPropertyCollector"), (self._view, "DestroyView")):
            if obj is not None:
                try:
                    getattr(obj, destroy)()
                except Exception as exc:  # pylint: disable=broad-except
                    LOG.info("could not destroy the feed's %s: %s", destroy, exc)  # the simulator may be gone

    def _apply(self, update):
        # A batch says which VMs changed; what they are now is read fresh (updates.current): a host that
        # took a power-on for a power-off would never boot that VM.
        for moid, (ref, kind, changes) in updates.current(self._session, update, self._paths).items():
            if kind == "leave":  # gone, or gone since
                self.vms.pop(moid, None)
                self._on_change(moid, None)
                continue
            self.vms[moid] = updates.applied(self.vms.get(moid, {"ref": ref}), changes)
            self._on_change(moid, dict(self.vms[moid]))
