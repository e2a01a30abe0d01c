# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The registry connection options (documented by the doc fragment vic.containers.registry) and the module runner.

``run_registry`` is the one place where the registry engine's errors become ``fail_json``.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

from ansible_collections.vic.containers.plugins.module_utils._runner import engine_result, with_client
from ansible_collections.vic.containers.plugins.module_utils.registry.client import Client

# option: (type, aliases, environment variable, default, no_log)
OPTIONS = {
    "registry_url": ("str", ["url"], "VIC_REGISTRY_URL", None, False),
    "username": ("str", ["user"], "VIC_REGISTRY_USER", None, False),
    "password": ("str", [], "VIC_REGISTRY_PASSWORD", None, True),
    "validate_certs": ("bool", [], "VIC_REGISTRY_VALIDATE_CERTS", True, False),
    "ca_path": ("path", [], "VIC_REGISTRY_CA_PATH", None, False),
    "timeout": ("int", [], "VIC_REGISTRY_TIMEOUT", 30, False),
}


def registry_argument_spec():
    """Return a new argument spec of the connection options, with the VIC_REGISTRY_* fallbacks."""
    spec = {}
    for option, (kind, aliases, env, default, secret) in OPTIONS.items():
        spec[option] = {"type": kind, "fallback": (env_fallback, [env])}
        if aliases:
            spec[option]["aliases"] = list(aliases)
        if default is not None:
            spec[option]["default"] = default
        if secret:
            spec[option]["no_log"] = True
    spec["registry_url"]["required"] = True
    return spec


def run_registry(module, work):
    """Connect, call ``work(client)`` and return what it returns; fail the module on errors, in one sentence."""
    return with_client(module, lambda: Client(**{option: module.params[option] for option in OPTIONS}), work)


def run_engine(module, engine, key):
    """The present/absent skeleton: plan, apply unless in check mode, the result under ``key``."""
    return run_registry(module, lambda client: engine_result(module, engine, client, key)[0])
