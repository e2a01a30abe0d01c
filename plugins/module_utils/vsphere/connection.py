# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The vSphere connection options and their VMWARE_* environment variables, once; private.

Names and variables are those of community.vmware. ``vsphere_args`` builds the
modules' argument spec from ``OPTIONS``; the endpoint reads the same variables
with ``from_environment``.
"""

from __future__ import annotations

# option -> (environment variable, default); no default means the task or the environment must set it.
OPTIONS = {
    "hostname": ("VMWARE_HOST", None),
    "username": ("VMWARE_USER", None),
    "password": ("VMWARE_PASSWORD", None),
    "port": ("VMWARE_PORT", 443),
    "validate_certs": ("VMWARE_VALIDATE_CERTS", True),
}
_REQUIRED = ("hostname", "username", "password")
# What Ansible's boolean() accepts, so VMWARE_VALIDATE_CERTS reads the same for the endpoint as for a module.
_TRUE = frozenset(("y", "yes", "on", "1", "true", "t"))
_FALSE = frozenset(("n", "no", "off", "0", "false", "f", ""))


def connection_params(params):
    """The connection options of ``params`` as a dict (hostname, username, password, port, validate_certs).

    Raises ValueError naming the option and its environment variable when
    hostname, username or password is set neither in the task nor in the
    environment.
    """
    missing = ["%s (or the environment variable %s)" % (option, OPTIONS[option][0])
               for option in _REQUIRED if not params.get(option)]
    if missing:
        raise ValueError("missing required vSphere connection option%s: %s" % (
            "s" if len(missing) > 1 else "", ", ".join(missing)))
    return {option: default if params.get(option) is None else params[option]
            for option, (_env, default) in OPTIONS.items()}


def from_environment(environ):
    """``connection_params`` of the VMWARE_* variables in ``environ`` (a process's environment)."""
    params = {option: environ.get(env) for option, (env, _default) in OPTIONS.items()}
    if params["port"] is not None:
        try:
            params["port"] = int(params["port"])
        except ValueError:
            raise ValueError("VMWARE_PORT must be a port number, not %r" % params["port"])
    if params["validate_certs"] is not None:
        params["validate_certs"] = _boolean("VMWARE_VALIDATE_CERTS", params["validate_certs"])
    return connection_params(params)


def _boolean(name, text):
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("%s must be a boolean (yes/no, true/false, 1/0), not %r" % (name, text))
