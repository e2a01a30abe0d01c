# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Who is calling: Basic credentials checked against bcrypt hashes (session-less), and what a caller
may do in a project (rbac.actions with the caller's membership)."""

import asyncio
import base64
import binascii
import collections
import dataclasses
import hashlib
import hmac
import os

import bcrypt
from sqlalchemy import select

from ansible_collections.vic.containers.services.registry import errors, rbac
from ansible_collections.vic.containers.services.registry.store import Member, User

BCRYPT_ROUNDS = 11
PASSWORD_MIN, PASSWORD_MAX = 8, 128


@dataclasses.dataclass(frozen=True)
class Caller:
    user_id: int | None = None
    username: str = ""
    sysadmin: bool = False

    @property
    def anonymous(self):
        return self.user_id is None


ANONYMOUS = Caller()


def hash_password(password):
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS)).decode()


def password_problem(password):
    """Harbor's password policy: why ``password`` is refused, or None."""
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return "the password must be %d to %d characters long" % (PASSWORD_MIN, PASSWORD_MAX)
    if not (any(c.islower() for c in password) and any(c.isupper() for c in password)
            and any(c.isdigit() for c in password)):
        return "the password must contain at least one uppercase letter, one lowercase letter and one digit"
    return None


class Verifier:
    """Checks credentials. bcrypt costs tens of ms by design, and Docker clients send the same Basic
    credentials with every token request, so a verified (user, password) is remembered against the
    hash it matched: a changed password (another hash) is never served from memory. Keys are HMACs
    with a per-process secret, never the password itself."""

    SIZE = 4096

    def __init__(self):
        self._secret = os.urandom(32)
        self._verified = collections.OrderedDict()
        self._pending = {}

    def _key(self, username, password):
        return hmac.new(self._secret, ("%s\0%s" % (username, password)).encode(), hashlib.sha256).digest()

    async def check(self, username, password_hash, password):
        if not password_hash:
            return False
        key = self._key(username, password)
        if self._verified.get(key) == password_hash:
            self._verified.move_to_end(key)
            return True
        # Concurrent requests with the same credentials (a client's parallel layer uploads) share one
        # bcrypt run instead of each starting its own.
        pending = self._pending.get((key, password_hash))
        if pending is None:
            pending = asyncio.get_running_loop().run_in_executor(
                None, bcrypt.checkpw, password.encode(), password_hash.encode())
            self._pending[(key, password_hash)] = pending
            try:
                ok = await asyncio.shield(pending)
            finally:
                del self._pending[(key, password_hash)]
            if ok:
                self._verified[key] = password_hash
                if len(self._verified) > self.SIZE:
                    self._verified.popitem(last=False)
            return ok
        return await asyncio.shield(pending)


def basic_credentials(header):
    """(username, password) of a Basic Authorization header, None without one; 401 when malformed."""
    if not header:
        return None
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise errors.error(401, "malformed Basic credentials") from error
    if not sep:
        raise errors.error(401, "malformed Basic credentials")
    return username, password


async def authenticate(state, request):
    """The Caller of ``request``: ANONYMOUS without credentials, 401 with wrong ones."""
    credentials = basic_credentials(request.headers.get("Authorization"))
    if credentials is None:
        return ANONYMOUS
    username, password = credentials
    # Core, not ORM: this runs for every API call and token (an ORM query costs ~6x more).
    with state.engine.connect() as connection:
        user = connection.execute(select(User.id, User.password_hash, User.sysadmin)
                                  .where(User.username == username)).first()
    if user is None or not await state.verifier.check(username, user.password_hash, password):
        raise errors.error(401, "invalid credentials", headers={"WWW-Authenticate": 'Basic realm="vic-registry"'})
    return Caller(user.id, username, user.sysadmin)


def role_of(session, caller, project):
    if caller.anonymous:
        return None
    return session.scalar(select(Member.role_id).where(Member.project_id == project.id,
                                                       Member.user_id == caller.user_id))


def project_actions(session, caller, project):
    return rbac.actions(caller.sysadmin, role_of(session, caller, project), project.public)


def require(held, action, caller):
    """Nothing when ``action`` is held; 401 for anonymous callers, 403 for others (as Harbor)."""
    if action in held:
        return
    if caller.anonymous:
        raise errors.error(401, "unauthorized: log in first")
    raise errors.forbidden("forbidden: %s is not allowed to %s here" % (caller.username, action))
