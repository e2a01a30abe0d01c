# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Waiting for vSphere tasks and turning faults into sentences; private to the collection.

Task state is read with the PropertyCollector (``info.state``, ``info.error``,
``info.result``) rather than ``Task.info``: one call covers every task under
way, and it avoids the ``info.entity`` that pyvmomi rejects from vcsim 0.24.
"""

from __future__ import annotations

import time

from ansible_collections.vic.containers.plugins.module_utils._errors import VSphereError
from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc

try:
    from pyVmomi import vmodl
except ImportError:  # pragma: no cover - reported by the module
    vmodl = None

TASK_PATHS = ("info.state", "info.error", "info.result")
# Short first waits: simulator and most real tasks finish within a second,
# and each poll is a round trip.
_BACKOFF = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0)


def wait(session, tasks, timeout=180, ignore=()):
    """Wait for ``tasks`` (a dict of task -> inventory path or description).

    Returns the results in the same order; the first failed task raises
    VSphereError naming its object, unless its fault is named in ``ignore``
    (e.g. ``FileNotFound`` when deleting what may already be gone).
    """
    pending = dict(tasks)
    results = {}
    deadline = time.monotonic() + timeout
    attempt = 0
    while pending:
        for obj in pc.retrieve_objects(session, list(pending), TASK_PATHS):
            state = obj.get("info.state")
            if state in ("success", "error"):
                task = next(t for t in pending if t._moId == obj.moid)
                what = pending.pop(task)
                if state == "error" and fault_name(obj.get("info.error")) not in ignore:
                    raise VSphereError(fault_message(obj.get("info.error"), what))
                results[task._moId] = obj.get("info.result")
        if not pending:
            break
        if time.monotonic() > deadline:
            raise VSphereError("Timed out after %ss waiting for vSphere: %s."
                               % (timeout, ", ".join(sorted(pending.values()))))
        time.sleep(_BACKOFF[min(attempt, len(_BACKOFF) - 1)])
        attempt += 1
    return [results[t._moId] for t in tasks]


def fault_message(fault, what):
    """One sentence: what failed, on which object, and vSphere's reason."""
    if fault is None:
        return "vSphere failed on %s." % what
    fault = getattr(fault, "fault", fault)  # LocalizedMethodFault wraps the fault
    name = fault_name(fault)
    detail = getattr(fault, "msg", None) or getattr(fault, "localizedMessage", None) or ""
    if not detail and getattr(fault, "faultMessage", None):
        detail = "; ".join(m.message for m in fault.faultMessage if getattr(m, "message", None))
    if getattr(fault, "file", None):
        # File faults (FileNotFound, FileAlreadyExists, ...) name the file: the useful part.
        detail = "%s%s" % (fault.file, (": " + detail) if detail and fault.file not in detail else "")
    detail = detail.strip().rstrip(".")
    return "vSphere refused %s: %s%s." % (what, name, (" (%s)" % detail) if detail else "")


def fault_name(fault):
    """``FileNotFound`` for ``vim.fault.FileNotFound`` (or a LocalizedMethodFault of it)."""
    fault = getattr(fault, "fault", fault)
    return type(fault).__name__.split(".")[-1] if fault is not None else None


def call(what, func, *args, **kwargs):
    """Run a vSphere call, turning its fault into a VSphereError naming ``what``."""
    try:
        return func(*args, **kwargs)
    except vmodl.MethodFault as fault:
        raise VSphereError(fault_message(fault, what))
