# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Kernel modules a container VM needs, loaded with their dependencies from ``modules.dep`` (no kmod)."""

import os

# Disks on pvscsi, layers in SquashFS, the container root an overlay, loop for layer files; the fw_cfg
# reader for QEMU's boot spec. Built-in ones simply have no file.
VM_MODULES = ("scsi_common", "scsi_mod", "vmw_pvscsi", "sd_mod", "squashfs", "overlay", "loop", "qemu_fw_cfg")


def module_name(path):
    """``kernel/fs/overlayfs/overlay.ko.xz`` -> ``overlay`` (the name modprobe knows; ``-`` and ``_`` alike)."""
    return os.path.basename(path).split(".ko", 1)[0].replace("-", "_")


def parse_modules_dep(text):
    """{module name: (its path, [paths of its dependencies, deepest last])} of a ``modules.dep``."""
    modules = {}
    for line in text.splitlines():
        path, sep, deps = line.partition(":")
        if sep:
            modules[module_name(path)] = (path, deps.split())
    return modules


def load_order(names, modules):
    """The module paths to load for ``names``, each after its dependencies, each once; unknown names
    (built in, or not in this kernel) are skipped."""
    order = []
    for name in names:
        entry = modules.get(name.replace("-", "_"))
        if entry is None:
            continue
        path, deps = entry
        for item in list(reversed(deps)) + [path]:      # modules.dep lists the deepest dependency last
            if item not in order:
                order.append(item)
    return order


def load_vm_modules(load, release=None, base="/lib/modules"):
    """Load ``VM_MODULES`` found under ``base/<release>``, with ``load(path)``; the paths tried, in order."""
    directory = os.path.join(base, release or os.uname().release)
    try:
        with open(os.path.join(directory, "modules.dep"), encoding="utf-8") as file:
            modules = parse_modules_dep(file.read())
    except FileNotFoundError:
        return []
    order = load_order(VM_MODULES, modules)
    for path in order:
        load(os.path.join(directory, path))
    return order
