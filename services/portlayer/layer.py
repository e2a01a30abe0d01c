# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The port layer of one VCH: what the endpoint knows of it and every part that turns Docker objects
into vSphere objects, built here and nowhere else.

Everything here is read from vSphere at start (decision 1: the endpoint keeps
nothing it cannot rebuild). Blocking vSphere and datastore calls run on a small
thread pool so the event loop keeps serving while they wait.
"""

import asyncio
import concurrent.futures
import functools
import logging

from ansible_collections.vic.containers.plugins.module_utils._errors import NotFound, VicError
from ansible_collections.vic.containers.plugins.module_utils.vch import observe
from ansible_collections.vic.containers.services.imagec.client import Registries
from ansible_collections.vic.containers.services.imagec.pull import Puller
from ansible_collections.vic.containers.services.portlayer import events
from ansible_collections.vic.containers.services.portlayer.attach.concentrator import Concentrator, endpoint_client_key
from ansible_collections.vic.containers.services.portlayer.cache import LiveCache
from ansible_collections.vic.containers.services.portlayer.containers import envseal, health
from ansible_collections.vic.containers.services.portlayer.containers.manager import Containers
from ansible_collections.vic.containers.services.portlayer.network import ports
from ansible_collections.vic.containers.services.portlayer.network.networks import Networks
from ansible_collections.vic.containers.services.portlayer.network import peers
from ansible_collections.vic.containers.services.portlayer.storage.image_index import ImageIndex
from ansible_collections.vic.containers.services.portlayer.storage.layer_store import LayerStore
from ansible_collections.vic.containers.services.portlayer.storage.volumes import VolumeStores

_VSPHERE_WORKERS = 4
LOG = logging.getLogger("vic.endpoint")


class PortLayer:
    """The VCH an endpoint serves and the parts that serve it; ``start`` and ``stop`` bracket its life."""

    def __init__(self, session, vch, key, secrets):
        self.session = session
        self.vch = vch
        self.config = vch.config
        self.key = key
        self.secrets = secrets
        self.name = vch.config["name"]
        self.uuid = vch.config["uuid"]
        self.datacenter = vch.inventory.datacenter_of(vch.pool).get("name")
        self.datacenter_ref = vch.inventory.datacenter_of(vch.pool).ref
        self.pool_ref = vch.pool.ref
        self.endpoint_vm_ref = vch.vm.ref
        self.vm_folder_ref = vch.inventory.datacenter_of(vch.pool).get("vmFolder")
        self.is_vapp = vch.pool.type == "VirtualApp"
        self.image_store = observe.image_store_folder(vch.config)     # (datastore, "<path>/VIC/<uuid>")
        self.volume_stores = {label: observe.volume_store_folder(store)  # label -> (datastore, folder)
                              for label, store in (vch.config.get("volume_stores") or {}).items()}
        self._pool = concurrent.futures.ThreadPoolExecutor(_VSPHERE_WORKERS, thread_name_prefix="vsphere")
        self._background = set()
        # The parts, in the order they depend on each other (each reads the ones before it from here).
        self.events = events.Events()
        self.cache = LiveCache(self)
        self.networks = Networks(self)
        self.containers = Containers(self)
        self.containers.on_ended.append(self._auto_remove)
        self.health = health.Monitors(self)
        image_layers = LayerStore(self)
        self.images = ImageIndex(self, image_layers, Puller(Registries(self.config.get("registry")), image_layers))
        self.volumes = VolumeStores(self)
        self.exit_codes = {}              # container id -> the exit code the tether reported, until recorded
        self.execs = {}                   # exec id -> exec instance
        self.attachments = {}             # container id -> open attachments, which resize applies to
        self.term_sizes = {}              # container id -> (columns, rows) of its last resize
        self.peers = peers.Publisher(self)  # what each tether's /etc/hosts lists (it asks self.tether)
        self.tether_client_key = endpoint_client_key(key)
        self.tether = Concentrator(self._host_key_of, self.tether_client_key, self._exited,
                                   on_started=self._started,
                                   env_key_of=lambda container_id: envseal.container_key(key, container_id),
                                   hosts_of=self.peers.entries_for)
        self.ports = ports.Publisher(self.tether)

    async def start(self, tether_listen=("127.0.0.1", 0), publish_address="127.0.0.1"):
        """Follow vSphere, listen for tethers and read the image and volume stores; ``publish_address``: where
        published ports without a host IP listen (the Docker API's address: the VCH's public address)."""
        self.ports.address = publish_address
        await self.cache.start()
        await self.tether.start(*tether_listen)
        await self.images.load()
        await self.volumes.load()
        self.spawn(self.containers.recover())

    async def stop(self):
        self.ports.close_all()
        await self.containers.maintenance.end_all()
        await self.tether.stop()
        self.cache.stop()
        await self.images.close()

    async def call(self, func, *args, **kwargs):
        """Run a blocking call (pyvmomi, datastore transfer) off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(func, *args, **kwargs))

    def spawn(self, coroutine):
        """Run ``coroutine`` in the background (from a callback on the event loop); failures are logged."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task):
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOG.warning("background work failed: %s", task.exception())

    def close(self):
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _host_key_of(self, container_id):
        """The public host key the container's tether must present (from its record in vSphere)."""
        try:
            return self.containers.find(container_id).record["tether"]["host_key_pub"]
        except (NotFound, KeyError):
            return None

    def _started(self, container_id, pid, started_at):
        """The tether reports the primary process runs (at each start, and again after each redial)."""
        self.containers.started(container_id, pid, started_at)
        self.health.started(container_id, started_at)

    async def _exited(self, container_id, code, finished_at):
        """The tether reports the primary process ended: keep the code, power the VM off as a halt would."""
        try:
            container = self.containers.find(container_id)
        except NotFound:
            return
        self.exit_codes[container_id] = code
        LOG.info("container %s: its process ended with code %s (tether)", container_id[:12], code)
        if await self.containers.halt(container, code, finished_at):
            self.events.publish("container", "die", container.id,
                                dict(events.container_attributes(container), exitCode=str(code)))

    async def destroy(self, container, volumes):
        """Destroy the container VM (keeping shared disks) and, with ``volumes``, its anonymous volumes."""
        self.containers.cancel_restart(container.id)
        await self.containers.destroy(container)
        self.cache.drop(container.moid)
        self.term_sizes.pop(container.id, None)
        self.health.forget(container.id)
        if volumes:
            for mount in container.record.get("mounts", ()):
                if mount.get("anonymous") and not self.containers.using_volume(mount["name"]):
                    await self.volumes.remove(mount["name"])
        self.events.publish("container", "destroy", container.id, events.container_attributes(container))

    async def start_container(self, container):
        """``docker start``: power the VM on (False when it runs already). A ``--rm`` container whose start
        failed is removed, as dockerd's start removes it (the docker CLI waits for that removal)."""
        try:
            return await self.containers.power_on(container)
        except VicError:
            if container.host_config.get("AutoRemove"):
                try:
                    await self.destroy(self.containers.find(container.id), True)
                except VicError as exc:
                    LOG.warning("container %s: its start failed and it could not be removed (--rm): %s",
                                container.id[:12], exc)
            raise

    async def _auto_remove(self, container):
        """``docker run --rm``: once a run has ended and is recorded, the container and its anonymous volumes go."""
        if container.host_config.get("AutoRemove"):
            await self.destroy(self.containers.find(container.id), True)
