# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The filesystems: the VM's own (PID 1's duty) and the container's root, assembled from its disks.

Layers (SquashFS, read-only, base first) under an overlay whose upper and work
dirs are on the container's read-write disk; volumes at their destinations;
/proc, /sys, /dev, /dev/pts, /dev/shm inside; the container's /etc/hostname,
/etc/hosts and /etc/resolv.conf written from the boot spec.
"""

import errno
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

    @classmethod
    def around(cls, path):
        """The layout whose container root is ``path``."""
        return cls(os.path.dirname(path.rstrip("/")))

    def layer(self, index):
        return os.path.join(self.state, "layers", str(index))

    @property
    def rw(self):
        return os.path.join(self.state, "rw")

    @property
    def upper(self):
        """The overlay's upper dir: what the container changed, on its read-write disk."""
        return os.path.join(self.rw, "upper")

    def lowers(self):
        """The layer mount points, top layer first (as overlay's lowerdir lists them)."""
        indices = sorted(int(name) for name in os.listdir(os.path.join(self.state, "layers")))
        return [self.layer(index) for index in reversed(indices)]

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
    for index, unit in enumerate(spec["layers"]):
        disk_set.mount(mounts, unit, root.layer(index), "squashfs", read_only=True)
    if spec["rw_format"]:
        disks.format_if_blank(disk_set.source(spec["rw"]))
    else:
        disks.require_ext4(disk_set.source(spec["rw"]), spec["rw"])
    disk_set.mount(mounts, spec["rw"], root.rw, "ext4", read_only=False)
    upper, work = root.upper, os.path.join(root.rw, "work")
    os.makedirs(upper, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    mounts.mount("overlay", root.path, "overlay", 0, f"lowerdir={':'.join(root.lowers())},upperdir={upper},workdir={work}")
    for volume in spec["mounts"]:
        disks.format_if_blank(disk_set.source(volume["unit"]))
        disk_set.mount(mounts, volume["unit"], root.resolve(volume["destination"]), "ext4", read_only=not volume["rw"])
    for destination, options in sorted(spec["rootfs"]["tmpfs"].items(), key=lambda item: item[0].count("/")):
        flags, data = tmpfs_options(options)
        mounts.mount("tmpfs", root.resolve(destination), "tmpfs", flags, data)
    mounts.mount("proc", root.resolve("/proc"), "proc", _NOSUID_NODEV_NOEXEC)
    _fresh_or_bound(mounts, "sysfs", root.resolve("/sys"), "sysfs", _NOSUID_NODEV_NOEXEC, bind_from="/sys")
    # The container's /dev is the tether's (bound with its pts), so a TTY the tether opens is the
    # container's /dev/pts/N too; its /dev/shm is its own, of --shm-size, as dockerd mounts it.
    mounts.mount("/dev", root.resolve("/dev"), None, linux.MS_BIND | linux.MS_REC)
    mounts.mount("shm", os.path.join(root.resolve("/dev"), "shm"), "tmpfs", _NOSUID_NODEV_NOEXEC,
                 f"mode=1777,size={spec['rootfs']['shm_size']}")
    write_etc(spec, root)
    set_sysctls(spec["sysctls"])
    if spec["rootfs"]["read_only"]:
        # --read-only: the root alone (its volumes and tmpfs mounts stay writable), after the tether's /etc files.
        linux.mount(None, root.path, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY)


# The mount flag each of protocol.TMPFS_FLAGS sets (True) or clears (False).
TMPFS_BITS = {"ro": (linux.MS_RDONLY, True), "rw": (linux.MS_RDONLY, False),
              "noexec": (linux.MS_NOEXEC, True), "exec": (linux.MS_NOEXEC, False),
              "nosuid": (linux.MS_NOSUID, True), "suid": (linux.MS_NOSUID, False),
              "nodev": (linux.MS_NODEV, True), "dev": (linux.MS_NODEV, False),
              "sync": (linux.MS_SYNCHRONOUS, True), "async": (linux.MS_SYNCHRONOUS, False),
              "noatime": (linux.MS_NOATIME, True), "atime": (linux.MS_NOATIME, False),
              "nodiratime": (linux.MS_NODIRATIME, True), "diratime": (linux.MS_NODIRATIME, False),
              "relatime": (linux.MS_RELATIME, True), "norelatime": (linux.MS_RELATIME, False),
              "strictatime": (linux.MS_STRICTATIME, True)}


def tmpfs_options(options):
    """``(flags, data)`` of a ``--tmpfs`` mount: dockerd's defaults (noexec, nosuid, nodev, mode 1777) with the
    given options after them, a later option winning."""
    flags, data = linux.MS_NOEXEC | linux.MS_NOSUID | linux.MS_NODEV, {"mode": "1777"}
    for option in filter(None, options.split(",")):
        if option in TMPFS_BITS:
            bit, on = TMPFS_BITS[option]
            flags = flags | bit if on else flags & ~bit
        else:
            key, _sep, value = option.partition("=")
            data[key] = value
    return flags, ",".join(f"{key}={value}" for key, value in data.items())


def set_sysctls(sysctls):
    """``--sysctl``: written to /proc/sys (the boot spec holds only those of the container's own namespaces)."""
    for name, value in sysctls.items():
        try:
            with open(os.path.join("/proc/sys", *name.split(".")), "w", encoding="utf-8") as file:
                file.write(value)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot set sysctl {name}={value}: {exc.strerror}") from None


def hosts_text(spec, peers=()):
    """The container's /etc/hosts: Docker's localhost lines, its own name, the spec's extra lines, then its
    peers (``protocol.parse_hosts``: the other containers on its networks, which the endpoint sends)."""
    names = " ".join(own_names(spec))
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
             "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters"]
    lines += list(spec["hosts"])
    lines += [f"{address}\t{names}" for address in own_addresses(spec)] or [f"127.0.1.1\t{names}"]
    lines += [f"{address}\t{' '.join(peer_names)}" for address, peer_names in peers]
    return "\n".join(lines) + "\n"


def own_names(spec):
    """The container's own names, as its /etc/hosts line gives them: ``hostname.domainname`` first if any."""
    return ([f"{spec['hostname']}.{spec['domainname']}"] if spec["domainname"] else []) + [spec["hostname"]]


def own_addresses(spec):
    """The container's addresses on its networks (its NICs' in the boot spec)."""
    return [a.split("/")[0] for nic in spec["nics"] for a in nic.get("addresses", [])]


def dns_entries(spec, peers):
    """The entries the embedded DNS server answers (``dns_server``): the container's own names and its peers,
    the same ones its /etc/hosts lists after Docker's lines (``--add-host`` lines only there, as with dockerd)."""
    names = own_names(spec)
    return [(address, names) for address in own_addresses(spec)] + list(peers)


def resolv_text(dns):
    """The container's /etc/resolv.conf from the spec's dns servers, search domains and options. With the
    embedded DNS server (a user-defined network) it is the one nameserver, with ``ndots:0`` unless the options
    set ndots, and the servers it forwards to in a comment: what dockerd writes."""
    servers, options = dns.get("servers", []), list(dns.get("options", []))
    if dns.get("embedded"):
        # dns_server imports asyncio: boot.py imports this module before it loads the kernel modules.
        from ansible_collections.vic.containers.services.tether.agent import dns_server  # pylint: disable=import-outside-toplevel
        servers = [dns_server.ADDRESS]
        if not any(option.startswith("ndots:") for option in options):
            options.append("ndots:0")
    lines = [f"nameserver {server}" for server in servers]
    if dns.get("search"):
        lines.append("search " + " ".join(dns["search"]))
    if options:
        lines.append("options " + " ".join(options))
    if dns.get("embedded"):
        lines += ["", f"# ExtServers: [{' '.join(dns.get('servers', []))}]"]
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


_HOSTS_NEW = ".hosts.tether-new"     # beside /etc/hosts: a rename within one directory is atomic


def rewrite_hosts(spec, container_root, peers):
    """/etc/hosts again, with ``peers`` after the container's own lines (``hosts_text``), while it runs.

    Written beside it and renamed over it, so a resolver never reads half a file. A read-only root
    (``--read-only``) takes no rename: then the file the tether wrote at boot, in the overlay's upper dir
    (the container cannot have changed it), is rewritten in place, as dockerd rewrites its bind-mounted one.
    """
    text = hosts_text(spec, peers).encode("utf-8")
    layout = ContainerRoot.around(container_root)
    try:
        _replace(layout.resolve("/etc"), "hosts", text)
    except OSError as exc:
        if exc.errno != errno.EROFS:
            raise
        _write(os.path.join(layout.upper, "etc", "hosts"), os.O_TRUNC, text)


def _replace(directory, name, text):
    new = os.path.join(directory, _HOSTS_NEW)
    try:
        os.unlink(new)      # a leftover of a tether that died mid-write (never followed, if a link)
    except FileNotFoundError:
        pass
    _write(new, os.O_CREAT | os.O_EXCL, text)
    os.replace(new, os.path.join(directory, name))


def _write(path, flags, text):
    # O_NOFOLLOW: a link the container made must not send the tether's write outside its root.
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | flags, 0o644)
    try:
        os.fchmod(fd, 0o644)    # readable by every user of the container, whatever the umask
        view = memoryview(text)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
