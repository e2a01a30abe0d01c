# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one place where engine errors become ``fail_json``; private to the collection."""

from __future__ import annotations

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.vic.containers.plugins.module_utils._errors import VicError
from ansible_collections.vic.containers.plugins.module_utils.vsphere import session as vsphere
from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks
from ansible_collections.vic.containers.plugins.module_utils.vsphere_args import vsphere_connection_params

try:
    from pyVmomi import vmodl
except ImportError:  # pragma: no cover - reported below
    vmodl = None


def run_vsphere(module, work):
    """Log in, call ``work(session)`` and return what it returns; fail the module on errors."""
    if not vsphere.HAS_PYVMOMI:
        module.fail_json(msg=missing_required_lib("pyvmomi"), exception=str(vsphere.PYVMOMI_IMPORT_ERROR))
    try:
        connection = vsphere_connection_params(module.params)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    try:
        with vsphere.Session(**connection) as session:
            return work(session)
    except VicError as exc:
        module.fail_json(msg=str(exc))
    except vmodl.MethodFault as fault:
        module.fail_json(msg=tasks.fault_message(fault, "the request"))
