# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The live cache: the VCH pool's VMs as vSphere reports them, fed by ``WaitForUpdatesEx``.

One filter (the VCH pool, traversed to its VMs) on a PropertyCollector of the
cache's own, so task waits elsewhere never see or steal its updates. The first
``WaitForUpdatesEx`` returns everything (the rebuild at start: one call for any
number of containers); later ones block until something changes, so ``docker
ps`` and ``docker inspect`` read memory and cost no vSphere call.

The endpoint's own changes are written through (``put``) as soon as their task
finishes, so a client sees its ``docker create`` at once; the feed then
confirms them and brings in what others changed (an administrator powering a
container VM off in vCenter, a container VM ending).

Updates are fetched on a thread of their own and applied on the event loop,
so readers never see a half-applied update. The VMs a batch names are read
again (one PropertyCollector call per batch, on a thread of its own, in batch
order): vcsim does not always list a batch's changes of one VM in the order
they happened.

When vSphere ends the endpoint's session, the session logs in again and the
feed gets a new collector, whose first answer (everything) resynchronises the
cache: VMs that went meanwhile leave, changes made meanwhile (a VM powered off
in vCenter) are seen as changes. While the feed cannot follow vSphere for more
than ``STALE_SECONDS``, the container list is refused rather than served stale, and a single
container is read from vSphere (``read_again``: one PropertyCollector call) or refused when that
read fails too.
"""

import asyncio
import collections
import concurrent.futures
import logging
import time

from ansible_collections.vic.containers.plugins.module_utils._errors import VSphereError
from ansible_collections.vic.containers.plugins.module_utils.vch import actions
from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc, updates

try:
    from pyVmomi import vmodl
except ImportError:  # pragma: no cover - the endpoint's requirements install it
    vmodl = None

VM_PATHS = ("name", "config.extraConfig", "config.managedBy", "config.uuid", "config.hardware.device",
            "runtime.powerState", "summary.runtime.bootTime")
# What the endpoint writes through and the feed must confirm; a pin lapses after PIN_SECONDS so a
# change made by someone else meanwhile is never hidden for long.
PINNED = ("name", "runtime.powerState", "config.extraConfig")
PIN_SECONDS = 30
# vSphere never reuses a VM's moid, so a destroyed VM's moid is a tombstone for good; only the most
# recent are kept, as a late report of a VM trails its destruction by a few feed batches at most.
_TOMBSTONES = 4096
# A feed that fails for longer than this (a few of its retries, one per second) has lost vSphere.
STALE_SECONDS = 5
LOG = logging.getLogger("vic.endpoint.cache")


class LiveCache:
    """moid -> {property path: value} of every VM in the VCH pool."""

    def __init__(self, state):
        self._state = state
        self.vms = {}
        self._listeners = []
        self._follower = None
        self._collector = None
        self._loop = None
        self._pins = {}  # moid -> {property: (value written through, until when it holds)}
        self._gone = collections.OrderedDict()  # moids of VMs the endpoint destroyed, oldest first
        self._reader = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="live-cache-read")

    def listen(self, callback):
        """``callback(moid, before, after)`` after each VM change (``after`` None when it left)."""
        self._listeners.append(callback)

    async def start(self):
        """Read the whole pool (one ``WaitForUpdatesEx``), then follow it on a thread."""
        self._loop = asyncio.get_running_loop()
        self._collector = await self._state.call(updates.own_collector, self._state.session, self._filter_spec())
        first = await self._state.call(updates.wait, self._collector, "")
        self._apply(first)
        self._follower = updates.Follower(self._collector, self._deliver, "live-cache",
                                          first.version if first is not None else "",
                                          renew=self._new_collector, resync=self._deliver_all)
        self._follower.start()

    # The follower's thread calls these three.

    def _deliver(self, update):
        # The re-read runs on a thread of its own, one batch after the other, so the follower waits again
        # at once: vcsim loses changes made while no WaitForUpdatesEx of the collector is pending (a VM
        # powered off in vCenter during a re-read on the follower's thread was never reported).
        self._reader.submit(self._read_again, update)

    def _read_again(self, update):
        folded = updates.fold(update)
        read_at = time.monotonic()
        try:
            folded = updates.reread(self._state.session, folded, VM_PATHS)
        except Exception as exc:  # pylint: disable=broad-except
            LOG.warning("could not read the VMs of a feed batch again, using the batch's values: %s", exc)
            read_at = None
        self._loop.call_soon_threadsafe(self._apply_folded, folded, read_at)

    def _deliver_all(self, update):
        # Through the reader too, so it is applied after the batches read before it.
        self._reader.submit(self._loop.call_soon_threadsafe, self._resync, updates.fold(update))

    def _new_collector(self):
        return updates.own_collector(self._state.session, self._filter_spec())

    def stale(self):
        """Whether the feed has not been able to follow vSphere for a while: what is held may be stale."""
        since = self._follower.failing_since if self._follower is not None else None
        return since is not None and time.monotonic() - since > STALE_SECONDS

    def check_fresh(self):
        """Raise when the feed has not been able to follow vSphere for a while (``stale``)."""
        if self.stale():
            raise self._refusal()

    def _refusal(self, why=None):
        follower = self._follower
        since = follower.failing_since or time.monotonic()
        return VSphereError("The VCH's state cannot be read from vSphere (for %d s: %s); what the endpoint "
                            "last saw may be stale." % (time.monotonic() - since, why or follower.failure))

    async def read_again(self, ref):
        """Read one VM as vSphere holds it now (one PropertyCollector call) and apply it as a feed batch's
        re-read is applied: what a single-container read gets while the feed is stale. Refused, as the
        container list is, when vSphere cannot be read either."""
        read_at = time.monotonic()
        try:
            folded = await self._state.call(updates.reread, self._state.session, {ref._moId: (ref, "modify", [])},
                                            VM_PATHS)
        except Exception as exc:  # pylint: disable=broad-except
            raise self._refusal(str(getattr(exc, "msg", None) or exc)) from None
        self._apply_folded(folded, read_at)

    def stop(self):
        if self._follower is not None:
            self._follower.stop()
        self._reader.shutdown(wait=False, cancel_futures=True)

    def _filter_spec(self):
        to_vms = pc.traversal("poolVms", "ResourcePool", "vm")
        return vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[pc.object_spec(self._state.pool_ref, [to_vms], skip=True)],
            propSet=pc.property_specs({"VirtualMachine": VM_PATHS}))

    def _apply(self, update):
        self._apply_folded(updates.fold(update))

    def _apply_folded(self, folded, read_at=None):
        """``read_at``: when the values were read again from vSphere (``time.monotonic()``), if they were."""
        for moid, (ref, kind, changes) in folded.items():
            self._apply_object(moid, ref, kind, changes, read_at)

    def _resync(self, folded):
        """Everything in the pool now (a new collector's first answer): what is not in it has left."""
        for moid in [moid for moid in self.vms if moid not in folded]:
            LOG.info("VM %s left the VCH pool while the update feed was down", moid)
            self._forget(moid)
        self._apply_folded(folded)

    def _apply_object(self, moid, ref, kind, changes, read_at=None):
        before = self.vms.get(moid)
        if kind == "leave":
            # Not a tombstone: a VM moved out of the pool by an administrator can be moved back.
            self._forget(moid)
            return
        if kind == "modify" and before is None:
            return  # a VM the endpoint already dropped (destroyed); the feed catches up with "leave"
        if moid in self._gone:
            # The feed can report a VM entering after the endpoint destroyed it (a batch collected
            # while the destroy ran, delivered after it): taken in, it would be a ghost container.
            LOG.info("vSphere update feed reported VM %s after the endpoint destroyed it; ignored", moid)
            return
        after = updates.applied(dict(before or {}, ref=ref), [v for v in changes if self._confirms(moid, v, read_at)])
        self.vms[moid] = after
        self._notify(moid, before, after)

    def put(self, ref, props):
        """Write through what the endpoint itself just changed, before the feed reports it.

        The values are pinned until the feed reports them: an update the feed
        collected before this change (it batches every 250 ms on vcsim, longer on
        a busy vCenter) must not put an older value back.
        """
        moid = ref._moId
        if moid in self._gone:
            return  # a late step of an operation on a container removed meanwhile
        before = self.vms.get(moid)
        after = dict(before or {}, ref=ref, **props)
        self.vms[moid] = after
        deadline = time.monotonic() + PIN_SECONDS
        pins = self._pins.setdefault(moid, {})
        for name, value in props.items():
            if name in PINNED:
                pins[name] = (_comparable(value), deadline)
        self._notify(moid, before, after)

    def put_extra_config(self, ref, values):
        """Write through extraConfig ``values`` (key -> value) the endpoint just set on a VM it holds."""
        current = self.vms.get(ref._moId)
        if current is None:
            return
        extra = {o.key: o.value for o in current.get("config.extraConfig") or ()}
        extra.update(values)
        self.put(ref, {"config.extraConfig": actions.option_values(extra)})

    def _confirms(self, moid, values, read_at=None):
        """Whether a property's values in one batch may be applied (the last of them).

        No, while the property holds a value written through that none of them
        reports yet: they are older than that change. Values read again after the
        write-through (``read_at``) are newer: they may already be past it (a VM
        the endpoint powered on, powered off in vCenter since), so they count.
        """
        pins = self._pins.get(moid)
        name = values[0].name
        pinned = pins.get(name) if pins else None
        if pinned is None:
            return True
        value, deadline = pinned
        read_after = read_at is not None and read_at > deadline - PIN_SECONDS
        if read_after or any(_matches(_comparable(v.val), value) for v in values) or time.monotonic() > deadline:
            del pins[name]
            return True
        return False

    def drop(self, moid):
        """Forget a VM the endpoint destroyed, for good: the feed may still report it for a while."""
        self._gone[moid] = True
        while len(self._gone) > _TOMBSTONES:
            self._gone.popitem(last=False)
        self._forget(moid)

    def _forget(self, moid):
        self._pins.pop(moid, None)
        before = self.vms.pop(moid, None)
        if before is not None:
            self._notify(moid, before, None)

    def _notify(self, moid, before, after):
        for callback in self._listeners:
            callback(moid, before, after)


def _comparable(value):
    """extraConfig as a dict (the feed sends new OptionValue objects); other values as they are."""
    if isinstance(value, (list, tuple)) and value and hasattr(value[0], "key"):
        return {o.key: o.value for o in value}
    if isinstance(value, (list, tuple)) and not value:
        return {}
    return value


def _matches(reported, pinned):
    # vSphere adds extraConfig keys of its own: what was written through must be there, not only that.
    if isinstance(pinned, dict) and isinstance(reported, dict):
        return all(reported.get(key) == value for key, value in pinned.items())
    return reported == pinned
