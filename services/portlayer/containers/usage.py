# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What container VMs take on their datastores: Docker's ``SizeRw`` (``inspect --size``, ``system df``)."""

from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc

_UNSHARED = "summary.storage.unshared"


def own_sizes(session, refs):
    """{VM moid: bytes of its own files} (its read-write disk, logs; not the shared layer disks or volumes,
    which are not in its folder), in one PropertyCollector read however many VMs."""
    return {found.moid: int(found.get(_UNSHARED) or 0) for found in pc.retrieve_objects(session, list(refs), (_UNSHARED,))}
