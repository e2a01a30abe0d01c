# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Harbor v2.0: projects, their members, quotas and summaries."""

from aiohttp import web
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from ansible_collections.vic.containers.services.registry import auth, errors, rbac
from ansible_collections.vic.containers.services.registry.store import (
    UNLIMITED, Member, Project, ProjectBlob, Repository, User
)
from ansible_collections.vic.containers.services.registry.views import (
    PROJECT_NAME, answer, audit, caller_of, created, iso, json_body, listed, project_by_ref, q_filters,
    state_of
)

# Metadata Harbor keeps as "true"/"false" strings; other keys (severity, ...) are free strings.
FLAGS = ("public", "enable_content_trust", "enable_content_trust_cosign", "prevent_vul", "auto_scan",
         "auto_sbom_generation", "reuse_sys_cve_allowlist")


def usage(session, project_id):
    # PostgreSQL's SUM of a bigint is a numeric (a Decimal in Python, which JSON does not take).
    return int(session.scalar(select(func.coalesce(func.sum(ProjectBlob.size), 0))
                              .where(ProjectBlob.project_id == project_id)))


def project_view(session, project, caller):
    role = auth.role_of(session, caller, project)
    owner = session.get(User, project.owner_id)
    repo_count = session.scalar(select(func.count()).where(Repository.project_id == project.id))
    return {"project_id": project.id, "owner_id": project.owner_id, "owner_name": owner.username if owner else "",
            "name": project.name, "creation_time": iso(project.created), "update_time": iso(project.updated),
            "deleted": False, "togglable": role == rbac.PROJECT_ADMIN or caller.sysadmin,
            "current_user_role_id": role or 0, "current_user_role_ids": [role] if role else [],
            "repo_count": repo_count, "chart_count": 0, "metadata": dict(project.meta or {})}


def _metadata(data, current=None):
    """Harbor's metadata merged over ``current``; flags must be "true"/"false" (400 otherwise). The
    deprecated top-level ``public`` boolean is taken too."""
    merged = dict(current or {})
    given = data.get("metadata") or {}
    if not isinstance(given, dict):
        raise errors.bad_request("metadata must be an object")
    if isinstance(data.get("public"), bool) and "public" not in given:
        given = dict(given, public="true" if data["public"] else "false")
    for key, value in given.items():
        if key in FLAGS and value not in ("true", "false"):
            raise errors.bad_request("metadata %s must be the string \"true\" or \"false\", not %r" % (key, value))
        if not isinstance(value, str):
            raise errors.bad_request("metadata %s must be a string" % key)
        merged[key] = value
    merged.setdefault("public", "false")
    return merged


def _storage_limit(value):
    if isinstance(value, bool) or not isinstance(value, int) or (value != UNLIMITED and value <= 0):
        raise errors.bad_request("storage_limit must be -1 (unlimited) or a positive number of bytes")
    return value


def visible_projects(caller):
    query = select(Project).order_by(Project.id)
    if caller.sysadmin:
        return query
    public = Project.meta["public"].as_string() == "true"
    if caller.anonymous:
        return query.where(public)
    member = select(Member.project_id).where(Member.user_id == caller.user_id)
    return query.where(or_(public, Project.id.in_(member)))


async def list_projects(request):
    caller = caller_of(request)
    query = visible_projects(caller)
    filters = q_filters(request)
    if "name" in request.query:
        filters.setdefault("name", (False, request.query["name"]))
    if "public" in request.query:
        filters.setdefault("public", (True, request.query["public"]))
    for key, (exact, value) in filters.items():
        if key == "name":
            query = query.where(Project.name == value if exact else Project.name.contains(value, autoescape=True))
        elif key == "public":
            query = query.where(Project.meta["public"].as_string() == value.lower())
        elif key == "owner":
            query = query.where(Project.owner_id.in_(select(User.id).where(User.username == value)))
    with state_of(request).sessions() as session:
        return listed(session, request, query, lambda project: project_view(session, project, caller))


async def head_project(request):
    name = request.query.get("project_name")
    if not name:
        raise errors.bad_request("project_name is required")
    with state_of(request).sessions() as session:
        found = session.scalar(select(Project.id).where(Project.name == name))
    if found is None:
        raise web.HTTPNotFound()
    return web.Response(status=200)


async def create_project(request):
    caller = caller_of(request)
    if caller.anonymous:
        raise errors.error(401, "unauthorized: log in to create a project")
    data = await json_body(request)
    name = data.get("project_name")
    if not isinstance(name, str) or not 1 <= len(name) <= 255 or not PROJECT_NAME.match(name):
        raise errors.bad_request("project name %r is not valid: lower case letters, digits and ._- "
                                 "between them, 1 to 255 characters" % (name,))
    limit = UNLIMITED
    if data.get("storage_limit") is not None and caller.sysadmin:
        limit = _storage_limit(data["storage_limit"])
    with state_of(request).sessions.begin() as session:
        if session.scalar(select(Project.id).where(Project.name == name)) is not None:
            raise errors.conflict("the project named %s already exists" % name)
        project = Project(name=name, owner_id=caller.user_id, meta=_metadata(data), storage_limit=limit)
        session.add(project)
        session.flush()
        session.add(Member(project_id=project.id, user_id=caller.user_id, role_id=rbac.PROJECT_ADMIN))
        audit(session, caller.username, "create", name, "project", project.id)
    return created("/projects/%d" % project.id)


async def get_project(request):
    caller = caller_of(request)
    with state_of(request).sessions() as session:
        project = project_by_ref(session, request)
        auth.require(auth.project_actions(session, caller, project), rbac.READ, caller)
        return answer(project_view(session, project, caller))


async def update_project(request):
    caller = caller_of(request)
    data = await json_body(request)
    with state_of(request).sessions.begin() as session:
        project = project_by_ref(session, request)
        auth.require(auth.project_actions(session, caller, project), rbac.MANAGE, caller)
        project.meta = _metadata(data, project.meta)
        if data.get("storage_limit") is not None:
            if not caller.sysadmin:
                raise errors.forbidden("only a system admin sets storage_limit")
            project.storage_limit = _storage_limit(data["storage_limit"])
    return web.Response(status=200)


async def delete_project(request):
    caller = caller_of(request)
    with state_of(request).sessions.begin() as session:
        project = project_by_ref(session, request)
        auth.require(auth.project_actions(session, caller, project), rbac.MANAGE, caller)
        if session.scalar(select(func.count()).where(Repository.project_id == project.id)):
            raise errors.error(412, "the project %s contains repositories: it cannot be deleted" % project.name)
        audit(session, caller.username, "delete", project.name, "project", project.id)
        session.delete(project)
    return web.Response(status=200)


async def project_summary(request):
    caller = caller_of(request)
    with state_of(request).sessions() as session:
        project = project_by_ref(session, request)
        auth.require(auth.project_actions(session, caller, project), rbac.READ, caller)
        counts = dict(session.execute(select(Member.role_id, func.count()).where(Member.project_id == project.id)
                                      .group_by(Member.role_id)).all())
        return answer({
            "repo_count": session.scalar(select(func.count()).where(Repository.project_id == project.id)),
            "chart_count": 0, "project_admin_count": counts.get(rbac.PROJECT_ADMIN, 0),
            "maintainer_count": counts.get(rbac.MAINTAINER, 0), "developer_count": counts.get(rbac.DEVELOPER, 0),
            "guest_count": counts.get(rbac.GUEST, 0), "limited_guest_count": counts.get(rbac.LIMITED_GUEST, 0),
            "quota": {"hard": {"storage": project.storage_limit}, "used": {"storage": usage(session, project.id)}}})


# -- members --------------------------------------------------------------------------------------


def member_view(member, user):
    return {"id": member.id, "project_id": member.project_id, "entity_name": user.username,
            "role_name": rbac.ROLE_NAMES.get(member.role_id, ""), "role_id": member.role_id,
            "entity_id": user.id, "entity_type": "u"}


def _role(data):
    role = data.get("role_id")
    if isinstance(role, bool) or role not in rbac.ROLE_NAMES:
        raise errors.bad_request("role_id must be one of %s, not %r" % (sorted(rbac.ROLE_NAMES), role))
    return role


async def list_members(request):
    caller = caller_of(request)
    with state_of(request).sessions() as session:
        project = project_by_ref(session, request)
        auth.require(auth.project_actions(session, caller, project), rbac.READ_MEMBERS, caller)
        query = select(Member).where(Member.project_id == project.id).order_by(Member.id)
        if request.query.get("entityname"):
            query = query.where(Member.user_id.in_(
                select(User.id).where(User.username.contains(request.query["entityname"], autoescape=True))))
        return listed(session, request, query, lambda member: member_view(member, session.get(User, member.user_id)))


async def add_member(request):
    caller = caller_of(request)
    data = await json_body(request)
    role = _role(data)
    wanted = data.get("member_user") or {}
    if data.get("member_group"):
        raise errors.bad_request("group members are not supported: give member_user")
    if not isinstance(wanted, dict) or not (wanted.get("username") or wanted.get("user_id")):
        raise errors.bad_request("member_user with username or user_id is required")
    with state_of(request).sessions.begin() as session:
        project = project_by_ref(session, request)
        auth.require(auth.project_actions(session, caller, project), rbac.MANAGE, caller)
        if wanted.get("user_id"):
            user = session.get(User, wanted["user_id"]) if isinstance(wanted["user_id"], int) else None
        else:
            user = session.scalar(select(User).where(User.username == wanted["username"]))
        if user is None:
            raise errors.not_found("user %s not found" % (wanted.get("username") or wanted.get("user_id")))
        if session.scalar(select(Member.id).where(Member.project_id == project.id, Member.user_id == user.id)):
            raise errors.conflict("%s is already a member of %s" % (user.username, project.name))
        member = Member(project_id=project.id, user_id=user.id, role_id=role)
        session.add(member)
        try:
            session.flush()
        except IntegrityError as error:
            raise errors.conflict("%s is already a member of %s" % (user.username, project.name)) from error
    return created("/projects/%s/members/%d" % (request.match_info["project"], member.id))


def _member(session, request, project):
    try:
        member = session.get(Member, int(request.match_info["mid"]))
    except ValueError:
        member = None
    if member is None or member.project_id != project.id:
        raise errors.not_found("member %s not found in %s" % (request.match_info["mid"], project.name))
    return member


async def get_member(request):
    caller = caller_of(request)
    with state_of(request).sessions() as session:
        project = project_by_ref(session, request)
        auth.require(auth.project_actions(session, caller, project), rbac.READ_MEMBERS, caller)
        member = _member(session, request, project)
        return answer(member_view(member, session.get(User, member.user_id)))


async def update_member(request):
    caller = caller_of(request)
    role = _role(await json_body(request))
    with state_of(request).sessions.begin() as session:
        project = project_by_ref(session, request)
        auth.require(auth.project_actions(session, caller, project), rbac.MANAGE, caller)
        _member(session, request, project).role_id = role
    return web.Response(status=200)


async def delete_member(request):
    caller = caller_of(request)
    with state_of(request).sessions.begin() as session:
        project = project_by_ref(session, request)
        auth.require(auth.project_actions(session, caller, project), rbac.MANAGE, caller)
        session.delete(_member(session, request, project))
    return web.Response(status=200)


# -- quotas ---------------------------------------------------------------------------------------


def quota_view(session, project):
    owner = session.get(User, project.owner_id)
    return {"id": project.id, "ref": {"id": project.id, "name": project.name,
                                      "owner_name": owner.username if owner else ""},
            "creation_time": iso(project.created), "update_time": iso(project.updated),
            "hard": {"storage": project.storage_limit}, "used": {"storage": usage(session, project.id)}}


async def list_quotas(request):
    caller = caller_of(request)
    if not caller.sysadmin:
        raise errors.error(401 if caller.anonymous else 403, "only a system admin lists quotas")
    query = select(Project).order_by(Project.id)
    if request.query.get("reference_id"):
        if not request.query["reference_id"].isdigit():
            raise errors.bad_request("reference_id must be a project id")
        query = query.where(Project.id == int(request.query["reference_id"]))
    with state_of(request).sessions() as session:
        return listed(session, request, query, lambda project: quota_view(session, project))


async def get_quota(request):
    caller = caller_of(request)
    with state_of(request).sessions() as session:
        project = project_by_ref(session, request, request.match_info["qid"])
        auth.require(auth.project_actions(session, caller, project), rbac.READ, caller)
        return answer(quota_view(session, project))


async def update_quota(request):
    caller = caller_of(request)
    if not caller.sysadmin:
        raise errors.error(401 if caller.anonymous else 403, "only a system admin sets quotas")
    data = await json_body(request)
    hard = data.get("hard")
    if not isinstance(hard, dict) or "storage" not in hard:
        raise errors.bad_request("hard.storage is required")
    with state_of(request).sessions.begin() as session:
        project = project_by_ref(session, request, request.match_info["qid"])
        project.storage_limit = _storage_limit(hard["storage"])
    return web.Response(status=200)


def routes(prefix):
    return [
        web.get(prefix + "/projects", list_projects, allow_head=False), web.head(prefix + "/projects", head_project),
        web.post(prefix + "/projects", create_project),
        web.get(prefix + "/projects/{project}", get_project), web.put(prefix + "/projects/{project}", update_project),
        web.delete(prefix + "/projects/{project}", delete_project),
        web.get(prefix + "/projects/{project}/summary", project_summary),
        web.get(prefix + "/projects/{project}/members", list_members),
        web.post(prefix + "/projects/{project}/members", add_member),
        web.get(prefix + "/projects/{project}/members/{mid}", get_member),
        web.put(prefix + "/projects/{project}/members/{mid}", update_member),
        web.delete(prefix + "/projects/{project}/members/{mid}", delete_member),
        web.get(prefix + "/quotas", list_quotas), web.get(prefix + "/quotas/{qid}", get_quota),
        web.put(prefix + "/quotas/{qid}", update_quota),
    ]
