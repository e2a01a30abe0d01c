# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An image layer (a tarball) as a disk: a read-only SquashFS filesystem in a flat VMDK.

The blob is read once, as it downloads (stream.py), its entries checked and
rewritten as Docker applies them (rewrite.py), into the tar stream that
``tar2sqfs`` (squashfs-tools-ng) packs into a zstd-compressed SquashFS image.
Nothing is unpacked on the endpoint (no scratch folder, no root needed), so
the disk is ready moments after the download ends. Layer disks are only ever
attached read-only, which is what SquashFS is for.

A non-folder already written cannot be taken back out of the stream, so a
layer that replaces one is packed a second time, from its blob read again,
with only the entries that survive (rare: image builders write each path once).
"""

import contextlib
import fcntl
import math
import os
import subprocess
import tarfile
import tempfile
import time

from ansible_collections.vic.containers.services.imagec.layers import vmdk
from ansible_collections.vic.containers.services.imagec.layers.rewrite import Tree, rewrite
from ansible_collections.vic.containers.services.imagec.layers.stream import LayerError, Uncompressed, reading

# zstd at level 1 packs as fast as the blob arrives and still halves typical layers.
TAR2SQFS = ("tar2sqfs", "--quiet", "--force", "--no-skip", "--compressor", "zstd", "--comp-extra", "level=1",
            "--num-jobs", "1")
_MIB = 1024 * 1024
# Entries whose header goes on unchanged when it names the same path and target the rewrite would.
_VERBATIM_TYPES = (tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
                   tarfile.FIFOTYPE)
# File data is copied in pieces that stay in the CPU's cache through tarfile's reader, the hash and
# the pipe: 1 MiB pieces made packing a 64 MB layer cost 0.15 CPU-seconds, 256 KiB ones 0.09.
_DATA_READ = 256 * 1024


class Layer:
    """A finished layer disk: the flat extent on local disk, its descriptor text and sizes.

    ``diff_id`` is the digest of the layer's uncompressed content, as read
    (``id`` its hex); ``check_diff_id`` compares it to what an image config
    names. ``cpu_s``: the CPU seconds of the pass that packed it, (the
    packer's thread: inflating, hashing, the entries; ``tar2sqfs``).
    """

    def __init__(self, diff_id, flat_path, capacity_bytes, size, cpu_s=(0.0, 0.0)):
        self.diff_id = diff_id
        self.id = diff_id.split(":", 1)[-1]
        self.flat_path = flat_path
        self.capacity_bytes = capacity_bytes
        self.size = size
        self.cpu_s = cpu_s

    @property
    def capacity_kb(self):
        return self.capacity_bytes // 1024

    def descriptor(self):
        return vmdk.descriptor(self.id, self.capacity_bytes)


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
    started = time.thread_time()
    tree = Tree(name)
    with _Squasher(_image_path(workdir), name) as squasher:
        _first_pass(stream, tree, squasher, progress, total)
    if tree.replaced:
        raise Repack(tree)
    return _finished(workdir, tree, (time.thread_time() - started, squasher.cpu_s))


def repack(stream, workdir, tree):
    """The disk of a layer ``build`` raised Repack for, ``tree`` from it, the blob read again from ``stream``."""
    started = time.thread_time()
    with _Squasher(_image_path(workdir), tree.layer) as squasher:
        _second_pass(stream, tree, squasher)
    return _finished(workdir, tree, (time.thread_time() - started, squasher.cpu_s))


def check_diff_id(layer, diff_id):
    """Refuse a layer whose content is not the one ``diff_id`` (from the image config) names."""
    if layer.diff_id != diff_id:
        raise LayerError("layer %s: the uncompressed content has digest %s, not the one the image config names"
                         % (diff_id, layer.diff_id))


def _image_path(workdir):
    return os.path.join(workdir, "layer-flat.vmdk")


def _finished(workdir, tree, cpu_s):
    image = _image_path(workdir)
    return Layer(tree.diff_id, image, _pad(image), sum(tree.sizes.values()), cpu_s)


def _first_pass(raw, tree, squasher, progress, total):
    """Hash and check every entry; pack them as they come, unless the layer replaces an entry already packed."""
    content = Uncompressed(raw, tree.layer, progress, total)
    with reading(content, tree.layer) as tar:
        # Plain entries (most) go on as they came, their bytes untouched and unparsed past the header: a few
        # microseconds each. Every other entry is read into a TarInfo, applied and packed as the rewrite says.
        tar.sink = squasher.write
        index = 0
        while True:
            plain = tar.plain()
            if plain is not None and tree.apply_plain(index, *plain):
                tar.pass_on(plain[2])
            else:
                member = tar.next()
                if member is None:
                    break
                info = tree.apply(index, member)
                if tree.replaced:
                    tar.sink = None
                    squasher.abandon()
                elif info is not None:
                    _pack(squasher, tar, member, info)
            index += 1
        tar.flush()
        tree.diff_id = content.digest()
    if not tree.replaced:
        squasher.finish(tree.folders.values())


def _second_pass(raw, tree, squasher):
    """Pack only the entries that survive the layer's own replacements."""
    survivors = tree.survivors()
    content = Uncompressed(raw, tree.layer)
    with reading(content, tree.layer) as tar:
        for index, member in enumerate(tar):
            if index in survivors:
                _pack(squasher, tar, member, rewrite(member, tree.layer)[1])
        digest = content.digest()
    if digest != tree.diff_id:  # the blob was read again: it must still be the layer
        raise LayerError("layer %s: read again, its content has digest %s, not %s as the first time"
                         % (tree.layer, digest, tree.diff_id))
    squasher.finish(tree.folders.values())


def _pack(squasher, tar, member, info):
    """Pack the entry ``member`` as ``info`` says; its own header bytes go on when they say the same (a size
    on a header with no data would not: tar2sqfs need not read it as tarfile does)."""
    tar.flush()
    header = None
    if member.type in _VERBATIM_TYPES and member.name == info.name and member.linkname == info.linkname and \
            (member.isreg() or not member.size):
        header = tar.header(member)
    squasher.add(info, tar.extractfile(member) if info.isreg() else None, header)


def _pad(image):
    """Grow the image to a whole MiB (sparse); returns its size."""
    capacity = max(1, math.ceil(os.path.getsize(image) / _MIB)) * _MIB
    os.truncate(image, capacity)
    return capacity


class _Squasher:
    """``tar2sqfs`` packing a tar stream written to it entry by entry into a SquashFS image.

    The stream is written here, header by header, through a buffered pipe:
    tarfile's own stream writer copies its whole buffer on every write, which
    cost a second per 20,000 small files.
    """

    def __init__(self, image, layer):
        self.layer = layer
        self.cpu_s = 0.0    # tar2sqfs's, once it ended
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

    def write(self, data):
        """Write tar stream bytes as they are."""
        try:
            self._process.stdin.write(data)
        except BrokenPipeError:
            self._fail()

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
        if self._wait() != 0:
            self._fail()

    def abandon(self):
        """Stop packing; the image, if any, is not to be used."""
        if self._process.poll() is None:
            self._process.kill()
        self._wait()
        with contextlib.suppress(OSError):
            self._process.stdin.close()

    def _wait(self):
        """tar2sqfs's exit code, once it ended; its CPU time in ``cpu_s`` (wait4: Popen.wait drops it)."""
        if self._process.returncode is None:
            _pid, status, usage = os.wait4(self._process.pid, 0)
            self._process.returncode = os.waitstatus_to_exitcode(status)
            self.cpu_s = usage.ru_utime + usage.ru_stime
        return self._process.returncode

    def _fail(self):
        self.abandon()
        self._errors.seek(0)
        message = self._errors.read().decode("utf-8", "replace").strip() or "exit code %d" % self._process.returncode
        raise LayerError("layer %s: tar2sqfs could not pack the disk: %s" % (self.layer, message))
