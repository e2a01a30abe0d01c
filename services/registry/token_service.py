# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``GET /service/token``: Distribution's token endpoint. Basic credentials (or none: anonymous) in,
a token granting each requested action the caller holds (rbac) out; what is not held is left out,
never refused, as the spec asks (Distribution then answers 401/403 to the client)."""

import datetime

from aiohttp import web
from sqlalchemy import select

from ansible_collections.vic.containers.services.registry import auth, rbac
from ansible_collections.vic.containers.services.registry.store import Member, Project
from ansible_collections.vic.containers.services.registry.tokens import parse_scope
from ansible_collections.vic.containers.services.registry.views import state_of


def grant(connection, caller, kind, name, wanted, roles):
    """The actions of ``wanted`` the caller holds on resource ``kind:name``."""
    if kind == "registry":
        return ["*"] if caller.sysadmin and name == "catalog" and "*" in wanted else []
    project_name, sep, _rest = name.partition("/")
    if kind != "repository" or not sep:
        return []
    project = connection.execute(select(Project.id, Project.meta).where(Project.name == project_name)).first()
    if project is None:
        return []
    held = rbac.actions(caller.sysadmin, roles.get(project.id), (project.meta or {}).get("public") == "true")
    if "*" in wanted:
        wanted = list(rbac.TOKEN_ACTIONS)
    return [action for action in wanted if action in rbac.TOKEN_ACTIONS and action in held]


async def token(request):
    state = state_of(request)
    caller = await auth.authenticate(state, request)
    access = []
    # Core queries: this is the hottest path of the service (a token per scope per client).
    with state.engine.connect() as connection:
        roles = {} if caller.anonymous else dict(connection.execute(
            select(Member.project_id, Member.role_id).where(Member.user_id == caller.user_id)).all())
        for scope in request.query.getall("scope", []):
            # One scope parameter may carry several, space separated (Docker's older clients).
            for part in scope.split(" "):
                parsed = parse_scope(part)
                if parsed:
                    kind, name, wanted = parsed
                    access.append({"type": kind, "name": name,
                                   "actions": grant(connection, caller, kind, name, wanted, roles)})
    signed, issued, expires = state.signer.issue(caller.username, access)
    issued_at = datetime.datetime.fromtimestamp(issued, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return web.json_response({"token": signed, "access_token": signed, "expires_in": expires,
                              "issued_at": issued_at})
