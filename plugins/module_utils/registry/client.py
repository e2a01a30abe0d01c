# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A client of the Harbor v2.0 API subset the registry modules use; private.

Only calls Harbor 2.0 itself answers (projects looked up by ``name`` and then
addressed by id, members, user search, quotas), so the same module manages a
VIC registry and an existing Harbor 2.x. Basic auth on one kept-alive
connection; every failure is a ``VicError`` whose one sentence names the
registry and what was being done, with Harbor's own message.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
from urllib.parse import quote, urlencode, urlsplit

from ansible_collections.vic.containers.plugins.module_utils._errors import (Conflict, Forbidden, InvalidInput,
                                                                             NotFound, SpecError, Unauthorized,
                                                                             VicError)

API = "/api/v2.0"
PAGE_SIZE = 100


class RegistryError(VicError):
    """A registry failure, in one sentence naming the registry."""


class Client:
    """One registry's API; ``requests`` counts the HTTP requests made (the modules' cost)."""

    def __init__(self, registry_url, username=None, password=None, validate_certs=True, ca_path=None, timeout=30):
        parts = urlsplit(registry_url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SpecError("registry_url", "%r is not an http:// or https:// URL" % (registry_url,))
        self.url = "%s://%s" % (parts.scheme, parts.netloc)
        self.username = username
        self._prefix = parts.path.rstrip("/") + API
        self._address = (parts.hostname, parts.port)
        self._https = parts.scheme == "https"
        self._context = _tls_context(validate_certs, ca_path) if self._https else None
        self._timeout = timeout
        self._headers = {"Accept": "application/json"}
        if username:
            token = base64.b64encode(("%s:%s" % (username, password or "")).encode()).decode()
            self._headers["Authorization"] = "Basic " + token
        self._connection = None
        self.requests = 0

    def close(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self):
        host, port = self._address
        if self._https:
            return http.client.HTTPSConnection(host, port, timeout=self._timeout, context=self._context)
        return http.client.HTTPConnection(host, port, timeout=self._timeout)

    def call(self, method, path, what, body=None, query=None):
        """(status, headers, JSON or None) of a request that succeeded; a typed error otherwise."""
        target = self._prefix + path + ("?" + urlencode(query) if query else "")
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            fresh = self._connection is None
            if fresh:
                self._connection = self._connect()
            try:
                self.requests += 1
                self._connection.request(method, target, body=data, headers=headers)
                response = self._connection.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                # A kept-alive connection the server closed meanwhile: once more on a new one.
                if fresh or attempt == 2:
                    raise RegistryError("Registry %s closed the connection while %s: %s." % (self.url, what, exc))
            except ssl.SSLError as exc:
                self.close()
                raise RegistryError("Registry %s did not complete the TLS handshake while %s: %s (check ca_path "
                                    "and validate_certs)." % (self.url, what, getattr(exc, "reason", None) or exc))
            except socket.timeout:
                self.close()
                raise RegistryError("Registry %s did not answer in time while %s." % (self.url, what))
            except OSError as exc:
                self.close()
                raise RegistryError("Registry %s cannot be reached while %s: %s."
                                    % (self.url, what, exc.strerror or exc))
        try:
            answer = json.loads(raw) if raw.strip() else None
        except ValueError:
            answer = None
        if response.status >= 400:
            raise self._refusal(response.status, answer, raw, what)
        return response.status, response.headers, answer

    def _refusal(self, status, answer, raw, what):
        message = _harbor_message(answer) or raw.decode("utf-8", "replace").strip()[:200] or "no message"
        if status == 401:
            return Unauthorized("Registry %s refused the credentials of %s while %s: %s (HTTP 401)."
                                % (self.url, "user %s" % self.username if self.username else "an anonymous caller",
                                   what, message))
        kind = {400: InvalidInput, 403: Forbidden, 404: NotFound, 409: Conflict, 412: Conflict}.get(status, RegistryError)
        return kind("Registry %s refused %s: %s (HTTP %d)." % (self.url, what, message, status))

    def get(self, path, what, query=None):
        return self.call("GET", path, what, query=query)[2]

    def pages(self, path, what, query=None):
        """Every item of a paged list."""
        items = []
        page = 1
        while True:
            found = self.get(path, what, dict(query or {}, page=page, page_size=PAGE_SIZE)) or []
            items.extend(found)
            if len(found) < PAGE_SIZE:
                return items
            page += 1

    # -- the calls of the project engine ----------------------------------------------------------

    def find_project(self, name):
        """The project named ``name``, or None: Harbor 2.0's ``name`` filter matches parts of names."""
        what = "looking up project %s" % name
        page = 1
        while True:
            found = self.get("/projects", what, {"name": name, "page": page, "page_size": PAGE_SIZE}) or []
            for project in found:
                if project.get("name") == name:
                    return project
            if len(found) < PAGE_SIZE:
                return None
            page += 1

    def create_project(self, body):
        _status, headers, _answer = self.call("POST", "/projects", "creating project %s" % body["project_name"],
                                              body=body)
        location = headers.get("Location") or ""
        tail = location.rstrip("/").rsplit("/", 1)[-1]
        if tail.isdigit():
            return int(tail)
        project = self.find_project(body["project_name"])
        return project["project_id"]

    def members(self, project_id, name):
        return self.pages("/projects/%d/members" % project_id, "listing the members of project %s" % name)

    def user_exists(self, username):
        found = self.pages("/users/search", "looking up user %s" % username, {"username": username})
        return any(user.get("username") == username for user in found)

    def quota(self, project_id, name):
        """The project's quota ({"id", "hard": {"storage": ...}}), or None when the registry has none."""
        found = self.get("/quotas", "reading the quota of project %s" % name,
                         {"reference": "project", "reference_id": str(project_id)}) or []
        return found[0] if found else None


def project_path(project_id, *rest):
    return "/".join(["/projects/%d" % project_id] + [quote(str(part), safe="") for part in rest])


def _tls_context(validate_certs, ca_path):
    if validate_certs:
        try:
            return ssl.create_default_context(cafile=ca_path)
        except (OSError, ssl.SSLError) as exc:
            raise SpecError("ca_path", "%s is not a readable PEM file of CA certificates: %s"
                            % (ca_path, getattr(exc, "strerror", None) or exc))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _harbor_message(answer):
    """Harbor's ``{"errors": [{"code", "message"}]}``: the messages, joined."""
    if isinstance(answer, dict) and isinstance(answer.get("errors"), list):
        return "; ".join(str(error.get("message") or error.get("code")) for error in answer["errors"]
                         if isinstance(error, dict)) or None
    if isinstance(answer, dict) and answer.get("message"):
        return str(answer["message"])
    return None
