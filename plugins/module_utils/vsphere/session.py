# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""vSphere session: login, reuse within a process, logout; private to the collection."""

from __future__ import annotations

import http.client
import ssl
import threading

from ansible_collections.vic.containers.plugins.module_utils._errors import VSphereError

try:
    from pyVim.connect import SmartStubAdapter
    from pyVmomi import vim, vmodl
    HAS_PYVMOMI = True
    PYVMOMI_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_PYVMOMI = False
    PYVMOMI_IMPORT_ERROR = exc


class Session:
    """One logged-in connection to vCenter or ESXi.

    The service content comes with the login, so every later step starts from
    it without another round trip.
    """

    def __init__(self, hostname, username, password, port=443, validate_certs=True):
        self.hostname = hostname
        self.port = port
        self.validate_certs = validate_certs
        self._si = None
        self._content = None
        self._username = username
        self._password = password
        self._local = threading.local()
        self._connections = []
        self._connections_lock = threading.Lock()

    def __enter__(self):
        self.login()
        return self

    def __exit__(self, *exc):
        self.logout()

    def login(self):
        if self._si is not None:
            return self
        context = None if self.validate_certs else self.ssl_context()
        try:
            # The stub negotiates the API version over plain HTTP; the service
            # content read here is kept, so the login costs two SOAP calls.
            stub = SmartStubAdapter(host=self.hostname, port=self.port, sslContext=context)
            si = vim.ServiceInstance("ServiceInstance", stub)
            content = si.RetrieveContent()
            content.sessionManager.Login(self._username, self._password, None)
        except vim.fault.InvalidLogin:
            raise VSphereError("Cannot log in to %s:%s as %s: wrong user name or password."
                               % (self.hostname, self.port, self._username))
        except ssl.SSLError as exc:
            raise VSphereError("Cannot connect to %s:%s: TLS certificate not trusted (%s); "
                               "set validate_certs: false for a self-signed certificate."
                               % (self.hostname, self.port, exc.reason or exc))
        except (OSError, vmodl.MethodFault) as exc:
            raise VSphereError("Cannot connect to %s:%s: %s" % (self.hostname, self.port, _reason(exc)))
        self._si, self._content = si, content
        return self

    def logout(self):
        self.close_connections()
        if self._si is None:
            return
        try:
            self._content.sessionManager.Logout()
        except (OSError, vmodl.MethodFault):
            pass  # the session ends with the process either way
        self._si = self._content = None

    @property
    def username(self):
        return self._username

    @property
    def password(self):
        return self._password

    @property
    def si(self):
        return self._si

    @property
    def content(self):
        return self._content

    @property
    def stub(self):
        return self._si._stub

    @property
    def is_vcenter(self):
        return self.content.about.apiType == "VirtualCenter"

    @property
    def instance_uuid(self):
        # ESXi has no instanceUuid; its host UUID stands in, both are stable.
        about = self.content.about
        return about.instanceUuid or about.name + "/" + (self.hostname or "")

    def session_cookie(self):
        # pyVmomi keeps the whole Set-Cookie line; a request sends only name=value.
        return self.stub.cookie.split(";")[0]

    def connection(self):
        """This thread's kept-alive HTTPS connection to the server (its datastore file service): a TLS handshake
        per file costs more than a small file's transfer. Closed at logout."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPSConnection(self.hostname, self.port, timeout=300,
                                                     context=self.ssl_context())
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def forget_connection(self):
        """Close this thread's connection (the server closed it, or a request on it failed)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
            # A long-lived endpoint replaces connections the server closed: the list must not keep them all.
            with self._connections_lock:
                self._connections.remove(connection)

    def close_connections(self):
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()

    def ssl_context(self):
        context = ssl.create_default_context()
        if not self.validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def _reason(exc):
    msg = getattr(exc, "msg", None) or getattr(exc, "strerror", None) or str(exc)
    return msg.rstrip(".") + "."
