# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Typed errors of the engine; private to the collection.

Every error carries the one sentence a user sees; modules turn them into
``fail_json(msg=...)`` in one place, the appliance into Docker-style errors.
"""

from __future__ import annotations


class VicError(Exception):
    """Base class: ``str(error)`` is the whole user-facing message."""


class SpecError(VicError):
    """Bad input: the message names the option and what is allowed."""

    def __init__(self, option, message):
        self.option = option
        super().__init__("%s: %s" % (option, message))


class NotFoundError(VicError):
    """An inventory object named in the input does not exist."""


class VSphereError(VicError):
    """A vSphere fault, turned into one sentence naming the object."""


class RefusedChangeError(VicError):
    """A change that cannot be made to an existing VCH in place."""
