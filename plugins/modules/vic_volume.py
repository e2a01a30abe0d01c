#!/usr/bin/python
# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vic_volume
short_description: Create, recreate and remove Docker volumes on a VCH
version_added: 0.2.0
description:
  - Creates a volume (C(docker volume create)), recreates it when its options differ and O(recreate) says so,
    and removes it (C(docker volume rm)).
  - On a VCH a volume is a VMDK in a labelled volume store; O(driver_options) pick the store
    (C(VolumeStore)) and the size (C(Capacity)).
  - Options and results are those of community.docker's C(docker_volume); any Docker API endpoint works.
  - A volume that containers use is never removed or recreated; the module fails naming how many use it.
author:
  - vic.containers contributors (@vic-containers)
extends_documentation_fragment:
  - vic.containers.docker
  - vic.containers.attributes
  - vic.containers.docker.actiongroup_docker
attributes:
  check_mode:
    support: full
    details:
      - Predicts exactly the changes a real run makes (returned in RV(changes)).
  diff_mode:
    support: full
    details:
      - Shows the compared options (driver, driver options, labels) before and after.
  idempotent:
    support: full
options:
  name:
    description: Name of the volume.
    type: str
    required: true
    aliases: [volume_name]
  state:
    description: V(present) creates the volume when it is missing; V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  driver:
    description:
      - Volume driver. A VCH has V(vsphere) and takes V(local), community.docker's default, as its alias;
        the two compare equal.
    type: str
    default: local
  driver_options:
    description:
      - Driver options (C(docker volume create --opt)). On a VCH C(VolumeStore) is the label of the volume store
        (default V(default)) and C(Capacity) the size (V(512MB), V(4GB); default 1GB).
      - Only the options given are compared.
    type: dict
    aliases: [driver_opts]
  labels:
    description: Labels of the volume; only the labels given are compared.
    type: dict
  recreate:
    description:
      - V(never) keeps an existing volume whatever its options (a difference is a warning);
        V(options-changed) recreates it when O(driver), O(driver_options) or O(labels) differ;
        V(always) recreates it every run.
      - Recreating removes the volume and its data first; a volume in use is refused.
    type: str
    choices: [never, options-changed, always]
    default: never
seealso:
  - module: vic.containers.vic_volume_info
  - module: vic.containers.vic_container
"""

EXAMPLES = r"""
- name: A 4 GB volume in the backup volume store
  vic.containers.vic_volume:
    name: pgdata
    driver_options:
      Capacity: 4GB
      VolumeStore: backup
    labels:
      team: dev
    recreate: options-changed

- name: Remove it
  vic.containers.vic_volume:
    name: pgdata
    state: absent
"""

RETURN = r"""
changes:
  description: The changes made, or with check mode the changes a real run would make, in order.
  returned: always
  type: list
  elements: str
  sample: ["create volume pgdata"]
volume:
  description: The volume as C(docker volume inspect) shows it; null when it does not exist.
  returned: always
  type: dict
  sample:
    Name: pgdata
    Driver: vsphere
    Labels: {team: dev}
    Options: {Capacity: 4GB, VolumeStore: backup}
    Scope: local
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vic.containers.plugins.module_utils.docker import volume
from ansible_collections.vic.containers.plugins.module_utils.docker_args import docker_argument_spec, run_engine


def main():
    module = AnsibleModule(argument_spec=dict(docker_argument_spec(), **volume.argument_spec()),
                           supports_check_mode=True)
    result, _plan = run_engine(module, volume, "volume")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
