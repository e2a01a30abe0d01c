# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``[datastore] path`` strings: built by ds_path, read back by parse_ds_path."""

import pytest

from ansible_collections.vic.containers.plugins.module_utils.vsphere.datastore import ds_path, parse_ds_path


@pytest.mark.parametrize("datastore, path", [("LocalDS_0", "web-0123456789ab"), ("my ds", "a b/c.vmdk"),
                                             ("ds", "")])
def test_a_built_path_reads_back_as_its_parts(datastore, path):
    assert parse_ds_path(ds_path(datastore, path)) == (datastore, path)


def test_a_container_vm_folder_reads_as_its_datastore_and_folder():
    assert parse_ds_path("[LocalDS_0] web-0123456789ab") == ("LocalDS_0", "web-0123456789ab")
    assert parse_ds_path("[ds]") == ("ds", "")


def test_spaces_after_the_datastore_are_not_part_of_the_path():
    # Users write these by hand in module options (appliance_iso, image_store); vSphere writes one space.
    assert parse_ds_path("[ds]folder/x.iso") == ("ds", "folder/x.iso")
    assert parse_ds_path("[ds]   folder/") == ("ds", "folder")


@pytest.mark.parametrize("text", ["LocalDS_0 folder", "", "[] folder", None])
def test_text_that_is_not_a_datastore_path_is_refused(text):
    with pytest.raises(ValueError, match="not a datastore path"):
        parse_ds_path(text)
