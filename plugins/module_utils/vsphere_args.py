# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The vSphere connection options, as community.vmware has them (doc fragment vic.containers.vsphere)."""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback


def vsphere_argument_spec():
    """Connection options with the VMWARE_* environment fallbacks."""
    return dict(
        hostname=dict(type="str", fallback=(env_fallback, ["VMWARE_HOST"])),
        username=dict(type="str", aliases=["admin", "user"], fallback=(env_fallback, ["VMWARE_USER"])),
        password=dict(type="str", aliases=["pass", "pwd"], no_log=True,
                      fallback=(env_fallback, ["VMWARE_PASSWORD"])),
        port=dict(type="int", default=443, fallback=(env_fallback, ["VMWARE_PORT"])),
        validate_certs=dict(type="bool", default=True, fallback=(env_fallback, ["VMWARE_VALIDATE_CERTS"])),
    )


def vsphere_connection_params(params):
    """The connection keyword arguments; ValueError names an option that is still missing."""
    for option, env in (("hostname", "VMWARE_HOST"), ("username", "VMWARE_USER"), ("password", "VMWARE_PASSWORD")):
        if not params.get(option):
            raise ValueError("%s is required: set the option or the %s environment variable." % (option, env))
    return {key: params[key] for key in ("hostname", "username", "password", "port", "validate_certs")}
