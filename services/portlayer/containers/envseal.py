# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A container's environment (``-e DB_PASSWORD=...``) sealed in its record with a key derived from the VCH key.

The record (``model.RECORD_KEY``) is readable by whoever can read the VM's configuration
or its ``.vmx``: its ``config.Env`` is stored as ``env_sealed`` (AES-256-GCM, nonce ||
ciphertext, base64), under a key derived per container (HKDF-SHA256 of the VCH key, the
container id as salt) with the container id as associated data, so a sealed env cannot be
moved to another container. The nonce is an HMAC of the env under that key: the same env
seals to the same text, so rewriting a record changes nothing that did not change (as
vSphere and the live cache compare values). A record an earlier version wrote (its Env in
clear) reads as it is. The boot spec (``protocol.BOOT_KEY``) carries the env sealed
under the same key, which the endpoint hands the tether over the channel (boot.py,
``protocol.env_request``); docs/security.md says who can read what.
"""

import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ansible_collections.vic.containers.services.tether import protocol

SEALED = "env_sealed"
_INFO = b"vic.containers container env"


class EnvSealError(ValueError):
    """A sealed env that does not open with this VCH's key."""


def container_key(vch_key, container_id):
    """The container's env key: its record's and its boot spec's env seal with it; the endpoint hands it to
    the tether over the channel (``protocol.env_request``) and keeps it nowhere."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=container_id.encode(), info=_INFO).derive(bytes(vch_key))


def seal_list(env, key, container_id):
    return protocol.seal(json.dumps(env, separators=(",", ":")).encode(), key, container_id.encode())


def seal(record, vch_key):
    """``record`` as stored: its ``config.Env`` sealed (a record without env is stored as it is)."""
    env = (record.get("config") or {}).get("Env")
    if not env:
        return record
    sealed = seal_list(env, container_key(vch_key, record["id"]), record["id"])
    config = {k: v for k, v in record["config"].items() if k != "Env"}
    return dict(record, config=config, **{SEALED: sealed})


def open_env(record, vch_key):
    """``record`` as read back: its env in ``config.Env`` again."""
    text = record.get(SEALED)
    if text is None:
        return record
    try:
        plain = protocol.unseal(text, container_key(vch_key, record["id"]), record["id"].encode())
    except protocol.ProtocolError:
        raise EnvSealError("the environment of container %s does not open with this VCH's key" % record["id"]) \
            from None
    config = dict(record.get("config") or {}, Env=json.loads(plain))
    return {k: v for k, v in record.items() if k != SEALED} | {"config": config}
