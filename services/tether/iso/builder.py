# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the tether ISO: Debian packages -> initramfs tree -> cpio + zstd -> ISOLINUX ISO.

Reproducible: every date is SOURCE_DATE_EPOCH, taken from the packages (their
newest file), the archive is sorted with fixed owners and inode
numbers, and xorriso is given fixed dates. The version is the collection's
plus a short hash of what boots (initramfs, kernel, boot configuration).

A finished ISO is kept under the cache directory by a key over its inputs
(package versions, the tether package's files, the collection version): a
rebuild with nothing changed copies it.
"""

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import contents, cpio, debs, image, stage

REPOSITORY = Path(__file__).resolve().parents[3]
TETHER_SOURCE = REPOSITORY / "services" / "tether"
DEFAULT_CACHE = REPOSITORY / ".build" / "tether"
_FORMAT = "1"  # bump when the build itself changes what it makes from the same inputs


class Built:
    """The result of a build: the ISO's path, version and size, and whether the cache served it."""

    def __init__(self, path, version, cached):
        self.path = Path(path)
        self.version = version
        self.size = self.path.stat().st_size
        self.cached = cached


def collection_version(repository=REPOSITORY):
    """The collection version, read from plugins/module_utils/_version.py's text (services never import plugins/)."""
    text = (Path(repository) / "plugins" / "module_utils" / "_version.py").read_text()
    return re.search(r'^VERSION = "([^"]+)"', text, re.MULTILINE).group(1)


def build(output, cache=DEFAULT_CACHE, tether_source=TETHER_SOURCE):
    """Build the tether ISO into `output` (or copy it from the cache); return a Built."""
    cache, output = Path(cache), Path(output)
    versions = debs.pinned(contents.PACKAGES + contents.TOOL_PACKAGES + contents.BOOT_PACKAGES,
                           contents.KERNEL_METAPACKAGE)
    kernel_package = next(package for package in versions if package.startswith("linux-image-"))
    kept = cache / "iso" / f"{_inputs_key(versions, Path(tether_source))}.iso"
    cached = kept.exists()
    if not cached:
        kept.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as work:
            _build(Path(work), versions, kernel_package, Path(tether_source), cache / "debs", kept)
        for stale in kept.parent.glob("*.iso"):  # ISOs of earlier inputs: only the newest is worth keeping
            if stale != kept:
                stale.unlink(missing_ok=True)
    _copy_atomically(kept, output)
    return Built(output, image.iso_version(output), cached)


def _build(work, versions, kernel_package, tether_source, debs_cache, kept):
    packages, tools, boot = work / "packages", work / "tools", work / "boot"
    for package, version in versions.items():
        target = boot if package in contents.BOOT_PACKAGES else tools if package in contents.TOOL_PACKAGES else packages
        debs.unpack(debs.fetch(package, version, debs_cache), target)
    epoch = max(_newest(packages), _newest(tools), _newest(boot))
    kernel = stage.stage(packages, tether_source, kernel_package.removeprefix("linux-image-"), work / "tree",
                         tools=tools)
    config = image.isolinux_config(contents.KERNEL_COMMAND_LINE)
    entries = cpio.tree_entries(work / "tree") + [cpio.device(*node) for node in contents.DEVICES]
    entries.sort(key=lambda entry: entry.name)
    digest = hashlib.sha256(cpio.archive(entries, epoch) + kernel.read_bytes() + config.encode())
    version = f"{collection_version()}+{digest.hexdigest()[:12]}"
    version_entry = cpio.Entry("VERSION", 0o100644, f"{version}\n".encode())
    initramfs = _zstd(cpio.archive(entries + [version_entry], epoch))
    root = work / "iso"
    for source, target in ((boot / contents.ISOLINUX_BIN, "isolinux/isolinux.bin"),
                           (boot / contents.LDLINUX, "isolinux/ldlinux.c32"), (kernel, image.KERNEL)):
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / target)
    (root / "isolinux" / "isolinux.cfg").write_text(config)
    (root / image.INITRAMFS).write_bytes(initramfs)
    (root / "VERSION").write_text(f"{version}\n")
    partial = kept.with_name(f".{kept.stem}.{os.getpid()}.partial")  # two builds at once each write their own
    image.make_iso(root, partial, version, epoch, boot / contents.ISOHYBRID_MBR)
    os.replace(partial, kept)


def _inputs_key(versions, tether_source):
    digest = hashlib.sha256(f"{_FORMAT} {collection_version()} {contents.KERNEL_COMMAND_LINE}\n".encode())
    digest.update("".join(f"{package}={version}\n" for package, version in versions.items()).encode())
    # The tether package as the ISO carries it, and this builder (which lives inside it).
    for path in sorted(tether_source.rglob("*.py")):
        digest.update(f"{path.relative_to(tether_source)}\n".encode() + path.read_bytes())
    return digest.hexdigest()[:24]


def _newest(root):
    # Files only: a directory two packages share is dated by the second unpack, i.e. today.
    return max(int(path.lstat().st_mtime) for path in Path(root).rglob("*") if path.is_file() and not path.is_symlink())


def _zstd(data):
    # One thread: the frame layout then does not depend on the machine's cores.
    return subprocess.run(["zstd", "-19", "-T1", "-q", "-c"], input=data, capture_output=True, check=True).stdout


def _copy_atomically(source, target):
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)
