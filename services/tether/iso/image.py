# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ISO file: made with xorriso and ISOLINUX, its version read back, its initramfs unpacked.

The version is in the volume descriptors' application identifier
(``vic.containers-tether <version>``) and in ``/VERSION``; ``iso_version``
reads the descriptor with the standard library only, so ``vic_vch`` can decide
whether to upload without mounting anything.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

APPLICATION = "vic.containers-tether"
VOLUME = "VIC_TETHER"
INITRAMFS = "boot/initrd.zst"
KERNEL = "boot/vmlinuz"

_SECTOR = 2048
_DESCRIPTORS = 16 * _SECTOR  # 0x8000: the volume descriptor set starts at sector 16
_APPLICATION_ID = slice(574, 702)
_ESCAPES = slice(88, 91)
_JOLIET = (b"%/@", b"%/C", b"%/E")  # UCS-2 levels 1, 2 and 3
_SUPPLEMENTARY, _TERMINATOR = 2, 255
_MAX_DESCRIPTORS = 32


class ImageError(Exception):
    """Not a tether ISO, or it cannot be read or unpacked."""


def isolinux_config(command_line):
    """ISOLINUX's configuration: boot the kernel and initramfs at once, with `command_line`."""
    return (f"DEFAULT tether\nPROMPT 0\nTIMEOUT 0\nLABEL tether\n  KERNEL /{KERNEL}\n"
            f"  INITRD /{INITRAMFS}\n  APPEND {command_line}\n")


def make_iso(root, output, version, epoch, isohybrid_mbr):
    """Write the ISO of directory `root` (which holds isolinux/) to `output`, dated `epoch` throughout."""
    for path in [Path(root), *Path(root).rglob("*")]:
        os.utime(path, (epoch, epoch), follow_symlinks=False)
    stamp = _iso_date(epoch)
    # xorriso reads SOURCE_DATE_EPOCH too: it then fixes the volume dates and the UUID it derives from them.
    environment = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", str(output), "-V", VOLUME,
                    "-A", f"{APPLICATION} {version}", "-J", "-R", "--modification-date=" + stamp,
                    "-isohybrid-mbr", str(isohybrid_mbr), "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
                    "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", str(root)],
                   check=True, env=environment, capture_output=True)


def _iso_date(epoch):
    return time.strftime("%Y%m%d%H%M%S00", time.gmtime(epoch))


def iso_version(path):
    """The tether version an ISO file carries; ImageError if it carries none.

    Read from the Joliet volume descriptor's application identifier (UCS-2): the
    primary descriptor's copy is upper-cased, as ISO 9660 wants its a-characters.
    """
    with open(path, "rb") as iso:
        iso.seek(_DESCRIPTORS)
        for _ in range(_MAX_DESCRIPTORS):
            descriptor = iso.read(_SECTOR)
            if len(descriptor) < _SECTOR or descriptor[1:6] != b"CD001" or descriptor[0] == _TERMINATOR:
                break
            if descriptor[0] == _SUPPLEMENTARY and descriptor[_ESCAPES] in _JOLIET:
                return _version(path, descriptor[_APPLICATION_ID].decode("utf-16-be", "replace").strip())
    raise ImageError(f"{path} is not a tether ISO (no Joliet volume descriptor)")


def _version(path, application):
    name, _, version = application.partition(" ")
    if name != APPLICATION or not version:
        raise ImageError(f"{path} is not a tether ISO (application id {application!r})")
    return version


def unpack(iso_path, cache):
    """The initramfs tree of a tether ISO, unpacked under `cache` once per ISO content; its path.

    The host emulator runs the tether chrooted in this tree. Needs root (device
    nodes, owners). Idempotent, and safe when processes unpack the same ISO at
    once: each unpacks into its own temporary directory and renames it into
    place; the loser of the race removes its copy.
    """
    cache = Path(cache)
    tree = cache / content_id(iso_path)
    if tree.is_dir():
        return tree
    cache.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".unpack-", dir=cache))
    try:
        initramfs = scratch / "initrd.zst"
        # stdio: lets xorriso read any file (it refuses paths under /dev otherwise; vcsim keeps datastores in /dev/shm).
        subprocess.run(["xorriso", "-osirrox", "on", "-indev", f"stdio:{Path(iso_path).resolve()}", "-extract", "/" + INITRAMFS,
                        str(initramfs)], check=True, capture_output=True)
        root = scratch / "root"
        root.mkdir()
        with subprocess.Popen(["zstd", "-d", "-c", "-q", str(initramfs)], stdout=subprocess.PIPE) as zstd:
            cpio = subprocess.run(["cpio", "-i", "-d", "-m", "-u", "--quiet", "--no-absolute-filenames"],
                                  stdin=zstd.stdout, cwd=root, check=False, capture_output=True)
            zstd.stdout.close()
        if zstd.returncode != 0 or cpio.returncode != 0:
            raise ImageError(f"cannot unpack the initramfs of {iso_path}: {cpio.stderr.decode().strip()}")
        root.chmod(0o755)
        try:
            root.rename(tree)
        except OSError:
            if not tree.is_dir():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return tree


def content_id(iso_path):
    """A short hash of the ISO file's bytes: what the unpacked tree is cached by."""
    digest = hashlib.sha256()
    with open(iso_path, "rb") as iso:
        for block in iter(lambda: iso.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
