#!/usr/bin/python
# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vic_registry_project
short_description: Create, change and delete projects of a VIC registry or a Harbor 2.x
version_added: 0.2.0
description:
  - Creates a registry project, sets its metadata (O(public) and others), its members and their roles and its
    storage limit, and deletes it.
  - Speaks only the Harbor v2.0 API (projects, members, user search, quotas), so the same task manages a project on
    a VIC registry and on an existing Harbor 2.x.
  - Only the options a task gives are compared; O(metadata) compares the keys given.
  - A project that still holds repositories is not deleted; the module fails saying so (check mode too).
author:
  - vic.containers contributors (@vic-containers)
extends_documentation_fragment:
  - vic.containers.registry
  - vic.containers.attributes
  - vic.containers.registry.actiongroup_registry
attributes:
  check_mode:
    support: full
    details:
      - Predicts exactly the changes a real run makes (returned in RV(changes)), an unknown member included.
  diff_mode:
    support: full
    details:
      - Shows the compared metadata, members and storage limit before and after.
  idempotent:
    support: full
options:
  name:
    description: Name of the project (lower case letters, digits and C(._-)).
    type: str
    required: true
  state:
    description: V(present) creates or changes the project; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  public:
    description:
      - Whether anyone, anonymous users included, may pull from the project (Harbor's C(public) metadata).
      - A new project is private unless this says otherwise.
    type: bool
  metadata:
    description:
      - Harbor's project metadata (C(auto_scan), C(severity), ...); booleans become Harbor's V("true") / V("false").
      - Only the keys given are compared. Give C(public) here or as O(public), not both.
    type: dict
  members:
    description:
      - Users who are members of the project, with their role. Members not listed stay unless O(purge_members).
      - The user who creates a project becomes its project admin, as Harbor does.
    type: list
    elements: dict
    suboptions:
      user:
        description: The user's name; the user must exist on the registry.
        type: str
        required: true
      role:
        description: Harbor's role.
        type: str
        required: true
        choices: [projectAdmin, maintainer, developer, guest, limitedGuest]
  purge_members:
    description:
      - Remove the members that O(members) does not list (with no O(members), every member), the project's
        creator included. Group members are left alone.
    type: bool
    default: false
  storage_limit:
    description:
      - The project's storage quota, V(-1) for none, or a size with a binary unit (V(10GB) is 10 GiB, V(512MB))
        or a number of bytes.
      - Setting it needs a system admin.
    type: raw
seealso:
  - module: vic.containers.vic_registry_project_info
"""

EXAMPLES = r"""
- name: A private project for the dev team
  vic.containers.vic_registry_project:
    registry_url: https://registry.example
    username: admin
    password: "{{ admin_pw }}"
    name: dev-team
    public: false
    members:
      - {user: alice, role: developer}
      - {user: bob, role: guest}
    storage_limit: 10GB

- name: Only these members, whoever else was added by hand
  vic.containers.vic_registry_project:
    name: dev-team
    members:
      - {user: admin, role: projectAdmin}
      - {user: alice, role: maintainer}
    purge_members: true

- name: Delete it (refused while it holds repositories)
  vic.containers.vic_registry_project:
    name: dev-team
    state: absent
"""

RETURN = r"""
changes:
  description: The changes made, or with check mode the changes a real run would make, in order.
  returned: always
  type: list
  elements: str
  sample: ["create project dev-team", "add member alice to project dev-team as developer"]
project:
  description: The project as Harbor's C(GET /projects) shows it; null when it does not exist.
  returned: always
  type: dict
  sample:
    project_id: 3
    name: dev-team
    owner_name: admin
    repo_count: 0
    metadata: {public: "false"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vic.containers.plugins.module_utils.registry import project
from ansible_collections.vic.containers.plugins.module_utils.registry_args import registry_argument_spec, run_engine


def main():
    module = AnsibleModule(argument_spec=dict(registry_argument_spec(), **project.argument_spec()),
                           supports_check_mode=True)
    module.exit_json(**run_engine(module, project, "project"))


if __name__ == "__main__":
    main()
