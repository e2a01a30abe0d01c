#!/usr/bin/python
# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vic_vch_info
short_description: List and inspect virtual container hosts (VCHs)
version_added: 0.1.0
description:
  - Lists the VCHs of vSphere, of one datacenter or under one compute target (C(vic-machine ls)), or
    inspects one by name (C(vic-machine inspect) and C(inspect config)).
  - Each VCH comes with its configuration (no secrets; certificates as fingerprints), its endpoint
    address and Docker environment, its version and the container VMs it owns.
  - The whole inventory is read in one PropertyCollector call, however many VMs vSphere holds.
author:
  - vic.containers contributors (@vic-containers)
extends_documentation_fragment:
  - vic.containers.vsphere
  - vic.containers.attributes
  - vic.containers.attributes.actiongroup_vsphere
  - vic.containers.attributes.info_module
requirements:
  - pyvmomi
  - cryptography
options:
  name:
    description: Only the VCH with this name.
    type: str
  datacenter:
    description: Only the VCHs of this datacenter.
    type: str
  compute:
    description: Only the VCHs under this cluster, host or resource pool (a path as in M(vic.containers.vic_vch)).
    type: str
seealso:
  - module: vic.containers.vic_vch
"""

EXAMPLES = r"""
- name: List every VCH
  vic.containers.vic_vch_info:
  register: found

- name: Inspect one
  vic.containers.vic_vch_info:
    name: dev-team-vch
    datacenter: DC0
  register: one

- name: Print its Docker host
  ansible.builtin.debug:
    msg: "{{ one.vchs[0].docker_host }}"
"""

RETURN = r"""
vchs:
  description: The VCHs found, sorted by datacenter and name.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Managed object id of the endpoint VM.
      type: str
    name:
      description: VCH name.
      type: str
    uuid:
      description: VCH UUID.
      type: str
    datacenter:
      description: Datacenter name.
      type: str
    pool:
      description: Inventory path of the VCH vApp or resource pool.
      type: str
    endpoint_vm:
      description: Inventory path of the endpoint VM.
      type: str
    power_state:
      description: Power state of the endpoint VM.
      type: str
    docker_host:
      description: Docker API address, null until known.
      type: str
    docker_env:
      description: C(DOCKER_HOST) and C(DOCKER_TLS_VERIFY) for a client (add C(DOCKER_CERT_PATH)).
      type: dict
    docker_connection:
      description:
        - The connection options of the Docker modules for this VCH, for C(module_defaults) of
          C(group/vic.containers.docker); add C(ca_path), C(client_cert) and C(client_key) (this module
          does not know where the client certificates are).
        - Null until the endpoint address is known.
      type: dict
      sample:
        docker_host: tcp://10.0.0.5:2376
        tls: true
        validate_certs: true
    version:
      description: Version of vic.containers that created the VCH.
      type: str
    containers:
      description: The container VMs of the VCH (id, name, power_state).
      type: list
      elements: dict
    config:
      description: The VCH configuration (no secrets).
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vic.containers.plugins.module_utils.vch import engine
from ansible_collections.vic.containers.plugins.module_utils._module import run_vsphere
from ansible_collections.vic.containers.plugins.module_utils.vsphere_args import vsphere_argument_spec


def main():
    argument_spec = vsphere_argument_spec()
    argument_spec.update(name=dict(type="str"), datacenter=dict(type="str"), compute=dict(type="str"))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    vchs = run_vsphere(module, lambda session: engine.info(
        session, params["datacenter"], params["compute"], params["name"]))
    module.exit_json(changed=False, vchs=vchs)


if __name__ == "__main__":
    main()
