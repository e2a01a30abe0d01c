# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Docker connection options (documented by the doc fragment vic.containers.docker) and the module runner.

Names, aliases, defaults and environment variables are those of community.docker,
so ``module_defaults`` and environments written for it work unchanged.
``run_docker`` is the one place where a Docker engine's errors become ``fail_json``.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.vic.containers.plugins.module_utils._runner import engine_result, with_client
from ansible_collections.vic.containers.plugins.module_utils.docker import client as docker_client
from ansible_collections.vic.containers.plugins.module_utils.docker import connection


def docker_argument_spec():
    """Return a new argument spec of the connection options, with the DOCKER_* fallbacks."""
    spec = {}
    for option, (kind, aliases, env, default) in connection.OPTIONS.items():
        spec[option] = {"type": kind}
        if aliases:
            spec[option]["aliases"] = list(aliases)
        if option not in connection.CERT_FILES:
            # DOCKER_CERT_PATH is a folder: connection.resolve() reads it for the certificate options.
            spec[option].update(default=default, fallback=(env_fallback, [env]))
    return spec


def run_docker(module, work):
    """Connect, call ``work(client)`` and return what it returns; fail the module on errors, in one sentence."""
    if not docker_client.HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker (the Docker SDK for Python)"),
                         exception=str(docker_client.DOCKER_IMPORT_ERROR))
    return with_client(module, lambda: docker_client.Client(**connection.resolve(module.params)), work)


def run_engine(module, engine, key):
    """The present/absent skeleton of a Docker module: plan, apply unless in check mode, the result.

    ``engine`` is a module of module_utils/docker with ``plan(client, params)`` and
    ``result(client, params, plan, check_mode)``; the object goes under ``key``.
    Returns (result dict, plan) for the module to add to and exit with.
    """
    return run_docker(module, lambda client: engine_result(module, engine, client, key))
