# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Replication, Harbor's ``/registries`` and ``/replication`` API subset: push the repositories and tags
a policy's filters match to another registry with skopeo, on a manual trigger or on each push
(``event_based``); executions and their tasks are listed.

skopeo reads from Distribution directly (loopback) with a pull token the service signs for itself,
so replication neither needs a user's password nor goes through the proxy."""

import asyncio
import fnmatch
import os
import tempfile
import urllib.parse

from aiohttp import web
from sqlalchemy import func, select

from ansible_collections.vic.containers.services.registry import errors
from ansible_collections.vic.containers.services.registry.store import (
    RemoteRegistry, ReplicationExecution, ReplicationPolicy, ReplicationTask, Repository, Tag, utcnow
)
from ansible_collections.vic.containers.services.registry.views import (
    answer, caller_of, created, iso, json_body, listed, state_of
)

TRIGGERS = ("manual", "event_based")
COPY_TIMEOUT = 3600
LOG_LIMIT = 64 << 10


def _admin(request):
    caller = caller_of(request)
    if not caller.sysadmin:
        raise errors.error(401 if caller.anonymous else 403, "only a system admin manages replication")


def _by_id(session, model, raw, what):
    row = session.get(model, int(raw)) if str(raw).isdigit() else None
    if row is None:
        raise errors.not_found("%s %s not found" % (what, raw))
    return row


def _host(url):
    """(host[:port], plain HTTP?) of a registry URL."""
    parsed = urllib.parse.urlparse(url if "://" in url else "https://" + url)
    return parsed.netloc, parsed.scheme == "http"


def matches(policy, repository, tag):
    """Whether Harbor's filters of ``policy`` (name on the full repository name, tag; ``**`` any depth)
    let ``repository:tag`` through."""
    for entry in policy.filters or ():
        pattern = str(entry.get("value") or "").replace("**", "*")
        if entry.get("type") == "name" and pattern and not fnmatch.fnmatchcase(repository, pattern):
            return False
        if entry.get("type") == "tag" and pattern and not fnmatch.fnmatchcase(tag, pattern):
            return False
    return True


def destination(policy, remote, repository, tag):
    host, _plain = _host(remote.url)
    if policy.dest_namespace:
        repository = "%s/%s" % (policy.dest_namespace, repository.split("/", 1)[1])
    return "%s/%s:%s" % (host, repository, tag)


# -- running ---------------------------------------------------------------------------------------


async def _copy(state, remote, source_repository, tag, target):
    """skopeo copy one tag; (ok, log)."""
    token, _issued, _expires = state.signer.issue("replication", [
        {"type": "repository", "name": source_repository, "actions": ["pull"]}])
    source_host, source_plain = _host(state.upstream)
    _target_host, target_plain = _host(remote.url)
    command = ["skopeo", "--insecure-policy", "copy", "--quiet", "--all", "--src-registry-token", token,
               "--src-tls-verify=%s" % ("false" if source_plain else "true"),
               "--dest-tls-verify=%s" % ("false" if target_plain or remote.insecure else "true")]
    if remote.username:
        command += ["--dest-creds", "%s:%s" % (remote.username, remote.secret)]
    command += ["docker://%s/%s:%s" % (source_host, source_repository, tag), "docker://" + target]
    with tempfile.TemporaryDirectory(prefix="vic-registry-replication-") as home:
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.STDOUT,
                                                       env=dict(os.environ, HOME=home))
        try:
            output, _unused = await asyncio.wait_for(process.communicate(), COPY_TIMEOUT)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            return False, "timed out after %d s" % COPY_TIMEOUT
    # The token is on skopeo's command line, never in its output; keep the log short.
    return process.returncode == 0, output.decode(errors="replace")[-LOG_LIMIT:]


async def execute(state, execution_id, items):
    """Copy ``items`` [(task id, source repository, tag, target)] one after another; record each."""
    with state.sessions() as session:
        execution = session.get(ReplicationExecution, execution_id)
        policy = session.get(ReplicationPolicy, execution.policy_id)
        remote = session.get(RemoteRegistry, policy.dest_registry_id)
    failed = 0
    for task_id, repository, tag, target in items:
        with state.sessions.begin() as session:
            session.get(ReplicationTask, task_id).status = "InProgress"
        ok, log = await _copy(state, remote, repository, tag, target)
        failed += not ok
        with state.sessions.begin() as session:
            task = session.get(ReplicationTask, task_id)
            task.status, task.log, task.end_time = ("Succeed" if ok else "Failed"), log, utcnow()
    with state.sessions.begin() as session:
        execution = session.get(ReplicationExecution, execution_id)
        execution.status = "Failed" if failed else "Succeed"
        execution.status_text = "%d of %d failed" % (failed, len(items)) if failed else ""
        execution.end_time = utcnow()


def start(state, policy_id, trigger, only=None):
    """Record an execution of the policy over what it matches now (or only ``only``: [(repository,
    tag)]) and run it in the background; its id."""
    with state.sessions.begin() as session:
        policy = session.get(ReplicationPolicy, policy_id)
        remote = session.get(RemoteRegistry, policy.dest_registry_id)
        if only is None:
            only = session.execute(select(Repository.name, Tag.name).join(Tag, Tag.repository_id == Repository.id)
                                   .order_by(Repository.name, Tag.name)).all()
        execution = ReplicationExecution(policy_id=policy.id, trigger=trigger)
        session.add(execution)
        session.flush()
        items = []
        for repository, tag in only:
            if matches(policy, repository, tag):
                target = destination(policy, remote, repository, tag)
                task = ReplicationTask(execution_id=execution.id, src_resource="%s:%s" % (repository, tag),
                                       dst_resource=target)
                session.add(task)
                session.flush()
                items.append((task.id, repository, tag, target))
        execution_id = execution.id
    job = asyncio.create_task(execute(state, execution_id, items))
    state.tasks.add(job)
    job.add_done_callback(state.tasks.discard)
    return execution_id


def on_push(state, pushes):
    """Event-based policies: replicate what was just pushed [(repository, tag)]."""
    with state.sessions() as session:
        policies = session.scalars(select(ReplicationPolicy).where(ReplicationPolicy.enabled.is_(True),
                                                                   ReplicationPolicy.trigger == "event_based")).all()
    for policy in policies:
        wanted = [(repository, tag) for repository, tag in pushes if matches(policy, repository, tag)]
        if wanted:
            start(state, policy.id, "event_based", wanted)


# -- API -------------------------------------------------------------------------------------------


def registry_view(remote):
    return {"id": remote.id, "name": remote.name, "url": remote.url, "type": "docker-registry",
            "insecure": remote.insecure, "description": remote.description, "status": "healthy",
            "credential": {"type": "basic", "access_key": remote.username, "access_secret": "*****"},
            "creation_time": iso(remote.created), "update_time": iso(remote.updated)}


def local_view(external_url):
    """This registry as Harbor names the source of a push policy."""
    return {"id": 0, "name": "Local", "url": external_url, "type": "harbor", "insecure": False, "description": "",
            "status": "healthy", "credential": {"type": "basic", "access_key": "", "access_secret": "*****"}}


def policy_view(session, policy, external_url):
    return {"id": policy.id, "name": policy.name, "description": policy.description,
            "src_registry": local_view(external_url),
            "dest_registry": registry_view(session.get(RemoteRegistry, policy.dest_registry_id)),
            "dest_namespace": policy.dest_namespace, "filters": policy.filters,
            "trigger": {"type": policy.trigger}, "deletion": False, "replicate_deletion": False,
            "override": policy.override, "enabled": policy.enabled, "creation_time": iso(policy.created),
            "update_time": iso(policy.updated)}


def execution_view(session, execution):
    counts = dict(session.execute(select(ReplicationTask.status, func.count())
                                  .where(ReplicationTask.execution_id == execution.id)
                                  .group_by(ReplicationTask.status)).all())
    return {"id": execution.id, "policy_id": execution.policy_id, "status": execution.status,
            "trigger": execution.trigger, "status_text": execution.status_text,
            "start_time": iso(execution.start_time), "end_time": iso(execution.end_time),
            "total": sum(counts.values()), "failed": counts.get("Failed", 0), "succeed": counts.get("Succeed", 0),
            "in_progress": counts.get("InProgress", 0) + counts.get("Pending", 0), "stopped": 0}


def task_view(task):
    return {"id": task.id, "execution_id": task.execution_id, "status": task.status, "job_id": str(task.id),
            "operation": "copy", "resource_type": "image", "src_resource": task.src_resource,
            "dst_resource": task.dst_resource, "start_time": iso(task.start_time), "end_time": iso(task.end_time)}


def _text(data, key, default=""):
    value = data.get(key, default)
    if not isinstance(value, str):
        raise errors.bad_request("%s must be a string" % key)
    return value


async def create_registry(request):
    _admin(request)
    data = await json_body(request)
    name, url = _text(data, "name"), _text(data, "url")
    if not name or not url.startswith(("http://", "https://")):
        raise errors.bad_request("name and an http(s) url are required")
    credential = data.get("credential") or {}
    if not isinstance(credential, dict):
        raise errors.bad_request("credential must be an object")
    with state_of(request).sessions.begin() as session:
        if session.scalar(select(RemoteRegistry.id).where(RemoteRegistry.name == name)) is not None:
            raise errors.conflict("a registry named %s exists already" % name)
        remote = RemoteRegistry(name=name, url=url.rstrip("/"), username=_text(credential, "access_key"),
                                secret=_text(credential, "access_secret"), insecure=bool(data.get("insecure")),
                                description=_text(data, "description"))
        session.add(remote)
        session.flush()
    return created("/registries/%d" % remote.id)


async def list_registries(request):
    _admin(request)
    with state_of(request).sessions() as session:
        return listed(session, request, select(RemoteRegistry).order_by(RemoteRegistry.id), registry_view)


async def get_registry(request):
    _admin(request)
    with state_of(request).sessions() as session:
        return answer(registry_view(_by_id(session, RemoteRegistry, request.match_info["id"], "registry")))


async def delete_registry(request):
    _admin(request)
    with state_of(request).sessions.begin() as session:
        remote = _by_id(session, RemoteRegistry, request.match_info["id"], "registry")
        if session.scalar(select(ReplicationPolicy.id).where(ReplicationPolicy.dest_registry_id == remote.id)
                          .limit(1)) is not None:
            raise errors.error(412, "the registry %s is used by replication policies" % remote.name)
        session.delete(remote)
    return web.Response(status=200)


def _policy_fields(session, data, policy):
    if "name" in data:
        policy.name = _text(data, "name")
    if not policy.name:
        raise errors.bad_request("name is required")
    if "dest_registry" in data:
        dest = data.get("dest_registry") or {}
        policy.dest_registry_id = _by_id(session, RemoteRegistry, dest.get("id") if isinstance(dest, dict) else None,
                                         "registry").id
    if policy.dest_registry_id is None:
        raise errors.bad_request("dest_registry.id is required (pull replication is not supported)")
    if data.get("src_registry"):
        raise errors.bad_request("src_registry must be empty: only push replication is supported")
    if "dest_namespace" in data:
        policy.dest_namespace = _text(data, "dest_namespace")
    if "filters" in data:
        filters = data.get("filters") or []
        if not isinstance(filters, list) or any(not isinstance(f, dict) or f.get("type") not in ("name", "tag")
                                                or not isinstance(f.get("value"), str) for f in filters):
            raise errors.bad_request("filters are [{type: name|tag, value: pattern}]")
        policy.filters = [{"type": f["type"], "value": f["value"]} for f in filters]
    if "trigger" in data:
        trigger = (data.get("trigger") or {}).get("type", "manual")
        if trigger not in TRIGGERS:
            raise errors.bad_request("trigger type must be one of %s, not %r" % (", ".join(TRIGGERS), trigger))
        policy.trigger = trigger
    for key in ("enabled", "override"):
        if key in data:
            if not isinstance(data[key], bool):
                raise errors.bad_request("%s must be true or false" % key)
            setattr(policy, key, data[key])
    if "description" in data:
        policy.description = _text(data, "description")


async def create_policy(request):
    _admin(request)
    data = await json_body(request)
    with state_of(request).sessions.begin() as session:
        policy = ReplicationPolicy(name="", dest_registry_id=None, filters=[], trigger="manual", enabled=True,
                                   override=True, dest_namespace="", description="")
        _policy_fields(session, data, policy)
        if session.scalar(select(ReplicationPolicy.id).where(ReplicationPolicy.name == policy.name)) is not None:
            raise errors.conflict("a policy named %s exists already" % policy.name)
        session.add(policy)
        session.flush()
    return created("/replication/policies/%d" % policy.id)


async def list_policies(request):
    _admin(request)
    with state_of(request).sessions() as session:
        return listed(session, request, select(ReplicationPolicy).order_by(ReplicationPolicy.id),
                      lambda policy: policy_view(session, policy, state_of(request).config.external_url))


async def get_policy(request):
    _admin(request)
    with state_of(request).sessions() as session:
        policy = _by_id(session, ReplicationPolicy, request.match_info["id"], "policy")
        return answer(policy_view(session, policy, state_of(request).config.external_url))


async def update_policy(request):
    _admin(request)
    data = await json_body(request)
    with state_of(request).sessions.begin() as session:
        _policy_fields(session, data, _by_id(session, ReplicationPolicy, request.match_info["id"], "policy"))
    return web.Response(status=200)


async def delete_policy(request):
    _admin(request)
    with state_of(request).sessions.begin() as session:
        session.delete(_by_id(session, ReplicationPolicy, request.match_info["id"], "policy"))
    return web.Response(status=200)


async def create_execution(request):
    _admin(request)
    data = await json_body(request)
    state = state_of(request)
    with state.sessions() as session:
        policy = _by_id(session, ReplicationPolicy, data.get("policy_id"), "policy")
        if not policy.enabled:
            raise errors.error(412, "the policy %s is disabled" % policy.name)
    return created("/replication/executions/%d" % start(state, policy.id, "manual"))


async def list_executions(request):
    _admin(request)
    query = select(ReplicationExecution).order_by(ReplicationExecution.id.desc())
    if request.query.get("policy_id", "").isdigit():
        query = query.where(ReplicationExecution.policy_id == int(request.query["policy_id"]))
    with state_of(request).sessions() as session:
        return listed(session, request, query, lambda execution: execution_view(session, execution))


async def get_execution(request):
    _admin(request)
    with state_of(request).sessions() as session:
        execution = _by_id(session, ReplicationExecution, request.match_info["id"], "execution")
        return answer(execution_view(session, execution))


async def list_tasks(request):
    _admin(request)
    with state_of(request).sessions() as session:
        execution = _by_id(session, ReplicationExecution, request.match_info["id"], "execution")
        query = select(ReplicationTask).where(ReplicationTask.execution_id == execution.id).order_by(ReplicationTask.id)
        return listed(session, request, query, task_view)


async def task_log(request):
    _admin(request)
    with state_of(request).sessions() as session:
        task = _by_id(session, ReplicationTask, request.match_info["task_id"], "task")
        if str(task.execution_id) != request.match_info["id"]:
            raise errors.not_found("task %s not found in execution %s" % (task.id, request.match_info["id"]))
        return web.Response(text=task.log, content_type="text/plain")


def routes(prefix):
    return [
        web.get(prefix + "/registries", list_registries), web.post(prefix + "/registries", create_registry),
        web.get(prefix + "/registries/{id}", get_registry), web.delete(prefix + "/registries/{id}", delete_registry),
        web.get(prefix + "/replication/policies", list_policies),
        web.post(prefix + "/replication/policies", create_policy),
        web.get(prefix + "/replication/policies/{id}", get_policy),
        web.put(prefix + "/replication/policies/{id}", update_policy),
        web.delete(prefix + "/replication/policies/{id}", delete_policy),
        web.get(prefix + "/replication/executions", list_executions),
        web.post(prefix + "/replication/executions", create_execution),
        web.get(prefix + "/replication/executions/{id}", get_execution),
        web.get(prefix + "/replication/executions/{id}/tasks", list_tasks),
        web.get(prefix + "/replication/executions/{id}/tasks/{task_id}/log", task_log),
    ]
