# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A container's disks: found by SCSI target in a VM, or disk files on loop devices (emulator, tests);
volumes formatted when blank, the template disk formatted on request; mounted, and every mount remembered so it can be undone in reverse."""

import errno
import fcntl
import glob
import os
import random
import shutil
import struct
import subprocess
import time

from ansible_collections.vic.containers.services.tether.agent import linux

_LOOP_CTL_GET_FREE, _LOOP_SET_FD, _LOOP_CLR_FD, _LOOP_SET_STATUS64 = 0x4C82, 0x4C00, 0x4C01, 0x4C04
_LO_FLAGS_AUTOCLEAR = 4
_LOOP_INFO64 = struct.Struct("=QQQQQIIII64s64s32s2Q")  # struct loop_info64
_EXT_MAGIC_OFFSET, _EXT_MAGIC = 1080, b"\x53\xef"
_SQUASHFS_MAGIC = b"hsqs"
_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LOOP_WAIT = 10.0        # seconds to find a loop device no one else binds first
SCSI_WAIT = 10.0        # seconds for the VM's disks to appear after vmw_pvscsi is loaded


class DiskError(Exception):
    """A disk that is missing or cannot be used; the sentence names it."""


def attach_loop(path, read_only):
    """Attach a disk file to a free loop device that frees itself when its last user (the mount) goes.

    Returns ``(device path, open descriptor)``: keep the descriptor until the device is mounted, or
    the device clears at once. A read-only file descriptor makes a read-only device."""
    mode = (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC
    backing = os.open(path, mode)
    try:
        with open("/dev/loop-control", "rb", buffering=0) as control:
            loop_fd, number = _bind_free_loop(control, backing, mode, path)
    finally:
        os.close(backing)
    name = os.fsencode(os.path.abspath(path))[:63]
    info = _LOOP_INFO64.pack(0, 0, 0, 0, 0, number, 0, 0, _LO_FLAGS_AUTOCLEAR, name, b"", b"", 0, 0)
    try:
        fcntl.ioctl(loop_fd, _LOOP_SET_STATUS64, info)
    except OSError:
        fcntl.ioctl(loop_fd, _LOOP_CLR_FD)
        os.close(loop_fd)
        raise
    return f"/dev/loop{number}", loop_fd


def _bind_free_loop(control, backing, mode, path):
    """``(open loop device bound to backing, its number)``.

    The kernel names the same free device to everyone who asks until one binds it; the others get EBUSY.
    In the host emulator every VM's tether takes devices from the host's one set (a storm: ten VMs, several
    disks each, devices freed all the time): a lock on /dev/loop-control (one inode for every mount
    namespace) queues the tethers, and EBUSY from any other user of loop devices is asked again until a
    deadline, not a count, runs out. In a VM the tether is alone and takes the first device it is named."""
    deadline = time.monotonic() + LOOP_WAIT
    while True:
        fcntl.flock(control, fcntl.LOCK_EX)
        try:
            number = fcntl.ioctl(control, _LOOP_CTL_GET_FREE)
            loop_fd = os.open(f"/dev/loop{number}", mode)
            try:
                fcntl.ioctl(loop_fd, _LOOP_SET_FD, backing)
                return loop_fd, number
            except OSError as exc:
                os.close(loop_fd)
                if exc.errno != errno.EBUSY:
                    raise
        finally:
            fcntl.flock(control, fcntl.LOCK_UN)
        if time.monotonic() > deadline:
            raise DiskError(f"no free loop device for {path} in {LOOP_WAIT:.0f} s (each one named free was taken first)")
        time.sleep(random.uniform(0.001, 0.01))     # someone outside the lock: let it finish


def scsi_disks(sysfs="/sys/class/scsi_disk"):
    """{SCSI target: /dev/sdX} of the VM's disks (on bus 0, LUN 0); names are not stable across boots."""
    found = {}
    for entry in glob.glob(os.path.join(sysfs, "*:0:*:0")):
        target = int(os.path.basename(entry).split(":")[2])
        block = os.path.join(entry, "device", "block")
        blocks = os.listdir(block) if os.path.isdir(block) else []
        if blocks:
            found[target] = "/dev/" + blocks[0]
    return found


def wait_for_units(units, timeout=SCSI_WAIT):
    """{unit: /dev/sdX} for every unit, waiting for the kernel's SCSI scan; DiskError naming what is missing."""
    deadline = time.monotonic() + timeout
    while True:
        found = scsi_disks()
        missing = [unit for unit in units if unit not in found]
        if not missing:
            return {unit: found[unit] for unit in units}
        if time.monotonic() > deadline:
            raise DiskError(f"no disk on SCSI unit(s) {', '.join(map(str, missing))} after {timeout:g}s")
        time.sleep(0.05)


def filesystem(path):
    """"ext4", "squashfs" or None (blank: zeros, or too short) of a disk or disk file."""
    with open(path, "rb") as disk:
        head = disk.read(_EXT_MAGIC_OFFSET + 2)
    if head[:4] == _SQUASHFS_MAGIC:
        return "squashfs"
    if head[_EXT_MAGIC_OFFSET:_EXT_MAGIC_OFFSET + 2] == _EXT_MAGIC:
        return "ext4"
    return None


# The template's inode tables are zeroed when it is made (once per VCH), not by the kernel's lazy init at
# each container's first mount, which would write them into every container's own disk.
TEMPLATE_OPTIONS = ("-E", "lazy_itable_init=0")


def format_if_blank(path):
    """Make an ext4 filesystem on a blank disk (a volume's first use); True if it did."""
    if filesystem(path) is not None:
        return False
    make_ext4(path)
    return True


def require_ext4(path, unit):
    """The container's read-write disk is a child of the endpoint's formatted template: a blank one means
    the disk was made wrong, which formatting here would hide (and cost seconds under emulation)."""
    if filesystem(path) != "ext4":
        raise DiskError(f"the container's read-write disk (SCSI unit {unit}) has no ext4 filesystem: it should be a "
                        "child of the VCH's formatted template disk, and the boot spec does not ask to format it")


def make_ext4(path, options=()):
    """mke2fs on ``path`` (a disk or disk file), whatever it holds; DiskError saying why it failed."""
    # PID 1 of a VM gets no PATH from the kernel: look where Debian puts e2fsprogs as well.
    mke2fs = shutil.which("mke2fs", path=os.pathsep.join(filter(None, (os.environ.get("PATH"), _SBIN_PATH))))
    if mke2fs is None:
        raise DiskError(f"cannot format {path}: mke2fs not found")
    result = subprocess.run([mke2fs, "-q", "-F", "-t", "ext4", *options, path], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise DiskError(f"cannot format {path}: {result.stderr.strip() or 'mke2fs failed'}")


class Mounts:
    """The mounts the tether made, undone last first."""

    def __init__(self):
        self._targets = []

    def mount(self, source, target, fstype, flags=0, data=None):
        os.makedirs(target, exist_ok=True)
        linux.mount(source, target, fstype, flags, data)
        self._targets.append(target)

    def unmount_all(self):
        """Unmount everything (detaching what is still busy); the loop devices then clear themselves."""
        while self._targets:
            target = self._targets.pop()
            try:
                linux.umount(target)
            except OSError:
                try:
                    linux.umount(target, linux.MNT_DETACH)
                except OSError:
                    pass    # already gone with a parent's detach


class Disks:
    """Where each SCSI unit's disk is: a VM's /dev/sdX, or a loop device over a ``--disk`` file."""

    def __init__(self, files):
        self._files = dict(files)       # unit -> disk file, when not in a VM
        self._found = {}

    def locate(self, units):
        """Find the VM's disks for ``units`` (no-op with disk files)."""
        if not self._files:
            self._found = wait_for_units(units)

    def source(self, unit):
        path = self._files.get(unit) or self._found.get(unit)
        if path is None:
            raise DiskError(f"no disk for SCSI unit {unit}")
        return path

    def mount(self, mounts, unit, target, fstype, read_only, data=None):
        """Mount unit's disk on target (a disk file through a loop device that clears itself)."""
        path = self.source(unit)
        flags = linux.MS_RDONLY if read_only else 0
        if unit not in self._files:
            mounts.mount(path, target, fstype, flags, data)
            return
        device, loop_fd = attach_loop(path, read_only)
        try:
            mounts.mount(device, target, fstype, flags, data)
        finally:
            os.close(loop_fd)    # the mount holds the device now; on its unmount, AUTOCLEAR frees it
