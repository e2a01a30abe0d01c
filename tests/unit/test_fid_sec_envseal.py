# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""services/portlayer/containers/envseal.py: a container's env sealed per container with the VCH key."""

import os

import pytest

from ansible_collections.vic.containers.services.portlayer.containers import envseal

KEY = os.urandom(32)
RECORD = {"id": "a" * 64, "name": "c", "config": {"Cmd": ["true"], "Env": ["PASSWORD=s3cret", "PATH=/bin"]}}


def test_sealed_env_opens_again_and_seals_to_the_same_text():
    sealed = envseal.seal(RECORD, KEY)
    assert "s3cret" not in repr(sealed) and "Env" not in sealed["config"]
    assert envseal.open_env(sealed, KEY) == RECORD
    assert envseal.seal(RECORD, KEY) == sealed     # a rewrite of an unchanged record changes nothing


def test_a_record_of_an_earlier_version_and_one_without_env_read_as_they_are():
    assert envseal.open_env(RECORD, KEY) == RECORD
    bare = {"id": "b" * 64, "config": {"Cmd": ["true"]}}
    assert envseal.seal(bare, KEY) == bare


def test_another_vch_key_or_another_container_does_not_open_it():
    sealed = envseal.seal(RECORD, KEY)
    with pytest.raises(envseal.EnvSealError):
        envseal.open_env(sealed, os.urandom(32))
    with pytest.raises(envseal.EnvSealError):
        envseal.open_env(dict(sealed, id="c" * 64), KEY)
