# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A reproducible initramfs archive: the kernel's "newc" cpio format, written here.

GNU cpio copies inode and device numbers from the build machine; this writer
numbers inodes in order and fixes owners (root) and times, so the same tree
gives the same bytes. Device nodes are written as entries: making them on the
build machine (mknod) is not needed.
"""

import os
import stat
from pathlib import Path

_TRAILER = "TRAILER!!!"


class Entry:
    """One archive member: its path (no leading /), mode (type and permissions), content, device."""

    def __init__(self, name, mode, data=b"", rdev=(0, 0)):
        self.name = name
        self.mode = mode
        self.data = data
        self.rdev = rdev


def tree_entries(root):
    """Entries for every directory, file and symlink under `root`, parents first, in sorted order.

    Permissions are normalised (0755 for directories and executables, 0644 for
    other files) so the build machine's umask cannot change the archive.
    """
    root = Path(root)
    paths = sorted(str(path.relative_to(root)) for path in root.rglob("*"))
    entries = []
    for name in paths:
        path = root / name
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            entries.append(Entry(name, stat.S_IFLNK | 0o777, os.readlink(path).encode()))
        elif stat.S_ISDIR(info.st_mode):
            entries.append(Entry(name, stat.S_IFDIR | 0o755))
        elif stat.S_ISREG(info.st_mode):
            permissions = 0o755 if info.st_mode & 0o111 else 0o644
            entries.append(Entry(name, stat.S_IFREG | permissions, path.read_bytes()))
        else:
            raise ValueError(f"{path}: only directories, files and symlinks go into the initramfs")
    return entries


def device(name, major, minor):
    """A character device entry (0600, root's)."""
    return Entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))


def archive(entries, mtime):
    """The newc archive of `entries` (written in the order given), every time set to `mtime`."""
    chunks = []
    for number, entry in enumerate(list(entries) + [Entry(_TRAILER, 0)], start=1):
        name = entry.name.encode() + b"\0"
        links = 2 if stat.S_ISDIR(entry.mode) else 1
        fields = (number if entry.name != _TRAILER else 0, entry.mode, 0, 0, links,
                  mtime if entry.name != _TRAILER else 0, len(entry.data), 0, 0,
                  entry.rdev[0], entry.rdev[1], len(name), 0)
        header = b"070701" + b"".join(b"%08X" % field for field in fields)
        chunks += [header, name, _padding(len(header) + len(name)), entry.data, _padding(len(entry.data))]
    return b"".join(chunks)


def _padding(length):
    return b"\0" * (-length % 4)
