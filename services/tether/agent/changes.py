# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``docker diff``: what the container changed, read from its overlay's upper dir as dockerd's overlay
driver reads it (moby's ``archive.OverlayChanges``).

Every path in the upper dir is a change: deleted when it is a whiteout (a 0/0 character device) or an
opaque directory, modified when a lower layer has it, added otherwise; the parent of an added or
deleted path is modified too. What dockerd keeps in its init layer, never in a container's changes,
the tether writes into the upper dir before the process starts: /etc/hostname, /etc/hosts,
/etc/resolv.conf and the mount points of /proc, /sys and /dev. They are left out, and so is a
directory (such as /etc) that is only in the upper dir because of them.
"""

import os
import stat

MODIFIED, ADDED, DELETED = 0, 1, 2     # Docker's ``Kind`` numbers

# Paths the tether makes in every container (with whatever is under them): dockerd's init layer.
INIT_PATHS = frozenset(("/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/proc", "/sys", "/dev"))
# Their parents, which dockerd's init layer has too, so a container changes them only through other entries.
_INIT_PARENTS = frozenset(os.path.dirname(path) for path in INIT_PATHS) - {"/"}
_OPAQUE = "trusted.overlay.opaque"


def changes(upper, lowers):
    """``[{"Path", "Kind"}]`` of the upper dir ``upper`` over the lower dirs ``lowers`` (top first), in
    the walk order dockerd gives (lexical, a directory before what is in it)."""
    found = []
    _walk(upper, lowers, "/", found, set())
    return [{"Path": path, "Kind": kind} for path, kind in found]


def _walk(upper, lowers, directory, found, changed_dirs):
    with os.scandir(os.path.join(upper, directory.lstrip("/"))) as entries:
        names = sorted(entry.name for entry in entries)
    for name in names:
        path = os.path.join(directory, name)
        if path in INIT_PATHS:
            continue
        info = os.lstat(os.path.join(upper, path.lstrip("/")))
        is_dir = stat.S_ISDIR(info.st_mode)
        kind = DELETED if _deleted(upper, path, info) else _added_or_modified(lowers, path, info)
        at = len(found)
        if kind is not None:
            found.append((path, kind))
        if is_dir:
            changed_dirs.add(path)
            _walk(upper, lowers, path, found, changed_dirs)
            if kind is None and len(found) > at:
                # A directory the same as below (or in the init layer) holds changes: it is modified too.
                found.insert(at, (path, MODIFIED))
        if kind in (ADDED, DELETED) and directory != "/" and directory not in changed_dirs:
            found.append((directory, MODIFIED))
            changed_dirs.add(directory)


def _deleted(upper, path, info):
    if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
        return True
    if stat.S_ISDIR(info.st_mode):
        try:
            return os.getxattr(os.path.join(upper, path.lstrip("/")), _OPAQUE, follow_symlinks=False) == b"y"
        except OSError:
            return False
    return False


def _added_or_modified(lowers, path, info):
    """ADDED, MODIFIED, or None for a directory that only holds changes (judged after its entries)."""
    for lower in lowers:
        try:
            below = os.lstat(os.path.join(lower, path.lstrip("/")))
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISDIR(below.st_mode) and stat.S_ISDIR(info.st_mode):
            # dockerd: a directory is changed by its mode only (its size and time follow its entries).
            return None if below.st_mode == info.st_mode else MODIFIED
        return MODIFIED
    if path in _INIT_PARENTS and stat.S_ISDIR(info.st_mode):
        return None
    return ADDED
