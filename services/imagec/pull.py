# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``docker pull``: the manifest and the image config from the registry, each layer the layer store
lacks downloaded and packed into a disk as it arrives, stored, then the image recorded.

As dockerd does, the layers start downloading as soon as the manifest is in,
while the config is fetched: a registry round trip less before the first layer
byte. A blob the store already holds is not fetched; a download no pull needs
any more stops. At most DOWNLOADS run at a time, and pulls needing the same
blob share its download (a _Fetch, by blob digest). Each blob streams from the
registry to the packer (layers/squash.py) in memory, through a _BlobFeed.
"""

import asyncio
import collections
import contextlib
import functools
import json
import logging
import shutil
import tempfile
import threading
import time

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput, VicError
from ansible_collections.vic.containers.services.imagec import progress as messages
from ansible_collections.vic.containers.services.imagec.layers import squash
from ansible_collections.vic.containers.services.imagec.reference import HEX_ID, short

LOG = logging.getLogger("vic.endpoint.images")
# Docker's default max-concurrent-downloads.
DOWNLOADS = 3
_FEED_BLOCK = 256 * 1024
_FEED_LIMIT = 64 * 1024 * 1024


class Pulled:
    """An image whose layers are all in the layer store: what the image index records of it."""

    def __init__(self, ref, manifest, config, sizes):
        self.ref = ref
        self.manifest = manifest
        self.config = config
        self.sizes = sizes  # layer id -> content size, for the layers this pull stored

    @property
    def image_id(self):
        return self.manifest.config["digest"]

    @property
    def layers(self):
        """(layer id, the blob digest it was pulled from), lower to upper."""
        return [(diff_id.split(":", 1)[-1], descriptor["digest"])
                for descriptor, diff_id in zip(self.manifest.layers, self.config["rootfs"]["diff_ids"])]


class Puller:
    """The pulls of one VCH: from its ``registries`` (client.Registries) into its ``layers`` (the layer store:
    ``has``, ``holds_blob``, ``storing`` and ``store``)."""

    def __init__(self, registries, layers):
        self.registries = registries
        self._layers = layers
        self._fetches = {}  # blob digest -> the _Fetch downloading and packing it

    async def close(self):
        await self.registries.close()

    async def pull(self, ref, creds, progress, record):
        """Pull ``ref`` (a reference.Reference); ``progress(message)`` receives Docker's progress messages and
        ``await record(pulled)`` adds the Pulled image to the index, True when the tag now names it and not
        another image. Returns the image id.

        Errors raised before the first message are the request's error; later
        ones belong in the stream.
        """
        async with self.registries.client(creds) as client:
            manifest = await client.manifest(ref)
            held = messages.HeldProgress(progress)
            downloads = asyncio.Semaphore(DOWNLOADS)
            # As dockerd does, the layers the store may lack start downloading while the image config, which
            # names their content, is fetched: a registry round trip less before the first layer byte.
            fetches = {}
            try:
                for descriptor in manifest.layers:
                    if not self._layers.holds_blob(descriptor["digest"]):
                        self._fetch_once(fetches, client, ref, descriptor, downloads, held)
                config = await self._config(client, ref, manifest)
                diff_ids = config["rootfs"]["diff_ids"]
                progress({"status": "Pulling from %s" % ref.path, "id": ref.tag or ref.digest})
                stores = []
                for descriptor, diff_id in zip(manifest.layers, diff_ids):
                    blob = short(descriptor["digest"])
                    if self._layers.has(diff_id.split(":", 1)[-1]):
                        progress(messages.step("Already exists", blob))
                        continue
                    progress(messages.step("Pulling fs layer", blob))
                    fetch = self._fetch_once(fetches, client, ref, descriptor, downloads, held)
                    stores.append((self._store(diff_id, fetch, blob, progress), blob))
            finally:
                # Layer stores hold the fetches they need; any other is stopped.
                for fetch in fetches.values():
                    fetch.release()
            held.open()
            stored = await asyncio.gather(*[self._layer(task, blob, progress) for task, blob in stores])
        updated = await record(Pulled(ref, manifest, config, dict(stored)))
        progress({"status": "Digest: %s" % manifest.reference_digest})
        verb = "Downloaded newer image for" if (stores or updated) else "Image is up to date for"
        progress({"status": "Status: %s %s" % (verb, ref.familiar())})
        return manifest.config["digest"]

    @staticmethod
    async def _config(client, ref, manifest):
        raw = await client.blob_bytes(ref, manifest.config)
        try:
            config = json.loads(raw)
            diff_ids = config["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError) as exc:
            raise VicError("the image config of %s is not a valid image configuration" % ref.familiar()) from exc
        if (config.get("os"), config.get("architecture")) != ("linux", "amd64"):
            raise InvalidInput("image %s is for %s/%s; a VCH runs linux/amd64 containers"
                               % (ref.familiar(), config.get("os"), config.get("architecture")))
        if len(diff_ids) != len(manifest.layers):
            raise VicError("image %s is inconsistent: its manifest lists %d layers, its config %d"
                           % (ref.familiar(), len(manifest.layers), len(diff_ids)))
        for diff_id in diff_ids:
            if not HEX_ID.match(str(diff_id).split(":", 1)[-1]) or not str(diff_id).startswith("sha256:"):
                raise VicError("image %s names a layer %r that is not a sha256 digest" % (ref.familiar(), diff_id))
        return config

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

    def _store(self, diff_id, fetch, blob, progress):
        """The task storing layer ``diff_id`` from ``fetch``, or the one already storing it (for another pull)."""
        layer_id = diff_id.split(":", 1)[-1]
        task = self._layers.storing(layer_id)
        if task is None:
            fetch.acquire()
            task = self._layers.store(layer_id, _checked(fetch, diff_id))
        else:
            progress(messages.step("Waiting", blob))
        return task

    @staticmethod
    async def _layer(task, blob, progress):
        """Wait for a layer's store (which goes on should this pull stop); returns (layer id, content size)."""
        layer_id, size = await asyncio.shield(task)
        progress(messages.step("Pull complete", blob))
        return layer_id, size

    async def _fetch_layer(self, client, ref, descriptor, downloads, progress, workdir):
        """Download a layer blob and pack it into a disk in ``workdir`` as it arrives; returns _Fetched."""
        loop = asyncio.get_running_loop()
        blob = short(descriptor["digest"])
        started = time.perf_counter()
        downloaded = [False]
        report = messages.throttled(progress, "Extracting", blob)

        def extracting(done, total):
            if downloaded[0]:  # as Docker shows it: extraction after "Download complete"
                loop.call_soon_threadsafe(report, done, total)
        packing = await self._download_into(client, ref, descriptor, downloads, functools.partial(
            squash.build, name=descriptor["digest"], workdir=workdir, progress=extracting,
            total=descriptor.get("size") or 0), messages.throttled(progress, "Downloading", blob))
        fetched = time.perf_counter()
        downloaded[0] = True
        progress(messages.step("Verifying Checksum", blob))
        progress(messages.step("Download complete", blob))
        try:
            disk = await _packed(packing)
        except squash.Repack as again:
            LOG.info("layer %s replaces entries it packed already: packing it again", descriptor["digest"])
            disk = await _packed(await self._download_into(client, ref, descriptor, downloads, functools.partial(
                squash.repack, workdir=workdir, tree=again.tree)))
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


class _Fetched(collections.namedtuple("_Fetched", "disk download_s pack_s")):
    """A fetched layer: its disk (squash.Layer), and how long the download and the packing after it took."""

    __slots__ = ()

    def __str__(self):
        return "downloaded in %.3f s, its disk (%d bytes) packed %.3f s after (CPU: packer %.3f s, tar2sqfs %.3f s)" % (
            self.download_s, self.disk.capacity_bytes, self.pack_s, *self.disk.cpu_s)


@contextlib.asynccontextmanager
async def _checked(fetch, diff_id):
    """The _Fetched of ``fetch`` once its disk is checked against the image config's ``diff_id``, held (its
    disk kept) until the layer store is done with it."""
    try:
        fetched = await asyncio.shield(fetch.task)
        squash.check_diff_id(fetched.disk, diff_id)
        yield fetched
    finally:
        fetch.release()


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


async def _packed(packing):
    """The disk ``packing`` makes; when the wait is cancelled, the packer still ends first, since its
    files are removed next."""
    try:
        return await asyncio.shield(packing)
    except asyncio.CancelledError:
        await asyncio.gather(packing, return_exceptions=True)
        raise


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


class _PackerStopped(Exception):
    """The packer stopped reading before the blob's end."""


def _release(room):
    if not room.done():
        room.set_result(None)
