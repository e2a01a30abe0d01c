# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The port layer's containers: each container is a VM in the VCH pool (see vm.py, model.py).

The live cache holds every container VM, so reads cost nothing; this decodes each
VM once per change and makes every change a container goes through.

Round trips: create = CreateVM + task polls (plus one disk per new volume; the record, its published
ports and the boot spec go in the same CreateVM); start = PowerOn + polls (the tether's start line in
the VM's log marks the run as under way, for a restore; published ports are listened on before it, and
a random host port another process took since the create is chosen again: + Reconfig, only then);
stop / kill = PowerOff + Reconfig (exit record) + polls; an end the tether reports = the same; a VM
powered off outside the endpoint = one HTTPS GET of its log (the exit line) + Reconfig; an automatic restart = PowerOn + polls after the exit's Reconfig;
docker stop during a restart's back-off = Reconfig; rm = a device read + Reconfig (detach shared
disks, mark as being removed) + Destroy + polls; rename = Rename + Reconfig + polls (a refused
Reconfig: one more Rename, back); network connect = Reconfig (record and boot spec together) +
polls, disconnect = a device read + Reconfig + polls; update --restart = Reconfig; logs = one
HTTPS GET; stats = none while the tether is connected (it answers), else one PropertyCollector
read per sample; started = none; cp / archive = none (the tether channel) on a running container, on
a stopped one a maintenance boot's Reconfig + PowerOn, then PowerOff + Reconfig + polls (maintenance.py),
shared by the requests of its linger; the names each container resolves (network/peers.py) = none (the
live cache, sent on the tether channel). At endpoint start: one HTTPS GET of the log of each container
VM that is off (a run that ended while the endpoint was down), + Reconfig for each end recorded then,
and PowerOff + Reconfig for each maintenance boot a killed endpoint left. While the live cache is stale: one PropertyCollector read
per client request on one container.
"""

import asyncio
import collections
import json
import logging

from ansible_collections.vic.containers.plugins.module_utils._errors import Conflict, Forbidden, NotFound, VicError
from ansible_collections.vic.containers.plugins.module_utils.vch import actions
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore
from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.services.portlayer import events
from ansible_collections.vic.containers.services.portlayer.containers import boot, envseal, logs, restart
from ansible_collections.vic.containers.services.portlayer.containers.maintenance import Maintenance
from ansible_collections.vic.containers.services.portlayer.containers.model import (
    EXIT_KEY, REMOVING_KEY, bios_uuid, boot_values, decode, exit_value, iso, new_id, now, parse_time, record_values,
    vm_folder, vm_name)
from ansible_collections.vic.containers.services.portlayer.network import ports
from ansible_collections.vic.containers.services.portlayer.containers.vm import (VmOps, bootstrap_iso, check_disks,
                                                                                 device_specs, managed_by)

LOG = logging.getLogger("vic.endpoint.containers")
STATS_PATHS = ("summary.quickStats.overallCpuUsage", "summary.quickStats.guestMemoryUsage", "runtime.maxCpuUsage",
               "config.hardware.numCPU", "config.hardware.memoryMB")
# The exit code of a run whose VM went off while the endpoint was down, leaving no exit: dockerd's restore
# gives a container whose task is gone 255 (daemon.restore: ExitCode 255, FinishedAt the restore's time).
VANISHED_CODE = 255
# A refused exit record is tried again after this long (and again after each refusal).
RECORD_RETRY_SECONDS = 5
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
        self._stopping = set()      # ids whose run docker stop / kill / rm -f is ending: no restart follows
        self._started = {}          # id -> (pid, started_at) the tether reported for the current run
        self._restart_counts = {}   # id -> automatic restarts that led to the current run
        self._restarts_due = {}     # id -> the task that powers it on again after the back-off
        self._backoff = {}          # id -> restart.Backoff
        self._unrecorded = {}       # id -> (code, started, finished, stopped) of an end whose record vSphere refused
        self.on_ended = []  # coroutine functions of a container, after each recorded end of a run
        self.maintenance = Maintenance(self)  # stopped containers' VMs booted for archive requests
        state.cache.listen(self._changed)

    def _changed(self, moid, before, after):
        old = self._decoded.pop(moid, None)
        if old is not None:
            self._names.pop(old.name, None)
        container = decode(moid, after, self.state.key) if after is not None else None
        if container is not None:
            self._decoded[moid] = container
            self._names[container.name] = container
        # A run, not a VM on: a maintenance boot (maintenance.py) is none.
        was_running = old.running if old is not None else False
        running = container.running if container is not None else False
        # Waiters learn of an end once it is recorded (its exit code known), or when the container goes.
        ended = container is None or container.exit.get("finished_at") != old.exit.get("finished_at") \
            if old is not None else False
        if ended and not (container is not None and container.running):
            for future in self._waiters.pop(old.id, ()):
                if not future.done():
                    future.set_result(container)
        if container is None:
            if old is not None:
                self.state.ports.close(old.id)
        elif was_running and not running:
            self.state.ports.close(container.id)
        elif running and not self.state.ports.is_open(container.id) and ports.entries(container.record):
            # Running without listeners: an endpoint restarted while it ran (the first answer of the feed), or a
            # VM powered on outside the endpoint. Its recorded host ports are listened on again.
            self.state.spawn(self.state.ports.open(container, strict=False))
        if container is None and old is not None:
            # Gone: nothing kept in memory for it may outlive it.
            for kept in (self._started, self._restart_counts, self._backoff, self._locks, self._unrecorded):
                kept.pop(old.id, None)
        if container is not None and was_running and not running and container.id not in self._halting:
            # Powered off by someone else (vCenter, the guest halting): record how it ended, once.
            self._halting.add(container.id)
            self.state.spawn(self._record_outside_exit(container, before.get("summary.runtime.bootTime")))

    async def _record_outside_exit(self, container, started):
        """The code the tether reported over the channel, else the exit line it wrote last in the log."""
        try:
            started = self._reported_start(container.id) or started  # the VM's boot time as it was on
            code, finished = self.state.exit_codes.pop(container.id, None), None
            if code is None:
                code, finished = await self._exit_from_log(container, started)
            LOG.info("container %s: its VM was powered off outside the endpoint; exit %s", container.id[:12], code)
            await self.record_exit(container, code, started, finished)
        finally:
            self._halting.discard(container.id)

    # -- reads -------------------------------------------------------------------------------------

    def all(self):
        """Every container; refused while the live cache cannot follow vSphere (it may be stale)."""
        self.state.cache.check_fresh()
        return list(self._decoded.values())

    def known(self):
        """Every container as the live cache holds it, stale or not: for background work, which goes on
        with what was seen last while vSphere cannot be followed (``all`` refuses then)."""
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

    async def look_up(self, ref):
        """``find`` for a client's request: while the live cache cannot follow vSphere (``LiveCache.stale``),
        the container as vSphere holds it now (one PropertyCollector read); refused when that read fails too."""
        container = self.find(ref)
        if not self.state.cache.stale():
            return container
        await self.state.cache.read_again(container.ref)
        try:
            return self.find(container.id)
        except NotFound:
            raise NotFound("No such container: %s" % ref) from None

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
        return logs.select(logs.parse(await self._log_data(container)), streams, since, until, tail)

    async def log_tail(self, container, offset):
        """``(entries, offset)``: the complete lines of the VM's log from byte ``offset`` on (one HTTPS GET
        with a Range), and the offset after the last of them (a torn last line is read again next time)."""
        data = await self._log_data(container, offset) or b""
        complete = data[:data.rfind(b"\n") + 1]
        return logs.parse(complete), offset + len(complete)

    async def _log_data(self, container, offset=0):
        datastore_name, folder = datastore.parse_ds_path(container.record["folder"])
        return await self.state.call(datastore.download, self.state.session, self.state.datacenter, datastore_name,
                                     "%s/%s" % (folder, logs.LOG_FILE), offset)

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

    async def create(self, name, image, config, host, networks, volumes, cpus, memory_mb, published=()):
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
                chosen = self.state.ports.choose(published, self._recorded_host_ports())
                return await self._make(name, image, config, host, endpoints, volumes, (cpus, memory_mb), chosen)
        finally:
            self._creating.discard(name)

    def _recorded_host_ports(self):
        """(ip, host port) of every container's published ports, running or not: a random port is never one."""
        publisher = self.state.ports
        return {(publisher.ip_of(entry), entry["host_port"])
                for container in self._decoded.values() for entry in ports.entries(container.record)}

    async def _make(self, name, image, config, host, endpoints, volumes, sizing, published):
        mounts = []
        try:
            check_disks(len(image.layers), len(volumes))
            await self._mounts(volumes, mounts)
            container_id = new_id()
            host_key, host_key_pub = protocol.new_host_key()
            record = self._record(container_id, name, image, config, host, mounts, endpoints, host_key_pub)
            if published:
                record["ports"] = published
            # The read-write disk: a child of the formatted template, or (none yet) blank for the tether to format.
            record["rw_format"] = self.state.images.rw_template.parent() is None
            extra = dict(record_values(record, self.state.key), **boot_values(self._boot_spec(record, host_key)))
            await self._create_vm(record, image, mounts, endpoints, sizing, extra)
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

    def _record(self, container_id, name, image, config, host, mounts, endpoints, host_key_pub):
        state = self.state
        return {
            "id": container_id, "name": name, "created": iso(now()),
            # The VM's folder keeps the name the VM had when made; docker rename changes only the display name.
            "folder": vm_folder(state.image_store[0], vm_name(name, container_id)),
            "image": {"id": image.id, "name": config["Image"], "layers": [layer["id"] for layer in image.layers]},
            "config": config, "host_config": host, "mounts": mounts, "networks": endpoints,
            # The private half is in the boot spec only (boot.py): the tether needs it, the endpoint never.
            "tether": {"host_key_pub": host_key_pub, "serial_uri": state.tether.serial_uri},
        }

    def _boot_spec(self, record, host_key):
        return boot.spec(record, host_key, protocol.public_key_text(self.state.tether_client_key),
                         envseal.container_key(self.state.key, record["id"]))

    async def _create_vm(self, record, image, mounts, endpoints, sizing, extra):
        state = self.state
        folder = record["folder"]
        backings = [state.networks.backing(ep["port_group"]) for ep in endpoints.values()]
        template = state.images.rw_template
        devices = device_specs(folder, image.layers, template.capacity_kb, mounts, backings, bootstrap_iso(state),
                               state.tether.serial_uri, rw_parent=None if record["rw_format"] else template.path)
        display = vm_name(record["name"], record["id"])
        ref = await state.call(self.vm.create, display, bios_uuid(state.uuid, record["id"]), *sizing,
                               folder, devices, extra)
        state.cache.put(ref, {"name": display, "config.extraConfig": actions.option_values(extra),
                              "config.managedBy": managed_by(), "runtime.powerState": "poweredOff"})

    # -- lifecycle ---------------------------------------------------------------------------------

    def ending(self, container_id):
        """Whether the container's VM is off but its exit is still being recorded (or vSphere refused the
        record, which the next ``docker stop`` makes again)."""
        return container_id in self._halting or container_id in self._unrecorded

    def unrecorded(self, container_id):
        """Whether the container's last run ended without vSphere keeping its exit (``docker stop`` retries)."""
        return container_id in self._unrecorded

    def restarting(self, container_id):
        """Whether a restart policy will power the container on again (Docker's State.Restarting)."""
        return container_id in self._restarts_due

    def restart_count(self, container):
        """Automatic restarts since the last ``docker start``: this endpoint's count, else the exit record's."""
        return self._restart_counts.get(container.id, container.restart_count)

    def started(self, container_id, pid, started_at):
        """The tether says the primary process runs as ``pid`` since ``started_at`` (re-sent after each
        hello, so an endpoint restart learns it again from the tether)."""
        self._started[container_id] = (pid, started_at)

    def process(self, container):
        """``(pid, started_at)`` of the running process as the tether reported them; pid 0 and the VM's boot time
        while the tether has not; (0, the last run's start) when it is not running."""
        pid = self._started.get(container.id, (0, None))[0] if container.running else 0
        return pid, (self._reported_start(container.id) if container.running else None) or container.started_at

    def _reported_start(self, container_id):
        reported = self._started.get(container_id)
        return parse_time(reported[1]) if reported else None

    def _lock(self, container_id):
        # Power changes of one container happen one at a time: a tether's exit report can
        # arrive while the start that let the process run is still waiting for its task.
        return self._locks.setdefault(container_id, asyncio.Lock())

    def power_lock(self, container_id):
        """The lock every power change of the container holds (its maintenance boots' too)."""
        return self._lock(container_id)

    async def power_on(self, container, restarts=0):
        """Start a run (``restarts``: automatic restarts that led to it; 0 for ``docker start``); False when
        the container was running already."""
        async with self._lock(container.id):
            self.cancel_restart(container.id)
            await self.maintenance.end(container.id)  # after the archive requests under way
            if self.find(container.id).running:
                return False
            if self.find(container.id).removing:
                raise Conflict("cannot start container %s: container is marked for removal and cannot be "
                               "started" % container.id)
            self.state.exit_codes.pop(container.id, None)  # a code left from an earlier run
            self._unrecorded.pop(container.id, None)
            self._started.pop(container.id, None)
            self._stopping.discard(container.id)
            await self._publish(self.find(container.id))
            try:
                await self.state.call(self.vm.power_on, container.ref, container.name)
            except BaseException:
                self.state.ports.close(container.id)
                raise
            self._restart_counts[container.id] = restarts
            if not restarts:
                self._backoff.pop(container.id, None)  # docker start begins the back-off again, as dockerd
            self.state.cache.put(container.ref, {"runtime.powerState": "poweredOn", "summary.runtime.bootTime": now()})
            return True

    async def _publish(self, container):
        """Listen on the container's published ports before its VM runs, as dockerd binds them before the task
        starts: a host port in use fails the start. A random port taken meanwhile is chosen again and recorded."""
        moved = await self.state.ports.open(container)
        if moved is not None:
            try:
                await self.rewrite(container, dict(container.record, ports=moved))
            except BaseException:
                self.state.ports.close(container.id)
                raise

    async def _write_exit(self, container, value):
        """Write the container's exit record (EXIT_KEY) on its VM and through to the cache."""
        await self.state.call(self.vm.reconfigure, container.ref, container.name, {EXIT_KEY: value})
        self.state.cache.put_extra_config(container.ref, {EXIT_KEY: value})

    async def halt(self, container, code=None, finished_at=None):
        """End the run: power the VM off and record the exit (``code`` and ``finished_at``, the tether's
        report, else 137: killed, now).

        Nothing happens when the run has ended already: whoever ended it recorded it.
        """
        async with self._lock(container.id):
            current = self.find(container.id)
            if not current.running:
                return False
            self._halting.add(container.id)
            try:
                started = self.process(current)[1]
                await self.state.call(self.vm.power_off, current.ref, current.name)
                self.state.cache.put(current.ref, {"runtime.powerState": "poweredOff", "summary.runtime.bootTime": None})
                reported = self.state.exit_codes.pop(container.id, None)
                if code is None:
                    code = reported if reported is not None else 137
                await self._record_or_keep(self.find(container.id), code, started, finished_at or now())
            finally:
                self._halting.discard(container.id)
            return True

    async def _record_or_keep(self, container, code, started, finished):
        """``record_exit``; when vSphere refuses the record, the end is kept, and recorded by the next
        ``docker stop`` or a try of its own a little later (the VM is off: without the record the
        container would show as never run, and ``docker wait`` would wait for good)."""
        stopped = container.id in self._stopping
        try:
            await self.record_exit(container, code, started, finished)
        except VicError:
            self._unrecorded[container.id] = (code, started, finished, stopped)
            self.state.spawn(self._record_later(container.id))
            raise

    async def _record_later(self, container_id):
        await asyncio.sleep(RECORD_RETRY_SECONDS)
        try:
            container = self.find(container_id)
        except NotFound:
            return
        try:
            await self._record_unrecorded(container)
        except VicError as exc:
            LOG.warning("container %s: its exit is still not recorded: %s", container_id[:12], exc)

    async def _record_unrecorded(self, container):
        """Record the end vSphere refused before, unless recorded meanwhile or a new run began."""
        async with self._lock(container.id):
            kept = self._unrecorded.pop(container.id, None)
            if kept is None or self.find(container.id).running:
                return
            code, started, finished, stopped = kept
            if stopped:
                self._stopping.add(container.id)
            LOG.info("container %s: recording the end vSphere refused to record before", container.id[:12])
            await self._record_or_keep(self.find(container.id), code, started, finished)

    async def stop(self, container, signal_name, timeout):
        """``docker stop``: ask the process to end through the tether (``signal_name``), wait ``timeout``,
        then power the VM off. No restart policy applies to the run it ends, nor a pending restart.

        The exit recorded is the process's own when the tether reported one, else
        137 (killed), which is what powering a VM off amounts to.
        """
        if self.restarting(container.id) and not self.find(container.id).running:
            await self._stop_restarting(container)
            return
        if container.id in self._unrecorded and not self.find(container.id).running:
            await self._record_unrecorded(container)
            return
        self._stopping.add(container.id)
        self.cancel_restart(container.id)
        tether = self.state.tether
        if tether.connected(container.id) and signal_name != "SIGKILL":
            stopped = self.wait_stopped(container, asyncio.get_running_loop())
            try:
                await tether.signal(container.id, signal_name)
                await asyncio.wait_for(asyncio.shield(stopped), timeout)
            except asyncio.TimeoutError:
                pass
            except Conflict as exc:
                # The process ended as the signal went (its exit is on its way), or the tether went:
                # either way, powering the VM off below ends the run.
                LOG.info("container %s: stop signal not delivered: %s", container.id[:12], exc)
        current = self.find(container.id)
        if current.running:
            await self.halt(current)

    async def _stop_restarting(self, container):
        """``docker stop`` during the restart back-off: no restart, now or after an endpoint restart."""
        self.cancel_restart(container.id)
        await self._write_exit(container, json.dumps(dict(self.find(container.id).exit, stopped=True,
                                                          restart_due=False), sort_keys=True))

    async def kill(self, container, signal_name):
        """Send the signal through the tether; SIGKILL, or no tether to send it, powers the VM off.

        As dockerd, killing with SIGKILL or the container's stop signal is a stop: no restart follows."""
        if signal_name in ("SIGKILL", container.config.get("StopSignal") or "SIGTERM"):
            self._stopping.add(container.id)
        if signal_name == "SIGKILL" or not self.state.tether.connected(container.id):
            await self.stop(container, "SIGKILL", 0)
        else:
            await self.state.tether.signal(container.id, signal_name)

    async def power_off(self, container):
        """Power the VM off recording no exit: the container is about to be destroyed (``docker rm -f``)."""
        self._stopping.add(container.id)
        self.cancel_restart(container.id)
        # Written through as halt() does, so a Destroy that fails next leaves a container shown as off;
        # marked halting meanwhile, so that change is not taken for a power-off from outside (whose exit
        # record would be one more reconfigure of a VM about to go).
        self._halting.add(container.id)
        try:
            await self.state.call(self.vm.power_off, container.ref, container.name)
            self.state.cache.put(container.ref, {"runtime.powerState": "poweredOff", "summary.runtime.bootTime": None})
        finally:
            self._halting.discard(container.id)

    async def destroy(self, container):
        """Destroy the container's VM, keeping its shared disks (image layers, volumes).

        The reconfigure that detaches them marks the container as being removed: when the Destroy
        then fails, it shows as "dead" (it cannot run without its layers) until removed again.
        A maintenance boot is ended first, its requests cut short.
        """
        async with self._lock(container.id):
            await self.maintenance.end(container.id, wait=False)
            container = self.find(container.id)
        if await self.state.call(self.vm.detach_shared, container.ref, container.name, container.record["folder"],
                                 {REMOVING_KEY: "true"}):
            self.state.cache.put_extra_config(container.ref, {REMOVING_KEY: "true"})
        await self.state.call(self.vm.destroy, container.ref, container.name)

    def wait_stopped(self, container, loop):
        """A future resolved when the container's run has ended and its exit is recorded, or it goes (None)."""
        future = loop.create_future()
        self._waiters.setdefault(container.id, []).append(future)
        return future

    async def wait(self, container, condition):
        """The container once ``condition`` (not-running, next-exit, removed) holds; as last seen if it went."""
        loop = asyncio.get_running_loop()
        last = container  # the latest state seen: a removed container's exit code is in the one before it went
        if container.running or self.ending(container.id) or condition in ("next-exit", "removed"):
            last = await self.wait_stopped(container, loop) or last
            if condition == "removed":
                while self._known(container.id):
                    last = await self.wait_stopped(container, loop) or last
        try:
            return self.find(container.id)
        except NotFound:
            return last

    def _known(self, container_id):
        return any(c.id == container_id for c in self._names.values())

    async def _exit_from_log(self, container, started):
        """``(code, finished_at)`` of the exit line the tether wrote last in the VM's log (one HTTPS GET),
        if it is of the run that began at ``started``; (137, None) when there is none: the VM was killed."""
        try:
            run = logs.last_run(await self._log_data(container))
        except VicError as exc:
            LOG.info("container %s: no log to read its exit from: %s", container.id[:12], exc)
            run = None
        if run is None or run.code is None or (started is not None and run.finished_at < started):
            return 137, None
        return run.code, run.finished_at

    async def record_exit(self, container, code, started_at, finished_at=None):
        """Keep how the container ended on its VM, so it survives an endpoint restart; then tell ``on_ended``,
        or, when its restart policy says so, power it on again after Docker's back-off."""
        started = started_at or container.started_at
        finished = finished_at or now()
        stopped = container.id in self._stopping
        self._stopping.discard(container.id)
        self._started.pop(container.id, None)
        restarts = self.restart_count(container)
        again = restart.wanted(container.host_config, code, restarts, stopped)
        await self._write_exit(container, exit_value(started, finished, code, restarts + 1 if again else restarts,
                                                     stopped, again))
        if again:
            began = parse_time(iso(started)) if started is not None else None
            ran = (parse_time(iso(finished)) - began).total_seconds() if began is not None else None
            delay = self._backoff.setdefault(container.id, restart.Backoff()).next(ran)
            self._schedule_restart(container.id, delay, restarts + 1)
            return
        for callback in self.on_ended:
            self.state.spawn(callback(container))

    def _schedule_restart(self, container_id, delay, restarts):
        LOG.info("container %s: restart %d in %.1fs (restart policy)", container_id[:12], restarts, delay)
        self._restarts_due[container_id] = self.state.spawn(self._restart_later(container_id, delay, restarts))

    async def _restart_later(self, container_id, delay, restarts):
        await asyncio.sleep(delay)
        self._restarts_due.pop(container_id, None)
        try:
            container = self.find(container_id)
        except NotFound:
            return
        if restart.policy_of(container.host_config)[0] == restart.NO:
            return  # docker update --restart no during the back-off
        if await self.power_on(container, restarts):
            LOG.info("container %s: restarted (restart policy)", container_id[:12])
            self.state.events.publish("container", "start", container_id, events.container_attributes(container))
        else:
            LOG.info("container %s: running already, no restart", container_id[:12])

    def cancel_restart(self, container_id):
        task = self._restarts_due.pop(container_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def recover(self):
        """At endpoint start, for each container VM that is off: a run that ended while the endpoint was
        down (the log's exit line is newer than the exit record; one HTTPS GET per container) is recorded,
        a run whose restart was due is restarted (the back-off starts again), and so is one its policy runs
        again at a daemon restart (``restart.wanted(..., restoring=True)``)."""
        for container in self.all():
            if container.running:
                continue
            if container.maintenance:
                await self.maintenance.recover(container)
            try:
                run = logs.last_run(await self._log_data(container))
            except VicError as exc:
                LOG.warning("container %s: its log could not be read: %s", container.id[:12], exc)
                run = None
            try:
                container = self.find(container.id)
            except NotFound:
                continue  # removed while its log was read
            if container.running or container.id in self._halting:
                continue  # started (or being recorded) while its log was read
            if run is not None and run.code is not None and self._newer_than_record(container, run.finished_at):
                LOG.info("container %s ended while the endpoint was down; exit %s", container.id[:12], run.code)
                # Its start line says when that run began (Docker's zero time when the log has none).
                await self.record_exit(container, run.code, iso(run.started_at), run.finished_at)
            elif run is not None and run.code is None and self._newer_than_record(container, run.started_at):
                # Its VM went off while the endpoint was down (vSphere, a host crash) and the tether wrote
                # no exit after the run's start: dockerd's restore of a container whose task is gone, 255 and now.
                LOG.info("container %s: its run vanished while the endpoint was down; exit %s", container.id[:12],
                         VANISHED_CODE)
                # Never before the start line, whose clock is the guest's: else the next start finds it newer again.
                await self.record_exit(container, VANISHED_CODE, iso(run.started_at), max(now(), run.started_at))
            elif container.restart_due and restart.policy_of(container.host_config)[0] != restart.NO:
                self._schedule_restart(container.id, restart.FIRST_DELAY, container.restart_count)
            elif self._restored_run(container):
                # Recorded before it runs, as any restart is: the count shows at once, and an endpoint
                # that dies before the power-on finds the restart due.
                count = container.restart_count + 1
                await self._write_exit(container, json.dumps(dict(container.exit, restart_count=count,
                                                                  restart_due=True), sort_keys=True))
                self._schedule_restart(container.id, restart.FIRST_DELAY, count)

    @staticmethod
    def _newer_than_record(container, moment):
        """Whether a log line of ``moment`` is of a run the record does not hold: newer than the recorded end."""
        recorded = parse_time(container.exit.get("finished_at"))
        return recorded is None or moment > recorded

    @staticmethod
    def _restored_run(container):
        """Whether the endpoint's start runs this stopped container again, as a daemon restart does with a
        container that ran before (``always`` even after ``docker stop``; never one only created)."""
        ended = container.exit
        if container.status != "exited" or not ended.get("finished_at"):
            return False
        return restart.wanted(container.host_config, ended.get("code"), container.restart_count,
                              bool(ended.get("stopped")), restoring=True)

    # -- changes of the record ---------------------------------------------------------------------

    async def rewrite(self, container, record, devices=None):
        """Write the container's record (and device changes) on its VM, and through to the cache; and its
        boot spec with it when what the spec holds changed (its networks: a rename leaves the hostname)."""
        values = record_values(record, self.state.key)
        spec = container.boot_spec()
        if spec is not None:
            fresh = self._boot_spec(record, spec["host_key"])
            if spec.get(protocol.MAINTENANCE):  # kept through a rename during a maintenance boot
                fresh = protocol.with_maintenance(fresh)
            renewed = boot_values(fresh, spec)
            if renewed != boot_values(spec, spec):
                values.update(renewed)
        await self.state.call(self.vm.reconfigure, container.ref, container.props.get("name"), values, devices)
        self.state.cache.put_extra_config(container.ref, values)

    async def set_restart_policy(self, container, policy):
        """``docker update --restart``: the record's policy; it applies from the next end of a run."""
        host = dict(container.host_config, RestartPolicy=policy)
        restart.validate(host)
        await self.rewrite(container, dict(container.record, host_config=host))

    async def rename(self, container, new):
        """``docker rename``: the VM's display name and the record; the VM's folder keeps its name."""
        if new == container.name:
            raise Conflict("Renaming a container with the same name as its current name")
        self.ensure_unique(new)
        display, before = vm_name(new, container.id), container.props.get("name")
        if before != display:  # renamed already by a try whose record vSphere then refused
            await self.state.call(self.vm.rename, container.ref, before, display)
            self.state.cache.put(container.ref, {"name": display})
        try:
            await self.rewrite(self.find(container.id), dict(container.record, name=new))
        except VicError:
            # The record keeps the old name: so does the VM, as the client is told the rename failed.
            try:
                await self.state.call(self.vm.rename, container.ref, display, before)
                self.state.cache.put(container.ref, {"name": before})
            except VicError as exc:
                LOG.warning("container %s: its VM keeps the name %s: %s", container.id[:12], display, exc)
            raise

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
