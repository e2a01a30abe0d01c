# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which of the folders a VCH made go with it (issue 12): those holding nothing but the way to the folders
being deleted. The listings are what SearchDatastoreSubFolders answers (folder -> entry names); the
system tests (tests/integration/targets/vic_vch, test_round_trips) run the same against vcsim."""

from ansible_collections.vic.containers.plugins.module_utils.vch import observe

UUID = "8016b26e-77a7-5a8c-ad8a-f65adb20e3ad"


def test_a_folder_made_above_a_store_goes_when_it_holds_only_the_store():
    leaves = [("nfs0", "vols/volumes")]
    trees = {("nfs0", "vols"): {"vols": ["volumes"], "vols/volumes": ["v1"], "vols/volumes/v1": ["v1.vmdk"]}}
    assert observe.removable([("nfs0", "vols")], leaves, trees) == [("nfs0", "vols")]


def test_a_folder_with_someone_elses_file_stays_and_so_do_the_ones_above_it():
    leaves = [("ds", "a/b/volumes")]
    trees = {("ds", "a"): {"a": ["b", "notes.txt"], "a/b": ["volumes"], "a/b/volumes": []}}
    # The VCH made a and a/b; a holds notes.txt: only a/b goes.
    assert observe.removable([("ds", "a")], leaves, trees) == [("ds", "a/b")]


def test_an_empty_folder_of_someone_else_inside_keeps_the_folder():
    leaves = [("ds", "x/VIC/" + UUID)]
    trees = {("ds", "x"): {"x": ["VIC", "theirs"], "x/theirs": [], "x/VIC": [UUID], "x/VIC/" + UUID: ["vch.key"]}}
    assert observe.removable([("ds", "x")], leaves, trees) == [("ds", "x/VIC")]


def test_a_vic_folder_another_vch_uses_stays():
    leaves = [("ds", "imgs/VIC/" + UUID)]
    other = "fc8f3e4c-db2b-5131-8a93-903f6dc351e2"
    trees = {("ds", "imgs"): {"imgs": ["VIC"], "imgs/VIC": [UUID, other], "imgs/VIC/" + UUID: [],
                              "imgs/VIC/" + other: ["vch.key"]}}
    assert observe.removable([("ds", "imgs")], leaves, trees) == []


def test_a_store_kept_keeps_the_folders_above_it():
    # delete_volume_stores not set: the volume store is no leaf, so its folder is someone's.
    trees = {("ds", "vols"): {"vols": ["volumes"], "vols/volumes": []}}
    assert observe.removable([("ds", "vols")], [("ds", "imgs/VIC/" + UUID)], trees) == []


def test_a_folder_already_gone_is_not_listed():
    assert observe.removable([("ds", "vols")], [("ds", "vols/volumes")], {("ds", "vols"): {}}) == []


def test_outermost_drops_folders_inside_others_of_the_same_datastore():
    folders = [("ds", "a/b"), ("ds", "a"), ("nfs0", "a/b"), ("ds", "ab"), ("ds", "a")]
    assert observe.outermost(folders) == [("ds", "a"), ("nfs0", "a/b"), ("ds", "ab")]


def test_the_trace_file_home_is_deleted_last():
    folders = [("ds", "vols"), ("ds", "imgs"), ("nfs0", "imgs")]
    first, last = observe.last_with(folders, "ds", "imgs/VIC/%s/vch.created" % UUID)
    assert first == [("ds", "vols"), ("nfs0", "imgs")] and last == [("ds", "imgs")]
