# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The VIC registry service deployed as the ``registry`` role does it (the contract in docs/registry.md),
on loopback for tests and benchmarks: Debian's docker-registry with token auth and notifications, the
service in front of it in its own process, each stopped by its own pid. Plain HTTP (loopback only)."""

import base64
import functools
import datetime
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import yaml

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ansible_collections.vic.containers.tools.harness.endpoint import free_port
from ansible_collections.vic.containers.tools.harness.waiting import until

ADMIN_PASSWORD = "Admin-Pass-1"
ADMIN = ("admin", ADMIN_PASSWORD)
PASSWORD = "Passw0rd-x"  # the test users'
HARBOR_SPEC = Path(__file__).resolve().parents[2] / "tests" / "specs" / "harbor-api-v2.0.yaml"
ISSUER = SERVICE = "vic-registry"


def signing_key(folder, name):
    """An RSA key (PEM, 0600) and its self-signed certificate, as the role makes them; (key path, cert PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vic-registry token " + name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2)).sign(key, hashes.SHA256()))
    path = Path(folder) / (name + ".key")
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.chmod(path, 0o600)
    return path, cert.public_bytes(serialization.Encoding.PEM)


def _stop(proc, signum=signal.SIGTERM):
    if proc is not None and proc.poll() is None:
        os.kill(proc.pid, signum)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return proc.returncode if proc is not None else None


class VicRegistry:
    """docker-registry + the service. ``url`` is what clients use; ``host`` its host:port."""

    def __init__(self, folder, expiry=300, workers=1, ca=None, database_url=None):
        """``ca``: a tools.harness.registry.TestCA to serve HTTPS with its certificate (else plain HTTP);
        ``database_url``: the service's database (else SQLite in ``folder``)."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port, self.dist_port = free_port(), free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.ca = ca
        self.url = ("https://" if ca else "http://") + self.host
        self.context = ca.client_context() if ca else None
        self.dist_url = "http://127.0.0.1:%d" % self.dist_port
        self.key_path, cert = signing_key(self.folder, "current")
        self.bundle = self.folder / "bundle.crt"
        self.bundle.write_bytes(cert)
        self.secret = secrets.token_hex(16)
        self.secret_file = self._private("notify.secret", self.secret)
        self.password_file = self._private("admin.password", ADMIN_PASSWORD)
        self.config_path = self.folder / "service.yml"
        self.service_config = {
            "listen": self.host, "external_url": self.url,
            "database_url": database_url or "sqlite:///%s" % (self.folder / "registry.db"),
            "token": {"issuer": ISSUER, "service": SERVICE, "key": str(self.key_path), "expiry": expiry},
            "distribution": {"url": self.dist_url, "config": str(self.folder / "distribution.yml"),
                             "binary": "/usr/bin/docker-registry"},
            "notifications": {"secret_file": str(self.secret_file)},
            "admin_password_file": str(self.password_file),
            "workers": workers,
        }
        if ca:
            self.service_config["tls"] = {"cert": str(ca.cert_path), "key": str(ca.key_path)}
        self.config_path.write_text(json.dumps(self.service_config))
        os.chmod(self.config_path, 0o600)
        self.dist = self.service = None

    def _private(self, name, text):
        path = self.folder / name
        path.write_text(text + "\n")
        os.chmod(path, 0o600)
        return path

    def distribution_config(self):
        return {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.folder / "data")}, "delete": {"enabled": True}},
            "http": {"addr": "127.0.0.1:%d" % self.dist_port, "secret": secrets.token_hex(16)},
            "auth": {"token": {"realm": self.url + "/service/token", "service": SERVICE, "issuer": ISSUER,
                               "rootcertbundle": str(self.bundle)}},
            "notifications": {"endpoints": [{
                "name": "vic-registry", "url": self.url + "/service/notifications",
                "headers": {"Authorization": ["Bearer " + self.secret]},
                "timeout": "3s", "threshold": 3, "backoff": "1s",
                "ignoredmediatypes": ["application/octet-stream"]}]},
        }

    def command(self, *args):
        return [sys.executable, "-m", "ansible_collections.vic.containers.services.registry",
                "--config", str(self.config_path), *args]

    def start(self):
        (self.folder / "distribution.yml").write_text(json.dumps(self.distribution_config()))
        with open(self.folder / "distribution.log", "ab") as log:
            # Distribution posts its notifications to the service: over TLS it must trust the service's CA,
            # as the role makes the host trust it (Go reads SSL_CERT_FILE).
            env = dict(os.environ, SSL_CERT_FILE=str(self.ca.ca_path)) if self.ca else None
            self.dist = subprocess.Popen(["docker-registry", "serve", str(self.folder / "distribution.yml")],
                                         stdout=log, stderr=subprocess.STDOUT, env=env)
        with open(self.folder / "service.log", "ab") as log:
            self.service = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        until(self._healthy, "the registry service to be healthy on %s" % self.url, timeout=60)
        return self

    def _healthy(self):
        for proc, log in ((self.dist, "distribution.log"), (self.service, "service.log")):
            if proc.poll() is not None:
                raise AssertionError("%s ended: %s" % (log, (self.folder / log).read_text()))
        try:
            with urllib.request.urlopen(self.url + "/api/v2.0/health", timeout=3, context=self.context) as response:
                return response.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def workers(self):
        """The pids of the service's other worker processes (config ``workers``), from /proc."""
        tasks = Path("/proc/%d/task" % self.service.pid)
        return [int(child) for task in tasks.iterdir() for child in (task / "children").read_text().split()]

    def stop(self):
        """Stop both by pid; the service's exit status (0 for a clean SIGTERM)."""
        code = _stop(self.service)
        _stop(self.dist)
        return code

    # -- clients ----------------------------------------------------------------------------------

    def api(self, method, path, user=None, body=None, headers=None):
        """(status, headers, parsed JSON or None) of an API call; ``user`` is (name, password)."""
        request = urllib.request.Request(self.url + "/api/v2.0" + path, method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers=dict(headers or {}))
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if user:
            request.add_header("Authorization", basic(*user))
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as response:
                status, answer_headers, raw = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, answer_headers, raw = error.code, error.headers, error.read()
        return status, answer_headers, json.loads(raw) if raw and raw.strip() else None

    def token(self, user=None, scopes=()):
        """(status, JSON) of a token request, ``user`` (name, password) or anonymous."""
        query = "service=%s" % SERVICE + "".join("&scope=%s" % urllib.request.quote(s) for s in scopes)
        request = urllib.request.Request(self.url + "/service/token?" + query)
        if user:
            request.add_header("Authorization", basic(*user))
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def skopeo(self, source, dest, creds=None, src_creds=None, timeout=180):
        """skopeo copy; (returncode, stderr). Plain HTTP on loopback: TLS verification off."""
        command = ["skopeo", "--insecure-policy", "copy", "--quiet", "--retry-times", "0"]
        if self.ca:
            command += ["--src-cert-dir", str(self.ca.cert_dir), "--dest-cert-dir", str(self.ca.cert_dir)]
        else:
            command += ["--src-tls-verify=false", "--dest-tls-verify=false"]
        if creds:
            command += ["--dest-creds", "%s:%s" % creds]
        if src_creds:
            command += ["--src-creds", "%s:%s" % src_creds]
        result = subprocess.run(command + [source, dest], capture_output=True, text=True, timeout=timeout,
                                check=False, env=dict(os.environ, HOME=str(self.folder)))
        return result.returncode, result.stderr


class Postgres:
    """A throwaway PostgreSQL cluster of Debian's ``postgresql`` package: initdb in a folder of its own,
    run as an unprivileged user (postgres refuses root), listening on a unix socket in that folder only
    (no TCP port), stopped by its pid and removed by ``stop``. Trust authentication: nothing but this
    machine's root and that user can reach the socket's folder.

    initdb and the server get a /dev/shm of their own (a tmpfs in a private mount namespace, gone with
    them): PostgreSQL keeps shared memory there, and the machine's may be full of other tests' files."""

    def __init__(self):
        self.user = "postgres" if _user_exists("postgres") else "nobody"
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda path: int(path.parts[-3]))
        if not versions:
            raise RuntimeError("PostgreSQL is not installed (Debian's postgresql package; scripts/setup)")
        self.bin = versions[-1].parent
        # Not under pytest's folders: those are 0700 to root, and the server's user must reach its own.
        self.folder = Path(tempfile.mkdtemp(prefix="vic-postgres-"))
        self.data, self.socket_dir = self.folder / "data", self.folder / "run"
        self.proc = None

    def _as_user(self, argv, own_shm=False):
        if own_shm:
            argv = self._with_own_shm(argv)
        result = subprocess.run(argv, user=None if own_shm else self.user, cwd=self.folder, capture_output=True,
                                text=True, timeout=120, check=False)
        if result.returncode:
            raise RuntimeError("%s failed: %s" % (" ".join(argv), result.stderr))
        return result.stdout

    def _with_own_shm(self, argv):
        """``argv`` run as the user with a private /dev/shm; the same process all along (exec), so its
        pid is the program's."""
        script = 'mount -t tmpfs -o size=64m,mode=1777 vic-postgres-shm /dev/shm && exec setpriv --reuid="$0" ' \
                 '--regid="$0" --init-groups -- "$@"'
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, self.user] + argv

    def start(self):
        """Initialise and start the cluster; on any failure nothing is left (process or folder)."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        for folder in (self.folder, self.socket_dir):
            folder.mkdir(exist_ok=True)
            shutil.chown(folder, self.user, self.user)
        self._as_user([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                       "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"], own_shm=True)
        with open(self.folder / "postgres.log", "ab") as log:
            # No durability wanted from a test's database: fsync off keeps its commits cheap.
            self.proc = subprocess.Popen(self._with_own_shm([
                str(self.bin / "postgres"), "-D", str(self.data), "-k", str(self.socket_dir), "-c", "listen_addresses=",
                "-c", "fsync=off", "-c", "max_connections=200"]), cwd=self.folder, stdout=log, stderr=subprocess.STDOUT)
        until(self._ready, "PostgreSQL to accept connections in %s" % self.socket_dir, timeout=60)
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("postgres ended: %s" % (self.folder / "postgres.log").read_text())
        return subprocess.run([str(self.bin / "pg_isready"), "-q", "-h", str(self.socket_dir)],
                              check=False).returncode == 0

    def url(self, database):
        """The SQLAlchemy URL of ``database`` here, as a user of the service writes one."""
        return "postgresql+psycopg://postgres@/%s?host=%s" % (database, self.socket_dir)

    def create_database(self, name):
        """A new empty database; its URL."""
        self._as_user([str(self.bin / "createdb"), "-h", str(self.socket_dir), "-U", "postgres", name])
        return self.url(name)

    def stop(self):
        """Fast shutdown (SIGINT: clients are cut off) by pid, then the cluster's folder is removed."""
        code = _stop(self.proc, signal.SIGINT)
        shutil.rmtree(self.folder, ignore_errors=True)
        return code


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


# -- test helpers ---------------------------------------------------------------------------------


@functools.cache
def _spec():
    return yaml.safe_load(HARBOR_SPEC.read_text())


def harbor_schema(path, method="get", status=200):
    """The schema Harbor's description gives for an answer, with its definitions."""
    responses = _spec()["paths"][path][method]["responses"]
    response = responses.get(status) or responses[str(status)]
    return dict(response["schema"], definitions=_spec()["definitions"])


def validate(body, path, method="get", status=200):
    jsonschema.Draft4Validator(harbor_schema(path, method, status)).validate(body)
    return body


def make_user(registry, name):
    status, headers, _body = registry.api("POST", "/users", ADMIN, {"username": name, "password": PASSWORD,
                                                                    "email": name + "@example.com",
                                                                    "realname": name})
    assert status == 201, status
    return int(headers["Location"].rsplit("/", 1)[1])


def make_project(registry, name, public=False, **extra):
    status, _headers, body = registry.api("POST", "/projects", ADMIN, dict(
        {"project_name": name, "metadata": {"public": "true" if public else "false"}}, **extra))
    assert status == 201, body


def add_member(registry, project, user, role_id):
    status, _headers, body = registry.api("POST", "/projects/%s/members" % project, ADMIN,
                                          {"role_id": role_id, "member_user": {"username": user}})
    assert status == 201, body


def push(registry, images, name, ref, creds=ADMIN):
    """skopeo copy the test image ``name`` to ``ref`` (project/repo:tag) here; (returncode, stderr)."""
    layout = images[name]
    return registry.skopeo("oci:%s:%s" % (layout.folder, layout.tag), "docker://%s/%s" % (registry.host, ref),
                           creds=creds)
