# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The filesystems: the VM's own (PID 1's duty) and the container's root, assembled from its disks.

Layers (SquashFS, read-only, base first) under an overlay whose upper and work
dirs are on the container's read-write disk; volumes at their destinations;
/proc, /sys, /dev, /dev/pts, /dev/shm inside; the container's /etc/hostname,
/etc/hosts and /etc/resolv.conf written from the boot spec.
"""

import os

from ansible_collections.vic.containers.services.tether.agent import disks, linux

_NOSUID_NODEV_NOEXEC = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC


def system_mounts(mounts, vm):
    """PID 1's filesystems. In a VM also /tmp; in a namespace (emulator, tests) /tmp stays the host's,
    where the descriptors and sockets handed in may live. The mount namespace is made private first, so
    nothing here reaches the host's."""
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    mounts.mount("proc", "/proc", "proc", _NOSUID_NODEV_NOEXEC)
    _fresh_or_bound(mounts, "sysfs", "/sys", "sysfs", _NOSUID_NODEV_NOEXEC, bind_from=None)
    _fresh_or_bound(mounts, "devtmpfs", "/dev", "devtmpfs", linux.MS_NOSUID, bind_from=None)
    # /dev/ptmx opens the devpts instance mounted at the "pts" beside it (Linux >= 4.7): this new one.
    # (devtmpfs is one filesystem shared with the host's /dev: nothing in it is changed.)
    mounts.mount("devpts", "/dev/pts", "devpts", linux.MS_NOSUID | linux.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
    mounts.mount("shm", "/dev/shm", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=1777")
    if vm:
        mounts.mount("tmpfs", "/tmp", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=1777")


def _fresh_or_bound(mounts, source, target, fstype, flags, bind_from):
    """A new mount of a filesystem. In a namespace (emulator, tests) sysfs and devtmpfs may refuse one
    (EBUSY: "already mounted"): then the one already there serves, bound from ``bind_from`` if given."""
    try:
        mounts.mount(source, target, fstype, flags)
    except OSError as exc:
        if exc.errno != 16:
            raise
        if bind_from is not None:
            mounts.mount(bind_from, target, None, linux.MS_BIND | linux.MS_REC)


class ContainerRoot:
    """The paths the tether uses under ``--root``: layer and disk mount points, the container root."""

    def __init__(self, base):
        self.base = base
        self.state = os.path.join(base, ".tether")
        self.path = os.path.join(base, "container")

    def layer(self, index):
        return os.path.join(self.state, "layers", str(index))

    @property
    def rw(self):
        return os.path.join(self.state, "rw")

    def resolve(self, path):
        """Where container path ``path`` really is under the root, symlinks resolved as the container sees
        them (an absolute link starts again at the root; ``..`` stops at it), missing directories created:
        an image cannot send a mount or a file the tether makes outside its root."""
        return resolve_inside(self.path, path)


def resolve_inside(root, path, max_links=40):
    """See ``ContainerRoot.resolve``."""
    current, parts, links = root, _parts(path), 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = current if current == root else os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        if os.path.islink(candidate):
            links += 1
            if links > max_links:
                raise OSError(40, f"too many levels of symbolic links: {path}")
            target = os.readlink(candidate)
            current = root if target.startswith("/") else current
            parts = _parts(target) + parts
            continue
        if not os.path.lexists(candidate):
            os.mkdir(candidate, 0o755)
        current = candidate
    return current


def _parts(path):
    return [part for part in path.split("/") if part and part != "."]


def assemble(spec, root, disk_set, mounts):
    """Mount the container's root and volumes, its /proc, /sys and /dev; write its /etc files."""
    units = list(spec["layers"]) + [spec["rw"]] + [m["unit"] for m in spec["mounts"]]
    disk_set.locate(units)
    lowers = []
    for index, unit in enumerate(spec["layers"]):
        disk_set.mount(mounts, unit, root.layer(index), "squashfs", read_only=True)
        lowers.insert(0, root.layer(index))     # overlay's lowerdir lists the top layer first
    if spec["rw_format"]:
        disks.format_if_blank(disk_set.source(spec["rw"]))
    else:
        disks.require_ext4(disk_set.source(spec["rw"]), spec["rw"])
    disk_set.mount(mounts, spec["rw"], root.rw, "ext4", read_only=False)
    upper, work = os.path.join(root.rw, "upper"), os.path.join(root.rw, "work")
    os.makedirs(upper, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    mounts.mount("overlay", root.path, "overlay", 0, f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}")
    for volume in spec["mounts"]:
        disks.format_if_blank(disk_set.source(volume["unit"]))
        disk_set.mount(mounts, volume["unit"], root.resolve(volume["destination"]), "ext4", read_only=not volume["rw"])
    mounts.mount("proc", root.resolve("/proc"), "proc", _NOSUID_NODEV_NOEXEC)
    _fresh_or_bound(mounts, "sysfs", root.resolve("/sys"), "sysfs", _NOSUID_NODEV_NOEXEC, bind_from="/sys")
    # The container's /dev is the tether's (bound with its pts and shm), so a TTY the tether opens is
    # the container's /dev/pts/N too.
    mounts.mount("/dev", root.resolve("/dev"), None, linux.MS_BIND | linux.MS_REC)
    write_etc(spec, root)


def hosts_text(spec):
    """The container's /etc/hosts: Docker's localhost lines, its own name, the spec's extra lines."""
    names = spec["hostname"] + (f".{spec['domainname']} {spec['hostname']}" if spec["domainname"] else "")
    addresses = [a.split("/")[0] for nic in spec["nics"] for a in nic.get("addresses", [])]
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
             "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters"]
    lines += list(spec["hosts"])
    lines += [f"{address}\t{names}" for address in addresses] or [f"127.0.1.1\t{names}"]
    return "\n".join(lines) + "\n"


def resolv_text(dns):
    """The container's /etc/resolv.conf from the spec's dns servers, search domains and options."""
    lines = [f"nameserver {server}" for server in dns.get("servers", [])]
    if dns.get("search"):
        lines.append("search " + " ".join(dns["search"]))
    if dns.get("options"):
        lines.append("options " + " ".join(dns["options"]))
    return "\n".join(lines) + "\n" if lines else ""


def write_etc(spec, root):
    etc = root.resolve("/etc")
    for name, text in (("hostname", spec["hostname"] + "\n"), ("hosts", hosts_text(spec)),
                       ("resolv.conf", resolv_text(spec["dns"]))):
        path = os.path.join(etc, name)
        if os.path.islink(path):
            os.unlink(path)     # Docker's files replace whatever the image had
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
