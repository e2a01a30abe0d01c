# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The initramfs tree, staged from unpacked Debian packages and the tether's package.

``stage()`` copies what ``contents`` lists out of the unpacked packages into an
empty directory, adds the kernel modules the tether loads, the tether package
and ``/init``, then compiles the Python it holds and removes the sources (legacy
``.pyc`` next to where the source was, hash-based so build times do not show).
"""

import re
import shutil
import subprocess
from pathlib import Path

from . import contents

# PID 1. The agent may be missing from a build made before it existed: then the
# ISO still boots, says so on the console (the log port) and powers off.
INIT = '''#!/usr/bin/python3.11 -I
"""PID 1 of a container VM booted from the tether ISO: the tether."""

import gc
import sys
import warnings

AGENT = "ansible_collections.vic.containers.services.tether.agent"

# No garbage collection while the tether imports (asyncssh, cryptography, asyncio): imports allocate much
# and free little, and the collections cost ~10% of their CPU time; the agent turns it on after them.
gc.disable()

# The console is the log port, i.e. the container's output.log: no Python warning may land
# there (importing asyncssh warns that cryptography deprecates Blowfish, CAST5 and SEED).
warnings.simplefilter("ignore")


def _power_off(reason):
    import ctypes
    import os
    print(reason, file=sys.stderr, flush=True)
    os.sync()
    ctypes.CDLL(None).reboot(0x4321FEDC)  # LINUX_REBOOT_CMD_POWER_OFF


try:
    from ansible_collections.vic.containers.services.tether.agent import main
except ModuleNotFoundError as error:
    if error.name not in (AGENT, AGENT + ".main"):
        raise
    _power_off(f"vic.containers tether ISO: no tether agent in this build ({error})")
else:
    sys.exit(main([]))
'''


class StageError(Exception):
    """Something the ISO must carry is not where the packages should have put it."""


def stage(unpacked, tether_source, kernel_version, dest, python="python3.11", tools=None):
    """Fill `dest` with the initramfs tree; return the kernel image's path in `unpacked`.

    `tools`: where contents.TOOL_PACKAGES are unpacked (of which only contents.TOOL_FILES are kept)."""
    unpacked, dest = Path(unpacked), Path(dest)
    for directory in contents.DIRECTORIES:
        (dest / directory).mkdir(parents=True, exist_ok=True)
    for name in contents.FILES:
        _copy(unpacked / name, dest / name)
    for name in contents.TOOL_FILES:
        _copy(Path(tools or unpacked) / name, dest / name)
    _copy_libraries(unpacked, dest)
    _copy_python(unpacked, dest)
    _copy_modules(unpacked, dest, kernel_version)
    _copy_tether(Path(tether_source), dest)
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc" / "group").write_text("root:x:0:\n")
    _compile(dest, python)
    init = dest / "init"
    init.write_text(INIT)
    init.chmod(0o755)
    kernel = unpacked / "boot" / f"vmlinuz-{kernel_version}"
    if not kernel.is_file():
        raise StageError(f"no kernel image {kernel}")
    return kernel


def _copy(source, target):
    if not source.exists() and not source.is_symlink():
        raise StageError(f"the packages hold no {source}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "test", "tests", "idle_test"))
    else:
        shutil.copy2(source, target, follow_symlinks=False)


def _copy_libraries(unpacked, dest):
    for directory in contents.LIBRARY_DIRS:
        for path in sorted((unpacked / directory).iterdir()):
            if path.name not in contents.LIBRARY_SKIP and (".so" in path.name or path.is_dir()):
                _copy(path, dest / directory / path.name)


def _copy_python(unpacked, dest):
    stdlib = Path("usr/lib/python3.11")
    for name in contents.STDLIB:
        package, module = unpacked / stdlib / name, unpacked / stdlib / f"{name}.py"
        if name == "encodings":
            for encoding in contents.ENCODINGS:
                _copy(package / f"{encoding}.py", dest / stdlib / name / f"{encoding}.py")
        elif package.is_dir():
            _copy(package, dest / stdlib / name)
        else:
            _copy(module, dest / stdlib / module.name)
    dynload = stdlib / "lib-dynload"
    for name in contents.EXTENSIONS:
        found = sorted((unpacked / dynload).glob(f"{name}.cpython-311-*.so"))
        if len(found) != 1:
            raise StageError(f"lib-dynload has {len(found)} builds of {name}")
        _copy(found[0], dest / dynload / found[0].name)
    dist = Path("usr/lib/python3/dist-packages")
    for name in contents.DIST_PACKAGES:
        _copy(unpacked / dist / name, dest / dist / name)


def _copy_modules(unpacked, dest, kernel_version):
    modules = Path("lib/modules") / kernel_version
    found = {path.name.split(".ko")[0].replace("-", "_"): path for path in (unpacked / modules).rglob("*.ko*")}
    builtin = {Path(line).name.split(".ko")[0].replace("-", "_")
               for line in (unpacked / modules / "modules.builtin").read_text().split()}
    for name in module_closure(contents.KERNEL_MODULES, found, builtin):
        _copy(found[name], dest / found[name].relative_to(unpacked))
    for index in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        _copy(unpacked / modules / index, dest / modules / index)
    # modules.dep (and its binary forms) for the tether, which loads each module after its dependencies.
    subprocess.run(["depmod", "-b", str(dest), kernel_version], check=True)


def module_closure(roots, found, builtin):
    """`roots` and what they depend on, dependencies first; built-in names are skipped."""
    ordered = []

    def visit(name):
        if name in ordered or name in builtin:
            return
        if name not in found:
            raise StageError(f"the kernel has no module {name}")
        match = re.search(rb"\0depends=([^\0]*)\0", found[name].read_bytes())
        for dependency in filter(None, (match.group(1).decode() if match else "").split(",")):
            visit(dependency.replace("-", "_"))
        ordered.append(name)

    for root in roots:
        visit(root)
    return ordered


def _copy_tether(source, dest):
    """The collection's services/tether package (not this builder), under its import path."""
    target = dest / contents.TETHER_PACKAGE
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "iso", "*.pyc"))
    for package in list(target.parents)[:4]:  # services, containers, vic, ansible_collections
        (package / "__init__.py").touch()


def _compile(dest, python):
    roots = [str(dest / "usr/lib/python3.11"), str(dest / "usr/lib/python3/dist-packages")]
    subprocess.run([python, "-I", "-m", "compileall", "-q", "-b", "-o", "2", "--invalidation-mode", "unchecked-hash",
                    "-s", str(dest), "-p", "/", *roots], check=True)
    for root in roots:
        for source in Path(root).rglob("*.py"):
            source.unlink()
        for cache in Path(root).rglob("__pycache__"):
            shutil.rmtree(cache)
