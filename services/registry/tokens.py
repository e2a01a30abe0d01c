# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Distribution's bearer tokens: RS256 JWTs signed with the configured key, ``kid`` the libtrust
fingerprint Distribution looks up in its ``rootcertbundle``, ``aud`` a string (Distribution 2.8
refuses an array), access claims only for what the caller holds."""

import base64
import collections
import hashlib
import secrets
import time

import jwt
from cryptography.hazmat.primitives import serialization

# Tokens are valid a little before they are issued: Distribution's clock may run behind ours.
LEEWAY = 10


def libtrust_kid(public_key):
    """SHA-256 of the DER public key, first 30 bytes, base32 without padding, 12 groups of 4 joined by ':'."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(text[i:i + 4] for i in range(0, len(text), 4))


def parse_scope(scope):
    """``repository:name:a,b`` -> (type, name, [actions]); None for what is not a scope. The name may
    hold ':' (a registry host with a port), the actions come after the last one."""
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not name:
        return None
    return kind, name, [a for a in actions.split(",") if a]


class Signer:
    """Issues and verifies the service's tokens with the key loaded once (parsing PEM per token costs
    more than signing).

    A client sends the same token with every request of a push or pull, and checking its signature
    costs ~0.2 ms: the claims of a verified token are remembered (a token never changes; its expiry is
    checked again at each use)."""

    VERIFIED = 4096

    def __init__(self, key_path, issuer, service, expiry):
        self.key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        self.public_key = self.key.public_key()
        self.kid = libtrust_kid(self.public_key)
        self.issuer, self.service, self.expiry = issuer, service, expiry
        self._verified = collections.OrderedDict()

    def issue(self, subject, access):
        """(token, issued_at, expires_in) for ``subject`` ("" anonymous) with ``access`` claims."""
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + self.expiry,
                  "nbf": now - LEEWAY, "iat": now, "jti": secrets.token_urlsafe(16), "access": access}
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        return token, now, self.expiry

    def verify(self, token):
        """The claims of a token this service signed, for this audience; jwt.InvalidTokenError else."""
        claims = self._verified.get(token)
        if claims is None:
            claims = jwt.decode(token, self.public_key, algorithms=["RS256"], audience=self.service,
                                issuer=self.issuer, options={"require": ["exp", "nbf", "iat", "iss", "aud", "sub"]})
            self._verified[token] = claims
            if len(self._verified) > self.VERIFIED:
                self._verified.popitem(last=False)
        elif claims["exp"] <= time.time():
            del self._verified[token]
            raise jwt.ExpiredSignatureError("Signature has expired")
        return claims

    def granted(self, claims, name, action):
        return any(entry.get("type") == "repository" and entry.get("name") == name
                   and action in entry.get("actions", ()) for entry in claims.get("access", ()))
