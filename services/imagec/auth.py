# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Registry credentials and the ways registries authenticate: anonymous, Basic, and Distribution's
bearer tokens (the 401 challenge's realm is asked for a token with the user's credentials).

Credentials come from the client (the ``X-Registry-Auth`` header or the body of
``POST /auth``); they are used for one request and never logged or returned.
"""

import base64
import binascii
import json
import re

from ansible_collections.vic.containers.plugins.module_utils._errors import NotFound, Unauthorized, VicError
from ansible_collections.vic.containers.services.imagec.reference import DOCKER_HUB

DOCKER_HUB_LOGIN = "https://index.docker.io/v1/"


def registry_of(server_address):
    """The registry host[:port] of a ``docker login`` server address (a host, or a URL)."""
    text = (server_address or "").strip()
    if not text or text.rstrip("/") in (DOCKER_HUB_LOGIN.rstrip("/"), "index.docker.io", "docker.io"):
        return DOCKER_HUB
    text = re.sub(r"^[a-z]+://", "", text)
    return text.split("/", 1)[0]


def credentials_from_header(value):
    """The credentials the docker CLI sends in ``X-Registry-Auth`` (base64url JSON), or None."""
    if not value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        data = json.loads(raw)
    except (ValueError, binascii.Error):
        return None  # the Docker daemon also pulls anonymously when the header is unreadable
    return credentials(data) if isinstance(data, dict) else None


def credentials(data):
    """{"username", "password", "identitytoken"} from an auth config, or None when it holds none."""
    # A value that is not a string counts as absent: the header is read as leniently as dockerd reads it
    # (POST /auth bodies are typed before they get here: persona/validation.py).
    data = {key: value for key, value in data.items() if isinstance(value, str)}
    found = {key: data.get(key) or "" for key in ("username", "password")}
    found["identitytoken"] = data.get("identitytoken") or data.get("IdentityToken") or ""
    if data.get("auth") and not found["username"]:
        try:
            found["username"], _sep, found["password"] = base64.b64decode(data["auth"]).decode().partition(":")
        except (ValueError, binascii.Error):
            pass
    return found if (found["username"] or found["identitytoken"]) else None


class Authorizer:
    """The ``Authorization`` headers of one registry conversation, per registry and scope, earned with the
    user's credentials (``creds``, or None) through the conversation's ``send(method, url, headers, **kwargs)``."""

    def __init__(self, creds, send):
        self._creds = creds
        self._send = send
        self._headers = {}

    def header(self, host, scope):
        """The ``Authorization`` header earned for ``host`` and ``scope`` so far, or None."""
        return self._headers.get((host, scope))

    async def answer(self, host, challenge, scope):
        """Earn the header the registry's 401 ``challenge`` (its ``WWW-Authenticate``) asks for."""
        scheme, params = _parse_challenge(challenge)
        if scheme == "basic":
            if not self._creds or not self._creds.get("username"):
                raise NotFound("pull access denied for %s: authentication required (docker login %s)"
                               % (host, host))
            self._headers[(host, scope)] = _basic(self._creds)
        elif scheme == "bearer" and params.get("realm"):
            token = await self._token(params["realm"], params.get("service"), scope)
            self._headers[(host, scope)] = "Bearer " + token
        else:
            raise VicError("registry %s asks for an authentication scheme the VCH does not speak: %s"
                           % (host, challenge or "(none)"))

    async def login(self, url):
        """Check the credentials against the registry's ``/v2/`` ``url`` as ``docker login`` does."""
        response = await self._send("GET", url)
        async with response:
            if response.status == 200:
                return
            challenge = response.headers.get("WWW-Authenticate", "")
        if response.status != 401:
            raise VicError("login attempt to %s failed with status: %d %s" % (url, response.status, response.reason))
        if not self._creds:
            raise Unauthorized("login attempt to %s failed with status: 401 Unauthorized" % url)
        scheme, params = _parse_challenge(challenge)
        if scheme == "bearer" and params.get("realm"):
            token = await self._token(params["realm"], params.get("service"), None)
            authorization = "Bearer " + token
        else:
            authorization = _basic(self._creds)
        response = await self._send("GET", url, {"Authorization": authorization})
        async with response:
            if response.status != 200:
                raise Unauthorized("login attempt to %s failed with status: %d %s"
                                   % (url, response.status, response.reason))

    async def _token(self, realm, service, scope):
        """A bearer token from the registry's token service (Distribution's token auth)."""
        query = {key: value for key, value in (("service", service), ("scope", scope)) if value}
        creds = self._creds or {}
        if creds.get("identitytoken"):
            form = dict(query, grant_type="refresh_token", refresh_token=creds["identitytoken"], client_id="docker")
            response = await self._send("POST", realm, data=form)
        else:
            headers = {}
            if creds.get("username"):
                query["account"] = creds["username"]
                headers["Authorization"] = _basic(creds)
            response = await self._send("GET", realm, headers, params=query)
        async with response:
            if response.status in (401, 403):
                raise Unauthorized("Get \"%s\": unauthorized: incorrect username or password" % realm)
            if response.status != 200:
                raise VicError("the registry's token service %s answered HTTP %d" % (realm, response.status))
            try:
                body = await response.json(content_type=None)
            except ValueError as exc:
                raise VicError("the registry's token service %s did not answer JSON" % realm) from exc
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise VicError("the registry's token service %s answered no token" % realm)
        return token


def _parse_challenge(header):
    scheme, _sep, rest = (header or "").strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


def _basic(creds):
    pair = "%s:%s" % (creds.get("username") or "", creds.get("password") or "")
    return "Basic " + base64.b64encode(pair.encode()).decode()
