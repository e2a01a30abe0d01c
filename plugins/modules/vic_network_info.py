#!/usr/bin/python
# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vic_network_info
short_description: Inspect a Docker network on a VCH
version_added: 0.2.0
description:
  - Returns a network as C(docker network inspect) shows it, and whether it exists, in one request.
  - Options and results are those of community.docker's C(docker_network_info).
author:
  - vic.containers contributors (@vic-containers)
extends_documentation_fragment:
  - vic.containers.docker
  - vic.containers.attributes
  - vic.containers.docker.actiongroup_docker
  - vic.containers.attributes.info_module
options:
  name:
    description: Name of the network.
    type: str
    required: true
    aliases: [network_name]
seealso:
  - module: vic.containers.vic_network
"""

EXAMPLES = r"""
- name: Read a network
  vic.containers.vic_network_info:
    name: web
  register: web

- name: Print its subnet
  ansible.builtin.debug:
    msg: "{{ web.network.IPAM.Config[0].Subnet }}"
  when: web.exists
"""

RETURN = r"""
exists:
  description: Whether the network exists.
  returned: always
  type: bool
  sample: true
network:
  description: The network as C(docker network inspect) shows it, its containers included; null when it does not exist.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vic.containers.plugins.module_utils.docker import network
from ansible_collections.vic.containers.plugins.module_utils.docker_args import docker_argument_spec, run_docker


def main():
    argument_spec = dict(docker_argument_spec(), name=dict(type="str", required=True, aliases=["network_name"]))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    found = run_docker(module, lambda client: network.info(client, module.params["name"]))
    module.exit_json(changed=False, exists=found is not None, network=found)


if __name__ == "__main__":
    main()
