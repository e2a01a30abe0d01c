# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Docker connection options and their DOCKER_* environment variables, once; private.

Names, aliases, defaults and variables are those of community.docker, so that
``module_defaults: group/vic.containers.docker`` and environments written for it
work unchanged. ``docker_args`` builds the argument spec from ``OPTIONS``;
``for_vch`` is the dict ``vic_vch`` returns for those module defaults.
Nothing here imports the Docker SDK: the VCH engine (and the endpoint) import it.
"""

from __future__ import annotations

import os

DEFAULT_HOST = "unix:///var/run/docker.sock"
DEFAULT_TIMEOUT = 60
# option -> (type, aliases, environment variable, default), as community.docker's docker fragment has them.
OPTIONS = {
    "docker_host": ("str", ["docker_url"], "DOCKER_HOST", DEFAULT_HOST),
    "tls": ("bool", [], "DOCKER_TLS", False),
    "validate_certs": ("bool", ["tls_verify"], "DOCKER_TLS_VERIFY", False),
    "ca_path": ("path", ["ca_cert", "tls_ca_cert", "cacert_path"], "DOCKER_CERT_PATH", None),
    "client_cert": ("path", ["tls_client_cert", "cert_path"], "DOCKER_CERT_PATH", None),
    "client_key": ("path", ["tls_client_key", "key_path"], "DOCKER_CERT_PATH", None),
    "api_version": ("str", ["docker_api_version"], "DOCKER_API_VERSION", "auto"),
    "timeout": ("int", [], "DOCKER_TIMEOUT", DEFAULT_TIMEOUT),
}
# DOCKER_CERT_PATH names a folder: each certificate option takes its file from it, as the docker CLI does.
CERT_FILES = {"ca_path": "ca.pem", "client_cert": "cert.pem", "client_key": "key.pem"}


def resolve(params, environ=None):
    """The connection options of validated ``params``, with DOCKER_CERT_PATH naming the certificates.

    Ansible's env_fallback fills the other options (``docker_args``); DOCKER_CERT_PATH
    names a folder while the options are files, so it is read here, as community.docker
    and the docker CLI read it. ``validate_certs`` implies ``tls``.
    """
    environ = os.environ if environ is None else environ
    resolved = {option: params.get(option) for option in OPTIONS}
    for option, name in CERT_FILES.items():
        if resolved[option] is None and environ.get("DOCKER_CERT_PATH"):
            resolved[option] = os.path.join(environ["DOCKER_CERT_PATH"], name)
    for option, (_kind, _aliases, _env, default) in OPTIONS.items():
        if resolved[option] is None:
            resolved[option] = default
    if resolved["validate_certs"]:
        resolved["tls"] = True
    return resolved


def for_vch(summary, tls, cert_path):
    """The connection options of a VCH (``observe.summary`` and its TLS record), for ``module_defaults``.

    Certificate files are named only when they exist in ``cert_path``; ``validate_certs``
    follows the VCH's client verification, as the DOCKER_TLS_VERIFY of its docker_env does.
    None when the endpoint address is not known yet.
    """
    host = summary.get("docker_host")
    if not host:
        return None
    tls = tls or {}
    connection = {"docker_host": host, "tls": bool(tls.get("enabled")),
                  "validate_certs": bool(tls.get("enabled") and tls.get("verify"))}
    if cert_path and tls.get("enabled"):
        for option, name in CERT_FILES.items():
            path = os.path.join(cert_path, name)
            if os.path.isfile(path):
                connection[option] = path
    return connection
