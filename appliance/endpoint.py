# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Start the endpoint of a VCH from what vSphere holds: its record, sealed secrets and key.

    python -m ansible_collections.vic.containers.appliance.endpoint --name VCH [--datacenter DC]
        [--listen ADDRESS:PORT] [--tether-listen ADDRESS:PORT]

vSphere connection from VMWARE_HOST, VMWARE_USER, VMWARE_PASSWORD, VMWARE_PORT,
VMWARE_VALIDATE_CERTS (as the modules). Prints one JSON line when serving.
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from aiohttp import web
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.vic.containers.appliance import persona
from ansible_collections.vic.containers.appliance.state import VchState
from ansible_collections.vic.containers.appliance.tls import server_context
from ansible_collections.vic.containers.plugins.module_utils import _vch as engine
from ansible_collections.vic.containers.plugins.module_utils import _vch_observe as observe
from ansible_collections.vic.containers.plugins.module_utils._errors import VicError
from ansible_collections.vic.containers.plugins.module_utils._vsphere_session import Session
from ansible_collections.vic.containers.plugins.module_utils.vsphere_args import vsphere_connection_params


TETHER_PORT = 2377  # VIC's serial-port concentrator
SHUTDOWN_SECONDS = 3


def _arguments(argv):
    parser = argparse.ArgumentParser(description="Serve the Docker API of a VCH.")
    parser.add_argument("--name", required=True, help="the VCH name")
    parser.add_argument("--datacenter", help="its datacenter (needed when there are several)")
    parser.add_argument("--listen", help="address:port; default the VCH's docker_host")
    parser.add_argument("--tether-listen", help="address:port of the tether channel container VMs dial; "
                                                "default the Docker API address, port 2377")
    return parser.parse_args(argv)


def _connection():
    """The modules' connection options, from the same VMWARE_* variables."""
    env = os.environ
    params = {"hostname": env.get("VMWARE_HOST"), "username": env.get("VMWARE_USER"),
              "password": env.get("VMWARE_PASSWORD"), "port": int(env.get("VMWARE_PORT", "443")),
              "validate_certs": boolean(env.get("VMWARE_VALIDATE_CERTS", "true"))}
    try:
        return vsphere_connection_params(params)
    except ValueError as exc:
        raise VicError(str(exc))


def _listen(args, summary):
    text = args.listen or (summary["docker_host"] or "").replace("tcp://", "")
    if not text:
        raise VicError("VCH %s has no known address yet; give --listen address:port." % args.name)
    host, port = text.rsplit(":", 1)
    return host.strip("[]"), int(port)


def _tether_listen(args, host):
    """Container VMs dial this address; it must stay the same across restarts (their serial ports keep it)."""
    if not args.tether_listen:
        return host, TETHER_PORT
    address, port = args.tether_listen.rsplit(":", 1)
    return address.strip("[]"), int(port)


async def _serve(app, name, host, port, context):
    """Serve until SIGTERM / SIGINT; the ready line is printed once the socket listens."""
    # Streams (attach, events, wait) may never end by themselves: give them a moment on stop, no more.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, ssl_context=context).start()
        print(json.dumps({"vch": name, "listen": "%s:%d" % (host, port), "tls": context is not None,
                          "pid": os.getpid()}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv=None):
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    session = Session(**_connection())
    try:
        session.login()
        vch, key, secrets = engine.load(session, args.name, args.datacenter)
        summary = observe.summary(vch)
        host, port = _listen(args, summary)
        context = server_context(vch.config["tls"], secrets.get("server_key"))
    except VicError as exc:
        session.logout()
        print("endpoint: %s" % exc, file=sys.stderr)
        return 2
    state = VchState(session, vch, key, secrets)
    app = persona.make_app(persona.VchFacts(summary, vch.config), state)
    app["tether_listen"] = _tether_listen(args, host)
    try:
        asyncio.run(_serve(app, args.name, host, port, context))
    finally:
        state.close()
        session.logout()
    return 0


if __name__ == "__main__":
    sys.exit(main())
