#!/usr/bin/python
# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vic_registry_project_info
short_description: Read a project of a VIC registry or a Harbor 2.x
version_added: 0.2.0
description:
  - Returns a project with its members and its storage quota, through the Harbor v2.0 API.
author:
  - vic.containers contributors (@vic-containers)
extends_documentation_fragment:
  - vic.containers.registry
  - vic.containers.attributes
  - vic.containers.attributes.info_module
  - vic.containers.registry.actiongroup_registry
options:
  name:
    description: Name of the project.
    type: str
    required: true
seealso:
  - module: vic.containers.vic_registry_project
"""

EXAMPLES = r"""
- name: Read a project
  vic.containers.vic_registry_project_info:
    registry_url: https://registry.example
    username: admin
    password: "{{ admin_pw }}"
    name: dev-team
  register: dev_team

- name: Who may push
  ansible.builtin.debug:
    msg: "{{ dev_team.project.members | selectattr('role', 'in', ['developer', 'maintainer', 'projectAdmin'])
             | map(attribute='user') }}"
  when: dev_team.exists
"""

RETURN = r"""
exists:
  description: Whether the project exists.
  returned: always
  type: bool
  sample: true
project:
  description:
    - The project as Harbor's C(GET /projects) shows it, with C(members) (C(user), C(role), C(id), C(entity_type)),
      C(storage_limit) (bytes, -1 for none) and C(storage_used) (bytes); null when it does not exist.
  returned: always
  type: dict
  sample:
    project_id: 3
    name: dev-team
    metadata: {public: "false"}
    members: [{user: admin, role: projectAdmin, id: 1, entity_type: u}]
    storage_limit: 10737418240
    storage_used: 0
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vic.containers.plugins.module_utils.registry import project
from ansible_collections.vic.containers.plugins.module_utils.registry_args import registry_argument_spec, run_registry


def main():
    argument_spec = dict(registry_argument_spec(), name=dict(type="str", required=True))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    found = run_registry(module, lambda client: project.info(client, module.params["name"]))
    module.exit_json(changed=False, exists=found is not None, project=found)


if __name__ == "__main__":
    main()
