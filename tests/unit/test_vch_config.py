"""The record on the endpoint VM: round trip, chunking, sealed secrets."""

import json

import pytest

from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec


def test_round_trip_with_chunks_and_sealed_secrets():
    config = {"uuid": "u-1", "name": "vch", "big": "x" * 50000}
    key = codec.new_key()
    sealed = codec.seal({"ops_password": "s3cret"}, key, "u-1")
    values = codec.encode(config, sealed, codec.key_id(key))
    assert all(len(v) <= 16384 for v in values.values())
    assert len([k for k in values if k.startswith(codec.PREFIX + "config")]) == 4
    assert "s3cret" not in json.dumps(values)
    decoded, sealed_back, key_id = codec.decode(values)
    assert decoded == config and key_id == codec.key_id(key)
    assert codec.unseal(sealed_back, key, "u-1") == {"ops_password": "s3cret"}


def test_secrets_are_bound_to_their_vch_and_key():
    key = codec.new_key()
    sealed = codec.seal({"a": 1}, key, "vch-a")
    with pytest.raises(codec.ConfigError):
        codec.unseal(sealed, key, "vch-b")
    with pytest.raises(codec.ConfigError):
        codec.unseal(sealed, codec.new_key(), "vch-a")


def test_a_shrinking_record_blanks_its_old_chunks():
    key = codec.new_key()
    big = codec.encode({"uuid": "u", "v": "x" * 40000}, "s", codec.key_id(key))
    small = codec.encode({"uuid": "u"}, "s", codec.key_id(key))
    assert codec.removed_keys(big, small) == [codec.PREFIX + "config|1", codec.PREFIX + "config|2"]


def test_not_a_record_and_unknown_versions():
    assert codec.decode({"guestinfo.other": "1"}) is None
    with pytest.raises(codec.ConfigError):
        codec.decode({codec.PREFIX + "config": "{}", codec.PREFIX + "version": "99"})
    with pytest.raises(codec.ConfigError):
        codec.decode({codec.PREFIX + "config": "{not json", codec.PREFIX + "version": "1"})
