#!/usr/bin/python
# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vic_image_info
short_description: Inspect Docker images on a VCH
version_added: 0.2.0
description:
  - Returns the named images that are there as C(docker image inspect) shows them, one request each;
    names that are not there are left out.
  - Without O(name), every image (one list request, then one inspect each).
  - Options and results are those of community.docker's C(docker_image_info).
author:
  - vic.containers contributors (@vic-containers)
extends_documentation_fragment:
  - vic.containers.docker
  - vic.containers.attributes
  - vic.containers.docker.actiongroup_docker
  - vic.containers.attributes.info_module
options:
  name:
    description: Image names (V(repository:tag), V(repository@digest)) or ids; a name without a tag means V(:latest).
    type: list
    elements: str
seealso:
  - module: vic.containers.vic_image
"""

EXAMPLES = r"""
- name: Is nginx 1.25 there?
  vic.containers.vic_image_info:
    name: registry.example/library/nginx:1.25
  register: found

- name: Say so
  ansible.builtin.debug:
    msg: "{{ 'present' if found.images else 'missing' }}"
"""

RETURN = r"""
images:
  description: The images found, as C(docker image inspect) shows them, in the order of O(name).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vic.containers.plugins.module_utils.docker import image
from ansible_collections.vic.containers.plugins.module_utils.docker_args import docker_argument_spec, run_docker


def main():
    argument_spec = dict(docker_argument_spec(), name=dict(type="list", elements="str"))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    images = run_docker(module, lambda client: image.info(client, module.params["name"]))
    module.exit_json(changed=False, images=images)


if __name__ == "__main__":
    main()
