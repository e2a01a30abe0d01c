# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the Docker and registry modules run the same way: a client's life around the work, and the
present/absent skeleton of an engine (plan, apply unless in check mode, the result)."""

from __future__ import annotations

from ansible_collections.vic.containers.plugins.module_utils._errors import VicError


def with_client(module, connect, work):
    """``work(connect())`` and what it returns; the client closed after; fail the module on errors, in one sentence."""
    client = None
    try:
        client = connect()
        return work(client)
    except VicError as exc:
        module.fail_json(msg=str(exc))
    finally:
        if client is not None:
            client.close()
    return None  # not reached: fail_json exits


def engine_result(module, engine, client, key):
    """``(result, plan)`` of ``engine`` (``plan(client, params)``, ``result(client, params, plan, check_mode)``),
    the object under ``key``."""
    plan = engine.plan(client, module.params)
    changes = plan.changes if module.check_mode else plan.apply()
    result = {"changed": bool(changes), "changes": changes,
              key: engine.result(client, module.params, plan, module.check_mode)}
    # After result(): what the object shows after the run may add warnings.
    for warning in plan.warnings:
        module.warn(warning)
    if module._diff:
        result["diff"] = plan.diff()
    return result, plan
