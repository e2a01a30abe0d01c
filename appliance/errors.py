# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Errors the persona answers Docker-style: ``{"message": ...}`` with the status the CLI expects."""


class ApiError(Exception):
    """A request the endpoint refuses or cannot serve; ``str(exc)`` is what the user reads."""

    status = 500


class BadRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Unsupported(ApiError):
    status = 501


class Forbidden(ApiError):
    status = 403
