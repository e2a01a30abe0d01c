# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The Docker connection options, named, aliased and defaulted as community.docker's
    # community.docker.docker fragment has them (without tls_hostname, use_ssh_client and debug).
    # plugins/module_utils/docker_args.py holds the matching argument spec.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The URL or Unix socket path of the Docker API, V(tcp://address:2376) for a VCH.
      - M(vic.containers.vic_vch) returns the whole connection as RV(vic.containers.vic_vch#module:vch.docker_connection),
        ready for C(module_defaults) of C(group/vic.containers.docker).
      - If the value is not specified in the task, the value of the environment variable E(DOCKER_HOST) is used instead.
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  tls:
    description:
      - Use TLS without verifying the server's certificate; O(validate_certs=true) verifies it.
      - If the value is not specified in the task, the value of the environment variable E(DOCKER_TLS) is used instead.
    type: bool
    default: false
  validate_certs:
    description:
      - Use TLS and verify the server's certificate against O(ca_path).
      - If the value is not specified in the task, the value of the environment variable E(DOCKER_TLS_VERIFY) is used instead.
    type: bool
    default: false
    aliases: [tls_verify]
  ca_path:
    description:
      - The CA certificate that signs the server's certificate.
      - If the value is not specified in the task and the environment variable E(DOCKER_CERT_PATH) is set,
        the file C(ca.pem) of that folder is used.
    type: path
    aliases: [ca_cert, tls_ca_cert, cacert_path]
  client_cert:
    description:
      - The client certificate, which a VCH with client verification requires.
      - If the value is not specified in the task and the environment variable E(DOCKER_CERT_PATH) is set,
        the file C(cert.pem) of that folder is used.
    type: path
    aliases: [tls_client_cert, cert_path]
  client_key:
    description:
      - The key of O(client_cert).
      - If the value is not specified in the task and the environment variable E(DOCKER_CERT_PATH) is set,
        the file C(key.pem) of that folder is used.
    type: path
    aliases: [tls_client_key, key_path]
  api_version:
    description:
      - The Docker API version to speak, or V(auto) to speak the server's (capped at the Docker SDK's).
      - V(auto) costs no request of its own; the first answer's C(Api-Version) header sets it.
      - If the value is not specified in the task, the value of the environment variable E(DOCKER_API_VERSION) is used instead.
    type: str
    default: auto
    aliases: [docker_api_version]
  timeout:
    description:
      - Seconds to wait for an answer of the Docker API.
      - If the value is not specified in the task, the value of the environment variable E(DOCKER_TIMEOUT) is used instead.
    type: int
    default: 60
requirements:
  - Docker SDK for Python (C(docker)) >= 7.0.0
"""

    # The action group attribute; in this fragment because attributes.py belongs to the vSphere modules' work.
    ACTIONGROUP_DOCKER = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/vic.containers.docker) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - vic.containers.docker
"""
