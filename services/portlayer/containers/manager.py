# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The port layer's containers: each container is a VM in the VCH pool (see vm.py, model.py).

The live cache holds every container VM, so reads cost nothing; this decodes each
VM once per change and makes every change a container goes through.

Round trips: create = CreateVM + task polls (plus one disk per new volume);
start = PowerOn + polls; stop / kill = PowerOff + Reconfig (exit record) +
polls; rm = a device read + Reconfig (detach shared disks) + Destroy + polls; rename = Rename + Reconfig + polls;
network connect = Reconfig + polls, disconnect = a device read + Reconfig + polls; logs = one HTTPS GET;
stats = one PropertyCollector read per sample.
"""

import asyncio
import collections
import logging

from ansible_collections.vic.containers.plugins.module_utils._errors import Conflict, Forbidden, NotFound
from ansible_collections.vic.containers.plugins.module_utils.vch import actions
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore
from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.services.portlayer.containers import logs
from ansible_collections.vic.containers.services.portlayer.containers.model import (
    EXIT_KEY, bios_uuid, decode, exit_value, iso, new_id, now, record_values, vm_folder, vm_name)
from ansible_collections.vic.containers.services.portlayer.containers.vm import (VmOps, check_disks, device_specs,
                                                                                 managed_by)

LOG = logging.getLogger("vic.endpoint.containers")
STATS_PATHS = ("summary.quickStats.overallCpuUsage", "summary.quickStats.guestMemoryUsage", "runtime.maxCpuUsage",
               "config.hardware.numCPU", "config.hardware.memoryMB")
# What vSphere's quick stats say of a container VM; CPU and memory in use are 0 while it is off.
Usage = collections.namedtuple("Usage", "cpus memory_mb cpu_mhz max_cpu_mhz memory_used_mb")


class Containers:
    """Every container of the VCH, decoded once per VM change from the live cache."""

    def __init__(self, state):
        self.state = state
        self.vm = VmOps(state)
        self._decoded = {}
        self._names = {}
        self._creating = set()  # names of containers being created
        self._waiters = {}
        self._halting = set()
        self._locks = {}
        self.on_ended = []  # coroutine functions of a container, after each recorded end of a run
        state.cache.listen(self._changed)

    def _changed(self, moid, before, after):
        old = self._decoded.pop(moid, None)
        if old is not None:
            self._names.pop(old.name, None)
        container = decode(moid, after) if after is not None else None
        if container is not None:
            self._decoded[moid] = container
            self._names[container.name] = container
        was_running = bool(before and before.get("runtime.powerState") == "poweredOn")
        running = bool(after and after.get("runtime.powerState") == "poweredOn")
        # Waiters learn of an end once it is recorded (its exit code known), or when the container goes.
        ended = container is None or container.exit.get("finished_at") != old.exit.get("finished_at") \
            if old is not None else False
        if ended and not (container is not None and container.running):
            for future in self._waiters.pop(old.id, ()):
                if not future.done():
                    future.set_result(container)
        if container is not None and was_running and not running and container.id not in self._halting:
            # Powered off by someone else (vCenter, the guest halting): record how it ended, once.
            code = self.state.exit_codes.pop(container.id, 137)
            LOG.info("container %s: its VM was powered off outside the endpoint; exit %s", container.id[:12], code)
            self._halting.add(container.id)
            self.state.spawn(self._record_outside_exit(container, code, before.get("summary.runtime.bootTime")))

    async def _record_outside_exit(self, container, code, started):
        try:
            await self.record_exit(container, code, started)
        finally:
            self._halting.discard(container.id)

    # -- reads -------------------------------------------------------------------------------------

    def all(self):
        return list(self._decoded.values())

    def find(self, ref):
        """By name, full id or unique id prefix, as the docker CLI looks containers up."""
        ref = (ref or "").lstrip("/")
        found = self._names.get(ref)
        if found is not None:
            return found
        matches = [c for c in self._decoded.values() if c.id.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise NotFound("Multiple IDs found with provided prefix: %s" % ref)
        raise NotFound("No such container: %s" % ref)

    def by_name(self, name):
        return self._names.get(name)

    def using_image(self, image_id):
        return [c.id for c in self._decoded.values() if c.image_id == image_id]

    def using_volume(self, name):
        return [c.id for c in self._decoded.values() if name in c.volume_names()]

    def using_network(self, name):
        return [c for c in self._decoded.values() if name in c.record.get("networks", {})]

    def ensure_unique(self, name):
        taken = self._names.get(name)
        if taken is not None:
            raise Conflict('Conflict. The container name "/%s" is already in use by container "%s". You have to '
                           'remove (or rename) that container to be able to reuse that name.' % (name, taken.id))

    async def logs(self, container, streams, since=None, until=None, tail=None):
        """(time, stream, bytes) of what the process wrote, from the VM's log file (one HTTPS GET; see logs.py)."""
        datastore_name, folder = datastore.parse_ds_path(container.record["folder"])
        data = await self.state.call(datastore.download, self.state.session, self.state.datacenter, datastore_name,
                                     "%s/%s" % (folder, logs.LOG_FILE))
        return logs.select(logs.parse(data), streams, since, until, tail)

    async def usage(self, container):
        """The VM's quick stats now: one PropertyCollector read (the cache does not follow them)."""
        props = await self.state.call(self.vm.read, container.ref, STATS_PATHS)
        running = self.find(container.id).running
        return Usage(cpus=props.get("config.hardware.numCPU") or 1,
                     memory_mb=props.get("config.hardware.memoryMB") or 0,
                     cpu_mhz=(props.get("summary.quickStats.overallCpuUsage") if running else 0) or 0,
                     max_cpu_mhz=props.get("runtime.maxCpuUsage") or 0,
                     memory_used_mb=(props.get("summary.quickStats.guestMemoryUsage") if running else 0) or 0)

    # -- create ------------------------------------------------------------------------------------

    async def create(self, name, image, config, host, networks, volumes, cpus, memory_mb):
        """Make a container: its record and its VM; returns its id.

        ``config`` and ``host`` are kept as given; ``networks`` is {network name or id: (IPv4 address
        or None, aliases)}; ``volumes`` is [(volume name or None for an anonymous one, target,
        read-only)], each made if missing. Its name and addresses are held until the VM exists.
        """
        self.ensure_unique(name)
        if name in self._creating:
            raise Conflict('Conflict. The container name "/%s" is already being created.' % name)
        self._creating.add(name)
        try:
            with self.state.networks.reserving() as held:
                endpoints = {}
                for ref, (address, aliases) in networks.items():
                    net = self.state.networks.find(ref)
                    endpoints[net.name] = self.state.networks.endpoint(net, address, aliases, held)
                return await self._make(name, image, config, host, endpoints, volumes, (cpus, memory_mb))
        finally:
            self._creating.discard(name)

    async def _make(self, name, image, config, host, endpoints, volumes, sizing):
        mounts = []
        try:
            check_disks(len(image.layers), len(volumes))
            await self._mounts(volumes, mounts)
            container_id = new_id()
            record = self._record(container_id, name, image, config, host, mounts, endpoints)
            await self._create_vm(record, image, mounts, endpoints, sizing)
            return container_id
        except BaseException:
            # The anonymous volumes made for a container that could not be made would be nobody's.
            for mount in mounts:
                if mount["anonymous"]:
                    await self.state.volumes.remove(mount["name"])
            raise

    async def _mounts(self, requests, mounts):
        """Each requested volume, made if missing, appended to ``mounts`` as it is ready."""
        for name, target, readonly in requests:
            volume = await self.state.volumes.ensure(name)
            mounts.append({"name": volume.name, "destination": target, "rw": not readonly, "disk": volume.disk,
                           "capacity_kb": volume.capacity_kb, "anonymous": name is None, "store": volume.store})

    def _record(self, container_id, name, image, config, host, mounts, endpoints):
        state = self.state
        host_key, host_key_pub = protocol.new_host_key()
        return {
            "id": container_id, "name": name, "created": iso(now()),
            # The VM's folder keeps the name the VM had when made; docker rename changes only the display name.
            "folder": vm_folder(state.image_store[0], vm_name(name, container_id)),
            "image": {"id": image.id, "name": config["Image"], "layers": [layer["id"] for layer in image.layers]},
            "config": config, "host_config": host, "mounts": mounts, "networks": endpoints,
            "tether": {"host_key": host_key, "host_key_pub": host_key_pub,
                       "endpoint_key": protocol.public_key_text(state.tether_client_key),
                       "serial_uri": state.tether.serial_uri},
        }

    async def _create_vm(self, record, image, mounts, endpoints, sizing):
        state = self.state
        folder = record["folder"]
        backings = [state.networks.backing(ep["port_group"]) for ep in endpoints.values()]
        iso_path = state.config.get("bootstrap_iso") or datastore.ds_path(state.image_store[0],
                                                                          state.image_store[1] + "/bootstrap.iso")
        capacity_kb = int(state.config.get("base_image_size_gb") or 8) * 1024 * 1024
        devices = device_specs(folder, image.layers, capacity_kb, mounts, backings, iso_path, state.tether.serial_uri)
        extra = record_values(record)
        display = vm_name(record["name"], record["id"])
        ref = await state.call(self.vm.create, display, bios_uuid(state.uuid, record["id"]), *sizing,
                               folder, devices, extra)
        state.cache.put(ref, {"name": display, "config.extraConfig": actions.option_values(extra),
                              "config.managedBy": managed_by(), "runtime.powerState": "poweredOff"})

    # -- lifecycle ---------------------------------------------------------------------------------

    def ending(self, container_id):
        """Whether the container's VM is off but its exit is still being recorded."""
        return container_id in self._halting

    def _lock(self, container_id):
        # Power changes of one container happen one at a time: a tether's exit report can
        # arrive while the start that let the process run is still waiting for its task.
        return self._locks.setdefault(container_id, asyncio.Lock())

    async def power_on(self, container):
        """Start a run; False when the container was running already."""
        async with self._lock(container.id):
            if self.find(container.id).running:
                return False
            self.state.exit_codes.pop(container.id, None)  # a code left from an earlier run
            await self.state.call(self.vm.power_on, container.ref, container.name)
            self.state.cache.put(container.ref, {"runtime.powerState": "poweredOn", "summary.runtime.bootTime": now()})
            return True

    async def halt(self, container, code=None):
        """End the run: power the VM off and record the exit (``code``, the tether's report, else 137: killed).

        Nothing happens when the run has ended already: whoever ended it recorded it.
        """
        async with self._lock(container.id):
            current = self.find(container.id)
            if not current.running:
                return False
            self._halting.add(container.id)
            try:
                started = current.started_at
                await self.state.call(self.vm.power_off, current.ref, current.name)
                self.state.cache.put(current.ref, {"runtime.powerState": "poweredOff", "summary.runtime.bootTime": None})
                reported = self.state.exit_codes.pop(container.id, None)
                if code is None:
                    code = reported if reported is not None else 137
                await self.record_exit(self.find(container.id), code, started)
            finally:
                self._halting.discard(container.id)
            return True

    async def stop(self, container, signal_name, timeout):
        """Ask the process to end through the tether (``signal_name``), wait ``timeout``, then power the VM off.

        The exit recorded is the process's own when the tether reported one, else
        137 (killed), which is what powering a VM off amounts to.
        """
        tether = self.state.tether
        if tether.connected(container.id) and signal_name != "SIGKILL":
            stopped = self.wait_stopped(container, asyncio.get_running_loop())
            await tether.signal(container.id, signal_name)
            try:
                await asyncio.wait_for(asyncio.shield(stopped), timeout)
            except asyncio.TimeoutError:
                pass
        current = self.find(container.id)
        if current.running:
            await self.halt(current)

    async def kill(self, container, signal_name):
        """Send the signal through the tether; SIGKILL, or no tether to send it, powers the VM off."""
        if signal_name == "SIGKILL" or not self.state.tether.connected(container.id):
            await self.stop(container, "SIGKILL", 0)
        else:
            await self.state.tether.signal(container.id, signal_name)

    async def power_off(self, container):
        """Power the VM off recording no exit: the container is about to be destroyed (``docker rm -f``)."""
        await self.state.call(self.vm.power_off, container.ref, container.name)

    def wait_stopped(self, container, loop):
        """A future resolved when the container's run has ended and its exit is recorded, or it goes (None)."""
        future = loop.create_future()
        self._waiters.setdefault(container.id, []).append(future)
        return future

    async def wait(self, container, condition):
        """The container once ``condition`` (not-running, next-exit, removed) holds; as last seen if it went."""
        loop = asyncio.get_running_loop()
        if container.running or self.ending(container.id) or condition in ("next-exit", "removed"):
            await self.wait_stopped(container, loop)
            if condition == "removed":
                while self.by_name(container.name) is not None:
                    await self.wait_stopped(container, loop)
        try:
            return self.find(container.id)
        except NotFound:
            return container

    async def record_exit(self, container, code, started_at):
        """Keep how the container ended on its VM, so it survives an endpoint restart; then tell ``on_ended``."""
        started = started_at or container.started_at
        value = exit_value(started, now(), code)
        await self.state.call(self.vm.reconfigure, container.ref, container.name, {EXIT_KEY: value})
        self.state.cache.put_extra_config(container.ref, {EXIT_KEY: value})
        for callback in self.on_ended:
            self.state.spawn(callback(container))

    # -- changes of the record ---------------------------------------------------------------------

    async def rewrite(self, container, record, devices=None):
        """Write the container's record (and device changes) on its VM, and through to the cache."""
        values = record_values(record)
        await self.state.call(self.vm.reconfigure, container.ref, container.props.get("name"), values, devices)
        self.state.cache.put_extra_config(container.ref, values)

    async def rename(self, container, new):
        """``docker rename``: the VM's display name and the record; the VM's folder keeps its name."""
        if new == container.name:
            raise Conflict("Renaming a container with the same name as its current name")
        self.ensure_unique(new)
        display = vm_name(new, container.id)
        await self.state.call(self.vm.rename, container.ref, container.props.get("name"), display)
        self.state.cache.put(container.ref, {"name": display})
        await self.rewrite(self.find(container.id), dict(container.record, name=new))

    async def connect(self, container, net, address, aliases):
        """``docker network connect``: an endpoint on ``net`` in the record, a NIC on its port group on the VM."""
        if net.name in container.record.get("networks", {}):
            raise Forbidden("endpoint with name %s already exists in network %s" % (container.name, net.name))
        if not container.record.get("networks") and container.host_config.get("NetworkMode") == "none":
            raise Conflict("container %s is on network none and cannot join another network" % container.name)
        networks = self.state.networks
        with networks.reserving() as held:
            endpoint = networks.endpoint(net, address, aliases, held)
            endpoints = dict(container.record.get("networks", {}), **{net.name: endpoint})
            await self.rewrite(container, dict(container.record, networks=endpoints), networks.nic_additions(net))

    async def disconnect(self, container, net, force):
        """``docker network disconnect``: the endpoint leaves the record, its NIC the VM (read fresh: the
        cache may lag a NIC just added); with ``force``, the record changes even if the NIC is not found."""
        remaining = dict(container.record.get("networks", {}))
        if net.name not in remaining:
            raise Forbidden("container %s is not connected to network %s" % (container.name, net.name))
        del remaining[net.name]
        devices = await self.state.call(self.vm.devices, container.ref)
        removal = self.state.networks.nic_removals(container, net, devices, force)
        await self.rewrite(container, dict(container.record, networks=remaining), removal)
