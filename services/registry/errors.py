# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Harbor's error answers: ``{"errors": [{"code": ..., "message": ...}]}`` with its status codes."""

import json

from aiohttp import web

CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
         409: "CONFLICT", 412: "PRECONDITION", 500: "UNKNOWN"}


def body(code, message):
    return json.dumps({"errors": [{"code": code, "message": message}]})


def error(status, message, code=None, headers=None):
    """An HTTPException to raise: Harbor's body, ``code`` defaulting to Harbor's for ``status``."""
    cls = web.HTTPException
    for candidate in (web.HTTPBadRequest, web.HTTPUnauthorized, web.HTTPForbidden, web.HTTPNotFound,
                      web.HTTPConflict, web.HTTPPreconditionFailed, web.HTTPInternalServerError):
        if candidate.status_code == status:
            cls = candidate
    return cls(text=body(code or CODES.get(status, "UNKNOWN"), message), content_type="application/json",
               headers=headers)


def bad_request(message):
    return error(400, message)


def not_found(message):
    return error(404, message)


def conflict(message):
    return error(409, message)


def forbidden(message="forbidden"):
    return error(403, message)
