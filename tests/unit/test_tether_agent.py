# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether agent's pieces that need no namespace: log lines, users, PATH look-up, options, modules.dep,
/proc figures, /etc files, archive stats; and a process forked, reaped and reported (as root: it chroots)."""

import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.services.tether.agent import (
    archive,
    boot,
    channel,
    disks,
    jsonlog,
    kmod,
    network,
    options,
    process,
    rootfs,
    stats,
    users,
)

PASSWD = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbroken line\n"
GROUP = "root:x:0:\nalice:x:1000:\nstaff:x:2000:bob,alice\nwheel:x:10:bob\n"


# -- the log ---------------------------------------------------------------------------------------


def test_lines_are_cut_after_each_newline_only():
    assert jsonlog.split_lines("a\nb\n") == ["a\n", "b\n"]
    assert jsonlog.split_lines("a\r\nb") == ["a\r\n", "b"]
    assert jsonlog.split_lines("a\rb\x0bc") == ["a\rb\x0bc"]
    assert jsonlog.split_lines("") == []


def test_log_lines_are_docker_json_file_lines():
    stamp = jsonlog.log_time(1_700_000_000_000_000_001)
    assert stamp == "2023-11-14T22:13:20.000000001Z"
    lines = jsonlog.log_lines(2, "oops\npart", stamp)
    assert [json.loads(line) for line in lines] == [{"log": "oops\n", "stream": "stderr", "time": stamp},
                                                    {"log": "part", "stream": "stderr", "time": stamp}]
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)


def test_log_writer_keeps_a_character_cut_between_chunks_and_ends_with_the_exit(tmp_path):
    path = tmp_path / "output.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    writer = jsonlog.LogWriter(fd)
    euro = "€\n".encode()
    writer.output(1, euro[:1])
    writer.output(1, euro[1:])
    writer.exit(3, "2026-01-02T03:04:05.123456Z")
    os.close(fd)
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e.get("log") for e in entries[:-1]] == ["€\n"]
    assert entries[-1] == {"exit": 3, "time": "2026-01-02T03:04:05.123456Z"}


# -- users, environment, PATH ----------------------------------------------------------------------


@pytest.mark.parametrize("spec, expected", [
    ("", users.ExecUser(0, 0, [0], "/root")),
    ("alice", users.ExecUser(1000, 1000, [1000, 2000], "/home/alice")),
    ("1000", users.ExecUser(1000, 1000, [1000, 2000], "/home/alice")),
    ("alice:wheel", users.ExecUser(1000, 10, [10, 2000], "/home/alice")),
    ("1000:2000", users.ExecUser(1000, 2000, [2000], "/home/alice")),
    ("4242", users.ExecUser(4242, 0, [0], "/")),
    ("4242:4343", users.ExecUser(4242, 4343, [4343], "/")),
])
def test_users_resolve_as_runc_does(spec, expected):
    assert users.resolve_user(spec, PASSWD, GROUP) == expected


def test_unknown_user_and_group_are_dockerds_errors():
    with pytest.raises(users.StartError, match=r"^unable to find user bob: no matching entries in passwd file$") as err:
        users.resolve_user("bob", PASSWD, GROUP)
    assert err.value.code == 126
    with pytest.raises(users.StartError, match=r"^unable to find group nope: no matching entries in group file$"):
        users.resolve_user("alice:nope", PASSWD, GROUP)
    with pytest.raises(users.StartError, match="unable to find user root"):
        users.resolve_user("root", "", "")


def test_environment_defaults_as_docker():
    env = users.environment(["A=1", "PATH=/x", "BARE"], ["A=2", "B=3"], hostname="h", home="/root", tty=True)
    assert env == {"A": "2", "PATH": "/x", "B": "3", "HOSTNAME": "h", "HOME": "/root", "TERM": "xterm"}
    env = users.environment([], [], hostname="h", home="/", tty=False)
    assert env["PATH"] == users.DEFAULT_PATH and "TERM" not in env


def test_look_path(tmp_path):
    (tmp_path / "bin").mkdir()
    tool = tmp_path / "bin" / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    plain = tmp_path / "bin" / "plain"
    plain.write_text("")
    path = f"{tmp_path}/nothing:{tmp_path}/bin"
    assert users.look_path("tool", path) == str(tool)
    assert users.look_path(str(tool), "") == str(tool)
    with pytest.raises(users.StartError, match=r'^exec: "plain": executable file not found in \$PATH$') as err:
        users.look_path("plain", path)
    assert err.value.code == 127
    with pytest.raises(users.StartError, match="permission denied") as err:
        users.look_path(str(plain), path)
    assert err.value.code == 126
    with pytest.raises(users.StartError, match="no such file or directory") as err:
        users.look_path(str(tmp_path / "none"), path)
    assert err.value.code == 127


# -- options, modules ------------------------------------------------------------------------------


def test_options_and_vm_defaults():
    vm = options.parse([])
    assert vm.vm and vm.channel == "serial:///dev/ttyS1" and vm.log == "/dev/ttyS0" and vm.disks == {}
    opts = options.parse(["--channel", "tcp://127.0.0.1:2377", "--log", "fd:3", "--disk", "0=/l", "--disk", "1=/rw",
                          "--no-halt"])
    assert not opts.vm and opts.disks == {0: "/l", 1: "/rw"} and opts.no_halt and opts.log == "fd:3"
    assert options.channel_address(opts.channel) == ("tcp", ("127.0.0.1", 2377))
    assert options.channel_address("unix:///run/t.sock") == ("unix", "/run/t.sock")
    for bad in (["--channel", "http://x"], ["--channel", "tcp://nohost"], ["--disk", "x=/y"], ["--disk", "0=/a", "--disk", "0=/b"]):
        with pytest.raises(SystemExit):
            options.parse(bad)


def test_modules_load_after_their_dependencies_once():
    dep = ("kernel/drivers/scsi/vmw_pvscsi.ko.xz: kernel/drivers/scsi/scsi_mod.ko.xz kernel/drivers/scsi/scsi_common.ko.xz\n"
           "kernel/drivers/scsi/sd_mod.ko.xz: kernel/drivers/scsi/scsi_mod.ko.xz kernel/drivers/scsi/scsi_common.ko.xz\n"
           "kernel/drivers/scsi/scsi_mod.ko.xz: kernel/drivers/scsi/scsi_common.ko.xz\n"
           "kernel/drivers/scsi/scsi_common.ko.xz:\n"
           "kernel/fs/overlayfs/overlay.ko.xz:\n")
    modules = kmod.parse_modules_dep(dep)
    assert kmod.load_order(["vmw_pvscsi", "sd_mod", "overlay", "squashfs"], modules) == [
        "kernel/drivers/scsi/scsi_common.ko.xz", "kernel/drivers/scsi/scsi_mod.ko.xz",
        "kernel/drivers/scsi/vmw_pvscsi.ko.xz", "kernel/drivers/scsi/sd_mod.ko.xz", "kernel/fs/overlayfs/overlay.ko.xz"]


def test_vm_modules_found_under_the_release(tmp_path):
    (tmp_path / "6.1.0").mkdir()
    (tmp_path / "6.1.0" / "modules.dep").write_text("kernel/fs/squashfs/squashfs.ko:\nkernel/other.ko:\n")
    loaded = []
    assert kmod.load_vm_modules(loaded.append, "6.1.0", base=str(tmp_path)) == ["kernel/fs/squashfs/squashfs.ko"]
    assert loaded == [str(tmp_path / "6.1.0" / "kernel/fs/squashfs/squashfs.ko")]
    assert kmod.load_vm_modules(loaded.append, "9.9", base=str(tmp_path)) == []


# -- figures, files, network -----------------------------------------------------------------------


def test_proc_figures():
    line = "42 (a) (b c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 100 1000000 321 18446744073709551615"
    assert stats.process_figures(line) == (12, 321)
    assert stats.system_cpu_ticks("cpu  1 2 3 4 5 6 7 0 0 0\ncpu0 1 1 1 1 1 1 1 0 0 0\n") == 28
    assert stats.mem_total("MemTotal:       2048 kB\nMemFree: 1 kB\n") == 2048 * 1024
    figures = stats.guest_stats(own_pid=1)
    assert protocol.parse_stats({"stats": figures}) == figures and figures["pids"] >= 1


def test_etc_files_from_the_spec():
    spec = {"hostname": "web", "domainname": "example.test", "hosts": ["10.0.0.9 db"],
            "nics": [{"mac": "00:50:56:00:00:01", "addresses": ["172.16.0.5/16"]}]}
    hosts = rootfs.hosts_text(spec)
    assert hosts.startswith("127.0.0.1\tlocalhost\n") and "10.0.0.9 db\n" in hosts
    assert hosts.endswith("172.16.0.5\tweb.example.test web\n")
    assert rootfs.hosts_text(dict(spec, nics=[], domainname="")).endswith("127.0.1.1\tweb\n")
    assert rootfs.resolv_text({"servers": ["1.1.1.1", "8.8.8.8"], "search": ["a", "b"], "options": ["ndots:1"]}) == \
        "nameserver 1.1.1.1\nnameserver 8.8.8.8\nsearch a b\noptions ndots:1\n"
    assert rootfs.resolv_text({"servers": [], "search": [], "options": []}) == ""


def test_container_paths_resolve_inside_the_root(tmp_path):
    root = tmp_path / "container"
    (root / "etc").mkdir(parents=True)
    (root / "escape").symlink_to("../../../../../..")
    (root / "absolute").symlink_to("/etc")
    (root / "loop").symlink_to("loop")
    inside = rootfs.ContainerRoot(str(tmp_path)).resolve
    assert inside("/../../etc") == str(root / "etc")
    assert inside("/escape/etc") == str(root / "etc")
    assert inside("/absolute/new/dir") == str(root / "etc" / "new" / "dir") and (root / "etc" / "new" / "dir").is_dir()
    assert inside("/escape/tmp/x") == str(root / "tmp" / "x")
    with pytest.raises(OSError, match="symbolic links"):
        inside("/loop/x")


def test_network_structures(tmp_path):
    assert len(network.rtentry("10.0.0.1")) == 120
    (tmp_path / "eth0").mkdir()
    (tmp_path / "eth0" / "address").write_text("00:50:56:AA:BB:CC\n")
    assert network.interfaces_by_mac(str(tmp_path)) == {"00:50:56:aa:bb:cc": "eth0"}


def test_nics_without_a_mac_are_the_interfaces_in_pci_order(tmp_path):
    # As sysfs shows a VM's NICs: a device link into the PCI tree (one behind a bridge), lo without one.
    devices, net = tmp_path / "devices", tmp_path / "net"
    for name, pci in (("ens256", "pci0000:00/0000:00:18.0/0000:0b:00.0"), ("ens160", "pci0000:00/0000:00:15.0/0000:03:00.0"),
                      ("ens33", "pci0000:00/0000:00:11.0"), ("lo", None)):
        (net / name).mkdir(parents=True)
        if pci:
            (devices / pci).mkdir(parents=True)
            (net / name / "device").symlink_to(devices / pci)
    assert network.interfaces_in_pci_order(str(net)) == ["ens33", "ens160", "ens256"]
    nics = [{"mac": ""}, {"mac": "00:50:56:AA:BB:CC"}, {"mac": ""}, {"mac": ""}]
    matched = network.match(nics, {"00:50:56:aa:bb:cc": "ens160"}, ["ens33", "ens160", "ens256"])
    assert [name for _nic, name in matched] == ["ens33", "ens160", "ens256", None]


def test_without_pci_nics_the_order_is_that_of_the_eth_numbers(tmp_path):
    # As sysfs shows a VM of the host emulator: veths it named eth<n> in the VM's NIC order, no PCI device.
    for name in ("eth10", "lo", "eth2", "eth0", "ethx", "veth1"):
        (tmp_path / name).mkdir()
    assert network.interfaces_in_pci_order(str(tmp_path)) == ["eth0", "eth2", "eth10"]
    # A PCI NIC present: the eth numbers count for nothing.
    (tmp_path / "devices" / "pci0000:00" / "0000:00:11.0").mkdir(parents=True)
    (tmp_path / "eth10" / "device").symlink_to(tmp_path / "devices" / "pci0000:00" / "0000:00:11.0")
    assert network.interfaces_in_pci_order(str(tmp_path)) == ["eth10"]


# -- archives --------------------------------------------------------------------------------------


def test_archive_stat_and_put(tmp_path):
    (tmp_path / "f").write_text("abc")
    (tmp_path / "link").symlink_to(tmp_path / "f")
    found = archive.stat_path(str(tmp_path / "f"))
    assert (found["name"], found["size"], found["mode"], found["linkTarget"]) == ("f", 3, 0o644, "")
    assert found["mtime"].endswith("Z")
    assert archive.stat_path(str(tmp_path / "link"))["linkTarget"] == str(tmp_path / "f")
    with pytest.raises(archive.ArchiveError) as err:
        archive.stat_path(str(tmp_path / "none"))
    assert err.value.kind == archive.NOT_FOUND

    def tar_of(*members):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, directory in members:
                info = tarfile.TarInfo(name)
                info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
                tar.addfile(info, None if directory else io.BytesIO(b""))
        buffer.seek(0)
        return buffer

    (tmp_path / "d").mkdir()
    archive.put(str(tmp_path / "d"), tar_of(("new", False), ("sub", True)), no_overwrite_dir_non_dir=True)
    assert (tmp_path / "d" / "new").is_file() and (tmp_path / "d" / "sub").is_dir()
    with pytest.raises(archive.ArchiveError) as err:
        archive.put(str(tmp_path / "d"), tar_of(("sub", False)), no_overwrite_dir_non_dir=True)
    assert err.value.kind == archive.CONFLICT
    with pytest.raises(archive.ArchiveError) as err:
        archive.put(str(tmp_path / "f"), tar_of(), no_overwrite_dir_non_dir=False)
    assert err.value.kind == archive.INVALID


# -- a process, forked and reaped ------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="the tether's child chroots (into / here)")
def test_process_output_exit_code_and_start_errors():
    async def scenario():
        reaper = process.Reaper()
        reaper.install(asyncio.get_running_loop())
        results = []
        for cmd, user in ((["sh", "-c", "echo out; echo err >&2; kill -TERM $$"], ""), (["nosuch"], ""),
                          (["true"], "nobody-at-all")):
            spec = process.ProcessSpec(cmd, ["PATH=/usr/bin:/bin"], [], user, "/", False, "h")
            proc = process.spawn("/", spec, reaper)
            chunks = []
            proc.listeners.append(lambda stream, data, chunks=chunks: chunks.append((stream, data)))
            await proc.done.wait()
            results.append((proc.failed, proc.code, chunks))
        return results

    (ok_failed, ok_code, ok_chunks), (nf_failed, nf_code, nf_chunks), (user_failed, user_code, _user_chunks) = asyncio.run(scenario())
    assert not ok_failed and ok_code == 128 + 15
    assert b"".join(d for s, d in ok_chunks if s == 1) == b"out\n" and b"".join(d for s, d in ok_chunks if s == 2) == b"err\n"
    assert nf_failed and nf_code == 127 and nf_chunks == [(2, b'exec: "nosuch": executable file not found in $PATH\n')]
    assert user_failed and user_code == 126


# -- a serial channel ------------------------------------------------------------------------------


def test_serial_line_is_raw_and_relayed_both_ways():
    """A pty stands in for the VM's /dev/ttyS1: bytes cross unchanged (raw mode: no \\n -> \\r\\n), and each
    new connection gets a fresh stream on the same line."""
    master, slave = os.openpty()
    path = os.ttyname(slave)

    class Collect(asyncio.Protocol):
        def __init__(self):
            self.data = b""
            self.transport = None

        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.data += data

    async def exchange(dialer, outgoing, incoming):
        _transport, proto = await dialer.create_connection(Collect, "tether", 22)
        proto.transport.write(outgoing)
        loop = asyncio.get_running_loop()
        got = b""
        while len(got) < len(outgoing):
            got += await loop.run_in_executor(None, os.read, master, 1024)
        os.write(master, incoming)
        while len(proto.data) < len(incoming):
            await asyncio.sleep(0.01)
        proto.transport.close()
        return got, proto.data

    async def scenario():
        dialer = channel.Dialer(f"serial://{path}")
        try:
            return [await exchange(dialer, b"SSH-2.0-x\r\na\nb", b"c\nd\x00"), await exchange(dialer, b"again\n", b"ok\n")]
        finally:
            dialer.close()

    try:
        assert asyncio.run(asyncio.wait_for(scenario(), 20)) == [(b"SSH-2.0-x\r\na\nb", b"c\nd\x00"), (b"again\n", b"ok\n")]
    finally:
        os.close(master)
        os.close(slave)


# -- network, in a network namespace of its own ----------------------------------------------------

_NET_SCRIPT = """
from ansible_collections.vic.containers.services.tether.agent import network
spec = {"hostname": "nettest", "nics": [{"mac": "00:00:00:00:00:00", "addresses": ["10.9.8.7/24"], "gateway": "10.9.8.1"},
                                        {"mac": "02:00:00:00:00:99", "addresses": []}]}
network.configure(spec, print)
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
                    reason="needs root, unshare and ip (to read back what the ioctls did)")
def test_network_configured_with_ioctls():
    """lo (MAC 00:..:00) stands in for a NIC: it is brought up, given the address and the default route;
    a NIC that is not there is a warning, not a failure."""
    script = f"{sys.executable} -c '{_NET_SCRIPT}' && ip -4 addr show lo && ip route && hostname"
    result = subprocess.run(["unshare", "--net", "--uts", "sh", "-c", script], capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "tether: no network interface with MAC 02:00:00:00:00:99: left unconfigured" in result.stdout
    assert "inet 10.9.8.7/24" in result.stdout and "LOOPBACK,UP" in result.stdout
    assert "default via 10.9.8.1 dev lo" in result.stdout
    assert result.stdout.rstrip().endswith("nettest")


@pytest.mark.skipif(not shutil.which("mke2fs", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"), reason="needs mke2fs")
def test_blank_disks_are_formatted_once_without_a_path(tmp_path, monkeypatch):
    blank, squash = tmp_path / "blank.img", tmp_path / "layer.img"
    blank.write_bytes(b"")
    os.truncate(blank, 16 * 1024 * 1024)
    squash.write_bytes(b"hsqs" + bytes(4092))
    monkeypatch.delenv("PATH")      # as PID 1 of a VM: the kernel gives init no PATH
    assert disks.filesystem(str(blank)) is None and disks.filesystem(str(squash)) == "squashfs"
    assert disks.format_if_blank(str(blank)) is True
    assert disks.filesystem(str(blank)) == "ext4"
    assert disks.format_if_blank(str(blank)) is False and disks.format_if_blank(str(squash)) is False


def test_vm_disks_by_scsi_target(tmp_path):
    """/sys/class/scsi_disk/H:C:T:L: the unit is the target; the kernel's sdX names are not stable."""
    for entry, name in (("2:0:0:0", "sdb"), ("2:0:1:0", "sda"), ("2:0:3:0", "sdc"), ("2:0:4:1", "sdd")):
        (tmp_path / entry / "device" / "block" / name).mkdir(parents=True)
    (tmp_path / "2:0:5:0" / "device").mkdir(parents=True)     # not a block device yet
    assert disks.scsi_disks(str(tmp_path)) == {0: "/dev/sdb", 1: "/dev/sda", 3: "/dev/sdc"}


# A stand-in for vmware-rpctool (the real one needs a VMware hypervisor: tests/system/tether/test_iso.py runs
# it in the ISO's tree): answers ``info-get KEY`` from a JSON file of guestinfo, as the backdoor does.
_RPCTOOL = """#!/usr/bin/env python3
import json, sys
values = json.load(open(sys.argv[0] + ".json"))
key = sys.argv[1].removeprefix("info-get ")
if key not in values:
    print("No value found", file=sys.stderr)
    sys.exit(1)
print(values[key])
"""


def _rpctool(tmp_path, values):
    tool = tmp_path / "rpctool"
    tool.write_text(_RPCTOOL)
    tool.chmod(0o755)
    (tmp_path / "rpctool.json").write_text(json.dumps(values))
    return str(tool)


def test_boot_spec_sources_in_order_and_a_clear_error_when_none_has_one(tmp_path):
    spec_file, fw_cfg = tmp_path / "boot.json", tmp_path / "fw_cfg"
    spec_file.write_text("{}")
    fw_cfg.write_text('{"from": "fw_cfg"}')
    no_vm = options.parse([])
    # The endpoint splits a long value as config.split_value does; the tether joins its parts.
    text = '{"from": "guestinfo", "pad": "%s"}' % ("x" * 40000)
    rpctool = _rpctool(tmp_path, codec.split_value(protocol.BOOT_KEY, text))
    assert len(codec.split_value(protocol.BOOT_KEY, text)) > 1
    assert boot.read_boot_spec(options.parse(["--boot-spec", str(spec_file)]), str(fw_cfg), rpctool) == b"{}"
    assert boot.read_boot_spec(no_vm, str(fw_cfg), rpctool) == b'{"from": "fw_cfg"}'
    assert boot.read_boot_spec(no_vm, str(tmp_path / "no-fw-cfg"), rpctool) == text.encode()
    with pytest.raises(boot.BootError, match="not found"):
        boot.read_boot_spec(options.parse(["--boot-spec", str(tmp_path / "none.json")]), str(fw_cfg), rpctool)
    empty = _rpctool(tmp_path, {})
    with pytest.raises(boot.BootError, match=r"no boot spec: not given with --boot-spec, no QEMU fw_cfg entry .*"
                                             r"no guestinfo: .*info-get guestinfo\.vice\./boot: No value found"):
        boot.read_boot_spec(no_vm, str(tmp_path / "no-fw-cfg"), empty)
    with pytest.raises(boot.BootError, match="no guestinfo: .*/missing-rpctool"):
        boot.read_boot_spec(no_vm, str(tmp_path / "no-fw-cfg"), str(tmp_path / "missing-rpctool"))
    assert boot.open_log("fd:7") == 7 and boot.open_log(None) is None


def test_the_endpoint_reads_back_what_the_tether_writes_one_format_on_both_sides(tmp_path):
    # The writer (the tether's jsonlog) and the reader (the endpoint's logs) share protocol's format.
    from ansible_collections.vic.containers.services.portlayer.containers import logs  # pylint: disable=import-outside-toplevel
    path = tmp_path / "output.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    writer = jsonlog.LogWriter(fd)
    writer.start("2026-01-02T03:04:04.5Z")
    writer.output(1, b"out\n")
    writer.output(2, b"err")
    writer.exit(7, "2026-01-02T03:04:05.123456Z")
    os.close(fd)
    data = path.read_bytes() + b'{"log": "torn'
    assert [(stream, text) for _stamp, stream, text in logs.parse(data)] == [(1, b"out\n"), (2, b"err")]
    code, started, finished = logs.last_run(data)
    assert (code, started.isoformat(), finished.isoformat()) == (
        7, "2026-01-02T03:04:04.500000+00:00", "2026-01-02T03:04:05.123456+00:00")
    assert protocol_log_line_kinds(data) == ["start", "log", "log", "exit", None]


def protocol_log_line_kinds(data):
    from ansible_collections.vic.containers.services.tether import protocol  # pylint: disable=import-outside-toplevel
    return [(protocol.parse_log_line(line) or (None,))[0] for line in data.splitlines()]
