# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The VM's guestinfo keys on ESXi, read through the VMware backdoor with Debian's ``vmware-rpctool``.

ESXi has no QEMU fw_cfg: the boot spec is the VM's ``guestinfo.vice./boot``
extraConfig value (split by the endpoint as other long values: ``KEY``,
``KEY|1``, ``KEY|2``...; ``plugins/module_utils/vch/config.split_value`` writes
them). VIC read guestinfo through the backdoor too; the ISO carries only the
31 kB ``vmware-rpctool`` of open-vm-tools (libc only): the backdoor is an I/O
port instruction, which Python cannot issue.
"""

import subprocess

RPCTOOL = "/usr/bin/vmware-rpctool"
_TIMEOUT = 10   # seconds for one backdoor call (it returns at once on ESXi)


class GuestInfoError(Exception):
    """The key cannot be read (not on VMware, no such key, no rpctool); the sentence says why."""


def part_key(key, index):
    """The key of part ``index`` of a split value (``split_value``'s naming)."""
    return key if index == 0 else f"{key}|{index}"


def read(key, rpctool=RPCTOOL):
    """The value of guestinfo ``key`` joined from its parts; GuestInfoError when its first part cannot be read."""
    parts = []
    while True:
        value, error = _get(part_key(key, len(parts)), rpctool)
        if value is None:
            if not parts:
                raise GuestInfoError(error)
            return "".join(parts)
        parts.append(value)


def _get(key, rpctool):
    """(value, None), or (None, why) when the key is not set or the backdoor cannot be used."""
    try:
        result = subprocess.run([rpctool, f"info-get {key}"], capture_output=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{rpctool}: {exc}"
    if result.returncode != 0:
        said = (result.stderr or result.stdout).decode(errors="replace").strip()
        return None, f"{rpctool} info-get {key}: {said or 'exit status %d' % result.returncode}"
    # rpctool prints the value and a newline of its own.
    return result.stdout.decode(errors="replace").removesuffix("\n"), None
