# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The vSphere connection options (documented by the doc fragment vic.containers.vsphere).

Names, aliases, defaults and environment variables are those of community.vmware,
so playbooks and environments written for it work unchanged.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

# Options that have no default: the task or the environment must set them.
_REQUIRED = (
    ("hostname", "VMWARE_HOST"),
    ("username", "VMWARE_USER"),
    ("password", "VMWARE_PASSWORD"),
)

_CONNECTION_KEYS = ("hostname", "username", "password", "port", "validate_certs")


def vsphere_argument_spec():
    """Return a new argument spec of the connection options, with the VMWARE_* fallbacks."""
    return dict(
        hostname=dict(
            type="str",
            fallback=(env_fallback, ["VMWARE_HOST"]),
        ),
        username=dict(
            type="str",
            aliases=["admin", "user"],
            fallback=(env_fallback, ["VMWARE_USER"]),
        ),
        password=dict(
            type="str",
            aliases=["pass", "pwd"],
            no_log=True,
            fallback=(env_fallback, ["VMWARE_PASSWORD"]),
        ),
        port=dict(
            type="int",
            default=443,
            fallback=(env_fallback, ["VMWARE_PORT"]),
        ),
        validate_certs=dict(
            type="bool",
            default=True,
            fallback=(env_fallback, ["VMWARE_VALIDATE_CERTS"]),
        ),
    )


def vsphere_connection_params(module_params):
    """Return the connection options of validated module parameters as a dict.

    The keys are hostname, username, password, port and validate_certs.
    Raises ValueError naming the option and its environment variable when
    hostname, username or password is set neither in the task nor in the
    environment.
    """
    missing = [
        "%s (or the environment variable %s)" % (option, env)
        for option, env in _REQUIRED
        if not module_params.get(option)
    ]
    if missing:
        raise ValueError("missing required vSphere connection option%s: %s" % (
            "s" if len(missing) > 1 else "", ", ".join(missing)))
    params = {key: module_params.get(key) for key in _CONNECTION_KEYS}
    if params["port"] is None:
        params["port"] = 443
    if params["validate_certs"] is None:
        params["validate_certs"] = True
    return params
