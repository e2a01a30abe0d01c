# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether ISO: reproducible build, version round trip, the kept stdlib, unpack, one QEMU boot.

Needs root (chroot, device nodes), apt's lists and the packages of bindep.txt.
The ISO is built once per session into the shared cache (.build/tether), so a
run after the first copies it; one test rebuilds from scratch to prove the
bytes do not change.
"""

import ast
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ansible_collections.vic.containers.services.emulator import qemu
from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.services.tether.iso import ImageError, build, builder, collection_version
from ansible_collections.vic.containers.services.tether.iso import contents, iso_version, unpack

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("xorriso") or not shutil.which(qemu.QEMU),
                                reason="needs root, xorriso and QEMU (bindep.txt)")

TETHER = builder.TETHER_SOURCE
PACKAGE = "ansible_collections.vic.containers.services.tether"
HAS_AGENT = (TETHER / "agent").is_dir()
CONTAINER_ID = "c" * 64


@pytest.fixture(scope="session")
def scratch():
    directory = Path(tempfile.mkdtemp(prefix="test-iso-"))
    yield directory
    shutil.rmtree(directory)
    assert not directory.exists()


@pytest.fixture(scope="session")
def built(scratch):
    return build(scratch / "tether.iso")


@pytest.fixture(scope="session")
def tree(built, scratch):
    return unpack(built.path, scratch / "unpacked")


def test_a_rebuild_with_nothing_changed_is_served_by_the_cache_with_the_same_bytes(built, scratch):
    again = build(scratch / "again.iso")
    assert again.cached
    assert again.version == built.version
    assert (scratch / "again.iso").read_bytes() == built.path.read_bytes()
    (scratch / "again.iso").unlink()


def test_a_build_from_scratch_gives_the_same_bytes(built, scratch):
    # A fresh cache (only the downloaded .debs are shared): everything is made again.
    cache = scratch / "fresh-cache"
    cache.mkdir()
    (cache / "debs").symlink_to(builder.DEFAULT_CACHE / "debs")
    fresh = build(scratch / "fresh.iso", cache=cache)
    assert not fresh.cached
    assert (scratch / "fresh.iso").read_bytes() == built.path.read_bytes()
    shutil.rmtree(cache)
    (scratch / "fresh.iso").unlink()


def test_the_version_is_the_collection_version_and_a_content_hash_and_reads_back(built, scratch):
    prefix = collection_version() + "+"
    assert built.version.startswith(prefix) and len(built.version) == len(prefix) + 12
    assert iso_version(built.path) == built.version
    extracted = scratch / "VERSION"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(built.path), "-extract", "/VERSION", str(extracted)],
                   check=True, capture_output=True)
    assert extracted.read_text() == built.version + "\n"
    extracted.unlink()


def test_iso_version_refuses_what_is_not_a_tether_iso(scratch):
    other = scratch / "other.iso"
    other.write_bytes(b"\0" * 40960)
    with pytest.raises(ImageError, match="not a tether ISO"):
        iso_version(other)
    other.unlink()


def _tether_modules():
    """Every module of the tether package (the ISO builder excluded) and every top-level name they import."""
    own, imported = [], set()
    for path in sorted(TETHER.rglob("*.py")):
        relative = path.relative_to(TETHER)
        if relative.parts[0] == "iso":
            continue
        parts = relative.with_suffix("").parts
        if parts[-1] != "__main__":  # importing it would run the tether
            own.append(".".join((PACKAGE,) + (parts[:-1] if parts[-1] == "__init__" else parts)))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module)
    return own, sorted(name for name in imported if not name.startswith("ansible_collections"))


def _chrooted_python(tree, code):
    return subprocess.run(["chroot", str(tree), "/usr/bin/python3.11", "-I", "-c", code],
                          capture_output=True, text=True, check=False)


def test_the_unpacked_tree_imports_everything_the_tether_imports_with_its_own_python(tree):
    own, imported = _tether_modules()
    assert "asyncssh" in imported and f"{PACKAGE}.protocol" in own
    kept = list(contents.STDLIB) + list(contents.EXTENSIONS) + [f"encodings.{name}" for name in contents.ENCODINGS
                                                                if name != "__init__"]
    code = "import importlib, sys\nfor name in sys.argv[1:] if len(sys.argv) > 1 else %r:\n    importlib.import_module(name)\n"
    result = _chrooted_python(tree, code % (own + imported + kept))
    assert result.returncode == 0, result.stderr
    # The check can fail: a module the prune left out is reported.
    missing = _chrooted_python(tree, "import sqlite3")
    assert "No module named 'sqlite3'" in missing.stderr
    # Of dnspython, only what the embedded DNS server imports (contents.DNSPYTHON): not its resolver.
    missing = _chrooted_python(tree, "import dns.resolver")
    assert "No module named 'dns.resolver'" in missing.stderr


def test_the_tree_holds_compiled_python_only(tree):
    for root in ("usr/lib/python3.11", "usr/lib/python3/dist-packages"):
        assert not list((tree / root).rglob("*.py"))
        assert list((tree / root).rglob("*.pyc"))
    assert (tree / contents.TETHER_PACKAGE / "protocol.pyc").is_file()
    assert not (tree / contents.TETHER_PACKAGE / "iso").exists()
    assert (tree / "init").read_text().startswith("#!/usr/bin/python3.11 -I\n")


def test_the_tree_has_the_device_nodes_and_the_kernel_modules(tree):
    for name, major, minor in contents.DEVICES:
        info = (tree / name).lstat()
        assert (os.major(info.st_rdev), os.minor(info.st_rdev)) == (major, minor)
    modules = next((tree / "lib" / "modules").iterdir())
    dependencies = (modules / "modules.dep").read_text()
    listed = {line.split(":")[0].rsplit("/", 1)[-1].split(".ko")[0].replace("-", "_")
              for line in dependencies.splitlines()}
    assert set(contents.KERNEL_MODULES) <= listed


def test_mke2fs_runs_from_the_tree(tree):
    disk = tree / "tmp" / "disk.img"
    with open(disk, "wb") as blank:
        blank.truncate(16 << 20)
    try:
        result = subprocess.run(["chroot", str(tree), "/sbin/mke2fs", "-F", "-q", "-t", "ext4", "/tmp/disk.img"],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        with open(disk, "rb") as formatted:
            formatted.seek(0x438)
            assert formatted.read(2) == b"\x53\xef"  # the ext2/3/4 superblock magic
    finally:
        disk.unlink()


def test_unpack_is_idempotent_and_safe_when_two_processes_race(built, scratch):
    cache = scratch / "race"
    code = ("import sys\nfrom ansible_collections.vic.containers.services.tether.iso import unpack\n"
            "print(unpack(sys.argv[1], sys.argv[2]))")
    racers = [subprocess.Popen([sys.executable, "-c", code, str(built.path), str(cache)], stdout=subprocess.PIPE,
                               text=True) for _unused in range(2)]
    paths = {racer.communicate()[0].strip() for racer in racers}
    assert [racer.returncode for racer in racers] == [0, 0]
    assert len(paths) == 1
    tree = Path(paths.pop())
    assert unpack(built.path, cache) == tree
    assert sorted(path.name for path in cache.iterdir()) == [tree.name]  # no temporary directory left
    assert (tree / "VERSION").read_text() == built.version + "\n"
    shutil.rmtree(cache)


def _disks(directory):
    """A SquashFS layer holding a static busybox (unit 0) and an ext4 read-write disk (unit 1), as the endpoint makes them."""
    layer = directory / "layer"
    (layer / "bin").mkdir(parents=True)
    shutil.copy2(shutil.which("busybox"), layer / "bin" / "busybox")
    (layer / "bin" / "sh").symlink_to("busybox")
    (layer / "bin" / "echo").symlink_to("busybox")
    subprocess.run(["gensquashfs", "-q", "-c", "zstd", "-D", str(layer), str(directory / "layer-flat.vmdk")],
                   check=True, capture_output=True)
    with open(directory / "rw-flat.vmdk", "wb") as rw:
        rw.truncate(64 << 20)
    subprocess.run(["mkfs.ext4", "-F", "-q", str(directory / "rw-flat.vmdk")], check=True)
    return {0: (directory / "layer-flat.vmdk", True), 1: (directory / "rw-flat.vmdk", False)}


def _boot_spec(path):
    host_key, _unused = protocol.new_host_key()
    _unused, endpoint_key = protocol.new_host_key()
    spec = protocol.boot_spec(CONTAINER_ID, host_key, endpoint_key,
                              {"Cmd": ["/bin/echo", "hello"], "Env": ["PATH=/bin"]},
                              hostname="tether-test", layers=[0], rw=1)
    path.write_text(json.dumps(spec))
    return path


def _boot(built, directory, listener):
    directory.mkdir()
    return qemu.start(built.path, _disks(directory), _boot_spec(directory / "boot.json"), directory / "output.log",
                      listener.getsockname(), stderr=subprocess.DEVNULL)


def _first_line(listener, vm, timeout=300):
    """The first line the tether sends on the channel; b"" if the VM ends before it dials."""
    listener.settimeout(1)
    for _unused in range(timeout):
        try:
            connection, _unused = listener.accept()
            break
        except socket.timeout:
            if vm.poll() is not None:
                return b""
    else:
        return b""
    with connection:
        connection.settimeout(timeout)
        line = b""
        while not line.endswith(b"\n"):
            chunk = connection.recv(1)
            if not chunk:
                break
            line += chunk
    return line


def _stopped(vm, directory):
    """Stop the VM (by its pid) and remove its files; the log port's text, for the assertions."""
    assert qemu.stop(vm) is not None
    assert vm.poll() is not None
    log = (directory / "output.log").read_text(errors="replace")
    shutil.rmtree(directory)
    return log


def _log_line(vm, log, wanted, polls=600):
    """Wait (0.5 s polls, at most `polls`) for a log port line holding `wanted`, or for the VM to end."""
    for _unused in range(polls):
        text = log.read_text(errors="replace") if log.exists() else ""
        if wanted in text or vm.poll() is not None:
            return text
        time.sleep(0.5)
    return log.read_text(errors="replace")


@pytest.mark.skipif(not HAS_AGENT, reason="services/tether/agent/ is not on this branch")
def test_the_iso_boots_in_qemu_and_runs_the_process_of_the_boot_spec_with_its_output_on_the_log_port(built, scratch):
    # Kernel, modules (pvscsi, squashfs, overlay, fw_cfg), the boot spec through fw_cfg, the
    # layer and read-write disks, the agent: the process's output follows the run's start line on the log port.
    directory = scratch / "boot-log"
    with socket.create_server(("127.0.0.1", 0)) as listener:
        vm = _boot(built, directory, listener)
        try:
            _log_line(vm, directory / "output.log", '"stream": "stdout"')
        finally:
            log = _stopped(vm, directory)
    start, first = (json.loads(line) for line in log.splitlines()[:2])
    assert start["start"] is True and (first["log"], first["stream"]) == ("hello\n", "stdout"), log


@pytest.mark.skipif(not HAS_AGENT, reason="services/tether/agent/ is not on this branch")
def test_the_iso_boots_in_qemu_to_the_tethers_ssh_version_on_the_channel(built, scratch):
    directory = scratch / "boot"
    with socket.create_server(("127.0.0.1", 0)) as listener:
        vm = _boot(built, directory, listener)
        line = b""
        try:
            line = _first_line(listener, vm)
        finally:
            log = _stopped(vm, directory)
    assert line == f"SSH-2.0-{protocol.server_version(CONTAINER_ID)}\r\n".encode(), log


def test_vmware_rpctool_runs_from_the_tree_and_says_it_needs_a_vmware_hypervisor(tree):
    # The ESXi source of the boot spec (guestinfo through the backdoor): the binary and its libraries are in
    # the tree; off VMware it refuses with its own sentence, which the tether puts in its boot error.
    result = subprocess.run(["chroot", str(tree), "/usr/bin/vmware-rpctool", "info-get guestinfo.vice./boot"],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "must be run inside a virtual machine on a VMware hypervisor product" in result.stderr, result.stderr


@pytest.mark.skipif(not HAS_AGENT, reason="services/tether/agent/ is not on this branch")
def test_a_vm_with_no_boot_spec_says_why_on_the_console_and_halts(built, scratch):
    # No fw_cfg entry: the tether asks guestinfo through the backdoor (QEMU's vmport answers only a few
    # backdoor calls, none of guestinfo), then says what each source answered and powers the VM off.
    directory = scratch / "no-spec"
    directory.mkdir()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        command = qemu.command(built.path, _disks(directory), directory / "unused.json", directory / "output.log",
                               listener.getsockname())
        at = command.index(next(arg for arg in command if arg.startswith("name=" + qemu.BOOT_SPEC_NAME)))
        del command[at - 1:at + 1]
        vm = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            vm.wait(300)    # the tether halts the VM (QEMU ends with -no-reboot)
        finally:
            log = _stopped(vm, directory)
    assert "tether: no boot spec: not given with --boot-spec, no QEMU fw_cfg entry" in log, log
    assert "guestinfo.vice./boot" in log, log
