# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The composition root of the endpoint: the one place that builds the vSphere session, the port
layer, the persona and the TLS context, and serves them until told to stop."""

import asyncio
import json
import logging
import os
import signal
import sys

from aiohttp import web

from ansible_collections.vic.containers.plugins.module_utils._errors import VicError
from ansible_collections.vic.containers.plugins.module_utils.vch import engine
from ansible_collections.vic.containers.plugins.module_utils.vch import observe
from ansible_collections.vic.containers.plugins.module_utils.vsphere import session as vsphere
from ansible_collections.vic.containers.services.endpoint import config
from ansible_collections.vic.containers.services.endpoint.tls import TlsSite, server_context
from ansible_collections.vic.containers.services.persona.app import make_app
from ansible_collections.vic.containers.services.persona.routes.system import VchFacts
from ansible_collections.vic.containers.services.portlayer.layer import PortLayer

SHUTDOWN_SECONDS = 3


async def _serve(app, portlayer, tether_listen, name, host, port, context):
    """Serve until SIGTERM / SIGINT; the ready line is printed once the socket listens."""
    # Streams (attach, events, wait) may never end by themselves: give them a moment on stop, no more.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
    await portlayer.start(tether_listen, publish_address=host)
    try:
        await runner.setup()
        # With TLS, the handshake is done by tls.TlsSite, which logs a refused client.
        await (web.TCPSite(runner, host, port) if context is None else TlsSite(runner, host, port, context)).start()
        print(json.dumps({"vch": name, "listen": "%s:%d" % (host, port), "tls": context is not None,
                          "pid": os.getpid()}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
        await portlayer.stop()


def main(argv=None):
    args = config.arguments(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not vsphere.HAS_PYVMOMI:
        # The modules report this with missing_required_lib; the endpoint says the same in one line.
        print("endpoint: pyvmomi is not installed (%s); install services/requirements.txt"
              % vsphere.PYVMOMI_IMPORT_ERROR, file=sys.stderr)
        return 2
    session = None
    try:
        session = vsphere.Session(**config.vsphere_connection(os.environ, args))
        session.login()
        vch, key, secrets = engine.load(session, args.name, args.datacenter)
        summary = observe.summary(vch)
        host, port = config.listen_address(args, summary)
        tether_listen = config.tether_address(args, host)
        context = server_context(vch.config["tls"], secrets.get("server_key"))
    except VicError as exc:
        if session is not None:
            session.logout()
        print("endpoint: %s" % exc, file=sys.stderr)
        return 2
    portlayer = PortLayer(session, vch, key, secrets)
    app = make_app(VchFacts(summary, vch.config), portlayer)
    try:
        asyncio.run(_serve(app, portlayer, tether_listen, args.name, host, port, context))
    finally:
        portlayer.close()
        session.logout()
    return 0
