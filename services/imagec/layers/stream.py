# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A layer blob read as the tar stream it holds, once, as it downloads: decompressed (gzip with one
member or several, zstd with one frame or several, or plain; told apart by their first bytes, as
dockerd does), hashed into the layer's diff_id (which the pull compares with the image config's: the
blob may arrive before the config does), and its entries read one after the other.
"""

import contextlib
import hashlib
import re
import tarfile

# Python 3.14's compression.zstd, backported: the same bounded-output interface as bz2 and lzma.
from backports import zstd
# Intel ISA-L's inflate: two to three times zlib's speed, the same interface.
from isal import isal_zlib

from ansible_collections.vic.containers.plugins.module_utils._errors import VicError
from ansible_collections.vic.containers.services.imagec.layers.ustar import Reader

_MIB = 1024 * 1024
# Compressed input goes to inflate in small pieces: each bounded inflate call copies the input it has
# not consumed yet, so a large piece is copied over and over.
_RAW_READ = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = isal_zlib.MAX_WBITS | 16
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# zstd:chunked and other writers put metadata in skippable frames (magic 0x184D2A50-5F, little-endian).
_ZSTD_SKIPPABLE = re.compile(rb"[\x50-\x5f]\x2a\x4d\x18")


class LayerError(VicError):
    """A layer that cannot be made into a disk; the message names the layer and the reason (which a pull
    reports as it is)."""


@contextlib.contextmanager
def reading(content, name):
    """``content`` read as a tar stream (a ustar.Reader); what cannot be read is a LayerError naming the layer
    ``name``."""
    try:
        yield Reader(content)
    except (tarfile.TarError, EOFError, OSError, isal_zlib.error, zstd.ZstdError) as exc:
        raise LayerError("layer %s cannot be unpacked: %s" % (name, exc)) from exc


class Uncompressed:
    """The tar bytes of a blob (gzip or zstd, with one member or frame or several, or plain), hashed as they
    are read into the layer's diff_id (sha256, as image configs name layers); ``name`` names the layer in
    errors."""

    def __init__(self, raw, name, progress=None, total=0):
        self._raw = raw
        self._hasher = hashlib.sha256()
        self._progress = progress
        self._total = total
        self._done = 0
        self._input = self._read_raw(4)
        self._decoder_type = _decoder_type(self._input)
        self._decoder = self._decoder_type() if self._decoder_type else None
        self._in_member = False

    def read(self, size=-1):
        size = size if size is not None and size >= 0 else _MIB
        chunks, have = [], 0
        while have < size:
            chunk = self._chunk(size - have)
            if not chunk:
                break
            chunks.append(chunk)
            have += len(chunk)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._hasher.update(data)
        return data

    def digest(self):
        """Read to the end (the tar's trailing padding counts in the digest too): the content's digest."""
        while self.read(_MIB):
            pass
        return "sha256:%s" % self._hasher.hexdigest()

    def _read_raw(self, size):
        data = self._raw.read(size)
        self._done += len(data)
        if self._progress is not None and data:
            self._progress(self._done, self._total)
        return data

    def _chunk(self, limit):
        if self._decoder is None:
            data, self._input = self._input[:limit], self._input[limit:]
            return data or self._read_raw(min(limit, _MIB))
        while True:
            # gzip gives back the input it did not use (unconsumed_tail); zstd keeps it and says when it needs more.
            if not self._input and getattr(self._decoder, "needs_input", True):
                self._input = self._read_raw(_RAW_READ)
                if not self._input:
                    if self._in_member:
                        raise EOFError("the compressed stream ends in the middle")
                    return b""
            self._in_member = True
            # A bounded output keeps a small blob of zeros from inflating into memory all at once.
            data = self._decoder.decompress(self._input, limit)
            if self._decoder.eof:  # the next gzip member or zstd frame, if any, starts right after
                self._input = self._decoder.unused_data
                self._decoder = self._decoder_type()
                self._in_member = False
            else:
                self._input = getattr(self._decoder, "unconsumed_tail", b"")
            if data:
                return data


def _gzip_decoder():
    return isal_zlib.decompressobj(_GZIP_WBITS)


def _decoder_type(start):
    """What decompresses a blob that starts with ``start`` (its first 4 bytes), or None for a plain tar."""
    if start.startswith(_GZIP_MAGIC):
        return _gzip_decoder
    if start.startswith(_ZSTD_MAGIC) or _ZSTD_SKIPPABLE.match(start):
        return zstd.ZstdDecompressor
    return None
