# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""services/imagec/layers/ustar.py reads every tar the way ``tarfile.open(mode="r|")`` does: the same entries,
fields, data and end of archive, and the same refusals, for the headers it parses itself and the ones it
hands to tarfile (pax, GNU long names, sparse files, base-256 numbers, signed checksums, global headers),
on well-formed and on hostile or broken archives."""

import io
import tarfile

import pytest

from ansible_collections.vic.containers.services.imagec.layers import ustar

_FIELDS = ("name", "type", "mode", "uid", "gid", "size", "mtime", "linkname", "uname", "gname", "devmajor", "devminor",
           "pax_headers", "sparse")


def _archive(fmt, *entries, pax_headers=None):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt, pax_headers=pax_headers or {}) as tar:
        for name, kind, data, extra in entries:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.uname, info.gname = kind, 0o640, 1700000000, "u", "g"
            for key, value in (extra or {}).items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _read(reader, next_entry, extract):
    """[(fields..., data)] of every entry, or the error's type and text."""
    found = []
    try:
        while True:
            member = next_entry()
            if member is None:
                return found
            data = extract(member).read() if member.isreg() else None
            found.append(tuple(getattr(member, f) for f in _FIELDS) + (data,))
    except (tarfile.TarError, EOFError) as exc:
        return found + [(type(exc).__name__, str(exc))]


def both(raw):
    """What tarfile's stream reader and ustar.Reader read from ``raw``."""
    try:
        tar = tarfile.open(fileobj=io.BytesIO(raw), mode="r|")
        expected = _read(tar, tar.next, tar.extractfile)
    except tarfile.TarError as exc:
        expected = [(type(exc).__name__, str(exc))]
    reader = ustar.Reader(io.BytesIO(raw))
    return expected, _read(reader, reader.next, reader.extractfile)


LONG = "deep/" + "d" * 120 + "/" + "f" * 90
ENTRIES = [("a", tarfile.DIRTYPE, None, None), ("a/file", tarfile.REGTYPE, b"x" * 1000, None),
           ("a/empty", tarfile.REGTYPE, b"", None), ("a/link", tarfile.SYMTYPE, None, {"linkname": "../etc/passwd"}),
           ("a/hard", tarfile.LNKTYPE, None, {"linkname": "a/file"}),
           ("a/dev", tarfile.CHRTYPE, None, {"devmajor": 1, "devminor": 3}), ("a/fifo", tarfile.FIFOTYPE, None, None),
           ("a/.wh.gone", tarfile.REGTYPE, b"", None), ("./dotted//x/", tarfile.DIRTYPE, None, None),
           (LONG, tarfile.REGTYPE, b"long", None), ("a/\u00e9t\u00e9", tarfile.REGTYPE, b"utf8", None),
           ("a/big-uid", tarfile.REGTYPE, b"u", {"uid": 10 ** 9})]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_every_kind_of_entry_reads_as_tarfile_reads_it(fmt):
    entries = ENTRIES if fmt != tarfile.USTAR_FORMAT else [e for e in ENTRIES if e[0] not in (LONG, "a/big-uid")]
    expected, got = both(_archive(fmt, *entries))
    assert len(expected) == len(entries)
    assert got == expected


def test_xattrs_and_global_pax_headers_read_as_tarfile_reads_them():
    raw = _archive(tarfile.PAX_FORMAT, ("f", tarfile.REGTYPE, b"x", {"pax_headers": {"SCHILY.xattr.user.a": "1"}}),
                   ("g", tarfile.REGTYPE, b"y", None), pax_headers={"uid": "77", "comment": "global"})
    expected, got = both(raw)
    assert got == expected and expected[1][3] == 77


def test_the_plain_headers_are_kept_for_passing_on_and_only_they():
    raw = _archive(tarfile.PAX_FORMAT, ("plain", tarfile.REGTYPE, b"x", None),
                   ("x", tarfile.REGTYPE, b"y", {"pax_headers": {"SCHILY.xattr.user.a": "1"}}))
    reader = ustar.Reader(io.BytesIO(raw))
    first = reader.next()
    assert reader.header(first) == raw[:512]
    second = reader.next()
    assert reader.header(second) == raw[second.offset:second.offset_data] and second.offset_data - second.offset > 512
    assert reader.header(first) is None     # only the entry just read


def _patched(raw, offset, data):
    return raw[:offset] + data + raw[offset + len(data):]


def _with_checksum(block):
    block = block[:148] + b" " * 8 + block[156:]
    return block[:148] + b"%06o\0 " % sum(block) + block[156:]


PLAIN = _archive(tarfile.GNU_FORMAT, ("a", tarfile.REGTYPE, b"A" * 700, None), ("b", tarfile.REGTYPE, b"B", None))


@pytest.mark.parametrize("raw", [
    b"",                                                    # empty
    b"\0" * 1024,                                           # only the end marker
    b"garbage!" * 64,                                       # not a tar
    PLAIN[:300],                                            # truncated first header
    PLAIN[:512 + 100],                                      # truncated data of the first entry
    PLAIN[:1536 + 200],                                     # truncated second header: the archive ends there
    _patched(PLAIN, 148, b"000000\0 "),                     # bad checksum on the first header
    _patched(PLAIN, 1536 + 148, b"000000\0 "),              # bad checksum later: tarfile stops there
    _patched(PLAIN, 124, b"zzzzzzzzzzz\0"),                 # a size that is not a number
    _patched(PLAIN, 0, _with_checksum(_patched(PLAIN[:512], 124, b"\x80" + b"\0" * 7 + b"\0\0\x02\xbc"))),
    _patched(PLAIN, 0, _with_checksum(_patched(PLAIN[:512], 156, b"S"))),       # old GNU sparse, no map
    _patched(PLAIN, 0, _with_checksum(_patched(PLAIN[:512], 156, b"Z"))),       # an unknown type
    _patched(PLAIN, 0, _with_checksum(_patched(PLAIN[:512], 257, b"notustr\0"))),   # no magic (v7)
    _archive(tarfile.PAX_FORMAT, ("p", tarfile.REGTYPE, b"p", {"pax_headers": {"size": "999999999"}})),
], ids=["empty", "zeros", "garbage", "short-header", "short-data", "short-second", "bad-sum", "bad-sum-later",
        "bad-number", "base-256", "sparse", "unknown-type", "v7", "pax-size-lie"])
def test_broken_and_hostile_archives_end_or_fail_as_in_tarfile(raw):
    expected, got = both(raw)
    assert got == expected


def test_a_signed_checksum_reads_as_tarfile_reads_it():
    block = _patched(PLAIN[:512], 0, b"\xe9\xe9")
    block = block[:148] + b" " * 8 + block[156:]
    signed = sum(b - 256 if b > 127 else b for b in block)
    raw = _patched(PLAIN, 0, block[:148] + b"%06o\0 " % signed + block[156:])
    expected, got = both(raw)
    assert got == expected and len(expected) == 2


def test_gnu_sparse_files_read_expanded_as_tarfile_gives_them(tmp_path):
    source = tmp_path / "sparse"
    with open(source, "wb") as file:
        file.seek(1 << 20)
        file.write(b"end")
    import subprocess  # pylint: disable=import-outside-toplevel
    raw = subprocess.run(["tar", "--sparse", "--format=gnu", "-C", str(tmp_path), "-cf", "-", "sparse"],
                         check=True, capture_output=True).stdout
    expected, got = both(raw)
    assert got == expected and expected[0][-1].endswith(b"end")
