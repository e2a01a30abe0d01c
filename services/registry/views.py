# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared pieces of the API handlers: Harbor's JSON shapes, paging, request bodies, look-ups."""

import json
import re
import urllib.parse

from aiohttp import web
from sqlalchemy import func, select

from ansible_collections.vic.containers.services.registry import errors
from ansible_collections.vic.containers.services.registry.store import AuditLog, Project

PREFIX = "/api/v2.0"
# Harbor's project name rule (lower case, separators inside only).
PROJECT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
MAX_PAGE_SIZE = 100


NEVER = "0001-01-01T00:00:00.000Z"  # Harbor's time of what never happened (e.g. an artifact never pulled)


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if moment else NEVER


def answer(data, status=200, headers=None):
    return web.json_response(data, status=status, headers=headers)


def created(location):
    return web.Response(status=201, headers={"Location": PREFIX + location})


async def json_body(request):
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise errors.bad_request("the request body is not JSON: %s" % error) from error
    if not isinstance(data, dict):
        raise errors.bad_request("the request body must be a JSON object")
    return data


def paging(request):
    """(offset, limit) from Harbor's page (1-based) and page_size."""
    try:
        page = int(request.query.get("page", 1))
        size = int(request.query.get("page_size", 10))
    except ValueError as error:
        raise errors.bad_request("page and page_size must be integers") from error
    if page < 1 or size < 1 or size > MAX_PAGE_SIZE:
        raise errors.bad_request("page must be >= 1 and page_size 1 to %d" % MAX_PAGE_SIZE)
    return (page - 1) * size, size


def listed(session, request, query, shape):
    """One page of ``query`` shaped by ``shape``, with Harbor's X-Total-Count header."""
    offset, limit = paging(request)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.scalars(query.offset(offset).limit(limit)).all()
    return answer([shape(row) for row in rows], headers={"X-Total-Count": str(total)})


def q_filters(request):
    """Harbor's ``q`` query: ``k=v`` exact, ``k=~v`` fuzzy, comma separated -> {k: (exact?, v)}."""
    result = {}
    for part in filter(None, request.query.get("q", "").split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            raise errors.bad_request("bad q term %r: expected key=value or key=~value" % part)
        result[key.strip()] = (False, value[1:]) if value.startswith("~") else (True, value)
    return result


def project_by_ref(session, request, ref=None):
    """The project named by the path's project_name_or_id (``X-Is-Resource-Name: true`` makes digits a
    name) or project_name; 404 when there is none."""
    ref = ref if ref is not None else request.match_info["project"]
    by_name = request.headers.get("X-Is-Resource-Name", "").lower() == "true" or not ref.isdigit()
    if by_name:
        project = session.scalar(select(Project).where(Project.name == ref))
    else:
        project = session.get(Project, int(ref))
    if project is None:
        raise errors.not_found("project %s not found" % ref)
    return project


def repository_name(request):
    """The repository name relative to its project: Harbor clients encode '/' in it twice (%252F)."""
    return urllib.parse.unquote(request.match_info["repository"])


STATE = web.AppKey("registry_state", object)


def state_of(request):
    return request.app[STATE]


def caller_of(request):
    return request["caller"]


def audit(session, username, operation, resource, resource_type, project_id):
    session.add(AuditLog(username=username or "anonymous", operation=operation, resource=resource,
                         resource_type=resource_type, project_id=project_id))
