"""Layer tarballs as ext4 disks (appliance/layers.py): whiteouts, refusals, and the real image read
back with debugfs (e2fsprogs), no mount needed."""

import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile

import pytest

from ansible_collections.vic.containers.appliance import layers
from registry_harness import app_layer, busybox_layer, tar_bytes


def blob(tmp_path, raw, compress=True, name="blob"):
    path = tmp_path / name
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return str(path), "sha256:" + hashlib.sha256(raw).hexdigest()


def debugfs(disk, command):
    return subprocess.run(["debugfs", "-R", command, str(disk)], capture_output=True, text=True, check=True).stdout


def test_a_layer_becomes_an_ext4_disk_with_owners_modes_and_links(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, mode, uid in (("app", tarfile.DIRTYPE, 0o755, 0), ("tmp", tarfile.DIRTYPE, 0o1777, 0),
                                      ("app/su", tarfile.REGTYPE, 0o4755, 0), ("app/data", tarfile.REGTYPE, 0o640, 1000)):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid = kind, mode, uid, uid
            info.size = 5 if kind == tarfile.REGTYPE else 0
            if name == "app/data":
                info.pax_headers = {"SCHILY.xattr.trusted.vic-test": "yes"}
            tar.addfile(info, io.BytesIO(b"12345") if kind == tarfile.REGTYPE else None)
        link = tarfile.TarInfo("app/hard")
        link.type, link.linkname = tarfile.LNKTYPE, "app/data"
        tar.addfile(link)
    path, diff_id = blob(tmp_path, buffer.getvalue())
    work = tmp_path / "work"
    work.mkdir()
    disk = layers.build(path, diff_id, str(work))
    assert disk.id == diff_id.split(":")[1]
    assert disk.size == 10
    assert os.path.getsize(disk.flat_path) == disk.capacity_bytes and disk.capacity_bytes % (1024 * 1024) == 0
    assert not (work / "root").exists()
    assert "Mode:  01777" in debugfs(disk.flat_path, "stat /tmp")
    assert "Mode:  04755" in debugfs(disk.flat_path, "stat /app/su")
    data = debugfs(disk.flat_path, "stat /app/data")
    assert "User:  1000" in data and "Links: 2" in data
    assert "trusted.vic-test" in debugfs(disk.flat_path, "ea_list /app/data")
    assert "12345" in debugfs(disk.flat_path, "cat /app/hard")
    fsck = subprocess.run(["e2fsck", "-fn", disk.flat_path], capture_output=True, text=True, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_whiteouts_become_overlayfs_whiteouts(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    path, diff_id = blob(tmp_path, app_layer("motd\n"))
    stats = layers.extract(path, str(root), diff_id)
    removed = os.lstat(root / "etc" / "removed")
    assert stat.S_ISCHR(removed.st_mode) and removed.st_rdev == os.makedev(0, 0)
    assert os.getxattr(root / "data", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(root / "data")) == ["new"]
    assert not [n for n in os.listdir(root / "etc") if n.startswith(".wh.")]
    assert stats["size"] == len("motd\n") + len("new\n")


def test_a_busybox_layer_reads_back_with_debugfs(tmp_path):
    path, diff_id = blob(tmp_path, busybox_layer(), compress=False)
    disk = layers.build(path, diff_id, str(tmp_path))
    listing = debugfs(disk.flat_path, "ls -l /bin")
    assert "busybox" in listing and " sh" in listing
    assert "Fast link dest: \"/bin/busybox\"" in debugfs(disk.flat_path, "stat /bin/sh")
    descriptor = disk.descriptor()
    assert 'createType="vmfs"' in descriptor
    assert 'RW %d VMFS "%s-flat.vmdk"' % (disk.capacity_bytes // 512, disk.id) in descriptor


@pytest.mark.parametrize("entries, reason", [
    ([("../escape", "file", b"x", 0o644)], "outside the layer"),
    ([("a/../../escape", "file", b"x", 0o644)], "outside the layer"),
    ([("/etc/passwd", "file", b"x", 0o644)], "absolute path"),
    ([("evil", "symlink", "/etc", 0o777), ("evil/passwd", "file", b"x", 0o644)], "passes through the symbolic link"),
    ([("up", "symlink", "..", 0o777), ("up/escape", "file", b"x", 0o644)], "passes through the symbolic link"),
    ([("shadow", "symlink", "/etc/shadow", 0o777), ("copy", "link", "shadow", 0o644)], "hard link copy"),
    ([("copy", "link", "../outside", 0o644)], "outside the layer"),
    ([("copy", "link", "missing", 0o644)], "not a file of the layer"),
])
def test_entries_escaping_the_layer_are_refused(tmp_path, entries, reason):
    root = tmp_path / "root"
    root.mkdir()
    path, diff_id = blob(tmp_path, tar_bytes(entries))
    with pytest.raises(layers.LayerError, match=reason):
        layers.extract(path, str(root), diff_id)
    assert not (tmp_path / "escape").exists()


def test_a_later_entry_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("untouched")
    root = tmp_path / "root"
    root.mkdir()
    path, diff_id = blob(tmp_path, tar_bytes([("f", "symlink", str(outside), 0o777), ("f", "file", b"new", 0o644)]))
    layers.extract(path, str(root), diff_id)
    assert outside.read_text() == "untouched"
    assert not os.path.islink(root / "f") and (root / "f").read_bytes() == b"new"


def test_content_not_matching_the_diff_id_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    path = blob(tmp_path, app_layer("x\n"))[0]
    with pytest.raises(layers.LayerError, match="uncompressed content has digest"):
        layers.extract(path, str(root), "sha256:" + "0" * 64)


def test_zstd_and_garbage_layers_are_refused_clearly(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    zstd = tmp_path / "zstd"
    zstd.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 64)
    with pytest.raises(layers.LayerError, match="zstd-compressed; the VCH reads gzip-compressed and uncompressed"):
        layers.extract(str(zstd), str(root))
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x1f\x8b" + b"not gzip at all" * 10)
    with pytest.raises(layers.LayerError, match="cannot be unpacked"):
        layers.extract(str(garbage), str(root))
