# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The image index: the images of a VCH, kept as image files in its image store, read from memory.

``[ds] <path>/VIC/<vch-uuid>/images/imageMetadata/<image-id>.json``: one image
(id = the digest of its config): the image config, its tags (each with the
time it was set, so the latest claim wins should two files ever name the same
tag), its repository digests and its layers in order (in the layer store,
layer_store.py), each with the blob digest it was pulled from. A new image's
file is written in place, after its layers: a write cut short leaves a file
that does not parse, removed at start (the layers stay, for the next pull of
the image). A file that changes is written to ``.json.tmp`` and moved over the
old one, so a good file is never lost.

The datastore is the only state (decision 1): at start the index lists the
image folder and reads every image file; nothing is kept elsewhere.

Round trips (SOAP calls to vSphere, HTTP transfers to the datastore):

* start: 3 SOAP (folder creation, datastore browser look-up, one search of the
  whole image folder) + the search's wait (1 poll when it is quick), then one
  HTTP GET per image; removing leftovers costs one SOAP call each + one wait.
* pull (imagec/pull.py): the layer store's cost per new layer; per new image 1
  HTTP PUT; per changed image file (a tag moved to the new image) 1 HTTP PUT +
  1 SOAP move, + one wait for all moves; when one of these fails, 1 SOAP delete (+ wait) per new image
  file written. Pulling an image already present with
  the same tag costs no vSphere call at all.
* tag: 1 HTTP PUT + 1 move + wait per image file changed. rmi: 1 SOAP delete per
  file or unused layer folder, + one wait for all.
* ``docker images`` / inspect / resolve: none (memory).
"""

import asyncio
import datetime
import fnmatch
import json
import logging
import re
import time

from ansible_collections.vic.containers.plugins.module_utils._errors import Conflict, InvalidInput, NotFound, VicError
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore
from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks
from ansible_collections.vic.containers.services.imagec.reference import (
    HEX_ID, familiar, parse_reference, repository, short)
from ansible_collections.vic.containers.services.portlayer.filters import label_matches

LOG = logging.getLogger("vic.endpoint.images")
METADATA = "imageMetadata"
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
        return [familiar(name) for name in self.tags]

    @property
    def repo_digests(self):
        return [familiar(name) for name in self.record["digests"]]

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

    def history(self):
        """``GET /images/{name}/history``, as dockerd builds it: the config's history newest first, each
        step that made a layer with that layer's size, the newest one with the image's id and tags (the
        others ``<missing>``: a pulled image has no parent images); None when the config has none."""
        sizes = iter([layer.get("size", 0) for layer in self.record["layers"]])
        steps = [{"Id": "<missing>", "Created": _unix_time(step.get("created")),
                  "CreatedBy": step.get("created_by", ""), "Tags": None,
                  "Size": 0 if step.get("empty_layer") else next(sizes, 0), "Comment": step.get("comment", "")}
                 for step in self.full_config.get("history") or ()]
        steps.reverse()
        if steps:
            steps[0].update(Id=self.id, Tags=self.repo_tags or None)
        return steps or None


class ImageIndex:
    """The images of one VCH, their layers in ``layers`` (a LayerStore), pulled by ``puller``
    (imagec.pull.Puller, which stores into the same layer store)."""

    def __init__(self, state, layers, puller):
        self.state = state
        self._layers = layers
        self._puller = puller
        self._images = {}      # image id -> Image
        self._tags = {}        # full "registry/repo:tag" -> image id
        self._lock = asyncio.Lock()

    def registry_client(self, creds):
        """A conversation with registries as this VCH trusts them, on connections kept between pulls."""
        return self._puller.registries.client(creds)

    async def close(self):
        await self._puller.close()

    # -- paths ----------------------------------------------------------------------------------

    @property
    def location(self):
        return self._layers.location

    def disk_of(self, layer_id):
        return self._layers.disk_of(layer_id)

    @property
    def rw_template(self):
        """The containers' read-write disk template (rw_template.py)."""
        return self._layers.template

    def _metadata_folder(self):
        return "%s/%s" % (self._layers.folder, METADATA)

    def _metadata_path(self, image_id):
        return "%s/%s.json" % (self._metadata_folder(), image_id.split(":", 1)[-1])

    # -- start ----------------------------------------------------------------------------------

    async def load(self):
        """Rebuild the index and the layer store from the datastore alone; remove what an interrupted pull
        left."""
        state = self.state
        layers = self._layers
        await state.call(datastore.make_directory, state.session, state.datacenter_ref, layers.datastore,
                         self._metadata_folder())
        ds_ref = state.vch.inventory.datastore(layers.datastore, state.vch.inventory.datacenter_of(state.vch.pool),
                                               "image_store").ref
        folders = await state.call(datastore.browse, state.session, ds_ref, layers.datastore, layers.folder)
        leftovers = layers.adopt(folders)
        metadata = folders.get(self._metadata_folder(), {})
        leftovers += ["%s/%s" % (self._metadata_folder(), f) for f in metadata if f.endswith(".tmp")]
        names = [f for f in metadata if f.endswith(".json")]
        records = await asyncio.gather(*[self._read_record(f) for f in names])
        # A file that does not parse is a new image's file whose write was cut short (see the layout).
        leftovers += ["%s/%s" % (self._metadata_folder(), f) for f, record in zip(names, records) if record is None]
        for record in sorted(filter(None, records), key=lambda r: r.get("pulled", 0)):
            self._adopt(record)
        # A format VM left by an endpoint stopped midway holds the incomplete template: it goes first.
        await layers.template.remove_leftover_vms()
        if leftovers:
            LOG.info("removing %d incomplete image store entries", len(leftovers))
            await layers.delete(leftovers)
        LOG.info("image store %s: %d images, %d layers", layers.location, len(self._images), len(layers))
        # Made now, in the background, rather than at the first create: its vSphere calls come when the
        # endpoint starts, not amid a container's own.
        layers.template.parent()

    async def _read_record(self, name):
        state = self.state
        data = await state.call(datastore.download, state.session, state.datacenter, self._layers.datastore,
                                "%s/%s" % (self._metadata_folder(), name))
        try:
            record = json.loads(data or b"")
            if not HEX_ID.match(record["id"].split(":", 1)[-1]):
                raise ValueError("bad image id")
            return record
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            LOG.warning("image store: removing unreadable image file %s: %s", name, exc)
            return None

    def _adopt(self, record):
        missing = [layer["id"] for layer in record["layers"] if not self._layers.has(layer["id"])]
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
        if text.startswith("sha256:") and HEX_ID.match(text[7:]):
            return self._by_id(text), None
        if HEX_ID.match(text):
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
        """Pull ``ref`` (an imagec.reference.Reference); ``progress(message)`` receives Docker's progress
        messages.

        Errors raised before the first message are the request's error; later
        ones belong in the stream.
        """
        image_id = await self._puller.pull(ref, creds, progress, self._record_pull)
        self._publish("pull", ref.familiar(), {"name": ref.familiar()})
        return self._images[image_id]

    def _known_size(self, layer_id):
        for image in self._images.values():
            for layer in image.record["layers"]:
                if layer["id"] == layer_id:
                    return layer.get("size", 0)
        return 0

    async def _record_pull(self, pulled):
        """Add or update the record of the image ``pulled`` (an imagec.pull.Pulled); True when the tag now names
        another image than before."""
        ref, manifest, image_id = pulled.ref, pulled.manifest, pulled.image_id
        record_layers = [{"id": layer_id, "capacity_kb": self._layers.capacity_kb(layer_id),
                          "size": pulled.sizes.get(layer_id, self._known_size(layer_id)), "digest": digest}
                         for layer_id, digest in pulled.layers]
        async with self._lock:
            gone = [layer["id"] for layer in record_layers if not self._layers.has(layer["id"])]
            if gone:
                raise VicError("layer %s of %s was removed from the image store during the pull; pull again"
                               % (gone[0], ref.familiar()))
            image = self._images.get(image_id)
            record = dict(image.record) if image else {
                "id": image_id, "config": pulled.config, "layers": record_layers, "tags": {}, "digests": [],
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
        store = self._layers.datastore
        moves, written = {}, []
        try:
            for record in records:
                path = self._metadata_path(record["id"])
                data = json.dumps(record, sort_keys=True).encode()
                new = record["id"] not in self._images
                await state.call(datastore.put, state.session, state.datacenter, store,
                                 path if new else path + ".tmp", lambda data=data: data, len(data))
                if new:
                    written.append(path)
                else:
                    task = await state.call(datastore.start_move, state.session, state.datacenter_ref, store,
                                            path + ".tmp", path)
                    moves[task] = datastore.ds_path(store, path)
            if moves:
                await state.call(tasks.wait, state.session, moves)
        except VicError:
            await self._unwrite(written)
            raise
        for record in records:
            self._take(record)
            for name in record["tags"]:
                self._tags[name] = record["id"]

    async def _unwrite(self, paths):
        """Delete the new image files of a save that failed: their tags are newer than the old files' and
        would take the tags at the next start from the images the client was told still hold them."""
        if not paths:
            return
        try:
            await self._layers.delete(paths)
        except VicError as exc:
            LOG.warning("image files of a failed save were left behind: %s: %s", ", ".join(paths), exc)

    def _take(self, record):
        """Hold ``record``'s image in memory; learn which layer each of its blobs holds (older records
        do not say)."""
        self._images[record["id"]] = Image(record, self.disk_of)
        for layer in record["layers"]:
            if layer.get("digest"):
                self._layers.remember_blob(layer["digest"], layer["id"])

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
            single = len({repository(n) for n in names}) <= 1
            if matched is not None:
                if users and single and not force:
                    raise Conflict('conflict: unable to remove repository reference "%s" (must force) - container '
                                   "%s is using its referenced image %s" % (reference, users[0][:12], short(image.id)))
                gone = [matched]
                if "@" not in matched and not any(repository(n) == repository(matched) for n in image.tags
                                                  if n != matched):
                    # The repository's last tag: its digest references go with it, as in Docker.
                    gone += [d for d in image.record["digests"] if repository(d) == repository(matched)]
            else:
                if not single and not force:
                    raise Conflict("conflict: unable to delete %s (must be forced) - image is referenced in "
                                   "multiple repositories" % short(image.id))
                if users and not force:
                    raise Conflict("conflict: unable to delete %s (must be forced) - image is being used by "
                                   "container %s" % (short(image.id), users[0][:12]))
                gone = names
            records = [{"Untagged": familiar(name)} for name in gone]
            left = [n for n in names if n not in gone]
            for name in gone:
                self._publish("untag", image.id, {"name": familiar(name)})
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
        unused, folders = self._layers.forget([layer["id"] for layer in image.layers
                                               if not self.layer_in_use(layer["id"])])
        await self._layers.delete([self._metadata_path(image.id)] + folders)
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


def _reference_matches(pattern, image):
    return any(reference_matches(pattern, tag) for tag in image.repo_tags + image.repo_digests)


def reference_matches(pattern, reference):
    """``--filter reference=pattern``: the reference or its name (without tag or digest) matches."""
    name = re.split(r"[:@](?=[^/]*$)", reference)[0]
    return fnmatch.fnmatchcase(reference, pattern) or fnmatch.fnmatchcase(name, pattern)


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
