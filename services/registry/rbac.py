# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Who may do what: THE permission table, used by the management API and the token service alike.

Roles are Harbor's ids (1 projectAdmin, 2 developer, 3 guest, 4 maintainer, 5 limited guest); the
system admin holds every action everywhere; anyone, anonymous included, pulls from a public project."""

PROJECT_ADMIN, DEVELOPER, GUEST, MAINTAINER, LIMITED_GUEST = 1, 2, 3, 4, 5
ROLE_NAMES = {PROJECT_ADMIN: "projectAdmin", DEVELOPER: "developer", GUEST: "guest", MAINTAINER: "maintainer",
              LIMITED_GUEST: "limitedGuest"}

# Project-level actions. pull/push/delete are also Distribution's token actions.
PULL, PUSH, DELETE = "pull", "push", "delete"
READ = "read"                      # see the project, its repositories, artifacts and logs
READ_MEMBERS = "read-members"      # list members (Harbor: not for limited guests)
MANAGE = "manage"                  # members, metadata, quota, delete the project

_GUEST = frozenset({READ, READ_MEMBERS, PULL})
ROLE_ACTIONS = {
    PROJECT_ADMIN: _GUEST | {PUSH, DELETE, MANAGE},
    MAINTAINER: _GUEST | {PUSH, DELETE},
    DEVELOPER: _GUEST | {PUSH},
    GUEST: _GUEST,
    LIMITED_GUEST: frozenset({READ, PULL}),
}
ALL_ACTIONS = frozenset().union(*ROLE_ACTIONS.values())
PUBLIC_ACTIONS = frozenset({READ, PULL})
TOKEN_ACTIONS = (PULL, PUSH, DELETE)


def actions(sysadmin, role_id, public):
    """The project actions of a caller: ``sysadmin`` (bool), ``role_id`` (None: no member, anonymous
    included) on a project that is ``public`` or not."""
    if sysadmin:
        return ALL_ACTIONS
    held = ROLE_ACTIONS.get(role_id, frozenset())
    return held | PUBLIC_ACTIONS if public else held
