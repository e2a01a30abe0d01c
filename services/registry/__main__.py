# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The registry service (docs/registry.md):

    python -m ansible_collections.vic.containers.services.registry --config PATH            # serve until SIGTERM
    python -m ansible_collections.vic.containers.services.registry --config PATH migrate    # migrations only
    python -m ansible_collections.vic.containers.services.registry --config PATH set-admin-password  # from stdin
"""

import argparse
import sys

from ansible_collections.vic.containers.services.registry import app, store
from ansible_collections.vic.containers.services.registry.config import ConfigError, load


def main(argv=None):
    parser = argparse.ArgumentParser(prog="vic-registry", description="The VIC registry service.")
    parser.add_argument("--config", required=True, help="the service's YAML configuration")
    parser.add_argument("command", nargs="?", choices=("serve", "migrate", "set-admin-password"), default="serve")
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as error:
        print("vic-registry: %s" % error, file=sys.stderr)
        return 2
    password = None
    if args.command == "set-admin-password":
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            print("vic-registry: no password on standard input", file=sys.stderr)
            return 2
    engine = app.prepare(config)
    if args.command == "migrate":
        return 0
    if password is not None:
        changed = app.set_admin_password(store.sessions(engine), password)
        print("changed" if changed else "unchanged")
        return 0
    app.run(config, engine)
    return 0


sys.exit(main())
