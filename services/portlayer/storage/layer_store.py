# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The layer store: the image layers of a VCH as disks in its image store folder.

``[ds] <path>/VIC/<vch-uuid>/images/<layer-id>/<layer-id>-flat.vmdk`` + ``<layer-id>.vmdk``
(VIC's layout): one layer as a SquashFS disk (imagec/layers/squash.py),
``<layer-id>`` the hex of the layer's diff_id (its uncompressed digest). A
layer is stored once per image store and shared by every image and container
that uses it. The descriptor is written after the extent and marks the layer
complete: a folder without it, or with a descriptor of another length than the
extent's size makes (one cut short), is what an endpoint stopped mid-upload
left, and is removed at start. (VIC wrote an empty ``manifest`` file last
instead: one more datastore request per layer. Such a file is ignored.)

Round trips: storing a layer costs 1 SOAP call (its folder, made while the blob
downloads) and 2 HTTP PUTs (extent, descriptor); a layer already in the store
costs nothing. Deleting costs one SOAP call per path and one wait for all.
"""

import asyncio
import functools
import logging
import time

from ansible_collections.vic.containers.plugins.module_utils._errors import VicError
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore
from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks
from ansible_collections.vic.containers.services.imagec.layers import vmdk
from ansible_collections.vic.containers.services.imagec.reference import HEX_ID
from ansible_collections.vic.containers.services.portlayer.storage.rw_template import RwTemplate

LOG = logging.getLogger("vic.endpoint.images")


class LayerStore:
    """The layer disks of one VCH's image store: the complete ones, the ones being stored, and the
    datastore work of storing and deleting them."""

    def __init__(self, state):
        self.state = state
        self.datastore, folder = state.image_store
        self.folder = "%s/images" % folder
        self._layers = {}       # layer id (hex) -> capacity_kb of a complete layer on the datastore
        self._storing = {}      # layer id -> the task storing it
        self._blob_layers = {}  # blob digest -> the layer id its content has, from pulls so far
        self.template = RwTemplate(state, self)     # the containers' read-write disk template, in this folder

    def __len__(self):
        return len(self._layers)

    @property
    def location(self):
        return datastore.ds_path(self.datastore, self.folder)

    def disk_of(self, layer_id):
        return datastore.ds_path(self.datastore, "%s/%s.vmdk" % (self._folder_of(layer_id), layer_id))

    # -- what exists ----------------------------------------------------------------------------

    def has(self, layer_id):
        """Is layer ``layer_id`` complete in the store?"""
        return layer_id in self._layers

    def capacity_kb(self, layer_id):
        return self._layers.get(layer_id, 0)

    def remember_blob(self, digest, layer_id):
        """Blob ``digest`` holds layer ``layer_id`` (image files record which blob each layer was pulled from)."""
        self._blob_layers[digest] = layer_id

    def holds_blob(self, digest):
        """Is the layer blob ``digest`` holds known, and complete in the store? Then it need not be fetched."""
        return self._blob_layers.get(digest) in self._layers

    def adopt(self, folders):
        """Take the complete layers of the image folder's listing (``datastore.browse``: folder -> {file: size});
        returns the paths of the incomplete ones (and of a template without its marker), to remove."""
        leftovers = self.template.adopt(folders)
        for folder, files in folders.items():
            name = folder.rsplit("/", 1)[-1]
            if not HEX_ID.match(name):
                continue
            flat = files.get("%s-flat.vmdk" % name)
            if flat and files.get("%s.vmdk" % name) == len(vmdk.descriptor(name, flat).encode()):
                self._layers[name] = flat // 1024
            else:
                leftovers.append(self._folder_of(name))
        return leftovers

    # -- storing --------------------------------------------------------------------------------

    def storing(self, layer_id):
        """The task storing layer ``layer_id``, or None."""
        return self._storing.get(layer_id)

    def store(self, layer_id, fetching):
        """The task storing layer ``layer_id``, returning (layer id, content size). ``fetching`` is an async
        context that gives the fetched layer (its ``disk``, an imagec.layers.squash.Layer; its ``str`` says how
        the fetch went) and keeps the disk until the upload ends."""
        task = asyncio.ensure_future(self._store(layer_id, fetching))
        self._storing[layer_id] = task
        task.add_done_callback(functools.partial(self._stored, layer_id))
        return task

    def _stored(self, layer_id, task):
        self._storing.pop(layer_id, None)
        # The pulls that wait for a store report its failure; one whose pulls all stopped (their clients
        # went away) is logged here, not left to asyncio's "exception never retrieved".
        failure = None if task.cancelled() else task.exception()
        if failure is not None and not isinstance(failure, VicError):
            LOG.warning("storing layer %s failed: %r", layer_id, failure)

    async def _store(self, layer_id, fetching):
        state = self.state
        folder = self._folder_of(layer_id)
        # The layer's folder is made while the blob downloads, off the pull's critical path; a pull that
        # fails leaves it empty, for the next pull of the layer or the next start's clean-up.
        folder_made = asyncio.ensure_future(state.call(datastore.make_directory, state.session,
                                                       state.datacenter_ref, self.datastore, folder))
        try:
            async with fetching as fetched:
                await folder_made
                started = time.perf_counter()
                await self._upload(folder, fetched.disk)
                self._layers[layer_id] = fetched.disk.capacity_kb
                LOG.info("layer %s stored: %s, uploaded in %.3f s", layer_id, fetched, time.perf_counter() - started)
                return layer_id, fetched.disk.size
        finally:
            await asyncio.gather(folder_made, return_exceptions=True)

    async def _upload(self, folder, disk):
        state = self.state
        descriptor = disk.descriptor().encode()
        try:
            await state.call(datastore.upload_file, state.session, state.datacenter, self.datastore,
                             "%s/%s-flat.vmdk" % (folder, disk.id), disk.flat_path)
            # The descriptor, last, marks the layer complete (see adopt).
            await state.call(datastore.put, state.session, state.datacenter, self.datastore,
                             "%s/%s.vmdk" % (folder, disk.id), lambda: descriptor, len(descriptor))
        except Exception:
            # Without its descriptor the folder is ignored anyway; removing it now saves the next start the work.
            try:
                await self.delete([folder])
            except VicError as exc:
                LOG.warning("could not remove the incomplete layer folder %s: %s", folder, exc)
            raise

    # -- deleting -------------------------------------------------------------------------------

    def forget(self, layer_ids):
        """Forget the layers of ``layer_ids`` no pull is storing (before their folders are deleted: a pull
        meanwhile fetches them anew); returns them, with the folders to delete."""
        gone = [layer_id for layer_id in layer_ids if layer_id not in self._storing]
        for layer_id in gone:
            self._layers.pop(layer_id, None)
        return gone, [self._folder_of(layer_id) for layer_id in gone]

    async def delete(self, paths):
        """Delete ``paths`` of the image store (layer folders, image files): a SOAP call each, one wait for all."""
        state = self.state
        started = {}
        for path in paths:
            task = await state.call(datastore.start_delete, state.session, state.datacenter_ref, self.datastore, path)
            started[task] = datastore.ds_path(self.datastore, path)
        await state.call(tasks.wait, state.session, started, 180, ("FileNotFound",))

    def _folder_of(self, layer_id):
        return "%s/%s" % (self.folder, layer_id)
