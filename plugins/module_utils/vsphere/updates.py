# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Following a PropertyCollector filter with ``WaitForUpdatesEx``: the endpoint's live cache and the host
emulator both do, with this one loop and this one reading of a batch.

The first wait returns everything the filter selects (one call however many
objects); later ones block until something changes. A wait that fails (a lost
connection) is logged and tried again from the same version, so a feed never
ends for good while its owner wants it.
"""

import logging
import threading

try:
    from pyVmomi import vmodl
except ImportError:  # pragma: no cover - the requirements install it
    vmodl = None

# Long enough to cost nothing while idle, short enough to notice a stop request.
MAX_WAIT_SECONDS = 5
LOG = logging.getLogger("vic.vsphere.updates")


def own_collector(session, spec):
    """A PropertyCollector of the caller's own with ``spec`` as its one filter: no other wait (a task
    wait, another feed) ever sees or steals its updates."""
    collector = session.content.propertyCollector.CreatePropertyCollector()
    collector.CreateFilter(spec, partialUpdates=True)
    return collector


def wait(collector, version):
    """One ``WaitForUpdatesEx`` from ``version`` ("" for everything), None when nothing changed meanwhile."""
    return collector.WaitForUpdatesEx(version, vmodl.query.PropertyCollector.WaitOptions(
        maxWaitSeconds=MAX_WAIT_SECONDS))


class Follower:
    """Waits for updates on a thread of its own from ``version`` on and hands each to ``deliver(update)``."""

    def __init__(self, collector, deliver, name, version=""):
        self._collector = collector
        self._deliver = deliver
        self._version = version
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=name, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self, join=False):
        self._stopping.set()
        if join:
            self._thread.join(2 * MAX_WAIT_SECONDS)

    def _follow(self):
        while not self._stopping.is_set():
            try:
                update = wait(self._collector, self._version)
            except Exception as exc:  # pylint: disable=broad-except
                if self._stopping.is_set():
                    return
                LOG.warning("vSphere update feed interrupted: %s", exc)
                self._stopping.wait(1)
                continue
            if update is None or self._stopping.is_set():
                continue
            self._version = update.version
            self._deliver(update)


def fold(update):
    """moid -> (ref, kind, [the changes of each property, in the batch's order]) of one batch.

    One batch can hold several updates of one object, and vcsim does not always list them in the
    order they happened: only each property's last value counts, so nobody sees a state that is
    already over. vcsim also lists a batch's enters before its modifies and leaves, whatever their
    order (a vCenter sends one update per object and batch): an object listed as leaving is gone.
    """
    batch = {}
    for filter_update in (update.filterSet or ()) if update is not None else ():
        for obj in filter_update.objectSet or ():
            entry = batch.setdefault(obj.obj._moId, {"ref": obj.obj, "kind": obj.kind, "changes": {}})
            if "leave" in (obj.kind, entry["kind"]):
                entry["kind"] = "leave"
            elif entry["kind"] != "enter":
                entry["kind"] = obj.kind
            for change in obj.changeSet or ():
                entry["changes"].setdefault(change.name, []).append(change)
    return {moid: (entry["ref"], entry["kind"], list(entry["changes"].values())) for moid, entry in batch.items()}


def applied(props, changes):
    """``props`` with each property's last change of a batch applied (``fold``'s changes)."""
    after = dict(props)
    for values in changes:
        change = values[-1]
        if change.op in ("remove", "indirectRemove"):
            after.pop(change.name, None)
        else:
            after[change.name] = change.val
    return after
