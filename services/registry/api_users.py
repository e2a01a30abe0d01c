# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Harbor v2.0: users (the system admin creates, lists and deletes them; users change their own
profile and password)."""

import asyncio

from aiohttp import web
from sqlalchemy import select

from ansible_collections.vic.containers.services.registry import auth, errors
from ansible_collections.vic.containers.services.registry.store import User
from ansible_collections.vic.containers.services.registry.views import (
    answer, caller_of, created, iso, json_body, listed, q_filters, state_of
)

# Harbor refuses these in user names.
ILLEGAL = set(',"~#%$:')


def user_view(user):
    return {"user_id": user.id, "username": user.username, "email": user.email, "realname": user.realname,
            "comment": user.comment, "sysadmin_flag": user.sysadmin, "admin_role_in_auth": False,
            "creation_time": iso(user.created), "update_time": iso(user.updated)}


def _admin(caller):
    if not caller.sysadmin:
        raise errors.error(401 if caller.anonymous else 403, "only a system admin may do this")


def _self_or_admin(caller, user_id):
    if caller.anonymous:
        raise errors.error(401, "unauthorized: log in first")
    if not caller.sysadmin and caller.user_id != user_id:
        raise errors.forbidden("only the user or a system admin may do this")


def _user(session, request):
    raw = request.match_info["uid"]
    user = session.get(User, int(raw)) if raw.isdigit() else None
    if user is None:
        raise errors.not_found("user %s not found" % raw)
    return user


def _text(data, key, limit=255):
    value = data.get(key, "")
    if not isinstance(value, str) or len(value) > limit:
        raise errors.bad_request("%s must be a string of at most %d characters" % (key, limit))
    return value


async def _hash(password):
    return await asyncio.get_running_loop().run_in_executor(None, auth.hash_password, password)


async def list_users(request):
    _admin(caller_of(request))
    query = select(User).order_by(User.id)
    filters = q_filters(request)
    if request.query.get("username"):
        filters.setdefault("username", (False, request.query["username"]))
    for key, (exact, value) in filters.items():
        if key in ("username", "email"):
            column = getattr(User, key)
            query = query.where(column == value if exact else column.contains(value, autoescape=True))
    with state_of(request).sessions() as session:
        return listed(session, request, query, user_view)


async def search_users(request):
    if caller_of(request).anonymous:
        raise errors.error(401, "unauthorized: log in first")
    name = request.query.get("username", "")
    query = select(User).where(User.username.contains(name, autoescape=True)).order_by(User.id)
    with state_of(request).sessions() as session:
        return listed(session, request, query, lambda user: {"user_id": user.id, "username": user.username})


async def create_user(request):
    _admin(caller_of(request))
    data = await json_body(request)
    username = data.get("username")
    if not isinstance(username, str) or not 1 <= len(username) <= 255 or ILLEGAL & set(username) \
            or username != username.strip():
        raise errors.bad_request("username %r is not valid: 1 to 255 characters, none of %s and no outer "
                                 "spaces" % (username, "".join(sorted(ILLEGAL))))
    problem = auth.password_problem(data.get("password"))
    if problem:
        raise errors.bad_request(problem)
    email = _text(data, "email")
    if email and "@" not in email:
        raise errors.bad_request("email %r is not an e-mail address" % email)
    password_hash = await _hash(data["password"])
    with state_of(request).sessions.begin() as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise errors.conflict("username %s is already used" % username)
        user = User(username=username, password_hash=password_hash, email=email,
                    realname=_text(data, "realname"), comment=_text(data, "comment"))
        session.add(user)
        session.flush()
    return created("/users/%d" % user.id)


async def current_user(request):
    caller = caller_of(request)
    if caller.anonymous:
        raise errors.error(401, "unauthorized: log in first")
    with state_of(request).sessions() as session:
        return answer(user_view(session.get(User, caller.user_id)))


async def get_user(request):
    caller = caller_of(request)
    with state_of(request).sessions() as session:
        user = _user(session, request)
        _self_or_admin(caller, user.id)
        return answer(user_view(user))


async def update_profile(request):
    caller = caller_of(request)
    data = await json_body(request)
    with state_of(request).sessions.begin() as session:
        user = _user(session, request)
        _self_or_admin(caller, user.id)
        for key in ("email", "realname", "comment"):
            if key in data:
                setattr(user, key, _text(data, key))
    return web.Response(status=200)


async def delete_user(request):
    caller = caller_of(request)
    _admin(caller)
    with state_of(request).sessions.begin() as session:
        user = _user(session, request)
        if user.id == caller.user_id:
            raise errors.forbidden("a system admin cannot delete their own account")
        session.delete(user)
    return web.Response(status=200)


async def change_password(request):
    caller = caller_of(request)
    data = await json_body(request)
    new = data.get("new_password")
    problem = auth.password_problem(new)
    if problem:
        raise errors.bad_request(problem)
    state = state_of(request)
    with state.sessions() as session:
        user = _user(session, request)
    _self_or_admin(caller, user.id)
    # A system admin resets another user's password; everyone else proves the old one.
    if not caller.sysadmin or caller.user_id == user.id:
        if not isinstance(data.get("old_password"), str) or not await state.verifier.check(
                user.username, user.password_hash, data["old_password"]):
            raise errors.forbidden("the old password is wrong")
        if data["old_password"] == new:
            raise errors.bad_request("the new password must differ from the old one")
    password_hash = await _hash(new)
    with state.sessions.begin() as session:
        session.get(User, user.id).password_hash = password_hash
    return web.Response(status=200)


async def set_sysadmin(request):
    caller = caller_of(request)
    _admin(caller)
    data = await json_body(request)
    if not isinstance(data.get("sysadmin_flag"), bool):
        raise errors.bad_request("sysadmin_flag must be true or false")
    with state_of(request).sessions.begin() as session:
        user = _user(session, request)
        if user.id == caller.user_id and not data["sysadmin_flag"]:
            raise errors.forbidden("a system admin cannot drop their own admin role")
        user.sysadmin = data["sysadmin_flag"]
    return web.Response(status=200)


def routes(prefix):
    return [
        web.get(prefix + "/users", list_users), web.post(prefix + "/users", create_user),
        web.get(prefix + "/users/current", current_user), web.get(prefix + "/users/search", search_users),
        web.get(prefix + "/users/{uid}", get_user), web.put(prefix + "/users/{uid}", update_profile),
        web.delete(prefix + "/users/{uid}", delete_user),
        web.put(prefix + "/users/{uid}/password", change_password),
        web.put(prefix + "/users/{uid}/sysadmin", set_sysadmin),
    ]
