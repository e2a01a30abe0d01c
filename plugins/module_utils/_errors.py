# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one domain error hierarchy of the collection and its services; private.

Every error carries the one sentence a user sees. The kind says what went wrong,
not how it is reported: modules turn any of them into ``fail_json(msg=...)``
(``_module``), the Docker persona maps each kind to the HTTP status the docker
CLI expects (``services/persona/errors.py``: the only status table).
"""

from __future__ import annotations


class VicError(Exception):
    """Base class, and a failure of ours or of a system we depend on: ``str(error)`` is the whole message."""


class InvalidInput(VicError):
    """Bad input: the message names what was wrong and what is allowed."""


class SpecError(InvalidInput):
    """Bad module input: the message starts with the option's name."""

    def __init__(self, option, message):
        self.option = option
        super().__init__("%s: %s" % (option, message))


class NotFound(VicError):
    """An object named in the input does not exist."""


class Conflict(VicError):
    """The request contradicts the current state of an object (in use, exists, not running)."""


class Forbidden(VicError):
    """An operation the object never allows (a predefined network, say)."""


class Unauthorized(VicError):
    """Credentials a remote system (a registry) refused."""


class Unsupported(VicError):
    """An operation this product does not do; the message names it."""


class VSphereError(VicError):
    """A vSphere fault, turned into one sentence naming the object."""


class RefusedChangeError(VicError):
    """A change that cannot be made to an existing VCH in place."""
