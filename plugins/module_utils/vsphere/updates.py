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
import time

from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc

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
    """Waits for updates on a thread of its own from ``version`` on and hands each to ``deliver(update)``.

    With ``renew``: when the collector is gone (it belonged to a session the server ended; the
    session has logged in again meanwhile), ``renew()`` makes a new one, and what it reads first
    (everything, from version "") goes to ``resync(update)``: the owner learns what changed while
    it followed nothing, objects that left included.
    """

    def __init__(self, collector, deliver, name, version="", renew=None, resync=None):
        self._collector = collector
        self._deliver = deliver
        self._version = version
        self._renew = renew
        self._resync = resync
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=name, daemon=True)
        # time.monotonic() of the first failed wait since the last good one (None while it follows),
        # and why it failed: read from other threads to tell a reader the state may be stale.
        self.failing_since = None
        self.failure = None

    def start(self):
        self._thread.start()

    def stop(self, join=False):
        self._stopping.set()
        if join:
            self._thread.join(2 * MAX_WAIT_SECONDS)

    def _follow(self):
        deliver = self._deliver
        while not self._stopping.is_set():
            try:
                update = wait(self._collector, self._version)
            except vmodl.fault.ManagedObjectNotFound as exc:
                if self._stopping.is_set() or not self._failed(exc):
                    return
                deliver = self._renewed() or deliver
                continue
            except Exception as exc:  # pylint: disable=broad-except
                if self._stopping.is_set() or not self._failed(exc):
                    return
                continue
            self.failing_since = self.failure = None
            if self._stopping.is_set():
                return
            if update is None:
                # ``self._deliver`` is the one bound method kept at __init__, so identity tells a renewed
                # collector's delivery from the usual one: an idle wait of the usual feed delivers nothing.
                if deliver is not self._deliver:
                    deliver(None)  # a new collector with nothing to report: nothing is left either
                    deliver = self._deliver
                continue
            self._version = update.version
            deliver(update)
            deliver = self._deliver

    def _failed(self, exc):
        """Note a failed wait and pause before the next; False when asked to stop meanwhile."""
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        self.failure = str(getattr(exc, "msg", None) or exc)
        LOG.warning("vSphere update feed interrupted: %s", self.failure)
        return not self._stopping.wait(1)

    def _renewed(self):
        """A new collector in place of one the server no longer has; the delivery of its first update."""
        if self._renew is None:
            return None
        try:
            self._collector = self._renew()
        except Exception as exc:  # pylint: disable=broad-except
            self._failed(exc)
            return None
        LOG.warning("vSphere update feed: a new collector follows from the start (the old one is gone)")
        self._version = ""
        return self._resync


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


def current(session, update, paths):
    """``fold``'s answer for a batch, with what the VMs it names are now (``reread``); the batch's own
    values when that read fails."""
    folded = fold(update)
    try:
        return reread(session, folded, paths)
    except Exception as exc:  # pylint: disable=broad-except
        LOG.warning("could not read the changed objects again, using the feed's values: %s", exc)
        return folded


def reread(session, folded, paths):
    """``folded`` (``fold``'s answer) with what the VMs it names are now, read again in one call.

    vcsim does not always list a batch's changes of one object in the order they happened, so the
    last listed value may be an older one (a VM taken for off that is on). Each named VM comes back
    with every path in ``paths`` as one change (set, or removed when unset), or as "leave" when it
    is gone; other objects as the batch has them.
    """
    # Only the VMs: ``paths`` are a VM's, and a batch can also name the pool or a view.
    refs = [ref for ref, kind, _changes in folded.values() if kind != "leave" and ref._wsdlName == "VirtualMachine"]
    fresh = {found.moid: found.props for found in pc.retrieve_objects(session, refs, paths)}
    answer = {}
    for moid, (ref, kind, changes) in folded.items():
        if ref._wsdlName != "VirtualMachine":
            answer[moid] = (ref, kind, changes)
        elif kind == "leave" or moid not in fresh:
            answer[moid] = (ref, "leave", [])
        else:
            answer[moid] = (ref, kind, [[_change(name, fresh[moid])] for name in paths])
    return answer


def _change(name, props):
    if name in props:
        return vmodl.query.PropertyCollector.Change(name=name, op="assign", val=props[name])
    return vmodl.query.PropertyCollector.Change(name=name, op="remove")


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
