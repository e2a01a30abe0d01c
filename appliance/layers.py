# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An image layer (a tarball) as a disk: an ext4 filesystem in a flat VMDK.

The layer is extracted as root into a scratch folder, so owners, modes, device
nodes and extended attributes survive; OCI whiteouts become what overlayfs
reads (a ``.wh.<name>`` file becomes a 0/0 character device ``<name>``, a
``.wh..wh..opq`` file the ``trusted.overlay.opaque=y`` attribute of its folder),
because containers stack the layer disks with overlayfs. ``mke2fs -d`` then
copies the folder into a sparse ext4 image sized to its content, with no
journal: layer disks are only ever attached read-only (which also makes
discarding and zeroing the inode tables of a brand-new file wasted work).

Layers are gzip-compressed or plain tarballs; zstd layers are refused with a
clear error (Python has no zstd decoder in its standard library).

Entries that would land outside the layer (absolute names, ``..``, a path
through a symbolic link, a hard link to a symbolic link or outside the layer)
are refused: the extraction runs as root on the endpoint. Symbolic link
targets are kept as written, since they are read inside the container.
"""

import contextlib
import gzip
import hashlib
import math
import os
import posixpath
import shutil
import stat
import subprocess
import tarfile
import uuid

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = ("trusted.overlay.opaque", b"y")
BLOCK = 4096
INODE_SIZE = 256
_MIB = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_XATTR_PREFIX = "SCHILY.xattr."


class LayerError(Exception):
    """A layer that cannot be made into a disk; the message names the layer and the reason."""


class Layer:
    """A finished layer disk: the flat extent on local disk, its descriptor text and sizes."""

    def __init__(self, layer_id, flat_path, capacity_bytes, size):
        self.id = layer_id
        self.flat_path = flat_path
        self.capacity_bytes = capacity_bytes
        self.size = size

    @property
    def capacity_kb(self):
        return self.capacity_bytes // 1024

    def descriptor(self):
        return vmdk_descriptor(self.id, self.capacity_bytes)


def build(source, diff_id, workdir, progress=None, total=0):
    """Make the disk of the layer ``source`` (a compressed blob: a path, or a readable file object) whose
    uncompressed digest is ``diff_id``.

    Returns a Layer whose flat extent is ``<workdir>/<id>-flat.vmdk``;
    ``progress(done, total)`` follows the compressed bytes read.
    """
    layer_id = diff_id.split(":", 1)[-1]
    root = os.path.join(workdir, "root")
    os.mkdir(root, 0o755)
    try:
        stats = extract(source, root, diff_id, progress, total)
        flat = os.path.join(workdir, "%s-flat.vmdk" % layer_id)
        capacity = make_ext4(root, flat, stats, layer_id)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return Layer(layer_id, flat, capacity, stats["size"])


# -- extraction -----------------------------------------------------------------------------


class _Counting:
    """A read-only file wrapper that reports how far it got and hashes what it returns."""

    def __init__(self, raw, hasher=None, progress=None, total=0):
        self.raw = raw
        self.hasher = hasher
        self.progress = progress
        self.total = total
        self.done = 0

    def read(self, size=-1):
        data = self.raw.read(size)
        self.done += len(data)
        if self.hasher is not None:
            self.hasher.update(data)
        if self.progress is not None and data:
            self.progress(self.done, self.total)
        return data


class _Prefixed:
    """A stream whose first bytes were already read (to tell the compression)."""

    def __init__(self, prefix, raw):
        self.prefix = prefix
        self.raw = raw

    def read(self, size=-1):
        if self.prefix:
            if size is None or size < 0:
                data, self.prefix = self.prefix + self.raw.read(), b""
                return data
            data, self.prefix = self.prefix[:size], self.prefix[size:]
            return data
        return self.raw.read(size)


def extract(source, root, diff_id=None, progress=None, total=0):
    """Extract the layer tarball ``source`` (a path or a readable file object) into ``root`` (as root);
    whiteouts become overlayfs ones.

    Checks the uncompressed digest against ``diff_id`` when given. Returns
    {"size": bytes of file content, "entries": count, "blocks": data blocks}.
    """
    algorithm = (diff_id or "sha256:").split(":", 1)[0]
    if algorithm not in ("sha256", "sha384", "sha512"):
        raise LayerError("layer %s: unknown digest algorithm %r" % (diff_id, algorithm))
    hasher = hashlib.new(algorithm)
    name = diff_id or str(source)
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(open(source, "rb")) if isinstance(source, str) else source
        total = total or (os.fstat(raw.fileno()).st_size if isinstance(source, str) else 0)
        magic = raw.read(4)
        if magic.startswith(_ZSTD_MAGIC):
            raise LayerError("layer %s is zstd-compressed; the VCH reads gzip-compressed and uncompressed layers"
                             % name)
        counted = _Counting(_Prefixed(magic, raw), progress=progress, total=total)
        stream = gzip.GzipFile(fileobj=counted, mode="rb") if magic.startswith(_GZIP_MAGIC) else counted
        hashed = _Counting(stream, hasher=hasher)
        unpacker = _Unpacker(root, name)
        try:
            with tarfile.open(fileobj=hashed, mode="r|", errorlevel=1) as tar:
                tar.extractall(root, numeric_owner=True, filter=unpacker.check)
            while hashed.read(_MIB):  # the tar's trailing padding counts in the digest too
                pass
        except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
            raise LayerError("layer %s cannot be unpacked: %s" % (name, exc))
    if diff_id and "%s:%s" % (algorithm, hasher.hexdigest()) != diff_id:
        raise LayerError("layer %s: the uncompressed content has digest %s:%s, not the one the image config "
                         "names" % (diff_id, algorithm, hasher.hexdigest()))
    unpacker.finish()
    return unpacker.stats


class _Unpacker:
    """The tarfile extraction filter: safety checks, whiteouts set aside, sizes counted."""

    def __init__(self, root, name):
        self.root = os.path.realpath(root)
        self.name = name
        self.whiteouts = []
        self.xattrs = []
        self.stats = {"size": 0, "entries": 1, "blocks": 1}

    def check(self, member, unused_dest):
        path = self._clean(member.name)
        if path is None:
            return None  # the layer's root folder itself
        parent, base = posixpath.split(path)
        self._no_symlink_on_the_way(parent, member.name)
        if base.startswith(WHITEOUT):
            self.whiteouts.append((parent, base, member.uid, member.gid))
            return None
        if member.islnk():
            target = self._clean(member.linkname)
            if target is None or os.path.islink(self._host(target)) or not os.path.lexists(self._host(target)):
                raise LayerError("layer %s: hard link %s points to %s, which is not a file of the layer"
                                 % (self.name, member.name, member.linkname))
            self._no_symlink_on_the_way(posixpath.dirname(target), member.linkname)
        elif not (member.isreg() or member.isdir() or member.issym() or member.ischr() or member.isblk()
                  or member.isfifo()):
            raise LayerError("layer %s: %s is of a kind of tar entry the VCH cannot store (type %r)"
                             % (self.name, member.name, member.type))
        self._replace_existing(path, member)
        self._count(member)
        xattrs = {k[len(_XATTR_PREFIX):]: v for k, v in member.pax_headers.items() if k.startswith(_XATTR_PREFIX)}
        if xattrs:
            self.xattrs.append((path, xattrs))
        if member.islnk():
            # A hard link shares its target's inode: keep the target's owner and mode, whatever the header says.
            target = os.lstat(self._host(self._clean(member.linkname)))
            return member.replace(name=path, linkname=self._clean(member.linkname), mode=stat.S_IMODE(target.st_mode),
                                  uid=target.st_uid, gid=target.st_gid, mtime=target.st_mtime, deep=False)
        return member.replace(name=path, deep=False)

    def _clean(self, name):
        """The entry's path relative to the layer root, or None for the root; refuses escapes."""
        text = name
        while text.startswith("./"):
            text = text[2:]
        if text.startswith("/"):
            raise LayerError("layer %s: entry %s has an absolute path" % (self.name, name))
        path = posixpath.normpath(text) if text else "."
        if path == "..":
            raise LayerError("layer %s: entry %s points outside the layer" % (self.name, name))
        if path.startswith("../"):
            raise LayerError("layer %s: entry %s points outside the layer (path traversal)" % (self.name, name))
        return None if path == "." else path

    def _host(self, path):
        return os.path.join(self.root, path)

    def _no_symlink_on_the_way(self, parent, name):
        walked = self.root
        for part in [p for p in parent.split("/") if p]:
            walked = os.path.join(walked, part)
            if os.path.islink(walked):
                raise LayerError("layer %s: entry %s passes through the symbolic link %s"
                                 % (self.name, name, os.path.relpath(walked, self.root)))

    def _replace_existing(self, path, member):
        # A later entry replaces an earlier one, as Docker applies layers; never write through a link.
        target = self._host(path)
        if not os.path.lexists(target):
            return
        if os.path.isdir(target) and not os.path.islink(target):
            if not member.isdir():
                shutil.rmtree(target)
        else:
            os.unlink(target)

    def _count(self, member):
        self.stats["entries"] += 1
        if member.isreg():
            self.stats["size"] += member.size
            self.stats["blocks"] += math.ceil(member.size / BLOCK)
        elif member.isdir() or (member.issym() and len(member.linkname) >= 60):
            self.stats["blocks"] += 1

    def finish(self):
        """Whiteouts and extended attributes, once every entry is in place (chown clears capabilities)."""
        for parent, base, uid, gid in self.whiteouts:
            folder = self._host(parent)
            os.makedirs(folder, 0o755, exist_ok=True)
            if base == OPAQUE:
                os.setxattr(folder, *OPAQUE_XATTR)
                self.stats["blocks"] += 1
                continue
            target = os.path.join(folder, base[len(WHITEOUT):])
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target)
            elif os.path.lexists(target):
                os.unlink(target)
            os.mknod(target, stat.S_IFCHR, os.makedev(0, 0))
            os.chown(target, uid, gid, follow_symlinks=False)
            self.stats["entries"] += 1
        for path, xattrs in self.xattrs:
            for key, value in xattrs.items():
                data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
                try:
                    os.setxattr(self._host(path), key, data, follow_symlinks=False)
                except OSError as exc:
                    raise LayerError("layer %s: cannot set the extended attribute %s of %s: %s"
                                     % (self.name, key, path, exc.strerror))
            self.stats["blocks"] += 1


# -- the disk -------------------------------------------------------------------------------


def make_ext4(root, flat_path, stats, layer_id):
    """Make ``flat_path`` a sparse ext4 image of ``root``; returns its size in bytes (a whole MiB)."""
    inodes = int(stats["entries"] * 1.2) + 64
    size = _estimate(stats, inodes)
    for unused_attempt in range(4):
        if os.path.exists(flat_path):
            os.unlink(flat_path)
        command = ["mke2fs", "-q", "-F", "-t", "ext4", "-O", "^has_journal", "-b", str(BLOCK), "-I",
                   str(INODE_SIZE), "-N", str(inodes), "-m", "0", "-U", _fs_uuid(layer_id), "-E",
                   "root_owner=0:0,nodiscard,lazy_itable_init=1", "-d", root, flat_path, "%dk" % (size // 1024)]
        result = subprocess.run(command, capture_output=True, text=True, check=False, env=dict(os.environ, LC_ALL="C"))
        if result.returncode == 0:
            return size
        message = (result.stderr or result.stdout).strip()
        if "space" not in message.lower() and "allocate" not in message.lower():
            raise LayerError("mke2fs could not make the disk of layer %s: %s" % (layer_id, message))
        size *= 2  # the estimate was short for this layer's shape of files
    raise LayerError("mke2fs could not fit layer %s into %d MiB" % (layer_id, size // _MIB))


def _estimate(stats, inodes):
    data = stats["blocks"] * BLOCK
    metadata = inodes * INODE_SIZE + data // 64
    # Tight on purpose: every byte of the extent crosses the network to the datastore; a short
    # estimate costs one more mke2fs run (make_ext4 doubles it), never a broken disk.
    return max(2 * _MIB, math.ceil((data * 1.03 + metadata + _MIB) / _MIB) * _MIB)


def _fs_uuid(layer_id):
    # The same layer gives the same filesystem UUID wherever it is made.
    return str(uuid.UUID(bytes=bytes.fromhex(layer_id[:32].ljust(32, "0"))))


def vmdk_descriptor(layer_id, capacity_bytes):
    """The descriptor ESXi writes for a flat disk: ``<id>.vmdk`` naming the extent ``<id>-flat.vmdk``."""
    sectors = capacity_bytes // 512
    cylinders = max(1, min(65535, sectors // (255 * 63)))
    return (
        "# Disk DescriptorFile\n"
        "version=1\n"
        'encoding="UTF-8"\n'
        "CID=%s\n"
        "parentCID=ffffffff\n"
        'createType="vmfs"\n'
        "\n"
        "# Extent description\n"
        'RW %d VMFS "%s-flat.vmdk"\n'
        "\n"
        "# The Disk Data Base\n"
        "#DDB\n"
        "\n"
        'ddb.adapterType = "lsilogic"\n'
        'ddb.geometry.cylinders = "%d"\n'
        'ddb.geometry.heads = "255"\n'
        'ddb.geometry.sectors = "63"\n'
        'ddb.longContentID = "%s"\n'
        'ddb.uuid = "%s"\n'
        'ddb.virtualHWVersion = "13"\n'
    ) % (layer_id[:8], sectors, layer_id, cylinders, layer_id[:32], _ddb_uuid(layer_id))


def _ddb_uuid(layer_id):
    """``ddb.uuid`` as ESXi writes it: 16 hex bytes, space separated, a dash after the eighth."""
    pairs = [layer_id[i:i + 2] for i in range(0, 32, 2)]
    return " ".join(pairs[:8]) + "-" + " ".join(pairs[8:])
