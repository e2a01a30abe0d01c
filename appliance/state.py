# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What one endpoint knows of its VCH: its record, secrets and vSphere session.

Everything here is read from vSphere at start (decision 1: the endpoint keeps
nothing it cannot rebuild). Blocking vSphere and datastore calls run on a small
thread pool so the event loop keeps serving while they wait.
"""

import asyncio
import concurrent.futures
import functools
import logging

from ansible_collections.vic.containers.plugins.module_utils import _vch_observe as observe

_VSPHERE_WORKERS = 4
LOG = logging.getLogger("vic.endpoint")


class VchState:
    """The VCH an endpoint serves. The port layer parts attach themselves as attributes."""

    def __init__(self, session, vch, key, secrets):
        self.session = session
        self.vch = vch
        self.config = vch.config
        self.key = key
        self.secrets = secrets
        self.name = vch.config["name"]
        self.uuid = vch.config["uuid"]
        self.datacenter = vch.inventory.datacenter_of(vch.pool).get("name")
        self.datacenter_ref = vch.inventory.datacenter_of(vch.pool).ref
        self.pool_ref = vch.pool.ref
        self.endpoint_vm_ref = vch.vm.ref
        self.vm_folder_ref = vch.inventory.datacenter_of(vch.pool).get("vmFolder")
        self.is_vapp = vch.pool.type == "VirtualApp"
        self.image_store = observe.image_store_folder(vch.config)     # (datastore, "<path>/VIC/<uuid>")
        self.volume_stores = {label: observe.volume_store_folder(store)  # label -> (datastore, folder)
                              for label, store in (vch.config.get("volume_stores") or {}).items()}
        self._pool = concurrent.futures.ThreadPoolExecutor(_VSPHERE_WORKERS, thread_name_prefix="vsphere")
        self._background = set()

    async def call(self, func, *args, **kwargs):
        """Run a blocking call (pyvmomi, datastore transfer) off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(func, *args, **kwargs))

    def spawn(self, coroutine):
        """Run ``coroutine`` in the background (from a callback on the event loop); failures are logged."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task):
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOG.warning("background work failed: %s", task.exception())

    def close(self):
        self._pool.shutdown(wait=False, cancel_futures=True)
