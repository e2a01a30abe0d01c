#!/usr/bin/python
# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vic_network
short_description: Create, recreate and remove Docker networks on a VCH and connect containers to them
version_added: 0.2.0
description:
  - Creates a network (C(docker network create)), recreates it when its options differ, connects and disconnects
    containers (C(docker network connect) / C(disconnect)), and removes it (C(docker network rm)).
  - On a VCH a network made this way is a C(bridge) network on the VCH's bridge port group, on its own subnet
    (given in O(ipam_config), else the next free one of the VCH's bridge range); containers on it resolve each other
    by name. The VCH's container networks (port groups given to M(vic.containers.vic_vch)) are listed by Docker
    too but made by M(vic.containers.vic_vch), not here.
  - Options and results are those of community.docker's C(docker_network); any Docker API endpoint works.
  - Unlike C(docker_network), a task without O(connected) leaves the network's containers as they are, and a network
    with containers on it is removed or recreated only with O(force=true); a recreated network gets back the
    containers that stay on it.
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
      - Shows the compared options and the connected containers before and after.
  idempotent:
    support: full
options:
  name:
    description: Name of the network.
    type: str
    required: true
    aliases: [network_name]
  state:
    description: V(present) creates the network when it is missing; V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  driver:
    description: Network driver. A VCH makes V(bridge) networks; it refuses any other, naming it.
    type: str
    default: bridge
  driver_options:
    description: Driver options (C(docker network create --opt)); only the options given are compared.
    type: dict
  ipam_driver:
    description: IPAM driver. A VCH has V(default) only.
    type: str
  ipam_config:
    description:
      - The network's address pools (C(--subnet), C(--gateway), C(--ip-range), C(--aux-address)); a VCH uses the first.
      - Only the keys given are compared, so a gateway the VCH chose is no difference when none is asked for.
    type: list
    elements: dict
    suboptions:
      subnet:
        description: Subnet in CIDR form.
        type: str
      gateway:
        description: Gateway of the subnet (default its first address).
        type: str
      iprange:
        description: The range containers' addresses are taken from, in CIDR form, inside the subnet.
        type: str
      aux_addresses:
        description: Addresses of the subnet no container gets, by name.
        type: dict
  internal:
    description: Whether the network is internal (no gateway out).
    type: bool
  enable_ipv6:
    description: A VCH's networks are IPv4 only; V(true) is refused.
    type: bool
  labels:
    description: Labels of the network; only the labels given are compared.
    type: dict
  connected:
    description:
      - Names or ids of the containers that must be on the network; the others are disconnected unless O(appends=true).
      - When not given, the task leaves the network's containers as they are.
    type: list
    elements: str
    aliases: [containers]
  appends:
    description: Connect the containers of O(connected) and leave the others on the network.
    type: bool
    default: false
    aliases: [incremental]
  force:
    description:
      - Remove (O(state=absent)) or recreate (options differ) a network that has containers on it, disconnecting them
        first. Without it, the task fails naming them and changes nothing.
    type: bool
    default: false
seealso:
  - module: vic.containers.vic_network_info
  - module: vic.containers.vic_container
"""

EXAMPLES = r"""
- name: A network of its own subnet for the web tier
  vic.containers.vic_network:
    name: web
    ipam_config:
      - subnet: 172.30.8.0/24
        iprange: 172.30.8.128/25
    labels:
      tier: web

- name: Put two containers on it, leaving any other there
  vic.containers.vic_network:
    name: web
    connected: [frontend, api]
    appends: true

- name: Remove it, disconnecting whatever is still on it
  vic.containers.vic_network:
    name: web
    state: absent
    force: true
"""

RETURN = r"""
changes:
  description: The changes made, or with check mode the changes a real run would make, in order.
  returned: always
  type: list
  elements: str
  sample: ["create network web", "connect container frontend to network web"]
network:
  description: The network as C(docker network inspect) shows it; null when it does not exist.
  returned: always
  type: dict
  sample:
    Name: web
    Driver: bridge
    IPAM: {Driver: default, Config: [{Subnet: 172.30.8.0/24, Gateway: 172.30.8.1, IPRange: 172.30.8.128/25}]}
    Labels: {tier: web}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vic.containers.plugins.module_utils.docker import network
from ansible_collections.vic.containers.plugins.module_utils.docker_args import docker_argument_spec, run_engine


def main():
    module = AnsibleModule(argument_spec=dict(docker_argument_spec(), **network.argument_spec()),
                           supports_check_mode=True)
    result, _plan = run_engine(module, network, "network")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
