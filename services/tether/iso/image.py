# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ISO file: made with xorriso and ISOLINUX, its version read back, its initramfs unpacked.

The version is in the volume descriptors' application identifier
(``plugins/module_utils/vch/tether_iso.py`` writes and reads the stamp: ``vic_vch``
decides with it whether to upload) and in ``/VERSION``.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ansible_collections.vic.containers.plugins.module_utils.vch import tether_iso

VOLUME = "VIC_TETHER"
INITRAMFS = "boot/initrd.zst"
KERNEL = "boot/vmlinuz"


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
                    "-A", tether_iso.stamp(version), "-J", "-R", "--modification-date=" + stamp,
                    "-isohybrid-mbr", str(isohybrid_mbr), "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
                    "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", str(root)],
                   check=True, env=environment, capture_output=True)


def _iso_date(epoch):
    return time.strftime("%Y%m%d%H%M%S00", time.gmtime(epoch))


def iso_version(path):
    """The tether version an ISO file carries (``vic_vch``'s reader, the one copy); ImageError if none."""
    try:
        return tether_iso.read_version(path)
    except ValueError as exc:
        raise ImageError(str(exc)) from None


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
