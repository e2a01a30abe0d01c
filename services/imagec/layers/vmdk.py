# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The descriptor of a layer disk: a flat VMDK (``<id>.vmdk`` naming the raw extent ``<id>-flat.vmdk``)
as ESXi writes one, so vSphere attaches the disk like any other."""


def descriptor(layer_id, capacity_bytes):
    """The descriptor ESXi writes for a flat disk: ``<id>.vmdk`` naming the extent ``<id>-flat.vmdk``."""
    sectors = capacity_bytes // 512
    cylinders = max(1, min(65535, sectors // (255 * 63)))
    return (
        "# Disk DescriptorFile\n"
        "version=1\n"
        'encoding="UTF-8"\n'
        "CID=%s\n"
        "parentCID=ffffffff\n"
        'createType="vmfs"\n'
        "\n"
        "# Extent description\n"
        'RW %d VMFS "%s-flat.vmdk"\n'
        "\n"
        "# The Disk Data Base\n"
        "#DDB\n"
        "\n"
        'ddb.adapterType = "lsilogic"\n'
        'ddb.geometry.cylinders = "%d"\n'
        'ddb.geometry.heads = "255"\n'
        'ddb.geometry.sectors = "63"\n'
        'ddb.longContentID = "%s"\n'
        'ddb.uuid = "%s"\n'
        'ddb.virtualHWVersion = "13"\n'
    ) % (layer_id[:8], sectors, layer_id, cylinders, layer_id[:32], _ddb_uuid(layer_id))


def _ddb_uuid(layer_id):
    """``ddb.uuid`` as ESXi writes it: 16 hex bytes, space separated, a dash after the eighth."""
    pairs = [layer_id[i:i + 2] for i in range(0, 32, 2)]
    return " ".join(pairs[:8]) + "-" + " ".join(pairs[8:])
