# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Layer tarballs as SquashFS disks (services/imagec/layers/: stream.py, rewrite.py, squash.py): Docker's order
of entries, whiteouts, refusals, and the real image read back with rdsquashfs (squashfs-tools-ng), no mount
needed."""

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from backports import zstd

from ansible_collections.vic.containers.services.imagec.layers import squash, ustar
from ansible_collections.vic.containers.services.imagec.layers.stream import LayerError, Uncompressed
from ansible_collections.vic.containers.tools.harness.registry import app_layer, busybox_layer, tar_bytes
from ansible_collections.vic.containers.tools.harness.squashfs import cat, listing, stat, xattrs


def blob(tmp_path, raw, compress=True, name="blob"):
    path = tmp_path / name
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return str(path), "sha256:" + hashlib.sha256(raw).hexdigest()


def build_file(path, diff_id, workdir):
    """A layer's disk from its blob file (read a second time when the layer asks to be packed again),
    checked against ``diff_id`` as a pull checks it against the image config."""
    with open(path, "rb") as stream:
        try:
            disk = squash.build(stream, diff_id, str(workdir))
        except squash.Repack as again:
            with open(path, "rb") as second:
                disk = squash.repack(second, str(workdir), again.tree)
    squash.check_diff_id(disk, diff_id)
    return disk


def build(tmp_path, raw, **kwargs):
    path, diff_id = blob(tmp_path, raw, **kwargs)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return build_file(path, diff_id, work)


def tar_of(*infos):
    """A tar of TarInfo objects; a regular file's data is its name, encoded."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info in infos:
            data = info.name.encode() if info.isreg() else None
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def entry(name, kind=tarfile.REGTYPE, mode=0o644, uid=0, link="", xattrs_=None):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.linkname = kind, mode, uid, uid, link
    info.mtime = 1700000000
    info.pax_headers = {"SCHILY.xattr." + k: v for k, v in (xattrs_ or {}).items()}
    return info


def test_a_layer_becomes_a_squashfs_disk_with_owners_modes_links_and_attributes(tmp_path):
    raw = tar_of(entry("app", tarfile.DIRTYPE, 0o755), entry("tmp", tarfile.DIRTYPE, 0o1777),
                 entry("app/su", mode=0o4755), entry("app/data", mode=0o640, uid=1000, xattrs_={"trusted.vic-test": "yes"}),
                 entry("app/hard", tarfile.LNKTYPE, link="app/data"), entry("app/fifo", tarfile.FIFOTYPE))
    disk = build(tmp_path, raw)
    assert disk.size == len("app/su") + len("app/data")
    assert os.path.getsize(disk.flat_path) == disk.capacity_bytes and disk.capacity_bytes % (1024 * 1024) == 0
    assert sorted(os.listdir(tmp_path / "work")) == [os.path.basename(disk.flat_path)]
    assert stat(disk.flat_path, "/tmp")["Access"] == "01777"
    assert stat(disk.flat_path, "/app/su")["Access"] == "04755"
    data = stat(disk.flat_path, "/app/data")
    assert data["UID"].startswith("1000 ") and data["Hard link count"] == "2"
    assert xattrs(disk.flat_path, "/app/data") == {"trusted.vic-test": "yes"}
    assert cat(disk.flat_path, "/app/hard") == "app/data"
    assert stat(disk.flat_path, "/app/fifo")["Inode type"] == "named pipe"


def test_whiteouts_become_overlayfs_whiteouts(tmp_path):
    disk = build(tmp_path, app_layer("motd\n"))
    removed = stat(disk.flat_path, "/etc/removed")
    assert removed["Inode type"] == "character device" and removed["Device number"].startswith("0:0")
    assert xattrs(disk.flat_path, "/data") == {"trusted.overlay.opaque": "y"}
    assert sorted(listing(disk.flat_path, "/data")) == ["new"]
    assert sorted(listing(disk.flat_path, "/etc")) == ["motd", "removed"]
    assert disk.size == len("motd\n") + len("new\n")


def test_a_busybox_layer_reads_back(tmp_path):
    disk = build(tmp_path, busybox_layer(), compress=False)
    names = listing(disk.flat_path, "/bin")
    assert "busybox" in names and "sh" in names
    assert stat(disk.flat_path, "/bin/sh")["Link target"] == "/bin/busybox"
    descriptor = disk.descriptor()
    assert 'createType="vmfs"' in descriptor
    assert 'RW %d VMFS "%s-flat.vmdk"' % (disk.capacity_bytes // 512, disk.id) in descriptor


def test_later_entries_replace_earlier_ones_as_docker_applies_them(tmp_path):
    """Replacing a packed entry makes the layer be packed again with only what survives."""
    raw = tar_of(entry("f", tarfile.SYMTYPE, 0o777, link="/etc/passwd"), entry("f", mode=0o600),
                 entry("d", tarfile.DIRTYPE), entry("d/old"), entry("d", mode=0o640),
                 entry("g", tarfile.DIRTYPE, 0o700), entry("g", tarfile.DIRTYPE, 0o750, uid=7))
    disk = build(tmp_path, raw)
    assert stat(disk.flat_path, "/f")["Inode type"] == "file" and cat(disk.flat_path, "/f") == "f"
    assert stat(disk.flat_path, "/d")["Inode type"] == "file"
    folder = stat(disk.flat_path, "/g")
    assert folder["Access"] == "0750" and folder["UID"].startswith("7 ")
    assert disk.size == 2


def test_a_folder_replaced_by_a_file_takes_its_whole_subtree_and_only_it(tmp_path):
    raw = tar_of(entry("d", tarfile.DIRTYPE), entry("d/sub", tarfile.DIRTYPE), entry("d/sub/deep"),
                 entry("d/sub/deeper/deepest"), entry("d/kept-not"), entry("dx"), entry("d2/file"),
                 entry("d"), entry("d/../d2/later"))
    disk = build(tmp_path, raw)
    assert stat(disk.flat_path, "/d")["Inode type"] == "file" and cat(disk.flat_path, "/d") == "d"
    assert sorted(listing(disk.flat_path)) == ["d", "d2", "dx"]
    assert sorted(listing(disk.flat_path, "/d2")) == ["file", "later"]
    assert disk.size == len("d") + len("dx") + len("d2/file") + len("d/../d2/later")


def test_a_blob_that_reads_differently_the_second_time_is_refused(tmp_path):
    """A layer packed again reads its blob again: the content must be what the first read hashed."""
    first, diff_id = blob(tmp_path, tar_of(entry("f"), entry("f", mode=0o600)), name="first")
    second = blob(tmp_path, tar_of(entry("f"), entry("f", mode=0o640)), name="second")[0]
    with open(first, "rb") as stream, pytest.raises(squash.Repack) as again:
        squash.build(stream, diff_id, str(tmp_path))
    assert again.value.tree.diff_id == diff_id
    with open(second, "rb") as stream, pytest.raises(LayerError, match="read again, its content has digest"):
        squash.repack(stream, str(tmp_path), again.value.tree)


def test_a_whiteout_of_a_path_the_layer_also_makes_only_hides_the_layers_below(tmp_path):
    raw = tar_of(entry("etc", tarfile.DIRTYPE), entry("etc/.wh.conf"), entry("etc/conf", tarfile.DIRTYPE),
                 entry("etc/conf/a"), entry("opt"), entry(".wh.opt"))
    disk = build(tmp_path, raw)
    assert stat(disk.flat_path, "/etc/conf")["Inode type"].endswith("directory")
    assert xattrs(disk.flat_path, "/etc/conf") == {"trusted.overlay.opaque": "y"}
    assert cat(disk.flat_path, "/etc/conf/a") == "etc/conf/a"
    assert stat(disk.flat_path, "/opt")["Inode type"] == "file"


def test_folder_headers_after_their_content_and_an_opaque_root(tmp_path):
    raw = tar_of(entry("a/b/c"), entry("a", tarfile.DIRTYPE, 0o711), entry(".wh..wh..opq"),
                 entry("./", tarfile.DIRTYPE, 0o755))
    disk = build(tmp_path, raw)
    assert stat(disk.flat_path, "/a")["Access"] == "0711"
    assert stat(disk.flat_path, "/a/b")["Access"] == "0755"
    assert xattrs(disk.flat_path, "/") == {"trusted.overlay.opaque": "y"}


@pytest.mark.parametrize("entries, reason", [
    ([("../escape", "file", b"x", 0o644)], "outside the layer"),
    ([("a/../../escape", "file", b"x", 0o644)], "outside the layer"),
    ([("/etc/passwd", "file", b"x", 0o644)], "absolute path"),
    ([("evil", "symlink", "/etc", 0o777), ("evil/passwd", "file", b"x", 0o644)], "passes through the symbolic link"),
    ([("up", "symlink", "..", 0o777), ("up/escape", "file", b"x", 0o644)], "passes through the symbolic link"),
    ([("plain", "file", b"x", 0o644), ("plain/inside", "file", b"x", 0o644)], "which is a file, not a folder"),
    ([("shadow", "symlink", "/etc/shadow", 0o777), ("copy", "link", "shadow", 0o644)], "hard link copy"),
    ([("copy", "link", "../outside", 0o644)], "outside the layer"),
    ([("copy", "link", "missing", 0o644)], "not a file of the layer"),
    ([("f", "file", b"x", 0o644), ("copy", "link", "f", 0o644), ("f", "file", b"y", 0o644)],
     "which the layer replaces or removes after the link"),
    ([(".wh..", "file", b"", 0o644)], "not a valid whiteout"),
])
def test_entries_escaping_the_layer_are_refused(tmp_path, entries, reason):
    with pytest.raises(LayerError, match=reason):
        build(tmp_path, tar_bytes(entries))


def test_content_not_matching_the_diff_id_is_refused(tmp_path):
    path = blob(tmp_path, app_layer("x\n"))[0]
    with pytest.raises(LayerError, match="uncompressed content has digest"):
        build_file(path, "sha256:" + "0" * 64, tmp_path)


def test_several_gzip_members_read_as_one_stream(tmp_path):
    raw = app_layer("multi\n")
    path = tmp_path / "multi"
    path.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    disk = build_file(path, "sha256:" + hashlib.sha256(raw).hexdigest(), tmp_path)
    assert cat(disk.flat_path, "/etc/motd") == "multi\n"


def test_zstd_layers_with_several_frames_and_skippable_ones_make_the_gzip_layers_disk(tmp_path):
    """Docker 23 and later pull zstd layers (tar+zstd); builders split them into frames, and zstd:chunked adds
    skippable frames of metadata. The disk is the one the same tar makes gzip-compressed, byte for byte."""
    raw = busybox_layer()
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    skippable = b"\x5a\x2a\x4d\x18" + (8).to_bytes(4, "little") + b"metadata"
    compressed = tmp_path / "zstd"
    compressed.write_bytes(zstd.compress(raw[:30000], 3) + skippable + zstd.compress(raw[30000:], 19) + skippable)
    (tmp_path / "z").mkdir()
    (tmp_path / "g").mkdir()
    from_zstd = build_file(compressed, diff_id, tmp_path / "z")
    from_gzip = build_file(blob(tmp_path, raw)[0], diff_id, tmp_path / "g")
    assert Path(from_zstd.flat_path).read_bytes() == Path(from_gzip.flat_path).read_bytes()
    starts_skippable = tmp_path / "skippable-first"
    starts_skippable.write_bytes(skippable + zstd.compress(raw, 1))
    (tmp_path / "s").mkdir()
    assert build_file(starts_skippable, diff_id, tmp_path / "s").diff_id == diff_id


def test_a_zstd_blob_of_zeros_is_read_in_bounded_pieces():
    """A small blob that expands to a lot (here 64 MiB of zeros from a few KB) is read 1 MiB at most at a time."""
    bomb = zstd.compress(bytes(64 << 20), 19)
    assert len(bomb) < 64 << 10
    content = Uncompressed(io.BytesIO(bomb), "bomb")
    sizes = [len(content.read(1 << 20)) for _unused in range(3)]
    assert sizes == [1 << 20] * 3


@pytest.mark.parametrize("data, reason", [
    (b"\x28\xb5\x2f\xfd" + b"\0" * 64, "ends in the middle|cannot be unpacked"),
    (zstd.compress(app_layer("x\n"))[:-20], "ends in the middle"),
    (zstd.compress(b"x" * 1000) + b"trailing bytes that are no zstd frame", "cannot be unpacked"),
    (b"\x1f\x8b" + b"not gzip at all" * 10, "cannot be unpacked"),
    (gzip.compress(app_layer("x\n"))[:-20], "ends in the middle"),
], ids=["zstd-garbage", "zstd-truncated", "zstd-trailing-garbage", "gzip-garbage", "gzip-truncated"])
def test_truncated_and_garbage_layers_are_refused_clearly(tmp_path, data, reason):
    path = tmp_path / "layer"
    path.write_bytes(data)
    with pytest.raises(LayerError, match=reason):
        build_file(path, "sha256:" + "0" * 64, tmp_path)


def test_an_attribute_squashfs_cannot_hold_is_reported_with_tar2sqfs_own_words(tmp_path):
    raw = tar_of(entry("f", xattrs_={"system.posix_acl_access": "x"}))
    with pytest.raises(LayerError, match="tar2sqfs could not pack the disk"):
        build(tmp_path, raw)


def test_headers_passed_on_as_they_came_make_the_same_disk_as_headers_made_again(tmp_path, monkeypatch):
    """Entries whose own header already says what the rewrite would are packed with that header."""
    long_name = "deep/" + "x" * 120 + "/file"
    raw = tar_of(entry("deep", tarfile.DIRTYPE), entry(long_name, xattrs_={"user.note": "kept"}),
                 entry("deep/link", tarfile.SYMTYPE, 0o777, link="/" + long_name), entry("./dotted"),
                 entry("deep/hard", tarfile.LNKTYPE, link=long_name), entry("deep/.wh.gone"),
                 entry("deep/fifo", tarfile.FIFOTYPE))
    path, diff_id = blob(tmp_path, raw)
    passed_on = []
    add = squash._Squasher.add

    def spy(self, info, data=None, header=None):
        if header is not None:
            passed_on.append(info.name)
        return add(self, info, data, header)
    monkeypatch.setattr(squash._Squasher, "add", spy)
    disks = []
    for name in ("verbatim", "made"):
        if name == "made":
            monkeypatch.setattr(squash, "_VERBATIM_TYPES", ())
        (tmp_path / name).mkdir()
        disks.append(build_file(path, diff_id, tmp_path / name).flat_path)
    assert sorted(passed_on) == sorted([long_name, "deep/link", "deep/hard", "deep/fifo"])
    with open(disks[0], "rb") as verbatim, open(disks[1], "rb") as made:
        assert verbatim.read() == made.read()
    assert xattrs(disks[0], "/" + long_name) == {"user.note": "kept"}
    assert stat(disks[0], "/deep/hard")["Hard link count"] == "2"
    assert stat(disks[0], "/deep/gone")["Inode type"] == "character device"


def _hostile_header(raw, index, **fields):
    """``raw`` with fields of its ``index``-th 512-byte block set (offset: bytes), its checksum made right again
    unless ``chksum`` is among them."""
    offsets = {"name": 0, "size": 124, "chksum": 148, "type": 156, "magic": 257, "prefix": 345}
    block = bytearray(raw[index * 512:(index + 1) * 512])
    for field, value in fields.items():
        block[offsets[field]:offsets[field] + len(value)] = value
    if "chksum" not in fields:
        block[148:156] = b" " * 8
        block[148:156] = b"%06o\0 " % sum(block)
    return raw[:index * 512] + bytes(block) + raw[(index + 1) * 512:]


def _ustar(*entries):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1700000000
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _gnu_tar(tmp_path, fmt, top="usr"):
    tree = tmp_path / "tree"
    (tree / "usr/lib/deep" / ("d" * 90)).mkdir(parents=True)
    (tree / "usr/lib/a.so").write_bytes(b"a" * 5000)
    (tree / "usr/lib/.hidden").write_text("dotfile")
    (tree / "usr/lib/deep" / ("d" * 90) / ("f" * 80)).write_text("long")
    os.symlink("a.so", tree / "usr/lib/b.so")
    os.link(tree / "usr/lib/a.so", tree / "usr/lib/hard.so")
    for path in [tree, *tree.rglob("*")]:
        os.utime(path, (1700000000, 1700000000), follow_symlinks=False)
    return subprocess.run(["tar", "--sort=name", "--owner=0", "--group=0", "--format=" + fmt, "-cf", "-", "-C",
                           str(tree), top], check=True, capture_output=True).stdout


_BASE = _ustar(("a", b"A" * 700), ("b", b"B"), ("c", b"C"))    # blocks: a at 0, b at 3, c at 5


@pytest.mark.parametrize("make", [
    lambda tmp: busybox_layer(),
    lambda tmp: app_layer("whiteouts and an opaque folder\n"),
    lambda tmp: tar_of(entry("deep", tarfile.DIRTYPE), entry("deep/" + "x" * 120 + "/file"), entry("./dotted"),
                       entry("deep/link", tarfile.SYMTYPE, 0o777, link="../x"), entry("deep/hard", tarfile.LNKTYPE,
                       link="./dotted"), entry("deep/.wh.gone"), entry("deep/fifo", tarfile.FIFOTYPE)),
    lambda tmp: _ustar(("p/" * 60 + "first", b"split into prefix and name"), ("p/" * 60 + "second", b"2")),
    lambda tmp: _gnu_tar(tmp, "gnu"),
    lambda tmp: _gnu_tar(tmp, "ustar"),
    lambda tmp: _gnu_tar(tmp, "posix"),
    lambda tmp: _gnu_tar(tmp, "gnu", "."),
    lambda tmp: tar_bytes([("f", "file", b"1", 0o644), ("g", "file", b"2", 0o644), ("f", "file", b"3", 0o600)]),
    lambda tmp: tar_bytes([("d", "dir", None, 0o755), ("d/f", "file", b"1", 0o644), ("d", "symlink", "/etc", 0o777),
                           ("d/f", "file", b"2", 0o644)]),
    lambda tmp: tar_bytes([("plain", "file", b"x", 0o644), ("plain/inside", "file", b"x", 0o644)]),
    lambda tmp: _hostile_header(_BASE, 3, chksum=b"000000\0 "),                 # the archive ends there
    lambda tmp: _hostile_header(_BASE, 0, chksum=b"000000\0 "),                 # not a tar
    lambda tmp: _hostile_header(_BASE, 3, prefix=b"..\0"),                       # ../b
    lambda tmp: _hostile_header(_BASE, 3, prefix=b"/etc\0"),                     # /etc/b
    lambda tmp: _hostile_header(_BASE, 3, magic=b"ustar  \0", prefix=b"..\0"),   # GNU: not a prefix
    lambda tmp: _hostile_header(_BASE, 3, type=b"2", size=b"%011o\0" % 512),     # a link with data
    lambda tmp: _hostile_header(_BASE, 3, name=b"b\0/../../x"),
    lambda tmp: _hostile_header(_BASE, 0, size=b"%011o\0" % 4096),              # data beyond the end
    lambda tmp: _BASE[:512 + 300],                                               # cut in the data
    lambda tmp: _ustar(("d/first", b"f"), ("d/.hidden", b"h"), ("d/./dot", b"1"), ("d/x/../up", b"2"), (".top", b"3")),
    lambda tmp: _ustar(("d/f", b"1"), ("d/..", b"2")),
    lambda tmp: _ustar(("d/f", b"1"), ("d/../../escape", b"2")),
], ids=["busybox", "app", "rewritten", "ustar-prefix", "gnu-tar", "ustar-tar", "posix-tar", "dotted-tar", "replaced",
        "folder-replaced", "through-a-file", "bad-sum-later", "bad-sum-first", "prefix-traversal", "prefix-absolute",
        "gnu-prefix", "link-with-data", "nul-in-name", "size-past-end", "cut-in-data", "dot-parts",
        "dot-root", "dot-traversal"])
def test_entries_passed_on_as_they_came_make_what_the_general_path_makes(tmp_path, monkeypatch, make):
    """Plain entries go on to tar2sqfs as they came, unparsed past their header; the disk (or the refusal) is the
    one every entry read, applied and written again one by one makes."""
    raw = make(tmp_path)
    made = []
    for general in (False, True):
        if general:
            monkeypatch.setattr(ustar.Reader, "plain", lambda self: None)
        folder = tmp_path / ("general" if general else "plain")
        folder.mkdir()
        try:
            made.append(build(folder, raw).flat_path)
        except LayerError as exc:
            made.append(str(exc).replace(str(folder), ""))
    if made[0].startswith("/"):
        with open(made[0], "rb") as plain, open(made[1], "rb") as general:
            assert plain.read() == general.read()
    else:
        assert made[0] == made[1]


def test_plain_entries_are_not_written_again_one_by_one(tmp_path, monkeypatch):
    """A layer of plain files and links goes to tar2sqfs a buffer at a time: only its folders are written
    again (last, with their final attributes)."""
    written = []
    add = squash._Squasher.add

    def spy(self, info, data=None, header=None):
        written.append(info.name)
        return add(self, info, data, header)
    monkeypatch.setattr(squash._Squasher, "add", spy)
    disk = build(tmp_path, busybox_layer())
    assert sorted(written) == ["bin", "data", "etc", "tmp"]
    assert cat(disk.flat_path, "/etc/removed") == "gone in layer 2\n"
    assert listing(disk.flat_path, "/bin")["sh"].startswith("l")
