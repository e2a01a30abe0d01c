# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``docker update``: what vSphere can change of a container VM, in one ``ReconfigVM_Task``.

Memory and CPU limits are the VM's size (``memoryMB``, ``numCPUs``); the restart
policy is in the record. Both go in the same reconfigure, with the record that
keeps what was asked (so ``inspect`` shows the limits as given, 0 for none):
one ``ReconfigVM_Task`` and the reads that wait for its task, whatever changed.
A VM's size changes while it is powered off (container VMs are made without
CPU or memory hot-add), so a running container is refused, naming what to do.
"""

from ansible_collections.vic.containers.plugins.module_utils._errors import Conflict
from ansible_collections.vic.containers.plugins.module_utils.vch import actions
from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks
from ansible_collections.vic.containers.services.portlayer.containers import restart
from ansible_collections.vic.containers.services.portlayer.containers.model import record_values

try:
    from pyVmomi import vim
except ImportError:  # pragma: no cover - the endpoint's requirements install it
    vim = None

_TIMEOUT = 300


async def update(containers, container, host, size, current_size):
    """Give ``container`` the HostConfig ``host`` and the VM size ``size`` (vCPUs, memory MB); ``current_size``
    is what its record gave it. Nothing is called when nothing changes."""
    if host == container.host_config:
        return
    restart.validate(host)
    resized = size != current_size
    if resized and (container.running or containers.restarting(container.id)):
        raise Conflict("Cannot update container %s: its VM is running, and vSphere changes a container VM's "
                       "memory and CPUs while it is powered off; stop it, update it, then start it" % container.id)
    values = record_values(dict(container.record, host_config=host), containers.state.key)
    state = containers.state
    await state.call(_reconfigure, state.session, container.ref, container.props.get("name"), values,
                     size if resized else None)
    state.cache.put_extra_config(container.ref, values)


def _reconfigure(session, ref, name, values, size):
    what = "updating container VM %s" % name
    spec = vim.vm.ConfigSpec(extraConfig=actions.option_values(values))
    if size is not None:
        spec.numCPUs, spec.memoryMB = size
    tasks.wait(session, {tasks.call(what, ref.ReconfigVM_Task, spec): what}, _TIMEOUT)
