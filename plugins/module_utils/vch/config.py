# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The VCH configuration record on the endpoint VM's extraConfig; private to the collection.

Layout (``guestinfo.vice./`` keys, as VIC named them, so the endpoint can read
them from inside the guest too):

* ``version``: the record's schema version;
* ``config``: the whole non-secret configuration as JSON, split in chunks
  (``config``, ``config|1``, ...) because vSphere caps one value's size;
* ``secrets``: JSON of the secrets, sealed with AES-256-GCM (nonce || ciphertext,
  base64), the VCH UUID as associated data so a record cannot be replayed on
  another VCH;
* ``key_id``: which key sealed them. The key itself lives in the image store
  (``VIC/<uuid>/vch.key``), never beside the sealed secrets, and never in
  clear: the file holds it wrapped (AES-256-GCM) under keys derived from what
  only the endpoint and the VCH's administrator hold, the ops password
  (scrypt) and, when the VCH has TLS, the server's private key file (HKDF),
  the administrator's way back in after the ops password changed. A reader of
  the datastore and of the VM's configuration gets neither (docs/security.md).
  A key file written by an earlier version (the 32 bytes in clear) is still
  read, and wrapped the next time a run opens it.

The record alone, with that key, is enough to rebuild the endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os

from ansible_collections.vic.containers.plugins.module_utils._errors import VicError

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
except ImportError:  # pragma: no cover - reported by the module
    AESGCM = InvalidTag = None

PREFIX = "guestinfo.vice./"
VERSION = 1
MANAGED_BY_EXTENSION = "vic.containers"
MANAGED_BY_ENDPOINT = "VicEndpoint"
MANAGED_BY_CONTAINER = "VicContainer"
MANAGED_BY_FORMAT = "VicFormatVm"      # the one-shot VM that formats the read-write disk template
KEY_FILE = "vch.key"
# The annotation of a VCH's vApp: how a half-made VCH is told from a vApp of the same name.
POOL_ANNOTATION = "vic.containers virtual container host %s"
# The description of a bridge port group a VCH made (on a distributed switch): absent removes the port
# groups it made, and only those (one that existed before the VCH is kept).
BRIDGE_DESCRIPTION = "vic.containers bridge network of virtual container host %s"
# What a VCH made that absent removes (``created`` in the record): the bridge port group it made, if any, and
# the top-most folder it made of each store's path. Until the endpoint VM carries the record, the same is kept
# in this file of the image store (VIC/<uuid>/), written before the bridge port group is made: the trace by
# which absent removes them from a VCH a fault left half-made.
CREATED_FILE = "vch.created"
_CHUNK = 16384


class ConfigError(VicError):
    """The record on a VM cannot be read."""


def new_key():
    return AESGCM.generate_key(bit_length=256)


def key_id(key):
    return hashlib.sha256(key).hexdigest()[:16]


# scrypt's cost for the ops password (RFC 7914's interactive figures: 16 MiB, ~0.05 s): the wrapped key is
# on the datastore, so a weak ops password can be guessed offline at that price per guess.
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}
_WRAP_FORMAT = "vic.containers wrapped key"
BY_PASSWORD, BY_SERVER_KEY = "ops_password", "server_key"


def _kek(kind, material, vch_uuid):
    if kind == BY_PASSWORD:
        return Scrypt(salt=("vic.containers vch key " + vch_uuid).encode(), length=32, **_SCRYPT).derive(
            material.encode("utf-8"))
    # The server key's private number, however the PEM encodes it: the same key in another file opens it too.
    der = serialization.load_pem_private_key(material.encode("ascii"), password=None).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=vch_uuid.encode(),
                info=b"vic.containers vch key by server key").derive(der)


def wrap_key(key, vch_uuid, ops_password, server_key_pem=None):
    """The key file's content: ``key`` wrapped under the ops password and, if given, the TLS server key."""
    wraps = []
    for kind, material in ((BY_PASSWORD, ops_password), (BY_SERVER_KEY, server_key_pem)):
        if material:
            nonce = os.urandom(12)
            sealed = AESGCM(_kek(kind, material, vch_uuid)).encrypt(nonce, key, vch_uuid.encode())
            wraps.append({"by": kind, "sealed": base64.b64encode(nonce + sealed).decode("ascii")})
    return json.dumps({"format": _WRAP_FORMAT, "version": 1, "wraps": wraps}).encode()


def is_wrapped(content):
    """False for a key file an earlier version wrote: the key itself."""
    return not (isinstance(content, bytes) and len(content) == 32)


def unwrap_key(content, vch_uuid, materials):
    """The VCH key from its file's ``content``, opened with the first of ``materials`` ((kind, secret) pairs;
    kinds BY_PASSWORD, BY_SERVER_KEY) that opens it; None if none does."""
    return opening(content, vch_uuid, materials)[0]


def opening(content, vch_uuid, materials):
    """(key, the pair of ``materials`` that opened it: None for a key in clear); (None, None) if none does."""
    if not is_wrapped(content):
        return content, None
    try:
        wraps = json.loads(content)["wraps"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError("The key file of VCH %s is not one this collection wrote." % vch_uuid) from None
    for kind, material in materials:
        for wrap in wraps:
            if not material or wrap.get("by") != kind:
                continue
            raw = base64.b64decode(wrap["sealed"])
            try:
                return (AESGCM(_kek(kind, material, vch_uuid)).decrypt(raw[:12], raw[12:], vch_uuid.encode()),
                        (kind, material))
            except (InvalidTag, ValueError):
                continue
    return None, None


def new_created(port_group=None):
    return {"port_group": port_group, "folders": []}


def encode_created(created):
    return json.dumps(created, sort_keys=True).encode()


def decode_created(content):
    """The ``created`` record of a trace file; None when there is none or it is not one this collection wrote."""
    try:
        created = json.loads(content) if content else None
    except ValueError:
        return None
    if not isinstance(created, dict) or not isinstance(created.get("folders"), list):
        return None
    return created


def seal(secrets, key, vch_uuid):
    nonce = os.urandom(12)
    data = AESGCM(key).encrypt(nonce, json.dumps(secrets, sort_keys=True).encode(), vch_uuid.encode())
    return base64.b64encode(nonce + data).decode()


def unseal(sealed, key, vch_uuid):
    raw = base64.b64decode(sealed)
    try:
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], vch_uuid.encode())
    except InvalidTag:
        raise ConfigError("The secrets of VCH %s do not open with its key file." % vch_uuid)
    return json.loads(plain)


def encode(config, sealed, sealed_by):
    """extraConfig entries (key -> value) recording ``config`` and the ``sealed`` secrets.

    ``sealed_by`` is the key_id of the key that sealed them; secrets that did
    not change keep their sealed text, so updating the rest needs no key.
    """
    values = {PREFIX + "version": str(VERSION), PREFIX + "key_id": sealed_by}
    values.update(split_value(PREFIX + "config", json.dumps(config, sort_keys=True, separators=(",", ":"))))
    values.update(split_value(PREFIX + "secrets", sealed))
    return values


def removed_keys(old_values, new_values):
    """Keys to blank (vSphere deletes a key set to ``""``) when a record shrinks."""
    return sorted(k for k in old_values if k.startswith(PREFIX) and k not in new_values)


def as_dict(extra_config):
    """extraConfig (a list of OptionValue) as a plain dict."""
    return {o.key: o.value for o in extra_config or ()}


def decode(values):
    """(config, sealed_secrets, key_id) from extraConfig values, or None if not a VCH record."""
    if PREFIX + "config" not in values:
        return None
    version = values.get(PREFIX + "version")
    if version != str(VERSION):
        raise ConfigError("VCH record version %r is not one this collection reads (%s)." % (version, VERSION))
    try:
        config = json.loads(join_value(values, PREFIX + "config"))
    except ValueError as exc:
        raise ConfigError("The VCH record is not valid JSON: %s." % exc)
    return config, join_value(values, PREFIX + "secrets"), values.get(PREFIX + "key_id")


def split_value(key, text):
    """``text`` under ``key``, ``key|1``, ... in chunks vSphere accepts."""
    parts = [text[i:i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]
    return {(key if i == 0 else "%s|%d" % (key, i)): part for i, part in enumerate(parts)}


def join_value(values, key):
    """The text split_value wrote under ``key``."""
    parts = [values.get(key, "")]
    i = 1
    while "%s|%d" % (key, i) in values:
        parts.append(values["%s|%d" % (key, i)])
        i += 1
    return "".join(parts)
