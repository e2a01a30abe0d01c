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
import threading

from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc

try:
    from pyVmomi import vim, vmodl
except ImportError:  # pragma: no cover - the emulator's requirements install it
    vim = vmodl = None

LOG = logging.getLogger("vic.emulator.feed")
# Long enough to cost nothing while idle, short enough to notice a stop request.
_MAX_WAIT_SECONDS = 5


def in_view(view):
    """The object spec that selects every object a ContainerView holds (not the view itself)."""
    return pc.object_spec(view, [pc.traversal("inView", "ContainerView", "view")], skip=True)


class VmFeed:
    """Calls ``on_change(moid, props)`` (``props`` None when the VM left) from a thread of its own."""

    def __init__(self, session, paths, on_change):
        self._session = session
        self._paths = paths
        self._on_change = on_change
        self._stopping = threading.Event()
        self._collector = None
        self._view = None
        self._thread = None
        self.vms = {}  # moid -> {property: value}, read only on the feed's thread

    def start(self):
        content = self._session.content
        self._view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        # A collector of our own, so no other wait ever sees or steals this filter's updates.
        self._collector = content.propertyCollector.CreatePropertyCollector()
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[in_view(self._view)],
            propSet=pc.property_specs({"VirtualMachine": self._paths}))
        self._collector.CreateFilter(spec, partialUpdates=True)
        self._thread = threading.Thread(target=self._follow, name="vm-feed", daemon=True)
        self._thread.start()

    def stop(self):
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(2 * _MAX_WAIT_SECONDS)
        for obj, destroy in ((self._collector, "DestroyPropertyCollector"), (self._view, "DestroyView")):
            if obj is not None:
                try:
                    getattr(obj, destroy)()
                except Exception as exc:  # pylint: disable=broad-except
                    LOG.info("could not destroy the feed's %s: %s", destroy, exc)  # the simulator may be gone

    def _follow(self):
        version = ""
        options = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=_MAX_WAIT_SECONDS)
        while not self._stopping.is_set():
            try:
                update = self._collector.WaitForUpdatesEx(version, options)
            except Exception as exc:  # pylint: disable=broad-except
                # A lost connection must not end the feed for good: say so and try again.
                if self._stopping.is_set():
                    return
                LOG.warning("vSphere update feed interrupted: %s", exc)
                self._stopping.wait(1)
                continue
            if update is None or self._stopping.is_set():
                continue
            version = update.version
            self._apply(update)

    def _apply(self, update):
        changed = []
        for filter_update in update.filterSet or ():
            for obj in filter_update.objectSet or ():
                moid = obj.obj._moId
                if obj.kind == "leave":
                    self.vms.pop(moid, None)
                else:
                    props = self.vms.setdefault(moid, {"ref": obj.obj})
                    for change in obj.changeSet or ():
                        if change.op in ("remove", "indirectRemove"):
                            props.pop(change.name, None)
                        else:
                            props[change.name] = change.val
                if moid not in changed:
                    changed.append(moid)
        # Only each VM's state at the end of the batch counts: one batch can hold several of its changes.
        for moid in changed:
            props = self.vms.get(moid)
            self._on_change(moid, dict(props) if props is not None else None)
