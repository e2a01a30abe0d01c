# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Garbage collection, Harbor's ``/system/gc`` API: ``docker-registry garbage-collect`` run now, with the
registry read-only meanwhile, and what it freed reported.

Read-only is kept at the proxy (Distribution listens on loopback only, every client comes through
here): while a run's status is Running in the database, every worker answers writes under /v2/ with
503. A run a stopped service left Running is marked Error at the next start, so read-only never
outlives the service."""

import asyncio
import json
import os
from pathlib import Path

import yaml
from aiohttp import web
from sqlalchemy import select, update

from ansible_collections.vic.containers.services.registry import errors
from ansible_collections.vic.containers.services.registry.store import GCRun, utcnow
from ansible_collections.vic.containers.services.registry.views import (
    answer, caller_of, created, iso, json_body, listed, state_of
)

RUNNING = "Running"
LOG_LIMIT = 1 << 20
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def storage_root(distribution_config):
    """Distribution's filesystem storage root, from its config.yml."""
    config = yaml.safe_load(Path(distribution_config).read_text()) or {}
    return Path(((config.get("storage") or {}).get("filesystem") or {}).get("rootdirectory", "/var/lib/registry"))


def blob_bytes(root):
    total = 0
    for folder, _dirs, files in os.walk(root / "docker" / "registry" / "v2" / "blobs"):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                pass
    return total


def read_only(state):
    """Whether a collection runs now (any worker's): writes wait for it to end."""
    with state.engine.connect() as connection:
        return connection.execute(select(GCRun.id).where(GCRun.status == RUNNING).limit(1)).first() is not None


def refuse_write():
    return web.Response(status=503, content_type="application/json", headers={"Retry-After": "30"},
                        text=errors.body("DENIED", "The system is in read only mode (garbage collection). "
                                                   "Any modification is prohibited."))


def interrupted(sessions):
    """Runs a stopped service left Running end as Error (at start)."""
    with sessions.begin() as session:
        session.execute(update(GCRun).where(GCRun.status == RUNNING)
                        .values(status="Error", log=GCRun.log + "\ninterrupted: the service stopped", updated=utcnow()))


def history_view(run):
    return {"id": run.id, "job_name": "GARBAGE_COLLECTION", "job_kind": run.kind,
            "job_parameters": json.dumps(dict(run.parameters, freed_bytes=run.freed_bytes)),
            "schedule": {"type": "Manual"}, "job_status": run.status, "deleted": False,
            "creation_time": iso(run.created), "update_time": iso(run.updated)}


async def collect(state, run_id, parameters):
    """Run garbage-collect; record status, log and freed bytes."""
    config = state.config
    loop = asyncio.get_running_loop()
    status, log, freed = "Error", "", 0
    try:
        root = storage_root(config.distribution_config)
        before = await loop.run_in_executor(None, blob_bytes, root)
        command = [str(config.distribution_binary), "garbage-collect"]
        if parameters.get("delete_untagged"):
            command.append("--delete-untagged")
        if parameters.get("dry_run"):
            command.append("--dry-run")
        process = await asyncio.create_subprocess_exec(*command, str(config.distribution_config),
                                                       stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _unused = await process.communicate()
        freed = max(0, before - await loop.run_in_executor(None, blob_bytes, root))
        log = output.decode(errors="replace")[-LOG_LIMIT:]
        status = "Success" if process.returncode == 0 else "Error"
        log += "\n%s: garbage-collect exited %d, freed %d bytes\n" % (status, process.returncode, freed)
    except (OSError, yaml.YAMLError) as error:
        log += "\nError: %s\n" % error
    finally:
        with state.sessions.begin() as session:
            run = session.get(GCRun, run_id)
            run.status, run.log, run.freed_bytes = status, log, freed


def _admin(request):
    caller = caller_of(request)
    if not caller.sysadmin:
        raise errors.error(401 if caller.anonymous else 403, "only a system admin runs garbage collection")


async def schedule(request):
    _admin(request)
    data = await json_body(request)
    kind = (data.get("schedule") or {}).get("type")
    if kind != "Manual":
        raise errors.bad_request("only a Manual schedule (run now) is supported, not %r" % (kind,))
    parameters = data.get("parameters") or {}
    if not isinstance(parameters, dict) or any(not isinstance(parameters.get(k, False), bool)
                                               for k in ("delete_untagged", "dry_run")):
        raise errors.bad_request("parameters delete_untagged and dry_run must be true or false")
    parameters = {k: parameters.get(k, False) for k in ("delete_untagged", "dry_run")}
    state = state_of(request)
    with state.sessions.begin() as session:
        if session.scalar(select(GCRun.id).where(GCRun.status == RUNNING).limit(1)) is not None:
            raise errors.conflict("a garbage collection is running already")
        run = GCRun(kind="MANUAL", parameters=parameters, status=RUNNING)
        session.add(run)
        session.flush()
    task = asyncio.create_task(collect(state, run.id, parameters))
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)
    return created("/system/gc/%d" % run.id)


def _run(session, request):
    raw = request.match_info["gc_id"]
    run = session.get(GCRun, int(raw)) if raw.isdigit() else None
    if run is None:
        raise errors.not_found("garbage collection %s not found" % raw)
    return run


async def history(request):
    _admin(request)
    with state_of(request).sessions() as session:
        return listed(session, request, select(GCRun).order_by(GCRun.id.desc()), history_view)


async def get_run(request):
    _admin(request)
    with state_of(request).sessions() as session:
        return answer(history_view(_run(session, request)))


async def get_log(request):
    _admin(request)
    with state_of(request).sessions() as session:
        return web.Response(text=_run(session, request).log, content_type="text/plain")


def routes(prefix):
    return [web.post(prefix + "/system/gc/schedule", schedule), web.get(prefix + "/system/gc", history),
            web.get(prefix + "/system/gc/{gc_id}", get_run), web.get(prefix + "/system/gc/{gc_id}/log", get_log)]
