# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Volume stores: each Docker volume is an independent thin VMDK in a labelled datastore folder.

Layout, as VIC had it: ``[ds] <store path>/volumes/<name>/<name>.vmdk``, with the
volume's metadata beside it in ``<name>.json`` (driver, options, labels,
capacity, creation time). The disk is made by ``CreateVirtualDisk_Task``
(zeroed and thin on ESXi, empty files under vcsim) with no filesystem: the
tether is to format it (ext4) the first time a container mounts it (next
issue), so creating a volume costs no guest and no upload of empty blocks.

The disks are the truth: at start each store is listed with one datastore
search (a folder with a disk and no metadata still lists, with defaults, so
nothing is lost), then each metadata file is read (one HTTPS GET each).
Create writes the metadata before the disk, so a create cut short (the
endpoint killed, vSphere failing) leaves a folder without a disk, never a disk
without its labels: the next start removes such folders (nobody was told the
volume exists), and a create that fails removes its folder itself.
Round trips: start = per store a browser look-up + search + its wait, plus a
GET per volume (and a DeleteDatastoreFile + wait per half-made volume);
create = MakeDirectory + one PUT + CreateVirtualDisk + wait; remove =
DeleteDatastoreFile + wait; ls / inspect none.
"""

import asyncio
import json
import logging
import re
import secrets
import time

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput, Conflict, NotFound
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore
from ansible_collections.vic.containers.plugins.module_utils._errors import VicError
from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks

try:
    from pyVmomi import vim
except ImportError:  # pragma: no cover - the endpoint's requirements install it
    vim = None

LOG = logging.getLogger("vic.endpoint")
DRIVER = "vsphere"
DRIVERS = (DRIVER, "local")  # VIC took "local" as an alias: compose files name it
DEFAULT_STORE = "default"
DEFAULT_CAPACITY_MB = 1024  # VIC's default volume size
OPTIONS = ("VolumeStore", "Capacity")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
MAX_CAPACITY_MB = 62 * 1024 * 1024  # VMFS's largest virtual disk
MAX_NAME = 255 - len("-flat.vmdk")
_UNITS_MB = {None: 1, "b": 1 / 1048576, "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


class Volume:
    """One volume: its store, disk and metadata."""

    def __init__(self, name, store, disk, capacity_kb, labels=None, options=None, created=None, driver=DRIVER):
        self.name = name
        self.driver = driver  # as asked ("local" is an alias of vsphere): tools recreate a volume whose driver changed
        self.store = store
        self.disk = disk
        self.capacity_kb = capacity_kb
        self.labels = labels or {}
        self.options = options or {}
        self.created = created

    def metadata(self):
        return {"driver": self.driver, "store": self.store, "capacity_kb": self.capacity_kb, "labels": self.labels,
                "options": self.options, "created": self.created}


def capacity_kb(text):
    """Docker-style sizes as VIC read them: 512MB, 2GB, 1.5G; a plain number is MB."""
    match = _SIZE.match(str(text))
    if match is None:
        raise InvalidInput("invalid Capacity %r: use a size such as 512MB or 2GB" % text)
    unit = (match.group(2) or "").lower()[:1] or None
    size_mb = float(match.group(1)) * _UNITS_MB[unit]
    if size_mb > MAX_CAPACITY_MB:
        raise InvalidInput("invalid Capacity %r: a vSphere virtual disk holds at most 62TB" % text)
    size_kb = int(size_mb * 1024)
    if size_kb < 1024:
        raise InvalidInput("invalid Capacity %r: a volume needs at least 1MB" % text)
    return size_kb


def check_name(name):
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput("create %s: volume name is invalid: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, "
                           "at least two characters" % (name,))
    if len(name) > MAX_NAME:
        raise InvalidInput("create %s...: volume name is invalid: at most %d characters (its disk, NAME-flat.vmdk, "
                           "must fit a datastore's 255)" % (name[:20], MAX_NAME))
    return name


class VolumeStores:
    """The VCH's volume stores (label -> (datastore, folder)) and the volumes in them."""

    def __init__(self, state):
        self.state = state
        self._volumes = {}
        self._creating = {}

    # -- start

    async def load(self):
        found = await asyncio.gather(*[self._list_store(label) for label in sorted(self.state.volume_stores)])
        for label, folders in found:
            await self._adopt_store(label, folders)

    async def _list_store(self, label):
        state = self.state
        ds_name, folder = state.volume_stores[label]
        inv = state.vch.inventory
        ds_ref = inv.datastore(ds_name, inv.datacenter_of(state.vch.pool), "volume_stores." + label).ref
        return label, await state.call(datastore.browse, state.session, ds_ref, ds_name, folder)

    async def _adopt_store(self, label, folders):
        ds_name, folder = self.state.volume_stores[label]
        reads = []
        half_made = []
        for path, files in folders.items():
            parent, _slash, name = path.rpartition("/")
            if path == folder or name in self._volumes:
                continue
            if "%s.vmdk" % name not in files:
                if parent == folder:
                    half_made.append(path)
                continue
            volume = Volume(name, label, datastore.ds_path(ds_name, "%s/%s/%s.vmdk" % (folder, name, name)),
                            DEFAULT_CAPACITY_MB * 1024)
            self._volumes[name] = volume
            if "%s.json" % name in files:
                reads.append(self._read_metadata(volume))
        await asyncio.gather(*reads)
        for path in half_made:
            LOG.info("volume store %s: removing %s, a volume whose create never finished", label, path)
            try:
                await self.state.call(self._delete_folder, ds_name, path, "removing half-made volume %s" % path)
            except VicError as exc:
                LOG.warning("volume store %s: %s", label, exc)

    async def _read_metadata(self, volume):
        ds_name, folder = self.state.volume_stores[volume.store]
        data = await self.state.call(datastore.download, self.state.session, self.state.datacenter, ds_name,
                                     "%s/%s/%s.json" % (folder, volume.name, volume.name))
        try:
            meta = json.loads(data or b"{}")
        except ValueError:
            return  # unreadable metadata: the disk still lists, with defaults
        volume.capacity_kb = int(meta.get("capacity_kb") or volume.capacity_kb)
        volume.labels = meta.get("labels") or {}
        volume.options = meta.get("options") or {}
        volume.created = meta.get("created")
        volume.driver = meta.get("driver") if meta.get("driver") in DRIVERS else DRIVER

    # -- reads

    def list(self):
        return sorted(self._volumes.values(), key=lambda v: v.name)

    def exists(self, name):
        return name in self._volumes

    def get(self, name):
        found = self._volumes.get(name)
        if found is None:
            raise NotFound("get %s: no such volume" % name)
        return found

    # -- changes

    async def ensure(self, name, driver_opts=None, labels=None):
        """The volume ``name`` (created if missing); ``None`` makes an anonymous one, as Docker names them."""
        existing = self._volumes.get(name)
        if existing is not None:
            return existing
        return await self.create(name, DRIVER, driver_opts or {}, labels or {})

    async def create(self, name, driver, driver_opts, labels):
        """``docker volume create``: ``name`` None makes an anonymous volume (64 hex digits, as Docker names them)."""
        name = check_name(secrets.token_hex(32) if name is None else name)
        if driver not in DRIVERS:
            raise InvalidInput("create %s: volume driver %r is not supported; use %s" % (name, driver, DRIVER))
        options = {str(k): str(v) for k, v in (driver_opts or {}).items()}
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise InvalidInput("create %s: unknown volume option%s %s; the vsphere driver takes %s"
                               % (name, "s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(OPTIONS)))
        store = options.get("VolumeStore", DEFAULT_STORE)
        if store not in self.state.volume_stores:
            raise NotFound("create %s: no volume store %r on this VCH; it has %s"
                           % (name, store, ", ".join(sorted(self.state.volume_stores)) or "none"))
        size_kb = capacity_kb(options.get("Capacity", DEFAULT_CAPACITY_MB))
        existing = self._volumes.get(name)
        if existing is not None:
            if existing.store != store or existing.capacity_kb != size_kb:
                raise Conflict("create %s: a volume of that name already exists with other options (store %s, "
                               "%d MB)" % (name, existing.store, existing.capacity_kb // 1024))
            return existing
        if name in self._creating:
            return await asyncio.shield(self._creating[name])
        future = asyncio.get_running_loop().create_future()
        self._creating[name] = future
        try:
            volume = await self._make(name, store, size_kb, options, labels, driver)
            future.set_result(volume)
            return volume
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a lone creator must not leave an unretrieved error behind
            raise
        finally:
            del self._creating[name]

    async def _make(self, name, store, size_kb, options, labels, driver):
        state = self.state
        ds_name, folder = state.volume_stores[store]
        path = "%s/%s" % (folder, name)
        disk = datastore.ds_path(ds_name, "%s/%s.vmdk" % (path, name))
        volume = Volume(name, store, disk, size_kb, dict(labels or {}), dict(options),
                        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), driver)
        await state.call(self._write, ds_name, path, volume)
        self._volumes[name] = volume
        return volume

    def _write(self, ds_name, path, volume):
        """Folder, metadata and disk in one worker thread: a request cancelled meanwhile cannot stop it halfway.

        The metadata goes first, as the record of a create under way: a folder without its disk is one
        that never finished (removed at the next start), and a disk never lists without its labels.
        """
        state = self.state
        datastore.make_directory(state.session, state.datacenter_ref, ds_name, path)
        try:
            datastore.upload(state.session, state.datacenter, ds_name, "%s/%s.json" % (path, volume.name),
                             json.dumps(volume.metadata(), sort_keys=True).encode())
            self._create_disk(volume.disk, volume.capacity_kb)
        except VicError as failed:
            if "FileAlreadyExists" in str(failed):
                raise  # a disk already there is not ours to clean up
            # The user is told the create failed: nothing made for it may stay.
            try:
                self._delete_folder(ds_name, path, "cleaning up volume %s" % volume.name)
            except VicError as exc:
                LOG.warning("volume %s: %s", volume.name, exc)
            raise

    def _create_disk(self, disk, size_kb):
        spec = vim.VirtualDiskManager.FileBackedVirtualDiskSpec(diskType="thin", adapterType="lsiLogic",
                                                                capacityKb=size_kb)
        what = "creating volume disk %s" % disk
        manager = self.state.session.content.virtualDiskManager
        task = tasks.call(what, manager.CreateVirtualDisk_Task, name=disk, datacenter=self.state.datacenter_ref,
                          spec=spec)
        tasks.wait(self.state.session, {task: what})

    async def remove(self, name, users=()):
        volume = self.get(name)
        if users:
            raise Conflict("remove %s: volume is in use - [%s]" % (name, ", ".join(users)))
        ds_name, folder = self.state.volume_stores[volume.store]
        await self.state.call(self._delete_folder, ds_name, "%s/%s" % (folder, name), "deleting volume %s" % name)
        self._volumes.pop(name, None)

    def _delete_folder(self, ds_name, path, what):
        task = datastore.start_delete(self.state.session, self.state.datacenter_ref, ds_name, path)
        tasks.wait(self.state.session, {task: what}, ignore=("FileNotFound",))
