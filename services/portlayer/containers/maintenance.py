# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Maintenance boots: a stopped container's VM powered on so that its tether serves archive requests
(``docker cp``, ``export``, ``diff``) while the container does not run.

The container's files are on its VM's disks, which only its tether sees. For a container that is created
or exited, the endpoint writes its boot spec with ``protocol.MAINTENANCE`` and powers its VM on: the tether
assembles the root as for a run (layers, read-write disk, volumes) but starts no process and writes nothing
to the log; the requests go through the same ``archive@vic`` sessions as a running container's. Requests at
once or back to back share one boot, which lingers ``LINGER_SECONDS`` after the last one before its VM is
powered off and the mode cleared. The container's Docker state never changes meanwhile: ``Container.running``
is false while the mode is set, so no start, die or exit is seen, no restart policy or health check reacts.

A ``docker start`` (``power_on``) or removal (``destroy``) ends the boot first, under the container's power
lock, a start after the requests under way. The mode is written before the power-on and cleared after the
power-off, so an endpoint killed in between finds it in vSphere (``recover``) and ends it.

Round trips of one boot: Reconfig (mode on) + PowerOn, then PowerOff + Reconfig (mode off), each with its
task polls; the requests themselves are tether channel sessions.
"""

import asyncio
import contextlib
import logging

from ansible_collections.vic.containers.plugins.module_utils._errors import Conflict, NotFound, VicError
from ansible_collections.vic.containers.services.portlayer.containers.model import boot_values, now
from ansible_collections.vic.containers.services.tether import protocol

LOG = logging.getLogger("vic.endpoint.containers")
LINGER_SECONDS = 3.0     # a boot stays up this long after its last request, for the next one
BOOT_TIMEOUT = 120.0     # seconds from the power-on for the tether to connect
_POLL = 1.0


class _Boot:
    """One maintenance boot of one container: the task that brings it up, and who uses it."""

    def __init__(self):
        self.ready = None               # the task bringing it up: True, or False when the container runs
        self.users = 0
        self.idle = asyncio.Event()     # no request is using it
        self.idle.set()
        self.linger = None              # the timer that ends it once idle
        self.closing = False
        self.ended = asyncio.Event()


class Maintenance:
    """The maintenance boots of one port layer's containers (``Containers.maintenance``)."""

    def __init__(self, containers):
        self._containers = containers
        self.state = containers.state
        self._boots = {}    # container id -> _Boot

    def active(self, container_id):
        """Whether a maintenance boot of the container is up or coming up."""
        return container_id in self._boots

    @contextlib.asynccontextmanager
    async def archive(self, container_id, request):
        """An ``archive@vic`` session (``sessions.Archive``) for ``request`` on the container's tether: its
        running one, else one of a maintenance boot, begun or shared."""
        boot = None
        while not self._containers.find(container_id).running:
            boot = await self._join(container_id)
            if boot is not None:
                break
        try:
            session = await self.state.tether.archive(container_id, request, maintenance=boot is not None)
            try:
                yield session
            finally:
                session.close()
        finally:
            if boot is not None:
                self._leave(container_id, boot)

    async def _join(self, container_id):
        """The container's maintenance boot, up and counted as used; None when the container runs now."""
        while True:
            boot = self._boots.get(container_id)
            if boot is None:
                boot = self._boots[container_id] = _Boot()
                boot.ready = asyncio.ensure_future(self._up(container_id, boot))
            if not boot.closing:
                break
            await boot.ended.wait()
        boot.users += 1
        boot.idle.clear()
        if boot.linger is not None:
            boot.linger.cancel()
            boot.linger = None
        try:
            up = await asyncio.shield(boot.ready)
        except asyncio.CancelledError:
            self._leave(container_id, boot)
            if boot.ready.cancelled():      # ended by a start or removal before its tether was up
                raise Conflict("container %s was started or removed before its files could be reached"
                               % container_id) from None
            raise
        except BaseException:
            self._leave(container_id, boot)
            raise
        if not up:
            self._leave(container_id, boot)
            return None
        return boot

    def _leave(self, container_id, boot):
        boot.users -= 1
        if boot.users:
            return
        boot.idle.set()
        if not boot.closing and self._boots.get(container_id) is boot:
            loop = asyncio.get_running_loop()
            boot.linger = loop.call_later(LINGER_SECONDS, lambda: self.state.spawn(self._expire(container_id, boot)))

    async def _up(self, container_id, boot):
        """Power the container's VM on in maintenance mode and wait for its tether; False when it runs.

        The power lock is held for the power-on only: a start or removal that comes while the tether boots
        takes it and ends the boot at once (``_end`` cancels this task), not after the boot's time-out."""
        async with self._containers.power_lock(container_id):
            try:
                current = self._containers.find(container_id)
                if current.running:
                    self._forget(container_id, boot)
                    return False
                if current.removing:
                    raise Conflict("container %s is marked for removal: its files cannot be reached" % container_id)
                await self._power_up(current)
            except BaseException:
                await self._down_quietly(container_id)
                self._forget(container_id, boot)
                raise
        try:
            await self._connected(container_id)
        except asyncio.CancelledError:
            raise       # ended by _end, which powers the VM off itself
        except BaseException:
            async with self._containers.power_lock(container_id):
                if self._boots.get(container_id) is boot:
                    await self._down_quietly(container_id)
                    self._forget(container_id, boot)
            raise
        return True

    async def _power_up(self, container):
        spec = container.boot_spec()
        if spec is None:
            raise Conflict("container %s was made by an endpoint without boot specs: its files are reached only "
                           "while it runs" % container.id)
        name = container.props.get("name")
        if not container.maintenance:
            values = boot_values(protocol.with_maintenance(spec), spec)
            await self.state.call(self._containers.vm.reconfigure, container.ref, name, values)
            self.state.cache.put_extra_config(container.ref, values)
        if not container.powered_on:
            LOG.info("container %s: maintenance boot (archive requests while it is stopped)", container.id[:12])
            await self.state.call(self._containers.vm.power_on, container.ref, name)
            self.state.cache.put(container.ref, {"runtime.powerState": "poweredOn", "summary.runtime.bootTime": now()})

    async def _connected(self, container_id):
        """Wait for the tether of the maintenance boot; Conflict, naming why, when its VM went off first."""
        tether = self.state.tether
        deadline = asyncio.get_running_loop().time() + BOOT_TIMEOUT
        while not tether.connected(container_id, maintenance=True):
            if not self._containers.find(container_id).powered_on:
                raise Conflict("container %s cannot be booted to reach its files: its VM went off before its "
                               "tether connected (the host's log says why)" % container_id)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise Conflict("container %s cannot be booted to reach its files: its tether did not connect "
                               "within %gs" % (container_id, BOOT_TIMEOUT))
            try:
                await tether.wait_connected(container_id, min(_POLL, remaining), maintenance=True)
            except VicError:
                pass

    async def _power_down(self, container):
        """Power the VM off, then clear the mode: in that order, so a VM is never on without it but for a run."""
        name = container.props.get("name")
        if container.powered_on:
            await self.state.call(self._containers.vm.power_off, container.ref, name)
            self.state.cache.put(container.ref, {"runtime.powerState": "poweredOff", "summary.runtime.bootTime": None})
        current = self._containers.find(container.id)
        if current.maintenance:
            spec = current.boot_spec()
            values = boot_values(protocol.with_maintenance(spec, False), spec)
            await self.state.call(self._containers.vm.reconfigure, current.ref, name, values)
            self.state.cache.put_extra_config(current.ref, values)
        LOG.info("container %s: maintenance boot ended", container.id[:12])

    async def _down_quietly(self, container_id):
        try:
            await self._power_down(self._containers.find(container_id))
        except (NotFound, VicError) as exc:
            LOG.warning("container %s: its maintenance boot could not be ended: %s", container_id[:12], exc)

    def _forget(self, container_id, boot):
        if self._boots.get(container_id) is boot:
            del self._boots[container_id]
        if boot.linger is not None:
            boot.linger.cancel()
        boot.closing = True
        boot.ended.set()

    async def _expire(self, container_id, boot):
        async with self._containers.power_lock(container_id):
            if self._boots.get(container_id) is boot and not boot.users and not boot.closing:
                await self._end(container_id, boot, wait=False)

    async def end(self, container_id, wait=True):
        """End the container's maintenance boot, if any (a leftover mode in vSphere too); with ``wait``, after
        the requests using it. The caller holds the container's power lock (``Containers.power_lock``)."""
        boot = self._boots.get(container_id)
        if boot is not None:
            await self._end(container_id, boot, wait)
            return
        try:
            current = self._containers.find(container_id)
        except NotFound:
            return
        if current.maintenance:
            await self._power_down(current)

    async def _end(self, container_id, boot, wait):
        boot.closing = True
        if boot.linger is not None:
            boot.linger.cancel()
            boot.linger = None
        if boot.ready is not None and not boot.ready.done():
            # Its tether is not up yet: no request is under way, the ones waiting for it are told why.
            boot.ready.cancel()
            wait = False
        if wait:
            await boot.idle.wait()
        try:
            await self._power_down(self._containers.find(container_id))
        finally:
            self._forget(container_id, boot)

    async def end_all(self):
        """At endpoint stop: every maintenance boot ended now, its requests cut short (a boot left on would wait
        for the next endpoint's start to end it)."""
        for container_id in list(self._boots):
            async with self._containers.power_lock(container_id):
                try:
                    await self.end(container_id, wait=False)
                except (NotFound, VicError) as exc:
                    LOG.warning("container %s: its maintenance boot could not be ended: %s", container_id[:12], exc)

    async def recover(self, container):
        """At endpoint start: the mode left on a container by an endpoint killed during a maintenance boot is
        ended (its VM powered off, the mode cleared), the container's state as it was."""
        async with self._containers.power_lock(container.id):
            if container.id not in self._boots and self._containers.find(container.id).maintenance:
                LOG.info("container %s: ending the maintenance boot a previous endpoint left", container.id[:12])
                await self._power_down(self._containers.find(container.id))
