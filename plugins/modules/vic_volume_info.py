#!/usr/bin/python
# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vic_volume_info
short_description: Inspect a Docker volume on a VCH
version_added: 0.2.0
description:
  - Returns a volume as C(docker volume inspect) shows it, and whether it exists, in one request.
  - Options and results are those of community.docker's C(docker_volume_info).
author:
  - vic.containers contributors (@vic-containers)
extends_documentation_fragment:
  - vic.containers.docker
  - vic.containers.attributes
  - vic.containers.docker.actiongroup_docker
  - vic.containers.attributes.info_module
options:
  name:
    description: Name of the volume.
    type: str
    required: true
    aliases: [volume_name]
seealso:
  - module: vic.containers.vic_volume
"""

EXAMPLES = r"""
- name: Read a volume
  vic.containers.vic_volume_info:
    name: pgdata
  register: pgdata

- name: Print its volume store
  ansible.builtin.debug:
    msg: "{{ pgdata.volume.Options.VolumeStore | default('default') }}"
  when: pgdata.exists
"""

RETURN = r"""
exists:
  description: Whether the volume exists.
  returned: always
  type: bool
  sample: true
volume:
  description: The volume as C(docker volume inspect) shows it; null when it does not exist.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vic.containers.plugins.module_utils.docker import volume
from ansible_collections.vic.containers.plugins.module_utils.docker_args import docker_argument_spec, run_docker


def main():
    argument_spec = dict(docker_argument_spec(), name=dict(type="str", required=True, aliases=["volume_name"]))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    found = run_docker(module, lambda client: volume.info(client, module.params["name"]))
    module.exit_json(changed=False, exists=found is not None, volume=found)


if __name__ == "__main__":
    main()
