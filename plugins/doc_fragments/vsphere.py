# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The vSphere connection options, as community.vmware documents them.
    DOCUMENTATION = r"""
options:
  hostname:
    description:
      - The vCenter or ESXi host to manage.
      - If not set, the environment variable E(VMWARE_HOST) is used.
    type: str
  username:
    description:
      - The user name for vSphere.
      - If not set, the environment variable E(VMWARE_USER) is used.
    type: str
    aliases: [admin, user]
  password:
    description:
      - The password of O(username).
      - If not set, the environment variable E(VMWARE_PASSWORD) is used.
    type: str
    aliases: [pass, pwd]
  port:
    description:
      - The port of the vSphere API.
      - If not set, the environment variable E(VMWARE_PORT) is used.
    type: int
    default: 443
  validate_certs:
    description:
      - Whether to validate the vSphere server's TLS certificate.
      - Set V(false) only for a self-signed certificate you trust, such as the embedded simulator's.
      - If not set, the environment variable E(VMWARE_VALIDATE_CERTS) is used.
    type: bool
    default: true
"""
