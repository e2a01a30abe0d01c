# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the endpoint is told at start: its command line and the vSphere connection from VMWARE_*."""

import argparse
import os

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput
from ansible_collections.vic.containers.plugins.module_utils.vsphere import connection

TETHER_PORT = 2377  # VIC's serial-port concentrator


def arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m ansible_collections.vic.containers.services.endpoint",
                                     description="Serve the Docker API of a VCH.")
    parser.add_argument("--name", required=True, help="the VCH name")
    parser.add_argument("--datacenter", help="its datacenter (needed when there are several)")
    parser.add_argument("--listen", help="address:port; default the VCH's docker_host")
    parser.add_argument("--state-dir", default=os.environ.get("STATE_DIRECTORY"),
                        help="a folder of the endpoint's own (default: systemd's $STATE_DIRECTORY), where it keeps "
                             "its vSphere session cookie so that a restart after a crash takes the session back")
    parser.add_argument("--tether-listen", help="address:port of the tether channel container VMs dial; "
                                                "default the Docker API address, port 2377")
    return parser.parse_args(argv)


def vsphere_connection(environ, args=None):
    """The modules' connection options, from the same VMWARE_* variables; with ``--state-dir``, the file
    that keeps the session cookie (one per VCH: several endpoints may share the folder)."""
    try:
        options = connection.from_environment(environ)
    except ValueError as exc:
        raise InvalidInput(str(exc))
    if args is not None and args.state_dir:
        # systemd may list several folders in $STATE_DIRECTORY, separated by colons; the first is ours.
        folder = args.state_dir.split(":")[0]
        options["cookie_file"] = os.path.join(folder, "vsphere-session-%s" % args.name.replace("/", "_"))
    return options


def listen_address(args, summary):
    text = args.listen or (summary["docker_host"] or "").replace("tcp://", "")
    if not text:
        raise InvalidInput("VCH %s has no known address yet; give --listen address:port." % args.name)
    return _address(text, "--listen" if args.listen else "the VCH's docker_host")


def tether_address(args, host):
    """Container VMs dial this address; it must stay the same across restarts (their serial ports keep it)."""
    if not args.tether_listen:
        return host, TETHER_PORT
    return _address(args.tether_listen, "--tether-listen")


def _address(text, what):
    """(host, port) of ``address:port`` (an IPv6 address in brackets)."""
    host, _colon, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput("%s: %r is not address:port" % (what, text))
    return host.strip("[]"), int(port)
