# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether's command line, and the defaults of a container VM when it has none."""

import argparse

VM_CHANNEL = "serial:///dev/ttyS1"     # the VM's second serial port: the network-backed one to the endpoint
VM_LOG = "/dev/ttyS0"                   # the first serial port: file-backed, the VM's output.log
FW_CFG_BOOT_SPEC = "/sys/firmware/qemu_fw_cfg/by_name/opt/vic.containers/boot/raw"
_SCHEMES = ("serial://", "unix://", "tcp://")


def parse(argv):
    """The options as a namespace; ``vm`` is True when the tether runs with a VM's defaults (no --channel)."""
    parser = argparse.ArgumentParser(prog="tether", description="PID 1 of a vic.containers container VM")
    parser.add_argument("--boot-spec", metavar="FILE", help="the boot spec (JSON); default: QEMU fw_cfg")
    parser.add_argument("--channel", type=_channel, help="serial:///dev/ttyS1 | unix:///PATH | tcp://HOST:PORT")
    parser.add_argument("--log", help="PATH or fd:N: where the json-file log goes")
    parser.add_argument("--disk", action="append", default=[], type=_disk, metavar="UNIT=PATH",
                        help="a disk image for SCSI unit UNIT (attached to a loop device)")
    parser.add_argument("--root", default="/", help="the directory under which the tether makes its mount points")
    parser.add_argument("--no-halt", action="store_true", help="keep running after the primary process ended")
    options = parser.parse_args(argv)
    options.vm = options.channel is None
    options.channel = options.channel or VM_CHANNEL
    options.log = options.log or (VM_LOG if options.vm else None)
    options.disks = dict(options.disk)
    if len(options.disks) != len(options.disk):
        parser.error("--disk: a SCSI unit is given twice")
    return options


def _channel(value):
    if not value.startswith(_SCHEMES):
        raise argparse.ArgumentTypeError(f"{value!r} is not serial:///DEV, unix:///PATH or tcp://HOST:PORT")
    if value.startswith("tcp://"):
        host, _colon, port = value[len("tcp://"):].rpartition(":")
        if not host or not port.isdigit():
            raise argparse.ArgumentTypeError(f"{value!r} is not tcp://HOST:PORT")
    return value


def _disk(value):
    unit, sep, path = value.partition("=")
    if not sep or not unit.isdigit() or not path:
        raise argparse.ArgumentTypeError(f"{value!r} is not UNIT=PATH")
    return int(unit), path


def channel_address(uri):
    """``(scheme, address)``: ("tcp", (host, port)), ("unix", path) or ("serial", device)."""
    scheme, _sep, rest = uri.partition("://")
    if scheme == "tcp":
        host, _colon, port = rest.rpartition(":")
        return scheme, (host.strip("[]"), int(port))
    return scheme, rest
