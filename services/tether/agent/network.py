# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The container's network: the hostname, ``lo`` up, and each NIC of the boot spec found and configured with
ioctls (the ISO has no ``ip`` binary).

A NIC of the spec is found by its MAC when the spec has one; else by its place: the spec lists the NICs in
the order they were added to the VM, and vSphere gives NICs PCI slots in that order, so the n-th NIC of
the spec is the n-th network interface in PCI address order (in the host emulator, with no PCI, the
interface it named ``eth<n-1>``). The endpoint then needs no round trip to
read back the MACs vSphere generated (not checked on a real ESXi here: only vcsim and QEMU run).
"""

import fcntl
import ipaddress
import os
import socket
import struct

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _SIOCSIFADDR, _SIOCSIFNETMASK, _SIOCADDRT = 0x8913, 0x8914, 0x8916, 0x891C, 0x890B
_IFF_UP = 0x1
_RTF_UP, _RTF_GATEWAY = 0x1, 0x2


def _sockaddr_in(address):
    return struct.pack("=HH4s8x", socket.AF_INET, 0, socket.inet_aton(address))


def _ifreq(name, payload=b""):
    return struct.pack("16s", name.encode()) + payload.ljust(24, b"\0")


def interface_up(sock, name):
    flags = struct.unpack("16sH", fcntl.ioctl(sock, _SIOCGIFFLAGS, _ifreq(name))[:18])[1]
    if not flags & _IFF_UP:
        fcntl.ioctl(sock, _SIOCSIFFLAGS, _ifreq(name, struct.pack("H", flags | _IFF_UP)))


def rtentry(gateway):
    """struct rtentry of a default route via ``gateway`` (x86_64 layout)."""
    # rt_pad1, rt_dst, rt_gateway, rt_genmask, rt_flags, rt_pad2, rt_pad3, rt_pad4, rt_metric, rt_dev,
    # rt_mtu, rt_window, rt_irtt; native alignment gives the kernel's 120 bytes.
    return struct.pack("@L16s16s16sHhLPhPLLH0L", 0, _sockaddr_in("0.0.0.0"), _sockaddr_in(gateway),
                       _sockaddr_in("0.0.0.0"), _RTF_UP | _RTF_GATEWAY, 0, 0, 0, 0, 0, 0, 0, 0)


def interfaces_by_mac(sysfs="/sys/class/net"):
    """{mac (lower case): interface name}."""
    found = {}
    for name in os.listdir(sysfs):
        try:
            with open(os.path.join(sysfs, name, "address"), encoding="ascii") as file:
                found[file.read().strip().lower()] = name
        except OSError:
            continue
    return found


def interfaces_in_pci_order(sysfs="/sys/class/net"):
    """Names of the network interfaces on PCI, in PCI address order (``lo`` and virtual ones have no PCI device).
    Where none is on PCI (the host emulator's VMs: veths it names ``eth<n>`` in the VM's NIC order), the
    ``eth<n>`` interfaces in the order of n."""
    found, numbered = [], []
    for name in os.listdir(sysfs):
        if name.startswith("eth") and name[3:].isdigit():
            numbered.append((int(name[3:]), name))
        link = os.path.join(sysfs, name, "device")
        if not os.path.islink(link):
            continue
        # /sys/devices/pci0000:00/0000:00:15.0/0000:03:00.0: the path through the bridges, fixed-width hex,
        # compared level by level.
        parts = os.path.realpath(link).split("/")
        if any(part.startswith("pci") for part in parts):
            found.append((parts, name))
    return [name for _path, name in sorted(found or numbered)]


def match(nics, by_mac, in_order):
    """[(nic, interface name or None)]: by MAC when the nic has one, else the interface at its place in ``in_order``."""
    matched = []
    for index, nic in enumerate(nics):
        if nic["mac"]:
            matched.append((nic, by_mac.get(nic["mac"].lower())))
        else:
            matched.append((nic, in_order[index] if index < len(in_order) else None))
    return matched


def configure(spec, warn):
    """Set the hostname, bring lo up and configure the spec's NICs; ``warn(sentence)`` for a NIC not found."""
    socket.sethostname(spec["hostname"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        interface_up(sock, "lo")
        if not spec["nics"]:
            return
        for index, (nic, name) in enumerate(match(spec["nics"], interfaces_by_mac(), interfaces_in_pci_order())):
            which = f"with MAC {nic['mac']}" if nic["mac"] else f"number {index + 1} in PCI order"
            if name is None:
                warn(f"tether: no network interface {which}: left unconfigured")
                continue
            try:
                _configure_nic(sock, name, nic)
            except OSError as exc:
                warn(f"tether: cannot configure {name} ({which}): {exc}")


def _configure_nic(sock, name, nic):
    addresses = [ipaddress.ip_interface(a) for a in nic.get("addresses", []) if ipaddress.ip_interface(a).version == 4]
    if addresses:
        fcntl.ioctl(sock, _SIOCSIFADDR, _ifreq(name, _sockaddr_in(str(addresses[0].ip))))
        fcntl.ioctl(sock, _SIOCSIFNETMASK, _ifreq(name, _sockaddr_in(str(addresses[0].netmask))))
    interface_up(sock, name)
    if nic.get("gateway"):
        fcntl.ioctl(sock, _SIOCADDRT, rtentry(nic["gateway"]))
