# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The vSphere connection options, named and defaulted as community.vmware's
    # vmware.documentation fragment has them (without the proxy options).
    # plugins/module_utils/vsphere_args.py holds the matching argument spec.
    DOCUMENTATION = r"""
options:
  hostname:
    description:
      - The host name or IP address of the vCenter Server or ESXi host to manage.
      - If the value is not specified in the task, the value of the environment variable E(VMWARE_HOST) is used instead.
      - The module fails if neither is set.
    type: str
    required: false
  username:
    description:
      - The user name of the vSphere account.
      - If the value is not specified in the task, the value of the environment variable E(VMWARE_USER) is used instead.
      - The module fails if neither is set.
    type: str
    required: false
    aliases: [admin, user]
  password:
    description:
      - The password of the vSphere account O(username).
      - If the value is not specified in the task, the value of the environment variable E(VMWARE_PASSWORD) is used instead.
      - The module fails if neither is set.
    type: str
    required: false
    aliases: [pass, pwd]
  port:
    description:
      - The TCP port of the vSphere API.
      - If the value is not specified in the task, the value of the environment variable E(VMWARE_PORT) is used instead.
    type: int
    default: 443
  validate_certs:
    description:
      - Whether to validate the TLS certificate of the vSphere server.
      - Set to V(false) only for a self-signed certificate you trust, such as the one of a test simulator.
      - If the value is not specified in the task, the value of the environment variable E(VMWARE_VALIDATE_CERTS) is used instead.
    type: bool
    default: true
"""
