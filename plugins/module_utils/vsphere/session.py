# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""vSphere session: login, reuse within a process, logout; private to the collection."""

from __future__ import annotations

import http.client
import os
import ssl
import threading

from ansible_collections.vic.containers.plugins.module_utils._errors import VSphereError

try:
    from pyVim.connect import SmartStubAdapter
    from pyVmomi import vim, vmodl
    from pyVmomi.SoapAdapter import StubAdapterBase
    HAS_PYVMOMI = True
    PYVMOMI_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_PYVMOMI = False
    PYVMOMI_IMPORT_ERROR = exc
    StubAdapterBase = object


class Session:
    """One logged-in connection to vCenter or ESXi.

    The service content comes with the login, so every later step starts from
    it without another round trip.
    """

    def __init__(self, hostname, username, password, port=443, validate_certs=True, cookie_file=None):
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
        # A long-lived process (the endpoint) keeps its session cookie here: started again after a kill -9,
        # it takes its session back instead of leaving one more open on the server until it times out.
        self._cookie_file = cookie_file
        self._soap = None
        self._renew_lock = threading.Lock()
        self.renewals = 0  # logins after the server ended the session (it timed out, or was terminated)

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
            si = vim.ServiceInstance("ServiceInstance", _RenewingStub(stub, self._renew))
            content = si.RetrieveContent()
            if not self._kept_session(stub, content):
                content.sessionManager.Login(self._username, self._password, None)
                self._keep_cookie(stub.cookie)
        except vim.fault.InvalidLogin:
            raise VSphereError("Cannot log in to %s:%s as %s: wrong user name or password."
                               % (self.hostname, self.port, self._username))
        except ssl.SSLError as exc:
            raise VSphereError("Cannot connect to %s:%s: TLS certificate not trusted (%s); "
                               "set validate_certs: false for a self-signed certificate."
                               % (self.hostname, self.port, exc.reason or exc))
        except (OSError, vmodl.MethodFault) as exc:
            raise VSphereError("Cannot connect to %s:%s: %s" % (self.hostname, self.port, _reason(exc)))
        self._si, self._content, self._soap = si, content, stub
        return self

    def _kept_session(self, stub, content):
        """Whether the session of the kept cookie is still live (one read), and is now this one's."""
        cookie = _read_cookie(self._cookie_file)
        if not cookie:
            return False
        stub.cookie = cookie
        try:
            # On the bare stub: a dead session must not be logged in again here, only found dead.
            current = vim.SessionManager(content.sessionManager._moId, stub).currentSession
        except vmodl.MethodFault:
            current = None
        if current is None or _user(current.userName) != _user(self._username):
            stub.cookie = ""
            return False
        return True

    def _keep_cookie(self, cookie):
        if self._cookie_file:
            _write_cookie(self._cookie_file, cookie)

    def _renew(self, stub, failed_cookie):
        """Log in again after the server ended the session (once, whichever thread saw it first)."""
        with self._renew_lock:
            if stub.cookie != failed_cookie:
                return  # another thread has logged in again meanwhile
            # The dead cookie stays meanwhile (the server ignores it): another thread's call must not go
            # out with none and take its refusal for a failed login.
            vim.SessionManager(self._content.sessionManager._moId, stub).Login(self._username, self._password, None)
            self.renewals += 1
            self._keep_cookie(stub.cookie)

    def logout(self):
        self.close_connections()
        if self._si is None:
            return
        try:
            self._content.sessionManager.Logout()
        except (OSError, vmodl.MethodFault):
            pass  # the session ends with the process either way
        self._si = self._content = self._soap = None
        self._keep_cookie(None)

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
        return self._soap.cookie.split(";")[0]

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


class _RenewingStub(StubAdapterBase):
    """Calls through pyVmomi's stub; a call the server refuses as ``NotAuthenticated`` (the session timed
    out or an administrator terminated it) is made again once after a new login.

    pyVmomi's own VimSessionOrientedStub also repeats calls after a broken connection, which may
    make a change twice (a CreateVM whose answer was lost); a refused session did nothing, so its
    call is safe to make again.
    """

    def __init__(self, stub, renew):
        self._stub = stub
        self._renew = renew
        StubAdapterBase.__init__(self, version=stub.version)

    def __getattr__(self, name):
        # The wrapped stub's connection settings (host, cookie, pool) for whoever reads them.
        if name == "_stub":
            raise AttributeError(name)
        return getattr(self._stub, name)

    def InvokeMethod(self, mo, info, args):  # pylint: disable=invalid-name
        cookie = self._stub.cookie
        status, obj = self._stub.InvokeMethod(mo, info, args, self)
        if _session_refused(status, obj) and cookie and info.wsdlName not in ("Login", "Logout"):
            self._renew(self._stub, cookie)
            status, obj = self._stub.InvokeMethod(mo, info, args, self)
        if status == 200:
            return obj
        raise obj


def _session_refused(status, obj):
    """Whether the server refused a call for want of a live session."""
    if status != 200:
        return isinstance(obj, vim.fault.NotAuthenticated)
    # vcsim answers a read without a session with each property missing as NotAuthenticated, where a
    # vCenter refuses the whole call.
    contents = getattr(obj, "objects", None) if not isinstance(obj, list) else obj
    for content in contents if isinstance(contents, list) else ():
        for missing in getattr(content, "missingSet", None) or ():
            if isinstance(missing.fault, vim.fault.NotAuthenticated):
                return True
    return False


def _user(name):
    # vCenter may name the user DOMAIN\\user or user@domain, whichever way it was given at login.
    return (name or "").split("\\")[-1].split("@")[0].lower()


def _read_cookie(path):
    try:
        with open(path) as kept:
            return kept.read().strip() or None
    except (OSError, TypeError):
        return None


def _write_cookie(path, cookie):
    """The cookie, readable by this user only (it is as good as the password while the session lives)."""
    if cookie is None:
        try:
            os.unlink(path)
        except OSError:
            pass
        return
    tmp = "%s.%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as kept:
        kept.write(cookie)
    os.replace(tmp, path)


def _reason(exc):
    msg = getattr(exc, "msg", None) or getattr(exc, "strerror", None) or str(exc)
    return msg.rstrip(".") + "."
