"""Local registries and test images for the image tests: Debian's docker-registry (Distribution 2.8) on
127.0.0.1, each with its own config and storage, stopped by its own pid; images made here from
busybox-static as OCI image layouts and pushed with skopeo.

Registry kinds: ``anonymous`` (TLS, a CA made here), ``basic`` (htpasswd, bcrypt), ``token``
(Distribution token auth with the small issuer below: RS256 JWTs, ``kid`` the libtrust fingerprint of
the signing key) and ``plain`` (HTTP, for a VCH that lists it as insecure).
"""

import base64
import datetime
import gzip
import hashlib
import http.server
import io
import ipaddress
import json
import os
import secrets
import signal
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import bcrypt
import jwt
from backports import zstd
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ansible_collections.vic.containers.tools.harness.endpoint import free_port
from ansible_collections.vic.containers.tools.harness.waiting import until

BUSYBOX = "/bin/busybox"
USER, PASSWORD = "dev", "s3cret-pass"
SERVICE, ISSUER = "vic-test-registry", "vic-test-issuer"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = OCI_MANIFEST + ", " + MANIFEST_V2


# -- TLS ------------------------------------------------------------------------------------------


class TestCA:
    """A CA and one server certificate for ``address`` (127.0.0.1 by default), 127.0.0.1 and localhost, as PEM
    files in ``folder``."""

    def __init__(self, folder, address="127.0.0.1"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vic test registry CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
              .not_valid_after(now + datetime.timedelta(days=2))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address(name)) for name in sorted({address, "127.0.0.1"})]
                    + [x509.DNSName("localhost")]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
        self.ca_path = self.folder / "ca.pem"
        self.ca_path.write_text(self.ca_pem)
        self.cert_path = self.folder / "server.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_path = self.folder / "server-key.pem"
        self.key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
        os.chmod(self.key_path, 0o600)
        # skopeo's --*-cert-dir wants the CA as ca.crt.
        self.cert_dir = self.folder / "certs.d"
        self.cert_dir.mkdir(exist_ok=True)
        (self.cert_dir / "ca.crt").write_text(self.ca_pem)

    def client_context(self):
        return ssl.create_default_context(cadata=self.ca_pem)

    def server_context(self):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


# -- the token issuer -----------------------------------------------------------------------------


def libtrust_kid(public_key):
    """Distribution's key id: SHA-256 of the DER public key, 30 bytes, base32, 12 groups of 4."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(text[i:i + 4] for i in range(0, len(text), 4))


class TokenIssuer:
    """Distribution's token service in miniature: Basic credentials in, an RS256 JWT granting
    the requested actions the account holds out. ``grants``: {user: {repository: [actions]}}."""

    def __init__(self, folder, ca, users, grants):
        self.users = users
        self.grants = grants
        self.requests = []
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = libtrust_kid(self.key.public_key())
        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=2)).sign(self.key, hashes.SHA256()))
        self.bundle = Path(folder) / "token-bundle.pem"
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # pylint: disable=invalid-name
                issuer.answer(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = ca.server_context().wrap_socket(self.server.socket, server_side=True)
        self.realm = "https://127.0.0.1:%d/token" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, handler):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(handler.path).query)
        account = self._account(handler.headers.get("Authorization"))
        self.requests.append({"account": account, "scope": query.get("scope", [])})
        if account is False:
            handler.send_response(401)
            handler.send_header("Content-Type", "application/json")
            handler.end_headers()
            handler.wfile.write(b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
            return
        access = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else (None, None, "")
            held = set(self.grants.get(account, {}).get(name, ()))
            granted = [a for a in actions.split(",") if a in held]
            if kind == "repository":
                access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": account or "", "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": secrets.token_hex(8), "access": access}
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _account(self, header):
        """The user name, None for anonymous, False for wrong credentials."""
        if not header:
            return None
        try:
            user, _sep, password = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")
        except (ValueError, IndexError):
            return False
        return user if self.users.get(user) == password else False

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# -- registries -----------------------------------------------------------------------------------


class Registry:
    """One docker-registry process: ``kind`` anonymous, basic, token or plain."""

    def __init__(self, folder, ca, kind, port=None, address="127.0.0.1"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ca = ca
        self.kind = kind
        self.port = port or free_port()
        self.host = "%s:%d" % (address, self.port)
        self.tls = kind != "plain"
        self.issuer = None
        self.proc = None

    def start(self):
        config = {
            "version": 0.1,
            # The access log tells which blobs a pull fetched (blob_gets).
            "log": {"level": "warn", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.folder / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
        }
        if self.tls:
            config["http"]["tls"] = {"certificate": str(self.ca.cert_path), "key": str(self.ca.key_path)}
        if self.kind == "basic":
            htpasswd = self.folder / "htpasswd"
            hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
            htpasswd.write_text("%s:%s\n" % (USER, hashed))
            config["auth"] = {"htpasswd": {"realm": "vic-test", "path": str(htpasswd)}}
        elif self.kind == "token":
            self.issuer = TokenIssuer(self.folder, self.ca, {USER: PASSWORD},
                                      {USER: {"library/busybox": ["pull", "push"], "library/shared": ["pull", "push"]}})
            config["auth"] = {"token": {"realm": self.issuer.realm, "service": SERVICE, "issuer": ISSUER,
                                        "rootcertbundle": str(self.issuer.bundle)}}
        path = self.folder / "config.yml"
        path.write_text(json.dumps(config))  # YAML is a superset of JSON
        with open(self.folder / "registry.log", "wb") as log:
            self.proc = subprocess.Popen(["docker-registry", "serve", str(path)], stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self):
        url = "%s://%s/v2/" % ("https" if self.tls else "http", self.host)
        context = self.ca.client_context() if self.tls else None

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError("docker-registry ended: %s" % (self.folder / "registry.log").read_text())
            try:
                urllib.request.urlopen(url, timeout=2, context=context).close()
            except urllib.error.HTTPError:
                pass  # 401: serving, and asking for credentials
            except OSError:
                return False  # not listening yet
            return True
        until(answers, "docker-registry to answer on %s" % url, timeout=30)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.issuer is not None:
            self.issuer.stop()

    def creds(self):
        return None if self.kind in ("anonymous", "plain") else "%s:%s" % (USER, PASSWORD)

    def blob_gets(self, digest):
        """How many times the blob ``digest`` was asked for (GET) so far, from the access log."""
        log = (self.folder / "registry.log").read_text(errors="replace")
        return sum(1 for line in log.splitlines() if '"GET /v2/' in line and "/blobs/%s " % digest in line)

    def push(self, layout, tag, name, fmt=None):
        """skopeo copy an OCI layout's ``tag`` to ``library/<name>:<tag>`` here; returns the reference."""
        ref = "%s/library/%s:%s" % (self.host, name, tag)
        command = ["skopeo", "--insecure-policy", "copy", "--quiet", "--retry-times", "0"]
        if self.tls:
            command += ["--dest-cert-dir", str(self.ca.cert_dir)]
        else:
            command += ["--dest-tls-verify=false"]
        if self.creds():
            command += ["--dest-creds", self.creds()]
        if fmt:
            command += ["--format", fmt]
        command += ["oci:%s:%s" % (layout, tag), "docker://" + ref]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False,
                                env=dict(os.environ, HOME=str(self.folder)))
        assert result.returncode == 0, result.stderr
        return ref

    def manifest_digest(self, name, tag):
        request = urllib.request.Request("https://%s/v2/library/%s/manifests/%s" % (self.host, name, tag),
                                         method="HEAD", headers={"Accept": ACCEPT})
        with urllib.request.urlopen(request, context=self.ca.client_context()) as response:
            return response.headers["Docker-Content-Digest"]

    def put_manifest_list(self, name, tag, entries):
        """Push a Docker manifest list of ``entries`` [(digest, size, media type, architecture)] (anonymous only)."""
        body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_LIST, "manifests": [
            {"mediaType": media, "digest": digest, "size": size, "platform": {"architecture": arch, "os": "linux"}}
            for digest, size, media, arch in entries]}).encode()
        request = urllib.request.Request("https://%s/v2/library/%s/manifests/%s" % (self.host, name, tag),
                                         data=body, method="PUT", headers={"Content-Type": MANIFEST_LIST})
        urllib.request.urlopen(request, context=self.ca.client_context()).close()
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def fetch_manifest(self, name, tag):
        request = urllib.request.Request("https://%s/v2/library/%s/manifests/%s" % (self.host, name, tag),
                                         headers={"Accept": ACCEPT})
        with urllib.request.urlopen(request, context=self.ca.client_context()) as response:
            return response.read(), response.headers["Content-Type"]


class Registries:
    """The registries of one test module, started when first asked for; ports are known from the start
    (a VCH's insecure list and whitelist name them before they run). ``address``: where they listen,
    loopback by default; a role test gives its test bridge's host address so the test host pulls from them."""

    KINDS = ("anonymous", "basic", "token", "plain")

    def __init__(self, folder, address="127.0.0.1"):
        self.folder = Path(folder)
        self.ca = TestCA(self.folder / "ca", address)
        self.images = TestImages(self.folder / "images")
        self._registries = {kind: Registry(self.folder / kind, self.ca, kind, address=address) for kind in self.KINDS}
        self._started = set()

    def trusted(self):
        """A VCH's ``registry`` options that trust these registries' CA (no insecure registry, no whitelist)."""
        return {"ca_certs": [str(self.ca.ca_path)], "insecure": [], "whitelist": []}

    def host(self, kind):
        return self._registries[kind].host

    def get(self, kind, push=("busybox", "shared")):
        """The registry of ``kind``, running, with the test images pushed."""
        registry = self._registries[kind]
        if kind not in self._started:
            registry.start()
            self._started.add(kind)
            for name in push:
                self.images.push(registry, name)
        return registry

    def close(self):
        for kind in self._started:
            self._registries[kind].stop()


# -- test images ----------------------------------------------------------------------------------


def tar_bytes(entries):
    """An uncompressed tar of ``entries``: (name, kind, data/target, mode) with kind file/dir/symlink/link."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            info.mtime = 1700000000
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.LNKTYPE, data
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def busybox_layer():
    """Layer 1: busybox-static with its applets as symlinks, /tmp, and files layer 2 removes."""
    entries = [("bin", "dir", None, 0o755), ("bin/busybox", "file", Path(BUSYBOX).read_bytes(), 0o755)]
    entries += [("bin/%s" % applet, "symlink", "/bin/busybox", 0o777)
                for applet in ("sh", "ls", "cat", "echo", "true", "sleep", "env")]
    entries += [("etc", "dir", None, 0o755), ("etc/removed", "file", b"gone in layer 2\n", 0o644),
                ("tmp", "dir", None, 0o1777), ("data", "dir", None, 0o755),
                ("data/old", "file", b"hidden by an opaque folder\n", 0o644)]
    return tar_bytes(entries)


def app_layer(text):
    """Layer 2: a file, a whiteout of /etc/removed and an opaque /data."""
    return tar_bytes([("etc", "dir", None, 0o755), ("etc/motd", "file", text.encode(), 0o644),
                      ("etc/.wh.removed", "file", b"", 0o644), ("data", "dir", None, 0o755),
                      ("data/.wh..wh..opq", "file", b"", 0o644), ("data/new", "file", b"new\n", 0o644)])


class OciLayout:
    """An OCI image layout directory with one image under ``tag``; its config names ``diff_ids`` when
    given (an image that lies), else the layers' own digests. Layers are gzip-compressed, or zstd-compressed
    (``compression="zstd"``, as ``docker buildx --output compression=zstd`` makes them)."""

    def __init__(self, folder, tag, layer_tars, cmd=("sh",), labels=None, architecture="amd64", level=9,
                 diff_ids=None, compression="gzip"):
        self.folder = Path(folder)
        blobs = self.folder / "blobs" / "sha256"
        blobs.mkdir(parents=True, exist_ok=True)
        self.diff_ids, descriptors = [], []
        for raw in layer_tars:
            self.diff_ids.append(self.digest_of(raw))
            if compression == "zstd":
                descriptors.append(self._blob(blobs, zstd.compress(raw, level), OCI_LAYER_ZSTD))
            else:
                descriptors.append(self._blob(blobs, gzip.compress(raw, compresslevel=level, mtime=0), OCI_LAYER))
        config = {"created": "2024-01-02T03:04:05.123456789Z", "architecture": architecture, "os": "linux",
                  "config": {"Env": ["PATH=/bin"], "Cmd": list(cmd), "WorkingDir": "/", "Labels": labels or {}},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids or self.diff_ids},
                  "history": [{"created": "2024-01-02T03:04:05Z", "created_by": "vic test"} for _raw in layer_tars]}
        self.config = config
        self.config_descriptor = self._blob(blobs, json.dumps(config).encode(), OCI_CONFIG)
        self.image_id = self.config_descriptor["digest"]
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": self.config_descriptor,
                    "layers": descriptors}
        self.manifest_descriptor = dict(self._blob(blobs, json.dumps(manifest).encode(), OCI_MANIFEST),
                                        annotations={"org.opencontainers.image.ref.name": tag})
        self.layers = descriptors
        (self.folder / "index.json").write_text(json.dumps({"schemaVersion": 2,
                                                            "manifests": [self.manifest_descriptor]}))
        (self.folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.tag = tag

    @staticmethod
    def digest_of(raw):
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    @staticmethod
    def _blob(blobs, data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}


class TestImages:
    """The test images as OCI layouts: ``busybox`` (busybox + app layer) and ``shared`` (the same
    busybox layer + another), so the second shares its lower layer with the first."""

    def __init__(self, folder):
        self.folder = Path(folder)
        base = busybox_layer()
        self.layouts = {
            "busybox": OciLayout(self.folder / "busybox", "latest", [base, app_layer("hello from layer 2\n")],
                                 labels={"org.example.kind": "busybox"}),
            "shared": OciLayout(self.folder / "shared", "latest", [base, app_layer("another top layer\n")],
                                cmd=("cat", "/etc/motd"), labels={"org.example.kind": "shared"}),
        }

    def __getitem__(self, name):
        return self.layouts[name]

    def add(self, name, layout):
        self.layouts[name] = layout

    def push(self, registry, name, fmt=None, as_name=None):
        layout = self.layouts[name]
        return registry.push(layout.folder, layout.tag, as_name or name, fmt)
