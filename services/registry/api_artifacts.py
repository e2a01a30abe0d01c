# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Harbor v2.0: repositories, artifacts and tags (from the index), their deletion (in Distribution
too), and the audit log."""

from aiohttp import web
from sqlalchemy import func, or_, select

from ansible_collections.vic.containers.services.registry import auth, errors, index, rbac
from ansible_collections.vic.containers.services.registry.api_projects import visible_projects
from ansible_collections.vic.containers.services.registry.store import Artifact, AuditLog, Project, Repository, Tag
from ansible_collections.vic.containers.services.registry.views import (
    answer, audit, caller_of, iso, listed, project_by_ref, q_filters, repository_name, state_of
)


def repository_view(session, repo):
    count = session.scalar(select(func.count()).where(Artifact.repository_id == repo.id))
    return {"id": repo.id, "project_id": repo.project_id, "name": repo.name, "description": "",
            "artifact_count": count, "pull_count": repo.pull_count, "creation_time": iso(repo.created),
            "update_time": iso(repo.updated)}


def tag_view(tag):
    return {"id": tag.id, "repository_id": tag.repository_id, "artifact_id": tag.artifact_id, "name": tag.name,
            "push_time": iso(tag.push_time), "pull_time": iso(tag.pull_time), "immutable": False, "signed": False}


def artifact_view(session, artifact, project_id):
    tags = session.scalars(select(Tag).where(Tag.artifact_id == artifact.id).order_by(Tag.id)).all()
    return {"id": artifact.id, "type": "IMAGE", "media_type": artifact.media_type,
            "manifest_media_type": artifact.media_type, "project_id": project_id,
            "repository_id": artifact.repository_id, "digest": artifact.digest, "size": artifact.size,
            "push_time": iso(artifact.push_time), "pull_time": iso(artifact.pull_time), "extra_attrs": {},
            "annotations": {}, "references": [], "tags": [tag_view(tag) for tag in tags], "labels": []}


def _project(session, request, action):
    caller = caller_of(request)
    project = project_by_ref(session, request, request.match_info["project"])
    auth.require(auth.project_actions(session, caller, project), action, caller)
    return project


def _repository(session, request, project):
    name = "%s/%s" % (project.name, repository_name(request))
    repo = session.scalar(select(Repository).where(Repository.name == name))
    if repo is None:
        raise errors.not_found("repository %s not found" % name)
    return repo


def _artifact(session, repo, reference):
    if reference.startswith("sha256:"):
        artifact = session.scalar(select(Artifact).where(Artifact.repository_id == repo.id,
                                                         Artifact.digest == reference))
    else:
        artifact = session.scalar(select(Artifact).join(Tag, Tag.artifact_id == Artifact.id)
                                  .where(Tag.repository_id == repo.id, Tag.name == reference))
    if artifact is None:
        raise errors.not_found("artifact %s@%s not found" % (repo.name, reference))
    return artifact


async def list_repositories(request):
    with state_of(request).sessions() as session:
        project = _project(session, request, rbac.READ)
        query = select(Repository).where(Repository.project_id == project.id).order_by(Repository.id)
        for key, (exact, value) in q_filters(request).items():
            if key == "name":
                query = query.where(Repository.name == value if exact else
                                    Repository.name.contains(value, autoescape=True))
        return listed(session, request, query, lambda repo: repository_view(session, repo))


async def get_repository(request):
    with state_of(request).sessions() as session:
        project = _project(session, request, rbac.READ)
        return answer(repository_view(session, _repository(session, request, project)))


async def _delete_in_distribution(state, repository, digests):
    for digest in digests:
        status = await state.distribution_delete(repository, digest)
        if status not in (202, 404):
            raise errors.error(500, "the storage registry answered %d deleting %s@%s" % (status, repository, digest))


async def delete_repository(request):
    state = state_of(request)
    with state.sessions() as session:
        project = _project(session, request, rbac.DELETE)
        repo = _repository(session, request, project)
        digests = session.scalars(select(Artifact.digest).where(Artifact.repository_id == repo.id)).all()
    await _delete_in_distribution(state, repo.name, digests)
    with state.sessions.begin() as session:
        repo = session.get(Repository, repo.id)
        if repo is not None:
            session.delete(repo)
        audit(session, caller_of(request).username, "delete", repo.name if repo else "", "repository", project.id)
    return web.Response(status=200)


async def list_artifacts(request):
    with state_of(request).sessions() as session:
        project = _project(session, request, rbac.READ)
        repo = _repository(session, request, project)
        query = select(Artifact).where(Artifact.repository_id == repo.id).order_by(Artifact.push_time.desc())
        return listed(session, request, query, lambda artifact: artifact_view(session, artifact, project.id))


async def get_artifact(request):
    with state_of(request).sessions() as session:
        project = _project(session, request, rbac.READ)
        repo = _repository(session, request, project)
        return answer(artifact_view(session, _artifact(session, repo, request.match_info["reference"]), project.id))


async def delete_artifact(request):
    state = state_of(request)
    with state.sessions() as session:
        project = _project(session, request, rbac.DELETE)
        repo = _repository(session, request, project)
        artifact = _artifact(session, repo, request.match_info["reference"])
    await _delete_in_distribution(state, repo.name, [artifact.digest])
    with state.sessions.begin() as session:
        index.deleted(session, caller_of(request).username, repo.name, artifact.digest)
    return web.Response(status=200)


async def list_tags(request):
    with state_of(request).sessions() as session:
        project = _project(session, request, rbac.READ)
        repo = _repository(session, request, project)
        artifact = _artifact(session, repo, request.match_info["reference"])
        query = select(Tag).where(Tag.artifact_id == artifact.id).order_by(Tag.id)
        return listed(session, request, query, tag_view)


# -- audit log ------------------------------------------------------------------------------------


def audit_view(entry):
    return {"id": entry.id, "username": entry.username, "resource": entry.resource,
            "resource_type": entry.resource_type, "operation": entry.operation, "op_time": iso(entry.op_time)}


def _audit_query(request, query):
    for key, (exact, value) in q_filters(request).items():
        if key in ("username", "operation", "resource", "resource_type"):
            column = getattr(AuditLog, key)
            query = query.where(column == value if exact else column.contains(value, autoescape=True))
    return query.order_by(AuditLog.id.desc())


async def audit_logs(request):
    caller = caller_of(request)
    if caller.anonymous:
        raise errors.error(401, "unauthorized: log in first")
    query = select(AuditLog)
    if not caller.sysadmin:
        visible = visible_projects(caller).with_only_columns(Project.id)
        query = query.where(or_(AuditLog.project_id.in_(visible), AuditLog.username == caller.username))
    with state_of(request).sessions() as session:
        return listed(session, request, _audit_query(request, query), audit_view)


async def project_logs(request):
    with state_of(request).sessions() as session:
        project = _project(session, request, rbac.READ)
        query = _audit_query(request, select(AuditLog).where(AuditLog.project_id == project.id))
        return listed(session, request, query, audit_view)


def routes(prefix):
    base = prefix + "/projects/{project}/repositories"
    return [
        web.get(base, list_repositories), web.get(base + "/{repository}", get_repository),
        web.delete(base + "/{repository}", delete_repository),
        web.get(base + "/{repository}/artifacts", list_artifacts),
        web.get(base + "/{repository}/artifacts/{reference}", get_artifact),
        web.delete(base + "/{repository}/artifacts/{reference}", delete_artifact),
        web.get(base + "/{repository}/artifacts/{reference}/tags", list_tags),
        web.get(prefix + "/audit-logs", audit_logs), web.get(prefix + "/projects/{project}/logs", project_logs),
    ]
