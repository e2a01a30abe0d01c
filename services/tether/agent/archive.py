# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``archive@vic``: stat, get (a tar of a path) and put (a tar extracted under a directory) in the container;
export (a tar of its root filesystem) and changes (what it changed: ``changes.py``).

Each request runs in a forked child that has entered the container's root
(chroot) first, so every path and every symlink is resolved inside the
container, never on the tether's side, whatever the tar or the image holds.
The child reads the tar (put) on its stdin and writes the result line (and the
tar, for get) on its stdout, which the session relays.
"""

import os
import stat
import tarfile
import time

from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.services.tether.agent import changes, linux, rootfs

NOT_FOUND, INVALID, CONFLICT = protocol.ARCHIVE_NOT_FOUND, protocol.ARCHIVE_INVALID, protocol.ARCHIVE_CONFLICT


class ArchiveError(Exception):
    def __init__(self, message, kind):
        super().__init__(message)
        self.kind = kind


def _mtime(seconds):
    whole = int(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((seconds - whole) * 1e9):09d}Z"


def stat_path(path):
    """The path stat Docker's ``X-Docker-Container-Path-Stat`` carries (of a symlink itself, with its target)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise ArchiveError(f"Could not find the file {path} in container", NOT_FOUND) from None
    except NotADirectoryError:
        raise ArchiveError(f"Could not find the file {path} in container", NOT_FOUND) from None
    link = os.path.realpath(path) if stat.S_ISLNK(info.st_mode) else ""
    return protocol.path_stat(os.path.basename(path.rstrip("/")) or "/", info.st_size, protocol.go_file_mode(info.st_mode),
                              _mtime(info.st_mtime), link)


def _ok(path_stat):
    return protocol.archive_result(stat=path_stat)


def _failed(exc):
    return protocol.archive_result(error=exc, kind=exc.kind)


def _conflicts(member, target):
    """Docker's noOverwriteDirNonDir: a directory may not replace a non-directory, nor the reverse."""
    try:
        existing = os.lstat(target)
    except OSError:
        return False
    return stat.S_ISDIR(existing.st_mode) != member.isdir()


def put(path, source, no_overwrite_dir_non_dir):
    """Extract the tar stream ``source`` under the existing directory ``path``."""
    try:
        if not stat.S_ISDIR(os.stat(path).st_mode):
            raise ArchiveError(f"extraction point is not a directory: {path}", INVALID)
    except (FileNotFoundError, NotADirectoryError):
        raise ArchiveError(f"Could not find the file {path} in container", NOT_FOUND) from None
    with tarfile.open(fileobj=source, mode="r|") as tar:
        # Inside the container's root every member is trusted as Docker trusts it (owners, modes, links).
        tar.extraction_filter = getattr(tarfile, "fully_trusted_filter", None)
        for member in tar:
            target = os.path.join(path, member.name)
            if no_overwrite_dir_non_dir and _conflicts(member, target):
                raise ArchiveError(f"cannot overwrite {'non-directory' if member.isdir() else 'directory'} "
                                   f"{target} with {'directory' if member.isdir() else 'non-directory'}", CONFLICT)
            tar.extract(member, path, set_attrs=True)
    # On the disk before the answer: a stopped container's maintenance boot is powered off right after.
    linux.syncfs(path)


def _serve(request, stdin, stdout):
    op, path = request["op"], request["path"]
    try:
        if op == protocol.ARCHIVE_PUT:
            put(path, stdin, request["no_overwrite_dir_non_dir"])
        result = stat_path(path)
    except ArchiveError as exc:
        stdout.write(_failed(exc))
        return
    except (OSError, tarfile.TarError) as exc:
        stdout.write(_failed(ArchiveError(f"{op} {path}: {exc}", INVALID)))
        return
    stdout.write(_ok(result))
    if op in (protocol.ARCHIVE_GET, protocol.ARCHIVE_EXPORT):
        stdout.flush()
        with tarfile.open(fileobj=stdout, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            if op == protocol.ARCHIVE_GET:
                _add_tree(tar, os.path.normpath(path), os.path.basename(path.rstrip("/")) or ".")
            else:
                _add_filesystem(tar, "/", os.lstat("/").st_dev)


# The tether's own mounts in the container: their contents are the kernel's, not the container's files
# (Docker archives the root filesystem where nothing is mounted on them).
_PSEUDO = frozenset(("/proc", "/sys", "/dev"))


def _add_tree(tar, path, arcname):
    """``tar.add`` of a tree, symlinks kept as links, the pseudo filesystems' directories kept empty."""
    tar.add(path, arcname=arcname, recursive=False)
    if path in _PSEUDO or os.path.islink(path) or not os.path.isdir(path):
        return
    for name in sorted(os.listdir(path)):
        _add_tree(tar, os.path.join(path, name), f"{arcname}/{name}")


def _add_filesystem(tar, directory, device):
    """``docker export``: the entries under ``directory`` (named as dockerd names them, without "./"),
    not descending into what is mounted there (volumes, /proc, /sys, /dev: their mount points stay, empty)."""
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        tar.add(path, arcname=path.lstrip("/"), recursive=False)
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode) and info.st_dev == device:
            _add_filesystem(tar, path, device)


def _serve_changes(layout, stdout):
    """``docker diff``: the result line, then the changes (read outside the container's root: its overlay's
    upper and lower dirs are the tether's mounts, walked without following a link)."""
    try:
        found = changes.changes(layout.upper, layout.lowers())
    except OSError as exc:
        stdout.write(_failed(ArchiveError(f"changes: {exc}", INVALID)))
        return
    stdout.write(_ok({}))
    stdout.write(protocol.encode_changes(found))


def start(root, request, reaper, on_exit):
    """Fork the child that serves ``request`` in ``root``; ``(pid, stdin fd, stdout fd)`` for the session."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.dup2(in_r, 0)
            os.dup2(out_w, 1)
            os.closerange(3, 65536)
            if request["op"] == protocol.ARCHIVE_CHANGES:
                with os.fdopen(1, "wb") as stdout:
                    _serve_changes(rootfs.ContainerRoot.around(root), stdout)
            else:
                os.chroot(root)
                os.chdir("/")
                with os.fdopen(0, "rb") as stdin, os.fdopen(1, "wb") as stdout:
                    _serve(request, stdin, stdout)
            code = 0
        finally:
            os._exit(code)  # pylint: disable=protected-access
    os.close(in_r)
    os.close(out_w)
    reaper.watch(pid, on_exit)
    return pid, in_w, out_r
