# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The project engine of vic_registry_project / vic_registry_project_info: desired -> observed -> plan -> apply;
private.

Observed state costs one look-up of the project, and only for the options a task
gives: one list of its members (``members``, ``purge_members``), one read of its
quota (``storage_limit``), one user search per member to add (so check mode
predicts an unknown user as the real run meets it). Options left out are not
compared. A project's creator becomes its project admin (Harbor does so): the
plan of a new project counts on it, so check mode predicts the member changes
of a first run too.
"""

from __future__ import annotations

from ansible_collections.vic.containers.plugins.module_utils._errors import Conflict, NotFound, SpecError
from ansible_collections.vic.containers.plugins.module_utils._plan import Plan
from ansible_collections.vic.containers.plugins.module_utils.docker.values import size_bytes
from ansible_collections.vic.containers.plugins.module_utils.registry.client import project_path

# Harbor's role ids.
ROLES = {"projectAdmin": 1, "developer": 2, "guest": 3, "maintainer": 4, "limitedGuest": 5}
ROLE_NAMES = {number: name for name, number in ROLES.items()}
UNLIMITED = -1


def argument_spec():
    return dict(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        public=dict(type="bool"),
        metadata=dict(type="dict"),
        members=dict(type="list", elements="dict", options=dict(
            user=dict(type="str", required=True),
            role=dict(type="str", required=True, choices=list(ROLES)))),
        purge_members=dict(type="bool", default=False),
        storage_limit=dict(type="raw"),
    )


def _flag(value):
    return "true" if value else "false"


def _metadata(params):
    """The metadata to compare, as Harbor keeps it: strings, booleans as "true" / "false"."""
    wanted = {}
    for key, value in (params.get("metadata") or {}).items():
        if isinstance(value, (dict, list)) or value is None:
            raise SpecError("metadata", "the value of %s must be a string or a boolean" % key)
        wanted[str(key)] = _flag(value) if isinstance(value, bool) else str(value)
    if params.get("public") is not None:
        if "public" in wanted:
            raise SpecError("public", "is also given as metadata.public: give one of the two")
        wanted["public"] = _flag(params["public"])
    return wanted


def _members(params):
    wanted = {}
    for index, member in enumerate(params.get("members") or ()):
        if member["user"] in wanted:
            raise SpecError("members[%d].user" % index, "%s is listed twice" % member["user"])
        wanted[member["user"]] = member["role"]
    return wanted


def storage_limit(value):
    """Bytes of ``storage_limit``: -1 (unlimited), a number of bytes or a size with a binary unit (10GB)."""
    if isinstance(value, bool):
        raise SpecError("storage_limit", "must be a size (10GB), a number of bytes or -1, not a boolean")
    if str(value).strip() == str(UNLIMITED):
        return UNLIMITED
    limit = size_bytes(value, "storage_limit")
    if limit <= 0:
        raise SpecError("storage_limit", "must be -1 (unlimited) or more than 0 bytes, not %r" % (value,))
    return limit


def _desired(params):
    want = {"metadata": _metadata(params)}
    if params.get("members") is not None or params["purge_members"]:
        want["members"] = _members(params)
    if params.get("storage_limit") is not None:
        want["storage_limit"] = storage_limit(params["storage_limit"])
    return want


class ProjectPlan(Plan):
    def __init__(self):
        super().__init__(None, None)
        self.project = None
        self.project_id = None


def plan(client, params):
    """The plan for one project: one look-up, then only what the given options compare."""
    name = params["name"]
    result = ProjectPlan()
    want = _desired(params) if params["state"] == "present" else {}
    project = client.find_project(name)
    result.project = project
    if project is not None:
        result.project_id = project["project_id"]
    if params["state"] == "absent":
        if project is not None:
            _refuse_repositories(client, project)
            result.before, result.after = {"exists": True}, {"exists": False}
            result.add("delete project %s" % name, lambda: _delete(client, project))
        return result
    observed = _observed(client, project, want)
    result.before = None if project is None else _view(observed, want)
    after = {"metadata": dict(observed["metadata"], **want["metadata"])}
    if project is None:
        result.add("create project %s" % name, lambda: _create(client, result, name, want))
    else:
        changed = sorted(key for key, value in want["metadata"].items() if observed["metadata"].get(key) != value)
        if changed:
            result.add("update project %s metadata (%s)" % (name, ", ".join(changed)), lambda: client.call(
                "PUT", project_path(result.project_id), "updating project %s" % name,
                body={"metadata": {key: want["metadata"][key] for key in changed}}))
    if "storage_limit" in want:
        after["storage_limit"] = want["storage_limit"]
        if project is not None and observed["storage_limit"] != want["storage_limit"]:
            result.add("set the storage limit of project %s to %s" % (name, _size(want["storage_limit"])),
                       lambda: _set_quota(client, result, name, want["storage_limit"]))
    if "members" in want:
        after["members"] = _plan_members(client, result, params, observed["members"], want["members"])
    result.after = _view(after, want)
    return result


def _observed(client, project, want):
    """What the compared options are now; a project about to be created has its creator as project admin."""
    if project is None:
        return {"metadata": {}, "storage_limit": None, "members": {client.username: (None, "projectAdmin")}
                if client.username else {}}
    observed = {"metadata": dict(project.get("metadata") or {})}
    if "members" in want:
        observed["members"] = {member["entity_name"]: (member["id"], ROLE_NAMES.get(member["role_id"],
                                                                                    str(member["role_id"])))
                               for member in client.members(project["project_id"], project["name"])
                               if member.get("entity_type", "u") == "u"}
    if "storage_limit" in want:
        quota = client.quota(project["project_id"], project["name"])
        observed["storage_limit"] = ((quota or {}).get("hard") or {}).get("storage")
        observed["quota_id"] = (quota or {}).get("id")
    return observed


def _view(state, want):
    """The compared values, as the diff shows them: the metadata keys given, members as {user: role}."""
    view = {"metadata": {key: state["metadata"].get(key) for key in want["metadata"]}}
    if "storage_limit" in want:
        view["storage_limit"] = state.get("storage_limit")
    if "members" in want:
        view["members"] = {user: role for user, (_mid, role) in sorted(state["members"].items())}
    return view


def _plan_members(client, result, params, observed, wanted):
    """Steps that make the members ``wanted`` (and only them with purge_members); the members after."""
    name = params["name"]
    after = dict(observed)
    for index, (user, role) in enumerate(wanted.items()):
        if user in observed:
            if observed[user][1] != role:
                after[user] = (observed[user][0], role)
                result.add("change the role of member %s of project %s from %s to %s"
                           % (user, name, observed[user][1], role),
                           lambda user=user, role=role: _set_role(client, result, name, user, role))
            continue
        if not client.user_exists(user):
            raise SpecError("members[%d].user" % index, "there is no user %s on registry %s" % (user, client.url))
        after[user] = (None, role)
        result.add("add member %s to project %s as %s" % (user, name, role),
                   lambda user=user, role=role: client.call(
                       "POST", project_path(result.project_id, "members"),
                       "adding member %s to project %s" % (user, name),
                       body={"role_id": ROLES[role], "member_user": {"username": user}}))
    if params["purge_members"]:
        for user in sorted(set(observed) - set(wanted)):
            del after[user]
            result.add("remove member %s from project %s" % (user, name),
                       lambda user=user: _remove_member(client, result, name, user))
    return after


def _member_id(client, result, name, user):
    """A member's id, read when it is needed: a new project's creator has one only once it exists."""
    for member in client.members(result.project_id, name):
        if member["entity_name"] == user and member.get("entity_type", "u") == "u":
            return member["id"]
    raise NotFound("Registry %s has no member %s in project %s." % (client.url, user, name))


def _set_role(client, result, name, user, role):
    mid = _member_id(client, result, name, user)
    client.call("PUT", project_path(result.project_id, "members", mid),
                "changing the role of member %s of project %s" % (user, name), body={"role_id": ROLES[role]})


def _remove_member(client, result, name, user):
    mid = _member_id(client, result, name, user)
    client.call("DELETE", project_path(result.project_id, "members", mid),
                "removing member %s from project %s" % (user, name))


def _create(client, result, name, want):
    body = {"project_name": name, "metadata": dict(want["metadata"])}
    if "storage_limit" in want:
        body["storage_limit"] = want["storage_limit"]
    result.project_id = client.create_project(body)


def _set_quota(client, result, name, limit):
    quota = client.quota(result.project_id, name)
    if quota is None:
        raise NotFound("Registry %s has no quota for project %s: it cannot limit its storage." % (client.url, name))
    client.call("PUT", "/quotas/%d" % quota["id"], "setting the storage limit of project %s" % name,
                body={"hard": {"storage": limit}})


def _refuse_repositories(client, project):
    """Harbor refuses to delete a project that holds repositories (412): say so before, check mode too."""
    count = project.get("repo_count")
    if count:
        what = "1 repository: delete it" if count == 1 else "%d repositories: delete them" % count
        raise Conflict("Project %s on registry %s still holds %s first (Harbor refuses to delete a project that "
                       "is not empty)." % (project["name"], client.url, what))


def _delete(client, project):
    try:
        client.call("DELETE", project_path(project["project_id"]), "deleting project %s" % project["name"])
    except Conflict as exc:
        # A repository pushed since the look-up: Harbor's 412, said as the plan would have.
        raise Conflict("Project %s on registry %s still holds repositories: delete them first (%s)"
                       % (project["name"], client.url, str(exc).rstrip(".")))


def _size(limit):
    if limit == UNLIMITED:
        return "unlimited"
    for unit, factor in (("TB", 1024 ** 4), ("GB", 1024 ** 3), ("MB", 1024 ** 2), ("KB", 1024)):
        if limit % factor == 0:
            return "%d%s" % (limit // factor, unit)
    return "%d bytes" % limit


def result(client, params, plan_, check_mode):
    """The project after the run: read again after a change, else the one already read."""
    if params["state"] == "absent":
        return None if not check_mode else plan_.project
    if plan_.changed and not check_mode:
        return client.find_project(params["name"])
    return plan_.project


def info(client, name):
    """The project, its members and its quota; None when there is no such project."""
    project = client.find_project(name)
    if project is None:
        return None
    members = client.members(project["project_id"], name)
    quota = client.quota(project["project_id"], name)
    return dict(project, members=[{"user": member["entity_name"], "role": ROLE_NAMES.get(member["role_id"]),
                                   "id": member["id"], "entity_type": member.get("entity_type", "u")}
                                  for member in members],
                storage_limit=((quota or {}).get("hard") or {}).get("storage"),
                storage_used=((quota or {}).get("used") or {}).get("storage"))
