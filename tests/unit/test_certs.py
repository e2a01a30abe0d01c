# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import shutil
import socket
import ssl
import stat
import threading

import pytest

from ansible_collections.vic.containers.plugins.module_utils import _certs

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CNAME = "vch.example.test"
ALL_FILES = sorted(_certs.FILES.values())


# ---------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def generated_set(tmp_path_factory):
    """One generated set, copied per test by `cert_dir` (RSA keygen is slow)."""
    path = str(tmp_path_factory.mktemp("pristine") / "certs")
    material = _certs.generate(path, CNAME, ips=["127.0.0.1", "10.1.2.3"])
    return path, material


@pytest.fixture
def cert_dir(generated_set, tmp_path):
    src, material = generated_set
    dst = str(tmp_path / "certs")
    shutil.copytree(src, dst)
    return dst, material


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def _write(path, data, mode=0o600):
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)


def _load_cert(path):
    return x509.load_pem_x509_certificate(_read(path))


def _sans(cert):
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)


def _strict(ctx):
    # Python 3.13's default context verifies strictly; our certs must pass it too.
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def _server_ctx(cert_dir):
    ctx = _strict(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    ctx.load_cert_chain(os.path.join(cert_dir, "admin/server-cert.pem"), os.path.join(cert_dir, "admin/server-key.pem"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=os.path.join(cert_dir, "ca.pem"))
    return ctx


def _client_ctx(ca_file, cert_file, key_file):
    ctx = _strict(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))  # check_hostname + CERT_REQUIRED
    ctx.load_verify_locations(cafile=ca_file)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def _handshake(server_ctx, client_ctx, server_hostname):
    """Run one TLS exchange over 127.0.0.1; return (server_error, client_error, data)."""
    result = {"server_error": None}
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.settimeout(10)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve():
        try:
            conn, _addr = listener.accept()
            with conn:
                conn.settimeout(10)
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
                    tls.recv(16)  # wait for the client to finish
        except (ssl.SSLError, OSError) as exc:
            result["server_error"] = exc

    thread = threading.Thread(target=serve)
    thread.start()
    client_error, data = None, b""
    try:
        with socket.create_connection(listener.getsockname(), timeout=10) as raw, \
                client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            # With TLS 1.3 a rejected client certificate only shows up on the first read.
            data = tls.recv(2)
            if data:
                tls.sendall(b"bye")
    except (ssl.SSLError, OSError) as exc:
        client_error = exc
    finally:
        thread.join(15)
        listener.close()
    assert not thread.is_alive()
    return result["server_error"], client_error, data


def _make_cert(tmp_path, name, cn="other.example.test", sans=None, days=(-1, 365), key=None,
               eku=None, ca=False, issuer=None):
    """Write a self-signed (or issuer-signed) cert + key; return (cert_path, key_path, cert, key)."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days[0]))
        .not_valid_after(now + datetime.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    cert_path = str(tmp_path / ("%s-cert.pem" % name))
    key_path = str(tmp_path / ("%s-key.pem" % name))
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return cert_path, key_path, cert, key


# ---------------------------------------------------------------- generation

def test_has_cryptography():
    assert _certs.HAS_CRYPTOGRAPHY is True
    assert _certs.CRYPTOGRAPHY_IMPORT_ERROR is None


def test_generate_writes_vic_machine_layout_with_safe_modes(tmp_path):
    os.umask(0o077)  # certs must still come out 0644
    try:
        path = str(tmp_path / "a" / "certs")
        material = _certs.generate(path, CNAME)
    finally:
        os.umask(0o022)
    # DOCKER_CERT_PATH holds only the client's files; the CA key and the server's files are in admin/.
    assert sorted(os.listdir(path)) == ["admin", "ca.pem", "cert.pem", "key.pem"]
    assert sorted(os.listdir(os.path.join(path, "admin"))) == ["ca-key.pem", "server-cert.pem", "server-key.pem"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(path, "admin")).st_mode) == 0o700
    for name in ALL_FILES:
        mode = stat.S_IMODE(os.stat(os.path.join(path, name)).st_mode)
        assert mode == (0o600 if name.endswith("key.pem") else 0o644), name
    assert material.generated is True
    assert material.cname == CNAME
    assert material.paths == {k: os.path.join(path, v) for k, v in _certs.FILES.items()}
    assert material.ca_cert_pem == _read(material.paths["ca"]).decode()
    assert material.server_cert_pem == _read(material.paths["server_cert"]).decode()
    assert material.server_key_pem == _read(material.paths["server_key"]).decode()
    assert "PRIVATE KEY" not in repr(material)


def test_private_keys_are_created_0600(tmp_path, monkeypatch):
    calls = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *args, **kwargs):
        calls.append((os.path.basename(path), flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(_certs.os, "open", spy)
    _certs.generate(str(tmp_path / "c"), CNAME)
    modes = {name: (flags, mode) for name, flags, mode in calls}
    assert sorted(modes) == sorted(os.path.basename(name) for name in ALL_FILES)
    for name in ("ca-key.pem", "server-key.pem", "key.pem"):
        flags, mode = modes[name]
        assert mode == 0o600
        assert flags & os.O_EXCL and flags & os.O_CREAT


def test_generated_certificates_content(cert_dir):
    path, material = cert_dir
    ca = _load_cert(os.path.join(path, "ca.pem"))
    server = _load_cert(os.path.join(path, "admin/server-cert.pem"))
    client = _load_cert(os.path.join(path, "cert.pem"))

    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ca.subject != server.subject
    server.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)

    dns, ips = _sans(server)
    assert dns == [CNAME]
    assert ips == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("10.1.2.3")]
    assert ExtendedKeyUsageOID.SERVER_AUTH in server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    assert server.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "vic.containers"

    for cert, years in ((ca, 10), (server, 2), (client, 2)):
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert abs(lifetime.days - years * 365) <= 5
        assert cert.public_key().key_size == 2048
    assert len({ca.serial_number, server.serial_number, client.serial_number}) == 3
    assert material.server_fingerprint == hashlib.sha256(server.public_bytes(serialization.Encoding.DER)).hexdigest()


def test_serials_and_keys_are_random(tmp_path, generated_set):
    other = _certs.generate(str(tmp_path / "other"), CNAME)
    first = x509.load_pem_x509_certificate(generated_set[1].server_cert_pem.encode())
    second = x509.load_pem_x509_certificate(other.server_cert_pem.encode())
    assert first.serial_number != second.serial_number
    assert other.server_fingerprint != generated_set[1].server_fingerprint


def test_tls_handshake_with_generated_client_cert(cert_dir):
    path, _material = cert_dir
    client = _client_ctx(*(os.path.join(path, n) for n in ("ca.pem", "cert.pem", "key.pem")))
    server_error, client_error, data = _handshake(_server_ctx(path), client, CNAME)
    assert server_error is None
    assert client_error is None
    assert data == b"ok"


def test_tls_handshake_refuses_client_from_other_ca(cert_dir, tmp_path):
    path, _material = cert_dir
    other = str(tmp_path / "other")
    _certs.generate(other, CNAME)
    # Trusts the right server CA, but presents a client cert from a foreign CA.
    client = _client_ctx(os.path.join(path, "ca.pem"), os.path.join(other, "cert.pem"), os.path.join(other, "key.pem"))
    server_error, client_error, data = _handshake(_server_ctx(path), client, CNAME)
    assert isinstance(server_error, ssl.SSLError)
    assert "certificate verify failed" in str(server_error).lower() or "unknown ca" in str(server_error).lower()
    assert data != b"ok"
    assert client_error is not None or data == b""


def test_tls_client_rejects_wrong_hostname(cert_dir):
    path, _material = cert_dir
    client = _client_ctx(*(os.path.join(path, n) for n in ("ca.pem", "cert.pem", "key.pem")))
    _server_error, client_error, _data = _handshake(_server_ctx(path), client, "not-the-vch.example.test")
    assert isinstance(client_error, ssl.SSLCertVerificationError)


def test_ip_cname_goes_into_ip_san_and_verifies(tmp_path):
    path = str(tmp_path / "ip")
    material = _certs.load_or_generate(path, "127.0.0.1", ips=["127.0.0.1", "::1"])
    dns, ips = _sans(_load_cert(material.paths["server_cert"]))
    assert dns == []
    assert ips == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    client = _client_ctx(material.paths["ca"], material.paths["cert"], material.paths["key"])
    server_error, client_error, data = _handshake(_server_ctx(path), client, "127.0.0.1")
    assert (server_error, client_error, data) == (None, None, b"ok")


def test_generate_refuses_to_overwrite(cert_dir):
    path, _material = cert_dir
    before = {n: _read(os.path.join(path, n)) for n in ALL_FILES}
    with pytest.raises(_certs.CertError, match=r"tls.cert_path.*refusing to overwrite") as err:
        _certs.generate(path, CNAME)
    assert err.value.option == "tls.cert_path"
    assert before == {n: _read(os.path.join(path, n)) for n in ALL_FILES}


def test_cert_path_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(_certs.CertError, match=r"tls.cert_path.*not a directory"):
        _certs.load_or_generate(str(path), CNAME)


@pytest.mark.parametrize("key_size", [1024, 2047, 8192, "2048", 2048.0, True, None])
def test_bad_key_size(tmp_path, key_size):
    path = str(tmp_path / "c")
    with pytest.raises(_certs.CertError, match=r"tls.key_size") as err:
        _certs.load_or_generate(path, CNAME, key_size=key_size)
    assert err.value.option == "tls.key_size"
    assert not os.path.exists(path)


def test_other_key_size_and_organization(tmp_path):
    material = _certs.generate(str(tmp_path / "c"), CNAME, organization=["Acme", "Ops"], key_size=3072)
    cert = x509.load_pem_x509_certificate(material.server_cert_pem.encode())
    assert cert.public_key().key_size == 3072
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["Acme", "Ops"]


@pytest.mark.parametrize("kwargs, option", [
    ({"cname": ""}, "tls.cname"),
    ({"cname": None}, "tls.cname"),
    ({"cname": "bad name!"}, "tls.cname"),
    ({"cname": "h\u00e9.example"}, "tls.cname"),
    ({"organization": []}, "tls.organization"),
    ({"organization": [""]}, "tls.organization"),
    ({"organization": ["x" * 65]}, "tls.organization"),
    ({"ips": ["not-an-ip"]}, None),
    ({"days": 0}, None),
])
def test_bad_parameters(tmp_path, kwargs, option):
    args = {"cname": CNAME}
    args.update(kwargs)
    with pytest.raises(_certs.CertError) as err:
        _certs.load_or_generate(str(tmp_path / "c"), **args)
    assert err.value.option == option
    if option:
        assert str(err.value).startswith(option + ":")
    assert not os.path.exists(tmp_path / "c")


def test_long_cname_still_in_san(tmp_path):
    cname = ".".join(["a" * 60] * 3) + ".test"
    material = _certs.generate(str(tmp_path / "c"), cname)
    assert _sans(_load_cert(material.paths["server_cert"]))[0] == [cname]


# ---------------------------------------------------------------- reuse

def test_second_run_reuses(cert_dir):
    path, material = cert_dir
    before = {n: os.stat(os.path.join(path, n)).st_mtime_ns for n in ALL_FILES}
    again = _certs.load_or_generate(path, CNAME, ips=["192.0.2.9"])
    assert again.generated is False
    assert again.server_fingerprint == material.server_fingerprint
    assert again.server_cert_pem == material.server_cert_pem
    assert again.server_key_pem == material.server_key_pem
    assert again.ca_cert_pem == material.ca_cert_pem
    assert again.paths == {k: os.path.join(path, v) for k, v in _certs.FILES.items()}
    assert again.warnings == []
    assert before == {n: os.stat(os.path.join(path, n)).st_mtime_ns for n in ALL_FILES}


def test_reuse_matches_cname_case_insensitively(cert_dir):
    path, _material = cert_dir
    assert _certs.load_or_generate(path, CNAME.upper()).generated is False


def test_reuse_warns_about_readable_key(cert_dir):
    path, _material = cert_dir
    os.chmod(os.path.join(path, "key.pem"), 0o644)
    warnings = _certs.load_or_generate(path, CNAME).warnings
    assert len(warnings) == 1 and "key.pem" in warnings[0] and "0600" in warnings[0]


@pytest.mark.parametrize("victim", ["admin/server-key.pem", "key.pem", "admin/ca-key.pem"])
def test_mismatched_key_is_reported_not_overwritten(cert_dir, tmp_path, victim):
    path, _material = cert_dir
    other = str(tmp_path / "other")
    _certs.generate(other, CNAME)
    shutil.copy(os.path.join(other, victim), os.path.join(path, victim))
    before = {n: _read(os.path.join(path, n)) for n in ALL_FILES}
    with pytest.raises(_certs.CertError) as err:
        _certs.load_or_generate(path, CNAME)
    assert err.value.option == "tls.cert_path"
    assert os.path.join(path, victim) in str(err.value)
    assert "does not match" in str(err.value)
    assert before == {n: _read(os.path.join(path, n)) for n in ALL_FILES}


def test_server_cert_from_other_ca(cert_dir, tmp_path):
    path, _material = cert_dir
    other = str(tmp_path / "other")
    _certs.generate(other, CNAME)
    for name in ("admin/server-cert.pem", "admin/server-key.pem"):
        shutil.copy(os.path.join(other, name), os.path.join(path, name))
    with pytest.raises(_certs.CertError, match=r"tls.cert_path: .*server-cert\.pem is not signed by .*ca\.pem"):
        _certs.load_or_generate(path, CNAME)


def test_tampered_pem_names_file(cert_dir):
    path, _material = cert_dir
    target = os.path.join(path, "admin/server-key.pem")
    data = _read(target)
    _write(target, data[:60] + b"AAAA" + data[64:])
    with pytest.raises(_certs.CertError) as err:
        _certs.load_or_generate(path, CNAME)
    assert err.value.option == "tls.cert_path"
    assert target in str(err.value)
    _write(os.path.join(path, "ca.pem"), b"garbage")
    with pytest.raises(_certs.CertError, match=r"tls.cert_path: .*ca\.pem is not a valid PEM certificate"):
        _certs.load_or_generate(path, CNAME)


def test_partial_set_is_reported(cert_dir):
    path, _material = cert_dir
    os.unlink(os.path.join(path, "cert.pem"))
    with pytest.raises(_certs.CertError, match=r"tls.cert_path: .*incomplete.*missing: cert\.pem"):
        _certs.load_or_generate(path, CNAME)
    with pytest.raises(_certs.CertError, match=r"incomplete"):
        _certs.plan_only(path)
    assert sorted(os.listdir(path)) == ["admin", "ca.pem", "key.pem"]


def test_reuse_with_other_cname_fails(cert_dir):
    path, _material = cert_dir
    with pytest.raises(_certs.CertError, match=r"tls.cname: 'other.example.test' is not in the subjectAltName") as err:
        _certs.load_or_generate(path, "other.example.test")
    assert err.value.option == "tls.cname"
    assert CNAME in str(err.value)


def test_unrelated_files_do_not_block_generation(tmp_path):
    path = tmp_path / "c"
    path.mkdir()
    (path / "README").write_text("hello")
    assert _certs.load_or_generate(str(path), CNAME).generated is True


# ---------------------------------------------------------------- check mode

def test_plan_only_writes_nothing(tmp_path, cert_dir):
    missing = str(tmp_path / "nope")
    assert _certs.plan_only(missing, CNAME) is True
    assert not os.path.exists(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _certs.plan_only(str(empty)) is True
    assert list(empty.iterdir()) == []
    path, _material = cert_dir
    assert _certs.plan_only(path, CNAME) is False
    with pytest.raises(_certs.CertError, match=r"tls.cname"):
        _certs.plan_only(path, "other.example.test")
    with pytest.raises(_certs.CertError, match=r"tls.key_size"):
        _certs.plan_only(missing, key_size=1024)


# ---------------------------------------------------------------- helpers

def test_fingerprint_and_verify_chain(cert_dir, tmp_path):
    path, material = cert_dir
    server_pem = _read(os.path.join(path, "admin/server-cert.pem"))
    der = ssl.PEM_cert_to_DER_cert(server_pem.decode())
    assert _certs.fingerprint(server_pem) == hashlib.sha256(der).hexdigest()
    assert _certs.fingerprint(server_pem.decode()) == material.server_fingerprint
    assert _certs.verify_chain(server_pem, material.ca_cert_pem) is True
    assert _certs.verify_chain(_read(os.path.join(path, "cert.pem")), material.ca_cert_pem) is True
    other = _certs.generate(str(tmp_path / "other"), CNAME)
    assert _certs.verify_chain(server_pem, other.ca_cert_pem) is False
    # a bundle with the right CA anywhere in it is enough
    assert _certs.verify_chain(server_pem, other.ca_cert_pem + material.ca_cert_pem) is True
    with pytest.raises(_certs.CertError, match=r"not a valid PEM certificate"):
        _certs.fingerprint("garbage")


# ---------------------------------------------------------------- user-supplied

def test_load_given_accepts_generated_pair(cert_dir):
    path, material = cert_dir
    given = _certs.load_given(os.path.join(path, "admin/server-cert.pem"), os.path.join(path, "admin/server-key.pem"),
                              ca_cert=os.path.join(path, "ca.pem"), cname=CNAME)
    assert given.generated is False
    assert given.server_fingerprint == material.server_fingerprint
    assert given.ca_cert_pem == material.ca_cert_pem
    assert given.cname == CNAME
    assert given.warnings == []
    assert given.paths == {"ca": os.path.join(path, "ca.pem"), "cert": None, "key": None,
                           "server_cert": os.path.join(path, "admin/server-cert.pem"),
                           "server_key": os.path.join(path, "admin/server-key.pem"), "ca_key": None}


def test_load_given_without_ca_or_cname(cert_dir):
    path, _material = cert_dir
    given = _certs.load_given(os.path.join(path, "admin/server-cert.pem"), os.path.join(path, "admin/server-key.pem"))
    assert given.ca_cert_pem is None
    assert given.paths["ca"] is None
    assert given.cname == CNAME  # first SAN


def test_load_given_ip_and_wildcard(tmp_path):
    sans = [x509.DNSName("*.example.test"), x509.IPAddress(ipaddress.ip_address("192.0.2.1"))]
    cert, key, _c, _k = _make_cert(tmp_path, "wild", sans=sans)
    assert _certs.load_given(cert, key, cname="vch.example.test").warnings == []
    assert _certs.load_given(cert, key, cname="192.0.2.1").cname == "192.0.2.1"
    for bad in ("example.test", "a.b.example.test", "192.0.2.2"):
        with pytest.raises(_certs.CertError, match=r"tls.cname"):
            _certs.load_given(cert, key, cname=bad)


def test_load_given_cn_only_warns(tmp_path):
    cert, key, _c, _k = _make_cert(tmp_path, "cn", cn="legacy.example.test")
    given = _certs.load_given(cert, key, cname="legacy.example.test")
    assert len(given.warnings) == 1 and "subjectAltName" in given.warnings[0]


def test_load_given_errors(cert_dir, tmp_path):
    path, _material = cert_dir
    server_cert = os.path.join(path, "admin/server-cert.pem")
    server_key = os.path.join(path, "admin/server-key.pem")
    garbage = str(tmp_path / "garbage.pem")
    _write(garbage, b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    missing = str(tmp_path / "missing.pem")

    cases = [
        ((missing, server_key), {}, "tls.server_cert", "cannot read"),
        ((garbage, server_key), {}, "tls.server_cert", "not a valid PEM certificate"),
        ((server_key, server_key), {}, "tls.server_cert", "not a valid PEM certificate"),
        ((server_cert, missing), {}, "tls.server_key", "cannot read"),
        ((server_cert, garbage), {}, "tls.server_key", "not a valid PEM private key"),
        ((server_cert, os.path.join(path, "key.pem")), {}, "tls.server_key", "does not match"),
        ((server_cert, server_key), {"cname": "other.example.test"}, "tls.cname", "not among the names"),
        ((server_cert, server_key), {"ca_cert": garbage}, "tls.ca_cert", "not a valid PEM certificate"),
        ((server_cert, server_key), {"ca_cert": missing}, "tls.ca_cert", "cannot read"),
        ((None, server_key), {}, "tls.server_cert", "required"),
        ((server_cert, ""), {}, "tls.server_key", "required"),
    ]
    for args, kwargs, option, text in cases:
        with pytest.raises(_certs.CertError) as err:
            _certs.load_given(*args, **kwargs)
        assert err.value.option == option, (args, kwargs, str(err.value))
        assert str(err.value).startswith(option + ":")
        assert text in str(err.value), str(err.value)


def test_load_given_encrypted_key(cert_dir, tmp_path):
    path, _material = cert_dir
    key = serialization.load_pem_private_key(_read(os.path.join(path, "admin/server-key.pem")), password=None)
    encrypted = str(tmp_path / "enc.pem")
    _write(encrypted, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(_certs.CertError, match=r"tls.server_key: .*encrypted"):
        _certs.load_given(os.path.join(path, "admin/server-cert.pem"), encrypted)


def test_load_given_expired_and_not_yet_valid(tmp_path):
    sans = [x509.DNSName(CNAME)]
    cert, key, _c, _k = _make_cert(tmp_path, "old", sans=sans, days=(-30, -1))
    with pytest.raises(_certs.CertError, match=r"tls.server_cert: .*expired"):
        _certs.load_given(cert, key, cname=CNAME)
    cert, key, _c, _k = _make_cert(tmp_path, "future", sans=sans, days=(5, 30))
    with pytest.raises(_certs.CertError, match=r"tls.server_cert: .*not valid before"):
        _certs.load_given(cert, key, cname=CNAME)
    cert, key, _c, _k = _make_cert(tmp_path, "soon", sans=sans, days=(-1, 10))
    assert any("expires" in w for w in _certs.load_given(cert, key, cname=CNAME).warnings)


def test_load_given_client_auth_only_cert(tmp_path):
    cert, key, _c, _k = _make_cert(tmp_path, "client", sans=[x509.DNSName(CNAME)],
                                   eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    with pytest.raises(_certs.CertError, match=r"tls.server_cert: .*serverAuth"):
        _certs.load_given(cert, key, cname=CNAME)


def test_load_given_ec_key_and_chain(tmp_path):
    ca_path, _ca_key_path, ca, ca_key = _make_cert(tmp_path, "ca", cn="Test CA", ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    cert, key, leaf, _k = _make_cert(tmp_path, "leaf", cn=CNAME, sans=[x509.DNSName(CNAME)], key=leaf_key,
                                     issuer=(ca, ca_key))
    with open(cert, "ab") as handle:  # leaf followed by its chain
        handle.write(_read(ca_path))
    given = _certs.load_given(cert, key, ca_cert=ca_path, cname=CNAME)
    assert given.server_fingerprint == hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert given.server_cert_pem.count("BEGIN CERTIFICATE") == 2


def test_load_given_ca_bundle_checks(cert_dir, tmp_path):
    path, _material = cert_dir
    args = (os.path.join(path, "admin/server-cert.pem"), os.path.join(path, "admin/server-key.pem"))
    expired_ca, _k, _c, _key = _make_cert(tmp_path, "expired-ca", cn="Old CA", ca=True, days=(-30, -1))
    with pytest.raises(_certs.CertError, match=r"tls.ca_cert: .*no currently valid"):
        _certs.load_given(*args, ca_cert=expired_ca)
    bundle = str(tmp_path / "bundle.pem")
    _write(bundle, _read(expired_ca) + _read(os.path.join(path, "ca.pem")), 0o644)
    given = _certs.load_given(*args, ca_cert=bundle)
    assert len(given.warnings) == 1 and "validity" in given.warnings[0]
    not_ca, _k, _c, _key = _make_cert(tmp_path, "leafy", cn="leaf")
    assert any("not a CA" in w for w in _certs.load_given(*args, ca_cert=not_ca).warnings)


def test_a_set_laid_out_by_earlier_versions_keeps_working_and_is_reported(cert_dir):
    """Earlier versions wrote the CA key and the server's files beside the client's: still read there, with a
    warning that the folder handed to users as DOCKER_CERT_PATH holds them."""
    path, material = cert_dir
    for name in ("ca-key.pem", "server-cert.pem", "server-key.pem"):
        os.rename(os.path.join(path, "admin", name), os.path.join(path, name))
    os.rmdir(os.path.join(path, "admin"))
    assert _certs.plan_only(path) is False
    reused = _certs.load_or_generate(path, CNAME)
    assert reused.generated is False and reused.server_key_pem == material.server_key_pem
    assert reused.paths["server_key"] == os.path.join(path, "server-key.pem")
    assert _certs.legacy_files(path) == [os.path.join(path, n) for n in ("ca-key.pem", "server-cert.pem",
                                                                         "server-key.pem")]
    assert len(reused.warnings) == 1 and "move them into %s" % os.path.join(path, "admin") in reused.warnings[0]
    assert sorted(os.listdir(path)) == ALL_FILES_LEGACY


ALL_FILES_LEGACY = sorted(os.path.basename(name) for name in _certs.FILES.values())
