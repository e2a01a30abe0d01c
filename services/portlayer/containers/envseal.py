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
clear) reads as it is. The boot spec (``protocol.BOOT_KEY``) still carries the env in
clear for the tether: docs/security.md says who can read it and why.
"""

import base64
import hashlib
import hmac
import json

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEALED = "env_sealed"
_INFO = b"vic.containers container env"


class EnvSealError(ValueError):
    """A sealed env that does not open with this VCH's key."""


def _key(vch_key, container_id):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=container_id.encode(), info=_INFO).derive(bytes(vch_key))


def seal(record, vch_key):
    """``record`` as stored: its ``config.Env`` sealed (a record without env is stored as it is)."""
    env = (record.get("config") or {}).get("Env")
    if not env:
        return record
    key = _key(vch_key, record["id"])
    plain = json.dumps(env, separators=(",", ":")).encode()
    nonce = hmac.new(key, plain, hashlib.sha256).digest()[:12]
    sealed = AESGCM(key).encrypt(nonce, plain, record["id"].encode())
    config = {k: v for k, v in record["config"].items() if k != "Env"}
    return dict(record, config=config, **{SEALED: base64.b64encode(nonce + sealed).decode("ascii")})


def open_env(record, vch_key):
    """``record`` as read back: its env in ``config.Env`` again."""
    text = record.get(SEALED)
    if text is None:
        return record
    raw = base64.b64decode(text)
    try:
        plain = AESGCM(_key(vch_key, record["id"])).decrypt(raw[:12], raw[12:], record["id"].encode())
    except InvalidTag:
        raise EnvSealError("the environment of container %s does not open with this VCH's key" % record["id"]) \
            from None
    config = dict(record.get("config") or {}, Env=json.loads(plain))
    return {k: v for k, v in record.items() if k != SEALED} | {"config": config}
