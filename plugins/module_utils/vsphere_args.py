# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The vSphere connection options (documented by the doc fragment vic.containers.vsphere).

Names, aliases, defaults and environment variables are those of community.vmware,
so playbooks and environments written for it work unchanged.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

from ansible_collections.vic.containers.plugins.module_utils.vsphere import connection


def vsphere_argument_spec():
    """Return a new argument spec of the connection options, with the VMWARE_* fallbacks."""
    spec = dict(
        hostname=dict(type="str"),
        username=dict(type="str", aliases=["admin", "user"]),
        password=dict(type="str", aliases=["pass", "pwd"], no_log=True),
        port=dict(type="int"),
        validate_certs=dict(type="bool"),
    )
    for option, (env, default) in connection.OPTIONS.items():
        spec[option]["fallback"] = (env_fallback, [env])
        if default is not None:
            spec[option]["default"] = default
    return spec


def vsphere_connection_params(module_params):
    """Return the connection options of validated module parameters as a dict.

    The keys are hostname, username, password, port and validate_certs.
    Raises ValueError naming the option and its environment variable when
    hostname, username or password is set neither in the task nor in the
    environment.
    """
    return connection.connection_params(module_params)
