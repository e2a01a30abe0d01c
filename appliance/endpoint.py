# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Start the endpoint of a VCH from what vSphere holds: its record, sealed secrets and key.

    python -m ansible_collections.vic.containers.appliance.endpoint --name VCH [--datacenter DC]
        [--listen ADDRESS:PORT]

vSphere connection from VMWARE_HOST, VMWARE_USER, VMWARE_PASSWORD, VMWARE_PORT,
VMWARE_VALIDATE_CERTS (as the modules). Prints one JSON line when serving.
"""

import argparse
import json
import os
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


def _arguments(argv):
    parser = argparse.ArgumentParser(description="Serve the Docker API of a VCH.")
    parser.add_argument("--name", required=True, help="the VCH name")
    parser.add_argument("--datacenter", help="its datacenter (needed when there are several)")
    parser.add_argument("--listen", help="address:port; default the VCH's docker_host")
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


def main(argv=None):
    args = _arguments(argv)
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

    async def close(app):
        state.close()
        session.logout()
    app.on_cleanup.append(close)

    async def announce(app):
        print(json.dumps({"vch": args.name, "listen": "%s:%d" % (host, port), "tls": context is not None,
                          "pid": os.getpid()}), flush=True)
    app.on_startup.append(announce)
    web.run_app(app, host=host, port=port, ssl_context=context, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
