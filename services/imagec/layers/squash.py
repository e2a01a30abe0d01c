# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An image layer (a tarball) as a disk: a read-only SquashFS filesystem in a flat VMDK.

The blob is read once, as it downloads: decompressed, hashed into the
layer's diff_id (which the pull compares with the image config's: the blob
may arrive before the config does), checked entry by entry, and rewritten
into the tar stream that ``tar2sqfs`` (squashfs-tools-ng) packs into a
zstd-compressed SquashFS image. Nothing is unpacked on the endpoint (no
scratch folder, no root needed), so the disk is ready moments after the
download ends. Layer disks are only ever attached read-only, which is what
SquashFS is for.

Containers stack the layer disks with overlayfs, so the rewrite applies the
OCI rules as overlayfs reads them: a whiteout ``.wh.<name>`` becomes a 0/0
character device ``<name>``, an opaque marker ``.wh..wh..opq`` the
``trusted.overlay.opaque=y`` attribute of its folder, and a whiteout of a path
the layer itself also creates only hides the layers below (a folder becomes
opaque). Entries apply in order, as Docker applies them: a later entry
replaces an earlier one of the same path, a later folder entry updates the
folder. Folders are held back and written last with their final attributes.
A non-folder already written cannot be taken back out of the stream, so a
layer that replaces one is packed a second time, from its blob read again,
with only the entries that survive (rare: image builders write each path once).

Refused, with an error naming the layer and the entry: absolute names, ``..``,
paths through a symbolic link or a file, hard links to what is not a file of
the layer, kinds of entries a filesystem cannot hold, and zstd-compressed
layers (Python has no zstd decoder in its standard library). Symbolic link
targets are kept as written, since they are read inside the container.
"""

import collections
import contextlib
import fcntl
import hashlib
import math
import os
import posixpath
import subprocess
import tarfile
import tempfile

# Intel ISA-L's inflate: two to three times zlib's speed, the same interface.
from isal import isal_zlib

from ansible_collections.vic.containers.plugins.module_utils._errors import VicError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "SCHILY.xattr.trusted.overlay.opaque"
# zstd at level 1 packs as fast as the blob arrives and still halves typical layers.
TAR2SQFS = ("tar2sqfs", "--quiet", "--force", "--no-skip", "--compressor", "zstd", "--comp-extra", "level=1",
            "--num-jobs", "1")
_MIB = 1024 * 1024
# tarfile's stream reader slices its whole buffer on every read, headers included: small keeps
# layers of many small files cheap; large reads of file data loop over it.
_TAR_READ_BUFFER = 32 * 1024
# What the reader keeps of its latest reads: enough for an entry's headers (pax ones included) behind
# tarfile's read-ahead. Making a header again costs about as much as parsing it.
_RECENT = 256 * 1024
# Entries whose header goes on unchanged when it names the same path and target the rewrite would.
_VERBATIM_TYPES = (tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
                   tarfile.FIFOTYPE)
# File data is copied in pieces that stay in the CPU's cache through tarfile's reader, the hash and
# the pipe: 1 MiB pieces made packing a 64 MB layer cost 0.15 CPU-seconds, 256 KiB ones 0.09.
_DATA_READ = 256 * 1024
# Compressed input goes to inflate in small pieces: each bounded inflate call copies the input it has
# not consumed yet, so a large piece is copied over and over.
_RAW_READ = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = isal_zlib.MAX_WBITS | 16
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_XATTR_PREFIXES = ("SCHILY.xattr.", "LIBARCHIVE.xattr.")
ROOT = "."

# What an entry is, once rewritten.
DIR, FILE, SYMLINK, LINK, SPECIAL, WHITEOUT_NODE, OPAQUE_MARK = (
    "folder", "file", "symbolic link", "hard link", "special file", "whiteout", "opaque marker")
_LINK_TARGETS = (FILE, LINK, SPECIAL)


class LayerError(VicError):
    """A layer that cannot be made into a disk; the message names the layer and the reason (which a pull
    reports as it is)."""


class Layer:
    """A finished layer disk: the flat extent on local disk, its descriptor text and sizes.

    ``diff_id`` is the digest of the layer's uncompressed content, as read
    (``id`` its hex); ``check_diff_id`` compares it to what an image config
    names.
    """

    def __init__(self, diff_id, flat_path, capacity_bytes, size):
        self.diff_id = diff_id
        self.id = diff_id.split(":", 1)[-1]
        self.flat_path = flat_path
        self.capacity_bytes = capacity_bytes
        self.size = size

    @property
    def capacity_kb(self):
        return self.capacity_bytes // 1024

    def descriptor(self):
        return vmdk_descriptor(self.id, self.capacity_bytes)


class Repack(Exception):
    """The layer replaces an entry already packed (rare): ``repack`` makes its disk from the blob read again."""

    def __init__(self, tree):
        super().__init__("layer %s replaces an entry already packed" % tree.layer)
        self.tree = tree


def build(stream, name, workdir, progress=None, total=0):
    """Make the disk of the layer whose compressed blob ``stream`` gives, as it downloads; ``name`` (its blob
    digest) names it in errors.

    ``progress(done, total)`` follows the compressed bytes read. Returns a
    Layer whose flat extent is in ``workdir``, with the digest its content
    has (the caller checks it against the image config), or raises Repack.
    """
    tree = _Tree(name)
    with _Squasher(_image_path(workdir), name) as squasher:
        _first_pass(stream, tree, squasher, progress, total)
    if tree.replaced:
        raise Repack(tree)
    return _finished(workdir, tree)


def repack(stream, workdir, tree):
    """The disk of a layer ``build`` raised Repack for, ``tree`` from it, the blob read again from ``stream``."""
    with _Squasher(_image_path(workdir), tree.layer) as squasher:
        _second_pass(stream, tree, squasher)
    return _finished(workdir, tree)


def check_diff_id(layer, diff_id):
    """Refuse a layer whose content is not the one ``diff_id`` (from the image config) names."""
    if layer.diff_id != diff_id:
        raise LayerError("layer %s: the uncompressed content has digest %s, not the one the image config names"
                         % (diff_id, layer.diff_id))


def _image_path(workdir):
    return os.path.join(workdir, "layer-flat.vmdk")


def _finished(workdir, tree):
    image = _image_path(workdir)
    return Layer(tree.diff_id, image, _pad(image), sum(tree.sizes.values()))


def _first_pass(raw, tree, squasher, progress, total):
    """Hash and check every entry; pack them as they come, unless the layer replaces an entry already packed."""
    content = _Uncompressed(raw, tree.layer, progress, total)
    with _reading(content, tree.layer) as tar:
        for index, member in enumerate(_entries(tar)):
            info = tree.apply(index, member)
            if tree.replaced:
                squasher.abandon()
            elif info is not None:
                _pack(squasher, tar, content, member, info)
        tree.diff_id = content.digest()
    if not tree.replaced:
        squasher.finish(tree.folders.values())


def _second_pass(raw, tree, squasher):
    """Pack only the entries that survive the layer's own replacements."""
    survivors = tree.survivors()
    content = _Uncompressed(raw, tree.layer)
    with _reading(content, tree.layer) as tar:
        for index, member in enumerate(_entries(tar)):
            if index in survivors:
                _pack(squasher, tar, content, member, _rewrite(member, tree.layer)[1])
        digest = content.digest()
    if digest != tree.diff_id:  # the blob was read again: it must still be the layer
        raise LayerError("layer %s: read again, its content has digest %s, not %s as the first time"
                         % (tree.layer, digest, tree.diff_id))
    squasher.finish(tree.folders.values())


def _entries(tar):
    """The entries of ``tar`` (read as a stream) in order, without the list of every header read so far
    that tarfile keeps: about 700 bytes per entry, 70 MB for a layer of 100,000 files."""
    while True:
        member = tar.next()
        if member is None:
            return
        tar.members.clear()  # only getmembers() and extracting to disk use it; packing does neither
        yield member


def _pack(squasher, tar, content, member, info):
    """Pack the entry ``member`` as ``info`` says; its own header bytes go on when they say the same."""
    header = None
    if (member.type in _VERBATIM_TYPES and member.sparse is None and member.name == info.name
            and member.linkname == info.linkname and not tar.pax_headers):
        header = content.span(member.offset, member.offset_data)
    squasher.add(info, tar.extractfile(member) if info.isreg() else None, header)


@contextlib.contextmanager
def _reading(content, name):
    """``content`` read as a tar stream; what cannot be read is a LayerError naming the layer ``name``."""
    try:
        with tarfile.open(fileobj=content, mode="r|", bufsize=_TAR_READ_BUFFER) as tar:
            yield tar
    except (tarfile.TarError, EOFError, OSError, isal_zlib.error) as exc:
        raise LayerError("layer %s cannot be unpacked: %s" % (name, exc))


def _pad(image):
    """Grow the image to a whole MiB (sparse); returns its size."""
    capacity = max(1, math.ceil(os.path.getsize(image) / _MIB)) * _MIB
    os.truncate(image, capacity)
    return capacity


# -- the blob -------------------------------------------------------------------------------


class _Uncompressed:
    """The tar bytes of a blob (gzip with one member or several, or plain), hashed as they are read into
    the layer's diff_id (sha256, as image configs name layers); ``name`` names the layer in errors."""

    def __init__(self, raw, name, progress=None, total=0):
        self._raw = raw
        self._hasher = hashlib.sha256()
        self._progress = progress
        self._total = total
        self._done = 0
        self._input = self._read_raw(4)
        if self._input.startswith(_ZSTD_MAGIC):
            raise LayerError("layer %s is zstd-compressed; the VCH reads gzip-compressed and uncompressed layers"
                             % name)
        self._inflater = isal_zlib.decompressobj(_GZIP_WBITS) if self._input.startswith(_GZIP_MAGIC) else None
        self._in_member = False
        self._position = 0  # tar bytes returned so far
        self._recent = collections.deque()  # (position, bytes) of the latest reads, _RECENT bytes or so
        self._recent_size = 0

    def read(self, size=-1):
        size = size if size is not None and size >= 0 else _MIB
        chunks, have = [], 0
        while have < size:
            chunk = self._chunk(size - have)
            if not chunk:
                break
            chunks.append(chunk)
            have += len(chunk)
        data = b"".join(chunks)
        self._hasher.update(data)
        self._keep(data)
        return data

    def digest(self):
        """Read to the end (the tar's trailing padding counts in the digest too): the content's digest."""
        while self.read(_MIB):
            pass
        return "sha256:%s" % self._hasher.hexdigest()

    def span(self, start, end):
        """The tar bytes from ``start`` to ``end`` if still kept (an entry's header just read), else None."""
        if not self._recent or start < self._recent[0][0] or end > self._position:
            return None
        parts = [data[max(0, start - at):end - at] for at, data in self._recent if at < end and at + len(data) > start]
        return b"".join(parts)

    def _keep(self, data):
        self._recent.append((self._position, data))
        self._position += len(data)
        self._recent_size += len(data)
        while self._recent_size - len(self._recent[0][1]) >= _RECENT:
            self._recent_size -= len(self._recent.popleft()[1])

    def _read_raw(self, size):
        data = self._raw.read(size)
        self._done += len(data)
        if self._progress is not None and data:
            self._progress(self._done, self._total)
        return data

    def _chunk(self, limit):
        if self._inflater is None:
            data, self._input = self._input[:limit], self._input[limit:]
            return data or self._read_raw(min(limit, _MIB))
        while True:
            if not self._input:
                self._input = self._read_raw(_RAW_READ)
                if not self._input:
                    if self._in_member:
                        raise EOFError("the compressed stream ends in the middle")
                    return b""
            self._in_member = True
            # A bounded output keeps a small blob of zeros from inflating into memory all at once.
            data = self._inflater.decompress(self._input, limit)
            if self._inflater.eof:  # the next gzip member, if any, starts right after
                self._input = self._inflater.unused_data
                self._inflater = isal_zlib.decompressobj(_GZIP_WBITS)
                self._in_member = False
            else:
                self._input = self._inflater.unconsumed_tail
            if data:
                return data


# -- the entries ----------------------------------------------------------------------------


def _clean(name, layer):
    """The entry's path relative to the layer root (ROOT for the root itself); refuses escapes."""
    text = name
    while text.startswith("./"):
        text = text[2:]
    if text.startswith("/"):
        raise LayerError("layer %s: entry %s has an absolute path" % (layer, name))
    path = posixpath.normpath(text) if text else ROOT
    if path == ".." or path.startswith("../"):
        raise LayerError("layer %s: entry %s points outside the layer (path traversal)" % (layer, name))
    return path


def _kind(member, layer):
    if member.isdir():
        return DIR
    if member.issym():
        return SYMLINK
    if member.islnk():
        return LINK
    if member.isreg():
        return FILE
    if member.ischr() or member.isblk() or member.isfifo():
        return SPECIAL
    raise LayerError("layer %s: %s is of a kind of tar entry the VCH cannot store (type %r)"
                     % (layer, member.name, member.type))


def _rewrite(member, layer):
    """(kind, the header to pack) for ``member``; an opaque marker's header is its folder's."""
    path = _clean(member.name, layer)
    parent, base = posixpath.split(path)
    parent = parent or ROOT
    if base == OPAQUE:
        return OPAQUE_MARK, _folder_header(parent)
    if base.startswith(WHITEOUT):
        hidden = base[len(WHITEOUT):]
        if hidden in ("", ".", ".."):
            raise LayerError("layer %s: %s is not a valid whiteout" % (layer, member.name))
        info = tarfile.TarInfo(posixpath.join(parent, hidden) if parent != ROOT else hidden)
        info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.CHRTYPE, 0, member.uid, member.gid, member.mtime
        return WHITEOUT_NODE, info
    kind = _kind(member, layer)
    if path == ROOT and kind != DIR:
        raise LayerError("layer %s: entry %s names the layer's root folder but is a %s" % (layer, member.name, kind))
    info = tarfile.TarInfo(path)
    info.type = tarfile.REGTYPE if kind == FILE else member.type
    info.mode, info.uid, info.gid, info.mtime = member.mode, member.uid, member.gid, member.mtime
    info.size = member.size if kind == FILE else 0
    info.linkname = _clean(member.linkname, layer) if kind == LINK else member.linkname
    info.devmajor, info.devminor = member.devmajor, member.devminor
    info.pax_headers = {k: v for k, v in member.pax_headers.items() if k.startswith(_XATTR_PREFIXES)}
    return kind, info


def _folder_header(path):
    info = tarfile.TarInfo(path)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


class _Tree:
    """The layer's paths as Docker leaves them after applying its entries in order.

    ``nodes`` maps each path to (kind, index of the entry that made it; None
    for a folder made because something lies in it); ``folders`` holds the
    headers of the folders the layer names or makes opaque, packed last.
    ``replaced`` tells that a non-folder already packed was replaced or removed.
    """

    def __init__(self, layer):
        self.layer = layer
        self.nodes = {ROOT: (DIR, None)}
        # folder -> the paths right in it: a folder replaced by a file takes only its own subtree with it
        # (scanning every path instead made a layer replacing many folders quadratic).
        self._children = {}
        self.folders = {}
        self.sizes = {}
        self.links = {}
        self.replaced = False
        self.diff_id = None  # the content's digest, once read

    def apply(self, index, member):
        """Record entry ``index``; returns the header to pack now, or None (folders wait, some entries vanish)."""
        kind, info = _rewrite(member, self.layer)
        path = info.name
        if kind == OPAQUE_MARK:
            self._make_folders(path, member.name)
            self._folder(path).pax_headers[OPAQUE_XATTR] = "y"
            return None
        self._make_folders(posixpath.dirname(path) or ROOT, member.name)
        node = self.nodes.get(path)
        if kind == WHITEOUT_NODE and node is not None:
            # A whiteout hides only the layers below: what this layer makes at the path stays, a folder opaque.
            if node[0] == DIR:
                self._folder(path).pax_headers[OPAQUE_XATTR] = "y"
            return None
        if kind == DIR and node is not None and node[0] == DIR:
            self._update_folder(path, info)
            return None
        if kind == LINK:
            self._check_link(path, info.linkname, member.name)
        self._remove(path)
        self._put(path, (kind, index))
        if kind == DIR:
            if node is not None and node[0] == WHITEOUT_NODE:
                info.pax_headers[OPAQUE_XATTR] = "y"  # it stands where the layer hid the one below
            self._update_folder(path, info)
            return None
        if kind == LINK:
            self.links[path] = info.linkname
        if kind == FILE:
            self.sizes[path] = info.size
        return info

    def survivors(self):
        """The indexes of the non-folder entries left when the layer is applied."""
        found = {path: node[1] for path, node in self.nodes.items() if node[0] != DIR}
        for path, target in self.links.items():
            if path in found and found.get(target, math.inf) > found[path]:
                raise LayerError("layer %s: hard link %s points to %s, which the layer replaces or removes after "
                                 "the link" % (self.layer, path, target))
        return set(found.values())

    def _make_folders(self, path, name):
        """Make ``path`` and the folders above it folders, as extracting ``name`` would."""
        walked = []
        for part in [] if path == ROOT else path.split("/"):
            walked.append(part)
            here = "/".join(walked)
            node = self.nodes.get(here)
            if node is None:
                self._put(here, (DIR, None))
            elif node[0] == WHITEOUT_NODE:
                self._remove(here)  # a folder of this layer where a whiteout was: it hides the one below
                self._put(here, (DIR, None))
                self._folder(here).pax_headers[OPAQUE_XATTR] = "y"
            elif node[0] == SYMLINK:
                raise LayerError("layer %s: entry %s passes through the symbolic link %s" % (self.layer, name, here))
            elif node[0] != DIR:
                raise LayerError("layer %s: entry %s lies inside %s, which is a %s, not a folder"
                                 % (self.layer, name, here, node[0]))

    def _folder(self, path):
        return self.folders.setdefault(path, _folder_header(path))

    def _update_folder(self, path, info):
        """A later header of a folder sets its attributes; extended attributes add up, the later winning."""
        held = self.folders.get(path)
        if held is not None:
            info.pax_headers = dict(held.pax_headers, **info.pax_headers)
        self.folders[path] = info

    def _check_link(self, path, target, name):
        node = self.nodes.get(target)
        if node is None or node[0] not in _LINK_TARGETS:
            raise LayerError("layer %s: hard link %s points to %s, which is not a file of the layer"
                             % (self.layer, name, target))
        if target == path:
            raise LayerError("layer %s: hard link %s points to itself" % (self.layer, name))

    def _put(self, path, node):
        if path not in self.nodes:
            self._children.setdefault(posixpath.dirname(path) or ROOT, set()).add(path)
        self.nodes[path] = node

    def _remove(self, path):
        """Remove ``path`` and, for a folder replaced by a non-folder, all it held."""
        if path not in self.nodes:
            return
        gone, pending = [], [path]
        while pending:
            here = pending.pop()
            gone.append(here)
            pending.extend(self._children.pop(here, ()))
        self._children.get(posixpath.dirname(path) or ROOT, set()).discard(path)
        for here in gone:
            self.replaced |= self.nodes.pop(here)[0] != DIR
            self.folders.pop(here, None)
            self.sizes.pop(here, None)
            self.links.pop(here, None)


class _Squasher:
    """``tar2sqfs`` packing a tar stream written to it entry by entry into a SquashFS image.

    The stream is written here, header by header, through a buffered pipe:
    tarfile's own stream writer copies its whole buffer on every write, which
    cost a second per 20,000 small files.
    """

    def __init__(self, image, layer):
        self.layer = layer
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 pylint: disable=consider-using-with
        # stderr to a file, not a pipe nobody reads while the tar is written.
        self._process = subprocess.Popen(  # pylint: disable=consider-using-with
            TAR2SQFS + (image,), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._errors,
            bufsize=_MIB)
        with contextlib.suppress(OSError):  # fewer, larger hand-overs to tar2sqfs; the default pipe is 64 KiB
            fcntl.fcntl(self._process.stdin.fileno(), fcntl.F_SETPIPE_SZ, _MIB)

    def __enter__(self):
        return self

    def __exit__(self, *unused):
        self.abandon()
        self._errors.close()

    def add(self, info, data=None, header=None):
        """Write ``header`` (``info``'s, made here when not given) and, for a regular file, its ``info.size``
        bytes read from ``data``."""
        out = self._process.stdin
        try:
            out.write(header or info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
            if not info.isreg():
                return
            left = info.size
            while left:
                chunk = data.read(min(left, _DATA_READ))
                if not chunk:
                    raise tarfile.ReadError("%s: unexpected end of data" % info.name)
                out.write(chunk)
                left -= len(chunk)
            out.write(tarfile.NUL * (-info.size % tarfile.BLOCKSIZE))
        except BrokenPipeError:
            self._fail()

    def finish(self, folders=()):
        """Pack ``folders`` last and wait for the image."""
        for info in sorted(folders, key=lambda folder: folder.name):
            self.add(info)
        try:
            self._process.stdin.write(tarfile.NUL * (2 * tarfile.BLOCKSIZE))  # the end of the archive
            self._process.stdin.close()
        except BrokenPipeError:
            self._fail()
        if self._process.wait() != 0:
            self._fail()

    def abandon(self):
        """Stop packing; the image, if any, is not to be used."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        with contextlib.suppress(OSError):
            self._process.stdin.close()

    def _fail(self):
        self.abandon()
        self._errors.seek(0)
        message = self._errors.read().decode("utf-8", "replace").strip() or "exit code %d" % self._process.returncode
        raise LayerError("layer %s: tar2sqfs could not pack the disk: %s" % (self.layer, message))


# -- the descriptor -------------------------------------------------------------------------


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
