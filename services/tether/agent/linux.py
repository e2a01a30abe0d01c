# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The few Linux system calls the standard library lacks, through ctypes: mount, umount2,
finit_module/init_module and reboot. The ISO has no util-linux or kmod: the tether is its own."""

import ctypes
import os

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 1 << 18
MS_SYNCHRONOUS, MS_REMOUNT, MS_NOATIME, MS_NODIRATIME = 0x10, 0x20, 0x400, 0x800
MS_RELATIME, MS_STRICTATIME = 1 << 21, 1 << 24
MNT_DETACH = 2
RB_POWER_OFF = 0x4321FEDC
MODULE_INIT_COMPRESSED_FILE = 4
_SYS_INIT_MODULE, _SYS_FINIT_MODULE = 175, 313      # x86_64, the only architecture of the ISO

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.reboot.argtypes = [ctypes.c_int]
_libc.syscall.restype = ctypes.c_long


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _bytes(value):
    return os.fsencode(value) if value is not None else None


def mount(source, target, fstype, flags=0, data=None):
    """mount(2); OSError naming the target."""
    _check(_libc.mount(_bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data)),
           f"mount {fstype or source} on {target}")


def umount(target, flags=0):
    """umount2(2)."""
    _check(_libc.umount2(_bytes(target), flags), f"umount {target}")


def load_module(path, params=""):
    """Load a kernel module file: finit_module, asking the kernel to decompress a compressed one;
    init_module of the decompressed bytes when the kernel cannot (an .xz module, lzma is in the stdlib)."""
    compressed = path.endswith((".xz", ".zst", ".gz"))
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        result = _libc.syscall(_SYS_FINIT_MODULE, fd, _bytes(params), MODULE_INIT_COMPRESSED_FILE if compressed else 0)
    finally:
        os.close(fd)
    if result == 0 or ctypes.get_errno() == 17:     # EEXIST: already loaded (or built in)
        return
    if not path.endswith(".xz"):
        _check(result, f"load module {path}")
    import lzma  # pylint: disable=import-outside-toplevel  # only for a kernel without in-kernel decompression
    with lzma.open(path) as module:
        image = module.read()
    result = _libc.syscall(_SYS_INIT_MODULE, image, ctypes.c_ulong(len(image)), _bytes(params))
    if result != 0 and ctypes.get_errno() != 17:
        _check(result, f"load module {path}")


def power_off():
    """Flush the disks and power the VM off (PID 1 only)."""
    os.sync()
    _check(_libc.reboot(RB_POWER_OFF), "power off")


def syncfs(path):
    """Write the filesystem holding ``path`` to its disk (syncfs(2)): a maintenance boot's VM is powered off,
    not shut down, right after its last request, and what a ``docker cp`` put in must be on the disk by then."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.syncfs(fd), f"syncfs {path}")
    finally:
        os.close(fd)
