# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""TLS material for a virtual container host (VCH).

Private to the vic.containers collection: the API may change without notice
and must not be used from outside the collection.

Reproduces what ``vic-machine create`` did for TLS: either generate a CA, a
server certificate and a client certificate into a directory that is a
``DOCKER_CERT_PATH`` holding only what a Docker client needs (``ca.pem``,
``cert.pem``, ``key.pem``), with the files only an administrator needs (the
CA key ``ca-key.pem``, ``server-cert.pem``, ``server-key.pem``) in its
``admin`` folder (mode 0700), or validate certificates supplied by the user.
vic-machine, and this collection before, wrote all six side by side: such a
set is still read where it is (see ``legacy_files``), so a VCH made then keeps
working; moving its three files into ``admin`` finishes the split.

All PEM data handed back in :class:`TlsMaterial` is ``str`` (ASCII PEM text),
ready to be embedded in configuration.  Fingerprints are lowercase hex without
separators.

Requires ``cryptography`` >= 40 (``verify_directly_issued_by``,
``load_pem_x509_certificates``; ``not_valid_*_utc`` is used when present).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import ipaddress
import os
import re
import stat
from dataclasses import dataclass, field

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as exc:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc


ADMIN_DIR = "admin"
CA_FILE = "ca.pem"
CA_KEY_FILE = ADMIN_DIR + "/ca-key.pem"
SERVER_CERT_FILE = ADMIN_DIR + "/server-cert.pem"
SERVER_KEY_FILE = ADMIN_DIR + "/server-key.pem"
CLIENT_CERT_FILE = "cert.pem"
CLIENT_KEY_FILE = "key.pem"

# Keys of TlsMaterial.paths -> file names inside cert_path.
FILES = {
    "ca": CA_FILE,
    "ca_key": CA_KEY_FILE,
    "server_cert": SERVER_CERT_FILE,
    "server_key": SERVER_KEY_FILE,
    "cert": CLIENT_CERT_FILE,
    "key": CLIENT_KEY_FILE,
}
_KEY_FILES = (CA_KEY_FILE, SERVER_KEY_FILE, CLIENT_KEY_FILE)
# Where earlier versions (and vic-machine) put the admin files: beside the client's.
_LEGACY = {name: name[len(ADMIN_DIR) + 1:] for name in (CA_KEY_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE)}

KEY_SIZES = (2048, 3072, 4096)
DEFAULT_KEY_SIZE = 2048
DEFAULT_ORGANIZATION = ("vic.containers",)
CA_DAYS = 3650
LEAF_DAYS = 730

# The appliance's clock is set from the ESX host and is often a little off;
# backdating keeps freshly generated certificates valid on both sides.
_BACKDATE = datetime.timedelta(days=1)
_EXPIRY_WARNING = datetime.timedelta(days=30)
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_CN_MAX = 64  # ub-common-name (RFC 5280)


class CertError(Exception):
    """TLS material is invalid or cannot be produced.

    ``option`` is the module option at fault (e.g. ``tls.server_key``) when
    one can be named; the message starts with it too.
    """

    def __init__(self, message, option=None):
        super().__init__(message)
        self.option = option


@dataclass
class TlsMaterial:
    """What the VCH needs to serve TLS and verify clients.

    ca_cert_pem: CA (bundle) the server uses to verify client certificates;
        None when load_given() got no ca_cert (no client verification).
    server_cert_pem / server_key_pem: str PEM; the cert may carry a chain.
    paths: file paths keyed ca, cert, key, server_cert, server_key, ca_key;
        None for files that do not exist in this mode.
    generated: True only when this call wrote new files.
    server_fingerprint: SHA-256 of the server certificate DER, lowercase hex.
    warnings: non-fatal findings the caller should pass on to the user.
    """

    ca_cert_pem: str | None
    server_cert_pem: str
    server_key_pem: str = field(repr=False)  # keep the key out of logs/tracebacks
    paths: dict
    generated: bool
    server_fingerprint: str
    cname: str | None
    warnings: list = field(default_factory=list)


def _error(option, message):
    if option:
        return CertError("%s: %s" % (option, message), option)
    return CertError(message)


def _require():
    if not HAS_CRYPTOGRAPHY:
        raise CertError("the 'cryptography' Python library is required for TLS: %s" % CRYPTOGRAPHY_IMPORT_ERROR)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


# ---------------------------------------------------------------- parameters

def _as_ip(value):
    try:
        return ipaddress.ip_address(str(value))
    except ValueError:
        return None


def _check_cname(cname):
    if not isinstance(cname, str) or not cname.strip():
        raise _error("tls.cname", "a host name or IP address is required")
    cname = cname.strip().rstrip(".")
    if _as_ip(cname) is not None:
        return cname
    labels = cname.split(".")
    if len(cname) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise _error("tls.cname", "%r is not a valid DNS name or IP address (use the xn-- form for IDNs)" % cname)
    return cname


def _check_ips(ips):
    result = []
    for value in ips or ():
        ip = _as_ip(value)
        if ip is None:
            raise CertError("invalid IP address for the server certificate: %r" % (value,))
        if ip not in result:
            result.append(ip)
    return result


def _check_organization(organization):
    orgs = [organization] if isinstance(organization, str) else list(organization or ())
    if not orgs or not all(isinstance(o, str) and o.strip() and len(o) <= _CN_MAX for o in orgs):
        raise _error("tls.organization", "must be a non-empty list of names of 1 to %d characters" % _CN_MAX)
    return orgs


def _check_key_size(key_size):
    if isinstance(key_size, bool) or not isinstance(key_size, int) or key_size not in KEY_SIZES:
        raise _error("tls.key_size", "must be one of %s, got %r" % (", ".join(map(str, KEY_SIZES)), key_size))


def _check_days(days):
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise CertError("certificate validity must be a positive number of days, got %r" % (days,))


# ---------------------------------------------------------------- inspection

def _spki(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_matches(key, cert):
    return _spki(key.public_key()) == _spki(cert.public_key())


def _issued_by(cert, ca):
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _names(cert):
    """(DNS SANs, IP SANs, CNs) of a certificate."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = san.get_values_for_type(x509.DNSName)
        ips = san.get_values_for_type(x509.IPAddress)
    except x509.ExtensionNotFound:
        dns, ips = [], []
    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return dns, ips, cns


def _dns_match(pattern, name):
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern.startswith("*."):
        # A wildcard covers exactly one leftmost label, like TLS clients do.
        head, sep, tail = name.partition(".")
        return bool(head and sep) and tail == pattern[2:]
    return pattern == name


def _name_match(cert, cname):
    """'san' or 'cn' depending on where cname was found, else None."""
    dns, ips, cns = _names(cert)
    ip = _as_ip(cname)
    in_san = ip in ips if ip is not None else any(_dns_match(d, cname) for d in dns)
    if in_san:
        return "san"
    if any(cn.lower().rstrip(".") == cname.lower() for cn in cns):
        return "cn"
    return None


def _describe_names(cert):
    dns, ips, cns = _names(cert)
    parts = ["DNS:%s" % d for d in dns] + ["IP:%s" % i for i in ips] + ["CN=%s" % c for c in cns]
    return ", ".join(parts) or "none"


def _not_before(cert):
    value = getattr(cert, "not_valid_before_utc", None)
    return value if value is not None else cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)


def _not_after(cert):
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def _check_validity(cert, where, option, warnings, now):
    if now < _not_before(cert):
        raise _error(option, "%s is not valid before %s (check the clock)" % (where, _not_before(cert).isoformat()))
    if now > _not_after(cert):
        raise _error(option, "%s expired on %s" % (where, _not_after(cert).isoformat()))
    if now + _EXPIRY_WARNING > _not_after(cert):
        warnings.append("%s expires on %s" % (where, _not_after(cert).isoformat()))


def _allows_server_auth(cert):
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.SERVER_AUTH in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku


def _is_ca(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def fingerprint(pem):
    """SHA-256 (lowercase hex) of the DER of the first certificate in ``pem``."""
    _require()
    cert = _parse_certs(pem, "certificate", None)[0]
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def verify_chain(cert_pem, ca_pem):
    """True if the first certificate of ``cert_pem`` was signed by a certificate in ``ca_pem``.

    One level only: that is the shape vic-machine produces and what the VCH
    checks client certificates against.  Validity dates are not checked.
    """
    _require()
    cert = _parse_certs(cert_pem, "certificate", None)[0]
    return any(_issued_by(cert, ca) for ca in _parse_certs(ca_pem, "CA certificate", None))


# ---------------------------------------------------------------- file I/O

def _read(path, option):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise _error(option, "cannot read %s: %s" % (path, exc.strerror or exc)) from exc


def _text(data, where, option):
    try:
        return data.decode("ascii") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise _error(option, "%s is not a PEM file (non-ASCII content)" % where) from None


def _parse_certs(data, where, option):
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise _error(option, "%s is not a valid PEM certificate: %s" % (where, exc)) from exc


def _parse_key(data, where, option):
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise _error(option, "%s is an encrypted private key; supply it unencrypted" % where) from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise _error(option, "%s is not a valid PEM private key: %s" % (where, exc)) from exc


def _write_new(path, data, mode):
    # O_EXCL: never clobber (or follow a symlink to) something already there;
    # the mode is given at creation so a key is never readable by others.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, mode)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), mode)  # umask may have stripped bits certs need
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _present(cert_path):
    """Names of the set's files that exist in cert_path (an admin file also where earlier versions put it)."""
    if not os.path.lexists(cert_path):
        return []
    if not os.path.isdir(cert_path):
        raise _error("tls.cert_path", "%s exists and is not a directory" % cert_path)
    return [name for name in FILES.values() if os.path.lexists(_where(cert_path, name))]


def _where(cert_path, name):
    """The path of the set's file ``name``: in ``admin``, or beside the client's files if only there."""
    path = os.path.join(cert_path, name)
    if name in _LEGACY and not os.path.lexists(path):
        legacy = os.path.join(cert_path, _LEGACY[name])
        if os.path.lexists(legacy):
            return legacy
    return path


def legacy_files(cert_path):
    """The admin files of a set in ``cert_path`` that lie beside the client's files, as earlier versions left
    them (a DOCKER_CERT_PATH handed to users should not hold them)."""
    return [path for path in (_where(cert_path, name) for name in _LEGACY) if os.path.dirname(path) == cert_path]


def set_paths(cert_path):
    """Role (``ca``, ``cert``, ``key``, ``server_cert``, ``server_key``, ``ca_key``) -> path of that file of
    the set in ``cert_path``, wherever it lies."""
    return {key: _where(cert_path, name) for key, name in FILES.items()}


def _ensure_dir(cert_path, option="tls.cert_path"):
    if os.path.isdir(cert_path):
        return
    try:
        os.makedirs(cert_path, mode=0o700)
        os.chmod(cert_path, 0o700)  # makedirs' mode is filtered by the umask
    except OSError as exc:
        raise _error(option, "cannot create %s: %s" % (cert_path, exc.strerror or exc)) from exc


# ---------------------------------------------------------------- generation

def _new_key(key_size):
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def _subject(common_name, orgs):
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
    if len(common_name) <= _CN_MAX:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _builder(subject, issuer, public_key, days, now):
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(ca):
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=not ca,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )


def _make_ca(key, cname, orgs, days, now):
    # The CA subject must differ from the server's, or OpenSSL would take the
    # server certificate for a self-signed one.
    name = _subject("%s CA" % cname if len(cname) + 3 <= _CN_MAX else "vic.containers CA", orgs)
    return (
        _builder(name, name, key.public_key(), days, now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _make_leaf(key, subject, usage, sans, ca, ca_key, days, now):
    builder = (
        _builder(subject, ca.subject, key.public_key(), days, now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _server_sans(cname, ips):
    cname_ip = _as_ip(cname)
    sans = [x509.IPAddress(cname_ip)] if cname_ip is not None else [x509.DNSName(cname)]
    sans.extend(x509.IPAddress(ip) for ip in ips if ip != cname_ip)
    return sans


def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )


def _cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _build_set(cname, ips, orgs, key_size, days):
    """file name -> PEM bytes for a complete vic-machine style set."""
    now = _now()
    ca_key, server_key, client_key = _new_key(key_size), _new_key(key_size), _new_key(key_size)
    ca = _make_ca(ca_key, cname, orgs, max(CA_DAYS, days), now)
    server = _make_leaf(server_key, _subject(cname, orgs), ExtendedKeyUsageOID.SERVER_AUTH,
                        _server_sans(cname, ips), ca, ca_key, days, now)
    client = _make_leaf(client_key, _subject("client", orgs), ExtendedKeyUsageOID.CLIENT_AUTH,
                        None, ca, ca_key, days, now)
    return {
        CA_FILE: _cert_pem(ca), CA_KEY_FILE: _key_pem(ca_key),
        SERVER_CERT_FILE: _cert_pem(server), SERVER_KEY_FILE: _key_pem(server_key),
        CLIENT_CERT_FILE: _cert_pem(client), CLIENT_KEY_FILE: _key_pem(client_key),
    }


def _write_set(cert_path, contents):
    written = []
    _ensure_dir(os.path.join(cert_path, ADMIN_DIR), "tls.cert_path")
    try:
        for name, data in contents.items():
            path = os.path.join(cert_path, name)
            _write_new(path, data, 0o600 if name in _KEY_FILES else 0o644)
            written.append(path)
    except OSError as exc:
        # A half-written set would block every later run; only remove what we created.
        for path in written:
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise _error("tls.cert_path", "cannot write %s: %s" % (exc.filename or cert_path, exc.strerror or exc)) from exc


def _paths(cert_path):
    return set_paths(cert_path)


def _check_params(cname, ips, organization, key_size, days):
    _check_key_size(key_size)
    _check_days(days)
    orgs = _check_organization(organization)
    return (_check_cname(cname) if cname is not None else None), _check_ips(ips), orgs


def generate(cert_path, cname, ips=(), organization=DEFAULT_ORGANIZATION, key_size=DEFAULT_KEY_SIZE, days=LEAF_DAYS):
    """Write a new CA, server and client certificate set into ``cert_path``.

    ``days`` is the validity of the server and client certificates; the CA
    gets ten years (or ``days``, if longer).  Refuses to overwrite any of the
    six files.
    """
    _require()
    cname, ips, orgs = _check_params(_check_cname(cname), ips, organization, key_size, days)
    existing = _present(cert_path)
    if existing:
        raise _error("tls.cert_path", "%s already contains %s; refusing to overwrite" % (cert_path, ", ".join(existing)))
    contents = _build_set(cname, ips, orgs, key_size, days)
    _ensure_dir(cert_path)
    _write_set(cert_path, contents)
    return TlsMaterial(
        ca_cert_pem=contents[CA_FILE].decode("ascii"),
        server_cert_pem=contents[SERVER_CERT_FILE].decode("ascii"),
        server_key_pem=contents[SERVER_KEY_FILE].decode("ascii"),
        paths=_paths(cert_path),
        generated=True,
        server_fingerprint=fingerprint(contents[SERVER_CERT_FILE]),
        cname=cname,
    )


# ---------------------------------------------------------------- existing sets

def _incomplete(cert_path, present):
    missing = [name for name in FILES.values() if name not in present]
    return _error(
        "tls.cert_path",
        "%s holds an incomplete certificate set (present: %s; missing: %s). Nothing was changed: restore the "
        "missing files, or move the directory away to generate a new set." % (cert_path, ", ".join(present), ", ".join(missing)),
    )


def _load_set(cert_path, cname):
    """Validate a complete set in cert_path and return it as TlsMaterial."""
    paths = _paths(cert_path)
    raw = {key: _read(path, "tls.cert_path") for key, path in paths.items()}
    certs = {key: _parse_certs(raw[key], paths[key], "tls.cert_path")[0] for key in ("ca", "server_cert", "cert")}
    keys = {key: _parse_key(raw[key], paths[key], "tls.cert_path") for key in ("ca_key", "server_key", "key")}
    hint = "; nothing was changed: fix it, or move %s away to generate a new set" % cert_path

    for key_name, cert_name in (("ca_key", "ca"), ("server_key", "server_cert"), ("key", "cert")):
        if not _key_matches(keys[key_name], certs[cert_name]):
            raise _error("tls.cert_path", "%s does not match %s%s" % (paths[key_name], paths[cert_name], hint))
    for cert_name in ("server_cert", "cert"):
        if not _issued_by(certs[cert_name], certs["ca"]):
            raise _error("tls.cert_path", "%s is not signed by %s%s" % (paths[cert_name], paths["ca"], hint))

    warnings = []
    now = _now()
    for cert_name in ("ca", "server_cert", "cert"):
        _check_validity(certs[cert_name], paths[cert_name], "tls.cert_path", warnings, now)
    if cname is not None and _name_match(certs["server_cert"], cname) != "san":
        raise _error("tls.cname", "%r is not in the subjectAltName of %s (%s)%s"
                     % (cname, paths["server_cert"], _describe_names(certs["server_cert"]), hint))
    for name in _KEY_FILES:
        path = _where(cert_path, name)
        if os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append("%s is accessible by other users; it should have mode 0600" % path)
    legacy = legacy_files(cert_path)
    if legacy:
        warnings.append("%s: %s lie beside the client's files, as earlier versions left them, so whoever is given "
                        "this folder as DOCKER_CERT_PATH can read them; move them into %s (mode 0700)"
                        % (cert_path, ", ".join(os.path.basename(p) for p in legacy),
                           os.path.join(cert_path, ADMIN_DIR)))

    return TlsMaterial(
        ca_cert_pem=_text(raw["ca"], paths["ca"], "tls.cert_path"),
        server_cert_pem=_text(raw["server_cert"], paths["server_cert"], "tls.cert_path"),
        server_key_pem=_text(raw["server_key"], paths["server_key"], "tls.cert_path"),
        paths=paths,
        generated=False,
        server_fingerprint=fingerprint(raw["server_cert"]),
        cname=cname,
        warnings=warnings,
    )


def load_or_generate(cert_path, cname, ips=(), organization=DEFAULT_ORGANIZATION, key_size=DEFAULT_KEY_SIZE,
                     days=LEAF_DAYS):
    """Reuse the set in ``cert_path`` if complete and consistent, else generate one.

    A partial or inconsistent set raises CertError naming the faulty file and
    is left untouched.  A reused set is not checked against ``ips``,
    ``organization`` or ``key_size``: addresses may change (DHCP) while the
    name clients verify, ``cname``, must not.
    """
    _require()
    cname, ips, orgs = _check_params(_check_cname(cname), ips, organization, key_size, days)
    present = _present(cert_path)
    if not present:
        return generate(cert_path, cname, ips, orgs, key_size, days)
    if len(present) < len(FILES):
        raise _incomplete(cert_path, present)
    return _load_set(cert_path, cname)


def plan_only(cert_path, cname=None, ips=(), organization=DEFAULT_ORGANIZATION, key_size=DEFAULT_KEY_SIZE,
              days=LEAF_DAYS):
    """For check mode: True if load_or_generate() would create files.

    Writes nothing.  Raises the same CertError load_or_generate() would for
    bad parameters or a partial/inconsistent set (cname is only checked
    against an existing set when given).
    """
    _require()
    cname = _check_params(cname, ips, organization, key_size, days)[0]
    present = _present(cert_path)
    if not present:
        return True
    if len(present) < len(FILES):
        raise _incomplete(cert_path, present)
    _load_set(cert_path, cname)
    return False


# ---------------------------------------------------------------- user-supplied

def _primary_name(cert):
    dns, ips, cns = _names(cert)
    for candidates in (dns, ips, cns):
        if candidates:
            return str(candidates[0])
    return None


def _load_client_ca(ca_cert, warnings, now):
    raw = _read(ca_cert, "tls.ca_cert")
    cas = _parse_certs(raw, ca_cert, "tls.ca_cert")
    valid = 0
    for index, ca in enumerate(cas, 1):
        where = "certificate %d of %s (%s)" % (index, ca_cert, ca.subject.rfc4514_string())
        if not _is_ca(ca):
            warnings.append("%s is not a CA certificate (basicConstraints CA:TRUE); clients cannot chain to it" % where)
        if _not_before(ca) <= now <= _not_after(ca):
            valid += 1
        else:
            warnings.append("%s is outside its validity period (%s to %s)"
                            % (where, _not_before(ca).isoformat(), _not_after(ca).isoformat()))
    if not valid:
        raise _error("tls.ca_cert", "%s holds no currently valid certificate" % ca_cert)
    return _text(raw, ca_cert, "tls.ca_cert")


def load_given(server_cert, server_key, ca_cert=None, cname=None):
    """Validate a user-supplied server certificate/key (and optional client CA bundle).

    ``server_cert`` may hold the leaf followed by intermediates.  ``cname``,
    when given, must be a SAN of the leaf (a CN-only match is accepted with a
    warning).  With no ``cname`` the certificate's first name is reported.
    """
    _require()
    if not server_cert:
        raise _error("tls.server_cert", "a server certificate file is required")
    if not server_key:
        raise _error("tls.server_key", "a server key file is required with tls.server_cert")
    if cname is not None:
        cname = _check_cname(cname)

    cert_raw = _read(server_cert, "tls.server_cert")
    leaf = _parse_certs(cert_raw, server_cert, "tls.server_cert")[0]
    key_raw = _read(server_key, "tls.server_key")
    key = _parse_key(key_raw, server_key, "tls.server_key")
    if not _key_matches(key, leaf):
        raise _error("tls.server_key", "%s does not match the certificate in tls.server_cert (%s)" % (server_key, server_cert))

    warnings = []
    now = _now()
    _check_validity(leaf, server_cert, "tls.server_cert", warnings, now)
    if not _allows_server_auth(leaf):
        raise _error("tls.server_cert", "%s has an extendedKeyUsage without serverAuth" % server_cert)
    if cname is None:
        cname = _primary_name(leaf)
    else:
        match = _name_match(leaf, cname)
        if match is None:
            raise _error("tls.cname", "%r is not among the names of tls.server_cert %s (%s)"
                         % (cname, server_cert, _describe_names(leaf)))
        if match == "cn":
            warnings.append("%s names %r only in its subject CN; Go clients such as the docker CLI ignore the CN "
                            "and will reject it - add it as a subjectAltName" % (server_cert, cname))

    return TlsMaterial(
        ca_cert_pem=_load_client_ca(ca_cert, warnings, now) if ca_cert else None,
        server_cert_pem=_text(cert_raw, server_cert, "tls.server_cert"),
        server_key_pem=_text(key_raw, server_key, "tls.server_key"),
        paths={"ca": ca_cert or None, "cert": None, "key": None,
               "server_cert": server_cert, "server_key": server_key, "ca_key": None},
        generated=False,
        server_fingerprint=fingerprint(cert_raw),
        cname=cname,
        warnings=warnings,
    )
