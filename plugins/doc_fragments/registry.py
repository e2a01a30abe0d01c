# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The registry connection options; plugins/module_utils/registry_args.py holds the matching argument spec.
    DOCUMENTATION = r"""
options:
  registry_url:
    description:
      - The URL of the registry's management API, without C(/api/v2.0), for example V(https://registry.example).
      - A VIC registry or a Harbor 2.x.
      - If the value is not specified in the task, the value of the environment variable E(VIC_REGISTRY_URL) is used instead.
    type: str
    required: true
    aliases: [url]
  username:
    description:
      - The user to log in as (basic auth); a system admin or the project's admin for changes.
      - If the value is not specified in the task, the value of the environment variable E(VIC_REGISTRY_USER) is used instead.
    type: str
    aliases: [user]
  password:
    description:
      - The password of O(username).
      - If the value is not specified in the task, the value of the environment variable E(VIC_REGISTRY_PASSWORD) is used instead.
    type: str
  validate_certs:
    description:
      - Verify the registry's TLS certificate against O(ca_path) (or the system's CAs without it).
      - If the value is not specified in the task, the value of the environment variable E(VIC_REGISTRY_VALIDATE_CERTS) is used instead.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file of the CA certificates that sign the registry's certificate.
      - If the value is not specified in the task, the value of the environment variable E(VIC_REGISTRY_CA_PATH) is used instead.
    type: path
  timeout:
    description:
      - Seconds to wait for an answer of the registry.
      - If the value is not specified in the task, the value of the environment variable E(VIC_REGISTRY_TIMEOUT) is used instead.
    type: int
    default: 30
"""

    ACTIONGROUP_REGISTRY = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/vic.containers.registry) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - vic.containers.registry
"""
