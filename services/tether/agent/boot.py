# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How the tether boots a container and ends: the order of PID 1's work (docs/tether.md).

1. system filesystems (PID 1 only: a VM's, or the emulator's pid and mount namespace's);
2. the log; in a VM the kernel modules and the boot spec from QEMU's fw_cfg or, on ESXi, guestinfo;
3. the container's root from its disks, its /etc files, hostname and network, and on a user-defined network
   the sockets of its DNS server (127.0.0.11:53, ``dns_server``);
4. the process and the SSH server (``server.Tether``) until the process ended and the endpoint took
   its exit (or, with --no-halt, until SIGTERM);
5. unmount everything (loop devices clear themselves) and power off (a VM) or exit 0.

A maintenance boot (``protocol.MAINTENANCE`` in the spec) does 3 without the network, and 4 without the
process and the log, until the VM is powered off (``_maintenance``).
"""

import asyncio
import gc
import os
import sys

# Nothing here may import protocol (and so asyncssh, the bulk of start-up) at module level: in a VM the
# kernel modules are loaded first, so the kernel probes the disks while the tether imports asyncssh.
from ansible_collections.vic.containers.services.tether.agent import disks, options, rootfs

_NO_BOOT_SPEC = ("no boot spec: not given with --boot-spec, no QEMU fw_cfg entry opt/vic.containers/boot, "
                 "and no guestinfo: {}")


BOOT_FAILED = 125       # Docker's code for a container its engine could not run (the process never started)


class BootError(Exception):
    """The container cannot boot; the sentence says why."""


def open_log(spec):
    """The log's descriptor: ``fd:N`` (handed in), a path (appended to), or None."""
    if spec is None:
        return None
    if spec.startswith("fd:"):
        return int(spec[3:])
    fd = os.open(spec, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOCTTY | os.O_CLOEXEC, 0o640)
    if os.isatty(fd):
        import termios  # pylint: disable=import-outside-toplevel  # a VM's serial port only
        attrs = termios.tcgetattr(fd)
        attrs[1] &= ~termios.OPOST      # a serial log port must not turn \n into \r\n
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return fd


def read_boot_spec(opts, fw_cfg=options.FW_CFG_BOOT_SPEC, rpctool=None):
    """The boot spec's text, from the first source that has one: --boot-spec (the host emulator), QEMU's
    fw_cfg (its module loaded in a VM), guestinfo through the VMware backdoor (ESXi)."""
    for path in filter(None, (opts.boot_spec, fw_cfg)):
        try:
            with open(path, "rb") as file:
                return file.read()
        except FileNotFoundError:
            if path == opts.boot_spec:
                raise BootError(f"boot spec {path} not found") from None
    from ansible_collections.vic.containers.services.tether import protocol  # pylint: disable=import-outside-toplevel
    from ansible_collections.vic.containers.services.tether.agent import guestinfo  # pylint: disable=import-outside-toplevel
    try:
        return guestinfo.read(protocol.BOOT_KEY, rpctool or guestinfo.RPCTOOL).encode()
    except guestinfo.GuestInfoError as exc:
        raise BootError(_NO_BOOT_SPEC.format(exc)) from None


def load_modules():
    """The VM's kernel modules (a module that fails is said on the console; a disk missing later names it)."""
    from ansible_collections.vic.containers.services.tether.agent import kmod, linux  # pylint: disable=import-outside-toplevel

    def load(path):
        try:
            linux.load_module(path)
        except OSError as exc:
            print(f"tether: {exc}", file=sys.stderr, flush=True)

    kmod.load_vm_modules(load)


def run(argv=None):
    """The tether's whole life; the exit code when it does not power the VM off."""
    opts = options.parse(sys.argv[1:] if argv is None else argv)
    pid1 = os.getpid() == 1
    mounts = disks.Mounts()
    code, log_fd = 0, None
    try:
        if pid1:
            rootfs.system_mounts(mounts, opts.vm)
        log_fd = open_log(opts.log)
        if opts.vm:
            load_modules()
        code = _boot_and_serve(opts, mounts, log_fd)
    except (BootError, disks.DiskError, OSError, ValueError) as exc:
        code = _boot_failed(log_fd, f"tether: {exc}")
    except Exception:  # pylint: disable=broad-except  # PID 1 must reach the power-off, not die (a kernel panic)
        import traceback  # pylint: disable=import-outside-toplevel
        code = _boot_failed(log_fd, "tether: " + traceback.format_exc().strip())
    finally:
        mounts.unmount_all()
    if opts.vm and pid1:
        from ansible_collections.vic.containers.services.tether.agent import linux  # pylint: disable=import-outside-toplevel
        linux.power_off()
    return code


def _boot_failed(log_fd, sentence):
    """A container that cannot boot: the reason on the console and, as the process's stderr and exit, in the
    log, where ``docker logs`` shows it and the endpoint finds the exit after the VM halted."""
    print(sentence, file=sys.stderr, flush=True)
    if log_fd is not None:
        from ansible_collections.vic.containers.services.tether import protocol  # pylint: disable=import-outside-toplevel
        from ansible_collections.vic.containers.services.tether.agent import jsonlog  # pylint: disable=import-outside-toplevel
        log = jsonlog.LogWriter(log_fd)
        log.output(2, sentence.encode() + b"\n")
        log.exit(BOOT_FAILED, protocol.timestamp())
    return 1


def _format_only(spec, opts, log_fd):
    """A one-shot VM's work (``protocol.format_spec``): format its disks, say so in the log, halt. A failure
    goes through ``_boot_failed`` (the reason and exit 125 in the log), which the endpoint reads."""
    from ansible_collections.vic.containers.services.tether import protocol  # pylint: disable=import-outside-toplevel
    from ansible_collections.vic.containers.services.tether.agent import jsonlog  # pylint: disable=import-outside-toplevel
    disk_set = disks.Disks(opts.disks)
    disk_set.locate(spec["format"])
    for unit in spec["format"]:
        disks.make_ext4(disk_set.source(unit), disks.TEMPLATE_OPTIONS)
        print(f"tether: formatted the disk on SCSI unit {unit}", file=sys.stderr, flush=True)
    if log_fd is not None:
        jsonlog.LogWriter(log_fd).exit(0, protocol.timestamp())
    return 0


def _dns_sockets(spec):
    """The embedded DNS server's sockets, bound on the VM's loopback (``lo`` is up), when the container is on a
    user-defined network; None if not, or if they cannot be bound (said on the console: /etc/hosts still serves)."""
    if not spec["dns"]["embedded"]:
        return None
    from ansible_collections.vic.containers.services.tether.agent import dns_server  # pylint: disable=import-outside-toplevel
    try:
        return dns_server.bind()
    except OSError as exc:
        print(f"tether: cannot bind the DNS server at {dns_server.ADDRESS}:{dns_server.PORT}: {exc}",
              file=sys.stderr, flush=True)
        return None


def _maintenance(spec, opts, mounts):
    """A maintenance boot (``protocol.with_maintenance``): the root assembled as for a run, no process, nothing
    in the log (the container's run, exit and ``docker logs`` stay as they were), archive requests served
    until the endpoint powers the VM off. A root that cannot be assembled is no failure to log: the tether
    still serves the channel, and refuses each archive request with the reason, which the client is told."""
    from ansible_collections.vic.containers.services.tether.agent import channel, server  # pylint: disable=import-outside-toplevel
    root = rootfs.ContainerRoot(opts.root)
    broken = None
    try:
        rootfs.assemble(spec, root, disks.Disks(opts.disks), mounts)
    except (BootError, disks.DiskError, OSError, ValueError) as exc:
        broken = f"its root filesystem could not be assembled: {exc}"
        server.warn(f"tether: maintenance boot: {broken}")
    tether = server.Tether(spec, root.path, None, channel.Dialer(opts.channel), broken=broken)
    try:
        asyncio.run(tether.serve(halt=False))
    except Exception as exc:  # pylint: disable=broad-except  # said on the console only: the log is the run's
        server.warn(f"tether: maintenance boot failed: {exc!r}")
        return 1
    return 0


def _boot_and_serve(opts, mounts, log_fd):
    # protocol imports asyncssh (the bulk of start-up): only now that the disks are worth waiting for.
    from ansible_collections.vic.containers.services.tether import protocol  # pylint: disable=import-outside-toplevel
    from ansible_collections.vic.containers.services.tether.agent import (  # pylint: disable=import-outside-toplevel
        channel, jsonlog, network, server)
    # The ISO's /init keeps the collector off through the imports; what they made lives as long as the
    # tether, so it is frozen out of every later collection.
    gc.freeze()
    gc.enable()
    try:
        spec = protocol.parse_boot_spec(read_boot_spec(opts))
    except protocol.ProtocolError as exc:
        raise BootError(str(exc)) from None
    if "format" in spec:
        return _format_only(spec, opts, log_fd)
    if spec.get(protocol.MAINTENANCE):
        return _maintenance(spec, opts, mounts)
    root = rootfs.ContainerRoot(opts.root)
    rootfs.assemble(spec, root, disks.Disks(opts.disks), mounts)
    dns_sockets = None
    if os.getpid() == 1:    # its own UTS and network namespaces (a VM's, the emulator's): never the host's
        network.configure(spec, server.warn)
        dns_sockets = _dns_sockets(spec)
    log = jsonlog.LogWriter(log_fd) if log_fd is not None else None
    tether = server.Tether(spec, root.path, log, channel.Dialer(opts.channel), dns_sockets)
    asyncio.run(tether.serve(halt=not opts.no_halt))
    return 0
