# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The port layer's image store: images pulled from registries, their layers as disks on the datastore.

Layout in the VCH's image store folder ``[ds] <path>/VIC/<vch-uuid>`` (VIC's):

* ``images/<layer-id>/<layer-id>-flat.vmdk`` + ``<layer-id>.vmdk``: one layer as
  a SquashFS disk (see imagec/layers/squash.py), ``<layer-id>`` the hex of the layer's diff_id
  (its uncompressed digest). A layer is stored once per image store and shared
  by every image and container that uses it. The descriptor is written after
  the extent and marks the layer complete: a folder without it, or with a
  descriptor of another length than the extent's size makes (one cut short),
  is what an endpoint stopped mid-upload left, and is removed at start.
  (VIC wrote an empty ``manifest`` file last instead: one more datastore
  request per layer. Such a file is ignored.)
* ``images/imageMetadata/<image-id>.json``: one image (id = the digest of its
  config): the image config, its tags (each with the time it was set, so the
  latest claim wins should two files ever name the same tag), its repository
  digests and its layers in order, each with the blob digest it was pulled
  from. A new image's file is written in place, after its layers: a write cut
  short leaves a file that does not parse, removed at start (the layers stay,
  for the next pull of the image). A file that changes is written to
  ``.json.tmp`` and moved over the old one, so a good file is never lost.

The datastore is the only state (decision 1): at start the store lists the
image folder and reads every image file; nothing is kept elsewhere.

Round trips (SOAP calls to vSphere, HTTP transfers to the datastore):

* start: 3 SOAP (folder creation, datastore browser look-up, one search of the
  whole image folder) + the search's wait (1 poll when it is quick), then one
  HTTP GET per image; removing leftovers costs one SOAP call each + one wait.
* pull: per new layer 1 SOAP (its folder, made while the blob downloads) + 2
  HTTP PUTs (extent, descriptor); per new image 1 HTTP PUT; per changed image
  file (a tag moved to the new image) 1 HTTP PUT + 1 SOAP move, + one wait for
  all moves. A layer already in the store costs nothing; pulling an image
  already present with the same tag costs no vSphere call at all.
* tag: 1 HTTP PUT + 1 move + wait per image file changed. rmi: 1 SOAP delete per
  file or unused layer folder, + one wait for all.
* ``docker images`` / inspect / resolve: none (memory).
"""

import asyncio
import collections
import datetime
import fnmatch
import functools
import json
import logging
import math
import re
import shutil
import tempfile
import threading
import time

from ansible_collections.vic.containers.services.imagec.layers import squash as layer_disks
from ansible_collections.vic.containers.services.imagec.layers import vmdk
from ansible_collections.vic.containers.services.imagec import client as registry
from ansible_collections.vic.containers.services.imagec.reference import DOCKER_HUB, parse_reference
from ansible_collections.vic.containers.plugins.module_utils._errors import VicError, InvalidInput, Conflict, NotFound
from ansible_collections.vic.containers.services.portlayer.filters import label_matches
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore
from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks
from ansible_collections.vic.containers.plugins.module_utils._errors import VicError

LOG = logging.getLogger("vic.endpoint.images")
METADATA = "imageMetadata"
# Docker's default max-concurrent-downloads.
DOWNLOADS = 3
_PROGRESS_STEP = 512 * 1024
_PROGRESS_PERIOD = 0.1
_FEED_BLOCK = 256 * 1024
_FEED_LIMIT = 64 * 1024 * 1024
_HEX = re.compile(r"^[a-f0-9]{64}$")
_SHORT_HEX = re.compile(r"^(sha256:)?[a-f0-9]{1,64}$")


class Image:
    """One image of the store; ``layers`` lower to upper, as the container side attaches them."""

    def __init__(self, record, disk_of):
        self.record = record
        self.id = record["id"]
        self.full_config = record["config"]
        self.config = self.full_config.get("config") or {}
        self.layers = [{"id": layer["id"], "disk": disk_of(layer["id"]), "capacity_kb": layer["capacity_kb"]}
                       for layer in record["layers"]]
        self.size = sum(layer.get("size", 0) for layer in record["layers"])
        self.created = _unix_time(self.full_config.get("created"))

    @property
    def tags(self):
        """Full names (``registry/repo:tag``), oldest first."""
        return [name for name, unused in sorted(self.record["tags"].items(), key=lambda item: (item[1], item[0]))]

    @property
    def repo_tags(self):
        return [_familiar(name) for name in self.tags]

    @property
    def repo_digests(self):
        return [_familiar(name) for name in self.record["digests"]]

    @property
    def labels(self):
        return self.config.get("Labels") or {}

    def summary(self):
        """``GET /images/json`` (ImageSummary); counts Docker computes only for ``system df`` stay -1."""
        return {"Id": self.id, "ParentId": "", "RepoTags": self.repo_tags, "RepoDigests": self.repo_digests,
                "Created": self.created, "Size": self.size, "SharedSize": -1, "VirtualSize": self.size,
                "Labels": self.labels, "Containers": -1}

    def inspect(self, image_store):
        """``GET /images/{name}/json`` (ImageInspect)."""
        config = self.full_config
        return {
            "Id": self.id, "RepoTags": self.repo_tags, "RepoDigests": self.repo_digests, "Parent": "",
            "Comment": config.get("comment", ""), "Created": config.get("created") or "",
            "Container": config.get("container", ""), "ContainerConfig": config.get("container_config") or {},
            "DockerVersion": config.get("docker_version", ""), "Author": config.get("author", ""),
            "Config": self.config, "Architecture": config.get("architecture", ""),
            "Variant": config.get("variant", ""), "Os": config.get("os", ""), "Size": self.size,
            "VirtualSize": self.size,
            "GraphDriver": {"Name": "vsphere", "Data": {"ImageStore": image_store,
                                                        "Disks": ",".join(d["disk"] for d in self.layers)}},
            "RootFS": {"Type": "layers", "Layers": list((config.get("rootfs") or {}).get("diff_ids") or [])},
            "Metadata": {"LastTagTime": _rfc3339(max(self.record["tags"].values(), default=0))},
        }


class ImageStore:
    """The images of one VCH, kept on its image store; reads are served from memory."""

    def __init__(self, state):
        self.state = state
        self.datastore, folder = state.image_store
        self.folder = "%s/images" % folder
        self._images = {}      # image id -> Image
        self._tags = {}        # full "registry/repo:tag" -> image id
        self._layers = {}      # layer id (hex) -> capacity_kb of a complete layer on the datastore
        self._inflight = {}    # layer id -> the task storing it
        self._fetches = {}     # blob digest -> the _Fetch downloading and packing it
        self._blob_layers = {}  # blob digest -> the layer id its content has, from pulls so far
        self._lock = asyncio.Lock()
        self.uploaded_layer_bytes = 0
        self.registries = registry.Registries(state.config.get("registry"))

    def registry_client(self, creds):
        """A conversation with registries as this VCH trusts them, on connections kept between pulls."""
        return self.registries.client(creds)

    async def close(self):
        await self.registries.close()

    # -- paths ----------------------------------------------------------------------------------

    @property
    def location(self):
        return datastore.ds_path(self.datastore, self.folder)

    def disk_of(self, layer_id):
        return datastore.ds_path(self.datastore, "%s/%s/%s.vmdk" % (self.folder, layer_id, layer_id))

    def _metadata_path(self, image_id):
        return "%s/%s/%s.json" % (self.folder, METADATA, image_id.split(":", 1)[-1])

    # -- start ----------------------------------------------------------------------------------

    async def load(self):
        """Rebuild the store from the datastore alone; remove what an interrupted pull left."""
        state = self.state
        await state.call(datastore.make_directory, state.session, state.datacenter_ref, self.datastore,
                         "%s/%s" % (self.folder, METADATA))
        ds_ref = state.vch.inventory.datastore(self.datastore, state.vch.inventory.datacenter_of(state.vch.pool),
                                               "image_store").ref
        folders = await state.call(datastore.browse, state.session, ds_ref, self.datastore, self.folder)
        leftovers = []
        for folder, files in folders.items():
            name = folder.rsplit("/", 1)[-1]
            if not _HEX.match(name):
                continue
            flat = files.get("%s-flat.vmdk" % name)
            if flat and files.get("%s.vmdk" % name) == len(vmdk.descriptor(name, flat).encode()):
                self._layers[name] = flat // 1024
            else:
                leftovers.append("%s/%s" % (self.folder, name))
        metadata = folders.get("%s/%s" % (self.folder, METADATA), {})
        leftovers += ["%s/%s/%s" % (self.folder, METADATA, f) for f in metadata if f.endswith(".tmp")]
        names = [f for f in metadata if f.endswith(".json")]
        records = await asyncio.gather(*[self._read_record(f) for f in names])
        # A file that does not parse is a new image's file whose write was cut short (see the layout).
        leftovers += ["%s/%s/%s" % (self.folder, METADATA, f) for f, record in zip(names, records) if record is None]
        for record in sorted(filter(None, records), key=lambda r: r.get("pulled", 0)):
            self._adopt(record)
        if leftovers:
            LOG.info("removing %d incomplete image store entries", len(leftovers))
            await self._delete(leftovers)
        LOG.info("image store %s: %d images, %d layers", datastore.ds_path(self.datastore, self.folder),
                 len(self._images), len(self._layers))

    async def _read_record(self, name):
        state = self.state
        data = await state.call(datastore.download, state.session, state.datacenter, self.datastore,
                                "%s/%s/%s" % (self.folder, METADATA, name))
        try:
            record = json.loads(data or b"")
            if not _HEX.match(record["id"].split(":", 1)[-1]):
                raise ValueError("bad image id")
            return record
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            LOG.warning("image store: removing unreadable image file %s: %s", name, exc)
            return None

    def _adopt(self, record):
        missing = [layer["id"] for layer in record["layers"] if layer["id"] not in self._layers]
        if missing:
            LOG.warning("image store: image %s lacks layers %s; skipping it", record["id"], ", ".join(missing))
            return
        record.setdefault("tags", {})
        record.setdefault("digests", [])
        for name, stamp in list(record["tags"].items()):
            holder = self._images.get(self._tags.get(name))
            if holder is not None:
                if holder.record["tags"][name] > stamp:
                    del record["tags"][name]
                    continue
                del holder.record["tags"][name]
            self._tags[name] = record["id"]
        self._take(record)

    # -- reads ----------------------------------------------------------------------------------

    def list(self):
        return sorted(self._images.values(), key=lambda image: image.created, reverse=True)

    def resolve(self, reference):
        """The image ``reference`` names: name[:tag], name@digest, or a full or short image id."""
        return self._lookup(reference)[0]

    def _lookup(self, reference):
        """(image, the full tag or digest name it matched, or None when matched by id)."""
        text = (reference or "").strip()
        if text.startswith("sha256:") and _HEX.match(text[7:]):
            return self._by_id(text), None
        if _HEX.match(text):
            return self._by_id("sha256:" + text), None
        ref = None
        try:
            ref = parse_reference(text)
        except InvalidInput:
            pass
        if ref is not None:
            if ref.digest:
                name = "%s@%s" % (ref.name, ref.digest)
                for image in self._images.values():
                    if name in image.record["digests"]:
                        return image, name
            elif ref.tagged() in self._tags:
                return self._images[self._tags[ref.tagged()]], ref.tagged()
        if _SHORT_HEX.match(text):
            prefix = text if text.startswith("sha256:") else "sha256:" + text
            found = [image for image in self._images.values() if image.id.startswith(prefix)]
            if len(found) > 1:
                raise NotFound("No such image: %s (the short id matches %d images)" % (text, len(found)))
            if found:
                return found[0], None
        raise NotFound("No such image: %s" % (ref.familiar() if ref is not None else text))

    def _by_id(self, image_id):
        image = self._images.get(image_id)
        if image is None:
            raise NotFound("No such image: %s" % image_id)
        return image

    def layer_in_use(self, layer_id):
        return any(layer_id in (l["id"] for l in image.layers) for image in self._images.values())

    # -- pull -----------------------------------------------------------------------------------

    async def pull(self, ref, creds, progress):
        """Pull ``ref`` (a reference.Reference); ``progress(message)`` receives Docker's progress messages.

        Errors raised before the first message are the request's error; later
        ones belong in the stream.
        """
        async with self.registry_client(creds) as client:
            manifest = await client.manifest(ref)
            held = _HeldProgress(progress)
            downloads = asyncio.Semaphore(DOWNLOADS)
            # As dockerd does, the layers the store may lack start downloading while the image config, which
            # names their content, is fetched: a registry round trip less before the first layer byte.
            fetches = {}
            try:
                for descriptor in manifest.layers:
                    if self._blob_layers.get(descriptor["digest"]) not in self._layers:
                        self._fetch_once(fetches, client, ref, descriptor, downloads, held)
                config = await self._config(client, ref, manifest)
                diff_ids = config["rootfs"]["diff_ids"]
                progress({"status": "Pulling from %s" % _familiar_path(ref), "id": ref.tag or ref.digest})
                stores = []
                for descriptor, diff_id in zip(manifest.layers, diff_ids):
                    short = descriptor["digest"].split(":", 1)[-1][:12]
                    if diff_id.split(":", 1)[-1] in self._layers:
                        progress(_step("Already exists", short))
                        continue
                    progress(_step("Pulling fs layer", short))
                    fetch = self._fetch_once(fetches, client, ref, descriptor, downloads, held)
                    stores.append((self._store(diff_id, fetch, short, progress), short))
            finally:
                # Layer stores hold the fetches they need; any other is stopped.
                for fetch in fetches.values():
                    fetch.release()
            held.open()
            stored = await asyncio.gather(*[self._layer(task, short, progress) for task, short in stores])
        record_layers = []
        sizes = dict(stored)
        for descriptor, diff_id in zip(manifest.layers, diff_ids):
            layer_id = diff_id.split(":", 1)[-1]
            record_layers.append({"id": layer_id, "capacity_kb": self._layers.get(layer_id, 0),
                                  "size": sizes.get(layer_id, self._known_size(layer_id)),
                                  "digest": descriptor["digest"]})
        image_id = manifest.config["digest"]
        updated = await self._record_pull(ref, image_id, config, manifest, record_layers)
        progress({"status": "Digest: %s" % manifest.reference_digest})
        verb = "Downloaded newer image for" if (stores or updated) else "Image is up to date for"
        progress({"status": "Status: %s %s" % (verb, ref.familiar())})
        self._publish("pull", ref.familiar(), {"name": ref.familiar()})
        return self._images[image_id]

    async def _config(self, client, ref, manifest):
        raw = await client.blob_bytes(ref, manifest.config)
        try:
            config = json.loads(raw)
            diff_ids = config["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError):
            raise VicError("the image config of %s is not a valid image configuration" % ref.familiar())
        if (config.get("os"), config.get("architecture")) != ("linux", "amd64"):
            raise InvalidInput("image %s is for %s/%s; a VCH runs linux/amd64 containers"
                             % (ref.familiar(), config.get("os"), config.get("architecture")))
        if len(diff_ids) != len(manifest.layers):
            raise VicError("image %s is inconsistent: its manifest lists %d layers, its config %d"
                           % (ref.familiar(), len(manifest.layers), len(diff_ids)))
        for diff_id in diff_ids:
            if not _HEX.match(str(diff_id).split(":", 1)[-1]) or not str(diff_id).startswith("sha256:"):
                raise VicError("image %s names a layer %r that is not a sha256 digest" % (ref.familiar(), diff_id))
        return config

    def _known_size(self, layer_id):
        for image in self._images.values():
            for layer in image.record["layers"]:
                if layer["id"] == layer_id:
                    return layer.get("size", 0)
        return 0

    def _fetch_once(self, fetches, client, ref, descriptor, downloads, progress):
        """The fetch of ``descriptor``'s blob this pull holds (in ``fetches``): joined when one is under way."""
        digest = descriptor["digest"]
        if digest not in fetches:
            fetch = self._fetches.get(digest)
            if fetch is None:
                workdir = tempfile.mkdtemp(prefix="vic-layer-")
                task = asyncio.ensure_future(self._fetch_layer(client, ref, descriptor, downloads, progress, workdir))
                fetch = self._fetches[digest] = _Fetch(task, digest, workdir, self._forget_fetch)
            else:
                fetch.acquire()
            fetches[digest] = fetch
        return fetches[digest]

    def _forget_fetch(self, fetch):
        if self._fetches.get(fetch.digest) is fetch:
            del self._fetches[fetch.digest]

    def _store(self, diff_id, fetch, short, progress):
        """The task storing layer ``diff_id`` from ``fetch``, or the one already storing it (for another pull)."""
        layer_id = diff_id.split(":", 1)[-1]
        task = self._inflight.get(layer_id)
        if task is None:
            fetch.acquire()
            task = asyncio.ensure_future(self._store_layer(layer_id, diff_id, fetch))
            self._inflight[layer_id] = task
            task.add_done_callback(functools.partial(self._stored, layer_id))
        else:
            progress(_step("Waiting", short))
        return task

    def _stored(self, layer_id, task):
        self._inflight.pop(layer_id, None)
        # The pulls that wait for a store report its failure; one whose pulls all stopped (their clients
        # went away) is logged here, not left to asyncio's "exception never retrieved".
        failure = None if task.cancelled() else task.exception()
        if failure is not None and not isinstance(failure, VicError):
            LOG.warning("storing layer %s failed: %r", layer_id, failure)

    @staticmethod
    async def _layer(task, short, progress):
        """Wait for a layer's store (which goes on should this pull stop); returns (layer id, content size)."""
        layer_id, size = await asyncio.shield(task)
        progress(_step("Pull complete", short))
        return layer_id, size

    async def _store_layer(self, layer_id, diff_id, fetch):
        """Check the fetched disk against the image config's ``diff_id`` and upload it; holds ``fetch``."""
        state = self.state
        folder = "%s/%s" % (self.folder, layer_id)
        # The layer's folder is made while the blob downloads, off the pull's critical path; a pull that
        # fails leaves it empty, for the next pull of the layer or the next start's clean-up.
        folder_made = asyncio.ensure_future(state.call(datastore.make_directory, state.session,
                                                       state.datacenter_ref, self.datastore, folder))
        try:
            fetched = await asyncio.shield(fetch.task)
            layer_disks.check_diff_id(fetched.disk, diff_id)
            await folder_made
            started = time.perf_counter()
            await self._upload(folder, fetched.disk)
            self._layers[layer_id] = fetched.disk.capacity_kb
            LOG.info("layer %s stored: downloaded in %.3f s, its disk (%d bytes) packed %.3f s after, uploaded in "
                     "%.3f s", layer_id, fetched.download_s, fetched.disk.capacity_bytes, fetched.pack_s,
                     time.perf_counter() - started)
            return layer_id, fetched.disk.size
        finally:
            await asyncio.gather(folder_made, return_exceptions=True)
            fetch.release()

    async def _fetch_layer(self, client, ref, descriptor, downloads, progress, workdir):
        """Download a layer blob and pack it into a disk in ``workdir`` as it arrives; returns _Fetched."""
        loop = asyncio.get_running_loop()
        short = descriptor["digest"].split(":", 1)[-1][:12]
        started = time.perf_counter()
        downloaded = [False]
        report = _throttled(progress, "Extracting", short)

        def extracting(done, total):
            if downloaded[0]:  # as Docker shows it: extraction after "Download complete"
                loop.call_soon_threadsafe(report, done, total)
        packing = await self._download_into(client, ref, descriptor, downloads, functools.partial(
            layer_disks.build, name=descriptor["digest"], workdir=workdir, progress=extracting,
            total=descriptor.get("size") or 0), _throttled(progress, "Downloading", short))
        fetched = time.perf_counter()
        downloaded[0] = True
        progress(_step("Verifying Checksum", short))
        progress(_step("Download complete", short))
        try:
            disk = await _packed(packing)
        except layer_disks.Repack as again:
            LOG.info("layer %s replaces entries it packed already: packing it again", descriptor["digest"])
            disk = await _packed(await self._download_into(client, ref, descriptor, downloads, functools.partial(
                layer_disks.repack, workdir=workdir, tree=again.tree)))
        return _Fetched(disk, fetched - started, time.perf_counter() - fetched)

    @staticmethod
    async def _download_into(client, ref, descriptor, downloads, pack, progress=None):
        """Stream the blob of ``descriptor`` into ``pack(feed)``, run in the loop's default pool (packing is
        CPU and local disk work, not vSphere's); returns the packing, once the whole blob is in and checked."""
        loop = asyncio.get_running_loop()
        feed = _BlobFeed(loop)
        packing = loop.run_in_executor(None, pack, feed)
        # A packer that stopped early (a refused layer) reads no more: the download stops too.
        packing.add_done_callback(lambda unused: feed.close())
        try:
            async with downloads:
                await client.stream_blob(ref, descriptor, feed, progress)
        except _PackerStopped:
            return packing  # its own error says why
        except BaseException as exc:
            feed.finish(exc)
            await asyncio.gather(packing, return_exceptions=True)
            raise
        feed.finish()
        return packing

    async def _upload(self, folder, disk):
        state = self.state
        descriptor = disk.descriptor().encode()
        try:
            sent = await state.call(datastore.upload_file, state.session, state.datacenter, self.datastore,
                                    "%s/%s-flat.vmdk" % (folder, disk.id), disk.flat_path)
            # The descriptor, last, marks the layer complete (see load).
            sent += await state.call(datastore.put, state.session, state.datacenter, self.datastore,
                                     "%s/%s.vmdk" % (folder, disk.id), lambda: descriptor, len(descriptor))
        except Exception:
            # Without its descriptor the folder is ignored anyway; removing it now saves the next start the work.
            try:
                await self._delete([folder])
            except VicError as exc:
                LOG.warning("could not remove the incomplete layer folder %s: %s", folder, exc)
            raise
        self.uploaded_layer_bytes += sent

    async def _record_pull(self, ref, image_id, config, manifest, record_layers):
        """Add or update the image's record; True when the tag now names another image than before."""
        async with self._lock:
            gone = [layer["id"] for layer in record_layers if layer["id"] not in self._layers]
            if gone:
                raise VicError("layer %s of %s was removed from the image store during the pull; pull again"
                               % (gone[0], ref.familiar()))
            image = self._images.get(image_id)
            record = dict(image.record) if image else {
                "id": image_id, "config": config, "layers": record_layers, "tags": {}, "digests": [],
                "manifest_digest": manifest.digest, "pulled": time.time_ns()}
            record["tags"] = dict(record["tags"])
            record["digests"] = list(record["digests"])
            changed = image is None
            updated = False
            digest_name = "%s@%s" % (ref.name, manifest.reference_digest)
            if digest_name not in record["digests"]:
                record["digests"].append(digest_name)
                changed = True
            others = []
            if ref.tag:
                name = ref.tagged()
                previous = self._tags.get(name)
                if previous != image_id:
                    updated = changed = True
                    record["tags"][name] = time.time_ns()
                    if previous in self._images:
                        others.append(self._without_tag(previous, name))
            if changed:
                await self._save([record] + others)
            return updated

    def _without_tag(self, image_id, name):
        record = dict(self._images[image_id].record)
        record["tags"] = {k: v for k, v in record["tags"].items() if k != name}
        return record

    async def _save(self, records):
        """Write image files (a new one in place; one that changes under a temporary name, then moved over
        the old one: see the layout above), then take them into memory."""
        state = self.state
        moves = {}
        for record in records:
            path = self._metadata_path(record["id"])
            data = json.dumps(record, sort_keys=True).encode()
            new = record["id"] not in self._images
            await state.call(datastore.put, state.session, state.datacenter, self.datastore,
                             path if new else path + ".tmp", lambda data=data: data, len(data))
            if not new:
                task = await state.call(datastore.start_move, state.session, state.datacenter_ref, self.datastore,
                                        path + ".tmp", path)
                moves[task] = datastore.ds_path(self.datastore, path)
        if moves:
            await state.call(tasks.wait, state.session, moves)
        for record in records:
            self._take(record)
            for name in record["tags"]:
                self._tags[name] = record["id"]

    def _take(self, record):
        """Hold ``record``'s image in memory; learn which layer each of its blobs holds (older records
        do not say)."""
        self._images[record["id"]] = Image(record, self.disk_of)
        for layer in record["layers"]:
            if layer.get("digest"):
                self._blob_layers[layer["digest"]] = layer["id"]

    async def _delete(self, paths):
        state = self.state
        started = {}
        for path in paths:
            task = await state.call(datastore.start_delete, state.session, state.datacenter_ref, self.datastore, path)
            started[task] = datastore.ds_path(self.datastore, path)
        await state.call(tasks.wait, state.session, started, 180, ("FileNotFound",))

    # -- tag and remove -------------------------------------------------------------------------

    async def tag(self, source, repo, tag):
        """``docker tag``: ``repo[:tag]`` names the image ``source`` names."""
        image = self.resolve(source)
        if not repo:
            raise InvalidInput("repository name must have at least one component")
        text = "%s:%s" % (repo, tag) if tag else repo
        ref = parse_reference(text)
        if ref.digest:
            raise InvalidInput("refusing to create a tag with a digest reference")
        name = ref.tagged()
        async with self._lock:
            previous = self._tags.get(name)
            if previous == image.id:
                return
            record = dict(image.record, tags=dict(image.record["tags"], **{name: time.time_ns()}))
            others = [self._without_tag(previous, name)] if previous in self._images else []
            await self._save([record] + others)
        self._publish("tag", image.id, {"name": ref.familiar()})

    async def remove(self, reference, force=False):
        """``docker rmi``: untag, then delete the image and the layers no other image uses once it has no name.

        An image containers use is never deleted (their VMs run on its layer
        disks): without ``force`` the request is refused as Docker refuses it;
        with ``force`` its names go and the image stays, dangling.
        """
        async with self._lock:
            image, matched = self._lookup(reference)
            users = self._users(image.id)
            names = image.tags + image.record["digests"]
            single = len({_repository(n) for n in names}) <= 1
            if matched is not None:
                if users and single and not force:
                    raise Conflict('conflict: unable to remove repository reference "%s" (must force) - container '
                                   "%s is using its referenced image %s" % (reference, users[0][:12], _short(image.id)))
                gone = [matched]
                if "@" not in matched and not any(_repository(n) == _repository(matched) for n in image.tags
                                                  if n != matched):
                    # The repository's last tag: its digest references go with it, as in Docker.
                    gone += [d for d in image.record["digests"] if _repository(d) == _repository(matched)]
            else:
                if not single and not force:
                    raise Conflict("conflict: unable to delete %s (must be forced) - image is referenced in "
                                   "multiple repositories" % _short(image.id))
                if users and not force:
                    raise Conflict("conflict: unable to delete %s (must be forced) - image is being used by "
                                   "container %s" % (_short(image.id), users[0][:12]))
                gone = names
            records = [{"Untagged": _familiar(name)} for name in gone]
            left = [n for n in names if n not in gone]
            for name in gone:
                self._publish("untag", image.id, {"name": _familiar(name)})
            if left or users:
                for name in gone:
                    self._tags.pop(name, None)
                await self._save([dict(image.record, tags={k: v for k, v in image.record["tags"].items()
                                                           if k not in gone},
                                       digests=[d for d in image.record["digests"] if d not in gone])])
                return records
            return records + await self._delete_image(image)

    def _forget_names(self, image):
        for name in image.tags:
            self._tags.pop(name, None)

    async def _delete_image(self, image):
        self._forget_names(image)
        del self._images[image.id]
        unused = [layer["id"] for layer in image.layers
                  if not self.layer_in_use(layer["id"]) and layer["id"] not in self._inflight]
        paths = [self._metadata_path(image.id)] + ["%s/%s" % (self.folder, layer_id) for layer_id in unused]
        for layer_id in unused:  # before the deletes start: a pull meanwhile fetches them anew
            self._layers.pop(layer_id, None)
        await self._delete(paths)
        self._publish("delete", image.id, {})
        return [{"Deleted": image.id}] + [{"Deleted": "sha256:" + layer_id} for layer_id in unused]

    def _users(self, image_id):
        containers = getattr(self.state, "containers", None)
        return list(containers.using_image(image_id)) if containers is not None else []

    def _publish(self, action, actor, attributes):
        events = getattr(self.state, "events", None)
        if events is not None:
            events.publish("image", action, actor, attributes)

    # -- docker images filters ------------------------------------------------------------------

    def select(self, filters):
        """The images ``docker images --filter`` keeps: reference, dangling, label, before, since."""
        unknown = set(filters) - {"reference", "dangling", "label", "before", "since"}
        if unknown:
            raise InvalidInput("invalid filter '%s'" % min(unknown))
        images = self.list()
        dangling = filters.get("dangling")
        if dangling:
            if dangling[0] not in ("true", "false", "1", "0"):
                raise InvalidInput("invalid filter 'dangling=%s'" % dangling[0])
            wanted = dangling[0] in ("true", "1")
            images = [i for i in images if (not i.tags) == wanted]
        for key in ("before", "since"):
            for value in filters.get(key) or ():
                pivot = self.resolve(value)
                images = [i for i in images if (i.created < pivot.created if key == "before"
                                                else i.created > pivot.created)]
        for label in filters.get("label") or ():
            images = [i for i in images if label_matches(i.labels, label)]
        patterns = filters.get("reference")
        if patterns:
            images = [i for i in images if any(_reference_matches(p, i) for p in patterns)]
        return images


class _BlobFeed:
    """A layer blob on its way from the registry to the packer, in memory: the event loop writes, the
    packer's thread reads.

    A read waits until a block (_FEED_BLOCK, or what it asks for if less) is
    there, or the download is finished (its digest checked) or failed, so the
    packer never sees the end of a blob that is not all there. Blocks: the
    packer wakes once per block, not once per network read. The downloader
    awaits ``drain()`` after each write, which holds it back while more than
    _FEED_LIMIT bytes wait for the packer. Nothing goes to disk: writing the
    blob to a file and reading it back was the event loop's largest cost in a
    pull.
    """

    def __init__(self, loop):
        self._loop = loop
        self._chunks = collections.deque()
        self._buffered = 0
        self._wanted = 0  # the bytes the reader waits for
        self._changed = threading.Condition()
        self._room = None  # the future the downloader waits on while too much is buffered
        self._finished = False
        self._failure = None
        self._closed = False

    def write(self, data):
        with self._changed:
            if self._closed:
                raise _PackerStopped()
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered >= self._wanted:
                self._changed.notify_all()

    async def drain(self):
        with self._changed:
            if self._buffered <= _FEED_LIMIT or self._closed:
                return
            self._room = room = self._loop.create_future()
        await room

    def close(self):
        """The packer is done (or failed): drop what it did not read, hold the downloader back no more."""
        with self._changed:
            self._closed = True
            self._chunks.clear()
            self._buffered = 0
            room, self._room = self._room, None
        if room is not None:
            _release(room)

    def finish(self, failure=None):
        with self._changed:
            self._finished = True
            self._failure = failure
            self._changed.notify_all()

    def read(self, size=-1):
        size = size if size and size > 0 else _FEED_BLOCK
        with self._changed:
            self._wanted = min(size, _FEED_BLOCK)
            while self._buffered < self._wanted and not self._finished:
                self._changed.wait(1)
            if self._failure is not None:
                raise OSError("the download of the layer failed")
            parts, taken = [], 0
            while self._chunks and taken < size:
                chunk = self._chunks.popleft()
                if taken + len(chunk) > size:
                    self._chunks.appendleft(chunk[size - taken:])
                    chunk = chunk[:size - taken]
                parts.append(chunk)
                taken += len(chunk)
            self._buffered -= taken
            if self._room is not None and self._buffered <= _FEED_LIMIT // 2:
                room, self._room = self._room, None
                self._loop.call_soon_threadsafe(_release, room)
        return b"".join(parts)


class _Fetch:
    """A layer blob downloading and packing into a disk in ``workdir`` (``task``), held by the pulls and
    layer stores that need it: when the last lets go, an unfinished fetch is cancelled, and a finished
    one's disk removed."""

    def __init__(self, task, digest, workdir, forget):
        self.task = task
        self.digest = digest
        self._workdir = workdir
        self._forget = forget  # forget(fetch): no later pull joins this fetch
        self._holders = 1
        task.add_done_callback(self._done)

    def acquire(self):
        self._holders += 1

    def release(self):
        self._holders -= 1
        if self._holders:
            return
        self._forget(self)
        if self.task.done():
            self._remove()
        else:
            LOG.info("layer blob %s: no pull needs it any more; its download stops", self.digest)
            self.task.cancel()  # its end (_done) removes the disk

    def _done(self, task):
        if task.cancelled() or task.exception() is not None:
            self._forget(self)  # a failed fetch is not joined again
        if not self._holders:
            self._remove()

    def _remove(self):
        # Deleting a layer's scratch files can take a while; nothing waits for it.
        asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, self._workdir, True)


# A fetched layer: its disk, and how long the download and the packing after it took.
_Fetched = collections.namedtuple("_Fetched", "disk download_s pack_s")


async def _packed(packing):
    """The disk ``packing`` makes; when the wait is cancelled, the packer still ends first, since its
    files are removed next."""
    try:
        return await asyncio.shield(packing)
    except asyncio.CancelledError:
        await asyncio.gather(packing, return_exceptions=True)
        raise


class _HeldProgress:
    """Progress messages held back until ``open()``: layers download while the pull still checks the image
    config, and a refused config must be the request's error, sent before any message."""

    def __init__(self, progress):
        self._progress = progress
        self._held = []  # None once open

    def __call__(self, message):
        if self._held is None:
            self._progress(message)
        else:
            self._held.append(message)

    def open(self):
        held, self._held = self._held, None
        for message in held:
            self._progress(message)


class _PackerStopped(Exception):
    """The packer stopped reading before the blob's end."""


def _release(room):
    if not room.done():
        room.set_result(None)


def _reference_matches(pattern, image):
    for tag in image.repo_tags + image.repo_digests:
        name = re.split(r"[:@](?=[^/]*$)", tag)[0]
        if fnmatch.fnmatchcase(tag, pattern) or fnmatch.fnmatchcase(name, pattern):
            return True
    return False


def _familiar(full):
    """``busybox:latest`` for ``docker.io/library/busybox:latest``; other registries keep their host."""
    prefix = DOCKER_HUB + "/"
    if not full.startswith(prefix):
        return full
    rest = full[len(prefix):]
    return rest[len("library/"):] if rest.startswith("library/") and "/" not in rest[len("library/"):] else rest


def _repository(name):
    """The repository of a full tag or digest name."""
    return name.split("@", 1)[0] if "@" in name else re.sub(r":[\w][\w.-]*$", "", name)


def _familiar_path(ref):
    return ref.path


def _short(image_id):
    return image_id.split(":", 1)[-1][:12]


def _step(status, short):
    return {"status": status, "progressDetail": {}, "id": short}


def _throttled(progress, status, short):
    """A (done, total) callback sending Docker's progress messages as dockerd paces them: after half a MiB
    more and a tenth of a second at the soonest, and always the last one."""
    last = {"done": -_PROGRESS_STEP, "at": -math.inf}

    def report(done, total):
        now = time.monotonic()
        if done != total and (done - last["done"] < _PROGRESS_STEP or now - last["at"] < _PROGRESS_PERIOD):
            return
        last.update(done=done, at=now)
        message = {"status": status, "progressDetail": {"current": done, "total": total}, "id": short,
                   "progress": _bar(done, total)}
        progress(message)
    return report


def _bar(done, total):
    """The bar the docker CLI shows (it prints the server's text as is)."""
    if not total:
        return "%s" % _human(done)
    width = 50
    filled = min(width, int(width * done / total))
    arrow = "=" * max(0, filled - 1) + (">" if filled else "")
    return "[%s%s] %8s/%s" % (arrow, " " * (width - len(arrow)), _human(done), _human(total))


def _human(size):
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return ("%d%s" if unit == "B" else "%.3g%s") % (size, unit)
        size /= 1000.0
    return "%d" % size


def _unix_time(text):
    if not text:
        return 0
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text)
    if not match:
        return 0
    zone = match.group(3) or "Z"
    parsed = datetime.datetime.fromisoformat(match.group(1) + ("+00:00" if zone == "Z" else zone))
    return int(parsed.timestamp())


def _rfc3339(stamp_ns):
    if not stamp_ns:
        return "0001-01-01T00:00:00Z"
    moment = datetime.datetime.fromtimestamp(stamp_ns / 1e9, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
