# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The emulator's command line and its life: connect, follow, run VMs, end them all on SIGTERM."""

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from ansible_collections.vic.containers.plugins.module_utils._errors import VicError
from ansible_collections.vic.containers.plugins.module_utils.vsphere import connection
from ansible_collections.vic.containers.plugins.module_utils.vsphere.session import Session
from ansible_collections.vic.containers.services.emulator import namespace, portgroups, records
from ansible_collections.vic.containers.services.emulator.host import Host

LOG = logging.getLogger("vic.emulator")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m ansible_collections.vic.containers.services.emulator",
                                     description="Run the container VMs of every VCH on a vCenter (the "
                                                 "simulator), as ESXi would, until SIGTERM.")
    parser.add_argument("--hypervisor", choices=("namespace", "qemu"), default="namespace",
                        help="namespace: the tether in fresh Linux namespaces (fast); qemu: boot the VM's "
                             "tether ISO in QEMU")
    parser.add_argument("--tether-python", choices=("iso", "host"), default="iso",
                        help="namespace mode: run the tether from the VM's own ISO, unpacked (iso), or with "
                             "this machine's Python and the collection (host, a development option)")
    parser.add_argument("--tether-module", default=namespace.TETHER_MODULE,
                        help="host mode: the module run as the tether (a stand-in, for tests)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser.parse_args(argv)


def runner_factory(args, isos, network):
    """``make_runner(vm, rundir, channel_path)`` of the chosen hypervisor."""
    if args.hypervisor == "qemu":
        from ansible_collections.vic.containers.services.emulator import qemu_runner  # pylint: disable=import-outside-toplevel
        return qemu_runner.QemuVm
    if args.tether_python == "host":
        return lambda vm, rundir, channel: namespace.Tether(vm, rundir, channel, tether_module=args.tether_module,
                                                            network=network)
    return lambda vm, rundir, channel: namespace.Tether(vm, rundir, channel, python="iso", iso_root=isos.root(vm),
                                                        network=network)


async def serve(session, args):
    # What an emulator killed before it could clean up left (found by its records), before making anything.
    await asyncio.to_thread(records.clear_previous)
    isos = namespace.IsoRoots()
    network = portgroups.PortGroups(None)
    host = Host(session, runner_factory(args, isos, network))
    isos.parent = network.base = host.base
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await host.start()
        print(json.dumps({"emulator": "ready", "pid": os.getpid(), "hypervisor": args.hypervisor,
                          "tether_python": args.tether_python, "rundir": host.base}), flush=True)
        await stopping.wait()
        LOG.info("stopping: ending every VM")
    finally:
        await host.stop()
        await network.close()
        isos.remove()
        records.remove_base(host.base)
    return 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        params = connection.from_environment(os.environ)
    except ValueError as exc:
        print("emulator: %s" % exc, file=sys.stderr)
        return 2
    session = Session(params["hostname"], params["username"], params["password"], params["port"],
                      params["validate_certs"])
    try:
        session.login()
    except VicError as exc:
        print("emulator: %s" % exc, file=sys.stderr)
        return 1
    try:
        return asyncio.run(serve(session, args))
    finally:
        session.logout()
