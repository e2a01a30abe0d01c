# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A Docker Registry HTTP API v2 client for the endpoint (aiohttp, async).

What ``docker pull`` and ``docker login`` need of a registry: manifests (Docker
v2 schema 2, OCI, and manifest lists / OCI indexes resolved to linux/amd64),
blobs streamed to the packer with their digest checked, and requests
authenticated as the registry's 401 challenge asks (auth.py).

The VCH's registry settings (``state.config["registry"]``) decide trust:
``ca_certs`` are trusted beside the system CAs; ``insecure`` registries may be
reached over plain HTTP or with an unverified certificate; a non-empty
``whitelist`` is the only set of registries the VCH may use (insecure
registries count as whitelisted, as vic-machine had it).
"""

import fnmatch
import hashlib
import ipaddress
import json
import os
import re
import socket
import ssl

import aiohttp

from ansible_collections.vic.containers.plugins.module_utils._errors import VicError, InvalidInput, Forbidden, NotFound
from ansible_collections.vic.containers.services.imagec.auth import Authorizer
from ansible_collections.vic.containers.services.imagec.reference import DOCKER_HUB, DOCKER_HUB_API

PLATFORM = {"os": "linux", "architecture": "amd64"}

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE_MANIFESTS = (MANIFEST_V2, OCI_MANIFEST)
INDEXES = (MANIFEST_LIST, OCI_INDEX)
_ACCEPT = ", ".join(IMAGE_MANIFESTS + INDEXES)

_MAX_MANIFEST = 4 * 1024 * 1024
_MAX_CONFIG = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=120)
_KEEP_CONNECTIONS = 30  # seconds an idle registry connection is kept


def _matches(host, entries):
    """Is registry ``host`` (host[:port]) named by one of ``entries`` (host[:port], wildcard or CIDR)?"""
    bare = host.rsplit(":", 1)[0] if not host.endswith("]") and host.count(":") == 1 else host
    bare = bare.strip("[]")
    for entry in entries or ():
        entry = entry.split("/", 1)[0] if "/" in entry and not _is_network(entry) else entry
        if _is_network(entry):
            try:
                if ipaddress.ip_address(bare) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if fnmatch.fnmatch(host, entry) or fnmatch.fnmatch(bare, entry):
            return True
    return False


def _is_network(entry):
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return "/" in entry


class RegistrySettings:
    """The VCH's registry trust: CAs, insecure registries and the whitelist."""

    def __init__(self, config):
        config = config or {}
        self.ca_certs = list(config.get("ca_certs") or [])
        self.insecure = list(config.get("insecure") or [])
        self.whitelist = list(config.get("whitelist") or [])
        self._context = None

    def check_allowed(self, host):
        if self.whitelist and not (_matches(host, self.whitelist) or _matches(host, self.insecure)):
            raise Forbidden("Access denied to unauthorized registry (%s) while the VCH is in whitelist mode; "
                            "allowed registries: %s" % (host, ", ".join(self.whitelist)))

    def is_insecure(self, host):
        return _matches(host, self.insecure)

    def ssl_context(self):
        """The system CAs and the VCH's registry CAs (made once: loading the system store is slow)."""
        if self._context is None:
            self._context = self._new_context()
        return self._context

    def _new_context(self):
        context = ssl.create_default_context()
        for pem in self.ca_certs:
            try:
                context.load_verify_locations(cadata=pem)
            except (ssl.SSLError, ValueError) as exc:
                raise VicError("a registry CA certificate of the VCH cannot be read: %s" % exc) from exc
        return context


class Manifest:
    """One image's manifest, and the digest the user's reference resolved to (a list's, when it was one)."""

    def __init__(self, data, digest, media_type, reference_digest):
        self.data = data
        self.digest = digest
        self.media_type = media_type
        self.reference_digest = reference_digest

    @property
    def config(self):
        return self.data["config"]

    @property
    def layers(self):
        return self.data.get("layers") or []


class RegistryClient:
    """One registry conversation (``async with``): the scheme found per host, tokens; connections from
    ``connector`` when given (kept for later conversations), else a pool of its own."""

    def __init__(self, settings, creds=None, connector=None):
        self.settings = settings
        self._connector = connector
        self._session = None
        self._schemes = {}
        self._auth = Authorizer(creds, self._send)
        self._context = settings.ssl_context()

    async def __aenter__(self):
        # A 1 MiB read buffer: blobs arrive about half again as fast as with aiohttp's 64 KiB default.
        # A shared connector keeps registry connections (and their TLS handshakes) across conversations:
        # credentials travel in each request's headers, never with the connection.
        self._session = aiohttp.ClientSession(timeout=_TIMEOUT, auto_decompress=False, read_bufsize=_CHUNK,
                                              connector=self._connector, connector_owner=self._connector is None)
        return self

    async def __aexit__(self, *exc):
        await self._session.close()

    # -- transport --------------------------------------------------------------------------

    async def _base(self, host):
        """``https://host`` unless an insecure registry answers only plain HTTP (Docker's fallback)."""
        if host in self._schemes:
            return self._schemes[host]
        base = "https://%s" % host
        if self.settings.is_insecure(host):
            try:
                async with self._session.get(base + "/v2/", ssl=False, allow_redirects=False):
                    pass
            except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError, aiohttp.ServerDisconnectedError,
                    aiohttp.ClientOSError):
                base = "http://%s" % host
        self._schemes[host] = base
        return base

    def _ssl(self, url):
        host = re.sub(r"^[a-z]+://", "", url).split("/", 1)[0]
        return False if self.settings.is_insecure(host) else self._context

    async def _send(self, method, url, headers=None, **kwargs):
        try:
            return await self._session.request(method, url, headers=headers, ssl=self._ssl(url), **kwargs)
        except aiohttp.ClientSSLError as exc:
            raise VicError('Get "%s": the registry\'s TLS certificate is not trusted by the VCH (%s); '
                           "add its CA to the VCH's registry CA certificates or list it as insecure"
                           % (url, _reason(exc))) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise VicError('Get "%s": %s' % (url, _reason(exc))) from exc

    async def _request(self, host, method, path, scope, headers=None):
        """A registry request, authenticated as the registry's 401 challenge asks (once)."""
        url = await self._base(host) + path
        for attempt in (1, 2):
            sent = dict(headers or {})
            authorization = self._auth.header(host, scope)
            if authorization:
                sent["Authorization"] = authorization
            response = await self._send(method, url, sent)
            if response.status != 401 or attempt == 2:
                return response
            challenge = response.headers.get("WWW-Authenticate", "")
            response.release()
            await self._auth.answer(host, challenge, scope)
        return None  # not reached

    # -- what pull and login need -----------------------------------------------------------

    async def login(self, host):
        """Check the credentials against ``host`` as ``docker login`` does (``GET /v2/``)."""
        self.settings.check_allowed(host)
        await self._auth.login(await self._base(DOCKER_HUB_API if host == DOCKER_HUB else host) + "/v2/")

    async def manifest(self, ref):
        """The linux/amd64 image manifest ``ref`` names (a list or index is resolved)."""
        self.settings.check_allowed(ref.domain)
        wanted = ref.digest or ref.tag
        data, digest, media_type = await self._manifest(ref, wanted)
        reference_digest = digest
        if media_type in INDEXES or "manifests" in data:
            chosen = _choose_platform(data, ref)
            data, digest, media_type = await self._manifest(ref, chosen["digest"])
        if media_type not in IMAGE_MANIFESTS and not (media_type is None and "config" in data):
            raise InvalidInput("%s has a manifest of type %s, which the VCH cannot pull (Docker image manifest "
                               "v2 schema 2 and OCI image manifests are supported)" % (ref.familiar(), media_type))
        return Manifest(data, digest, media_type, reference_digest)

    async def descriptor(self, ref):
        """(manifest or index data, its OCI descriptor) of what ``ref`` names, no platform chosen:
        ``docker buildx imagetools`` / ``GET /distribution/{name}/json``."""
        self.settings.check_allowed(ref.domain)
        data, digest, media_type, size = await self._manifest_sized(ref, ref.digest or ref.tag)
        return data, {"mediaType": media_type or "", "digest": digest, "size": size}

    async def _manifest(self, ref, wanted):
        return (await self._manifest_sized(ref, wanted))[:3]

    async def _manifest_sized(self, ref, wanted):
        scope = "repository:%s:pull" % ref.path
        response = await self._request(ref.api_host, "GET", "/v2/%s/manifests/%s" % (ref.path, wanted), scope,
                                       {"Accept": _ACCEPT})
        async with response:
            if response.status != 200:
                await _registry_error(response, ref, "manifest for %s" % ref.familiar())
            body = await _read_limited(response, _MAX_MANIFEST, "manifest of %s" % ref.familiar())
            header_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        digest = _digest_of(body, wanted if ":" in wanted else "sha256:")
        if ":" in wanted and digest != wanted:
            raise VicError("manifest for %s: the registry sent content of digest %s, not %s"
                           % (ref.familiar(), digest, wanted))
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise VicError("manifest for %s is not JSON" % ref.familiar()) from exc
        if not isinstance(data, dict):
            raise VicError("manifest for %s is not a JSON object" % ref.familiar())
        if data.get("schemaVersion") == 1:
            raise InvalidInput("%s has a Docker image manifest v2 schema 1, which the VCH cannot pull; "
                               "push the image again with a current client" % ref.familiar())
        return data, digest, data.get("mediaType") or header_type or None, len(body)

    async def blob_bytes(self, ref, descriptor, limit=_MAX_CONFIG):
        """A small blob (an image config) in memory, digest checked."""
        response = await self._blob(ref, descriptor["digest"])
        async with response:
            body = await _read_limited(response, limit, "blob %s" % descriptor["digest"])
        if _digest_of(body, descriptor["digest"]) != descriptor["digest"]:
            raise VicError("blob %s of %s: the registry sent content of another digest"
                           % (descriptor["digest"], ref.familiar()))
        return body

    async def stream_blob(self, ref, descriptor, sink, progress=None):
        """Stream a blob into ``sink`` (``write(chunk)``, then ``await sink.drain()``), checking its digest at the
        end; ``progress(done, total)``."""
        algorithm = descriptor["digest"].split(":", 1)[0]
        hasher = hashlib.new(algorithm)
        done = 0
        total = descriptor.get("size") or 0
        response = await self._blob(ref, descriptor["digest"])
        async with response:
            try:
                async for chunk in response.content.iter_chunked(_CHUNK):
                    hasher.update(chunk)
                    sink.write(chunk)
                    await sink.drain()
                    done += len(chunk)
                    if progress:
                        progress(done, total)
            except (aiohttp.ClientError, OSError) as exc:
                raise VicError("download of blob %s of %s failed: %s"
                               % (descriptor["digest"], ref.familiar(), _reason(exc))) from exc
        if "%s:%s" % (algorithm, hasher.hexdigest()) != descriptor["digest"]:
            raise VicError("filesystem layer verification failed for digest %s" % descriptor["digest"])
        if total and done != total:
            raise VicError("blob %s of %s: got %d bytes, the manifest says %d"
                           % (descriptor["digest"], ref.familiar(), done, total))
        return done

    async def _blob(self, ref, digest):
        scope = "repository:%s:pull" % ref.path
        response = await self._request(ref.api_host, "GET", "/v2/%s/blobs/%s" % (ref.path, digest), scope)
        if response.status != 200:
            async with response:
                await _registry_error(response, ref, "blob %s of %s" % (digest, ref.familiar()))
        return response


class Registries:
    """The registries as this VCH trusts them (its ``registry`` settings), on connections kept between
    conversations."""

    def __init__(self, config):
        self.settings = RegistrySettings(config)
        self._connector = None

    def client(self, creds):
        """A conversation with registries as the user ``creds`` names (None: anonymous)."""
        if self._connector is None:
            self._connector = aiohttp.TCPConnector(keepalive_timeout=_KEEP_CONNECTIONS)
        return RegistryClient(self.settings, creds, self._connector)

    async def close(self):
        if self._connector is not None:
            await self._connector.close()


def _choose_platform(index, ref):
    for entry in index.get("manifests") or []:
        platform = entry.get("platform") or {}
        if platform.get("os") == PLATFORM["os"] and platform.get("architecture") == PLATFORM["architecture"]:
            return entry
    found = sorted({"%s/%s" % ((e.get("platform") or {}).get("os"), (e.get("platform") or {}).get("architecture"))
                    for e in index.get("manifests") or []})
    raise NotFound("no matching manifest for linux/amd64 in the manifest list entries of %s (it has: %s)"
                   % (ref.familiar(), ", ".join(found) or "none"))


def _digest_of(body, like):
    algorithm = like.split(":", 1)[0] if ":" in like else "sha256"
    if algorithm not in ("sha256", "sha384", "sha512"):
        algorithm = "sha256"
    return "%s:%s" % (algorithm, hashlib.new(algorithm, body).hexdigest())


async def _read_limited(response, limit, what):
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body.extend(chunk)
        if len(body) > limit:
            raise VicError("%s is larger than %d bytes; refusing it" % (what, limit))
    return bytes(body)


async def _registry_error(response, ref, what):
    """Raise the registry's error as Docker words it."""
    try:
        errors = (await response.json(content_type=None)).get("errors") or []
    except (ValueError, AttributeError, aiohttp.ClientError):
        errors = []
    detail = "; ".join("%s: %s" % (str(e.get("code", "")).lower().replace("_", " "), e.get("message", ""))
                       for e in errors if isinstance(e, dict)) or "HTTP %d %s" % (response.status, response.reason)
    codes = {str(e.get("code")) for e in errors if isinstance(e, dict)}
    if response.status in (401, 403) or codes & {"DENIED", "UNAUTHORIZED"}:
        raise NotFound("pull access denied for %s, repository does not exist or may require 'docker login': %s"
                       % (ref.familiar_name, detail))
    if response.status == 404 or codes & {"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"}:
        raise NotFound("%s not found: %s" % (what, detail))
    raise VicError("%s: the registry answered %s" % (what, detail))


def _reason(exc):
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _connect_reason(exc)
    text = str(exc) or type(exc).__name__
    return text.split("\n", 1)[0]


def _connect_reason(exc):
    """A failed connection as Go's net package words it (``dial tcp HOST:PORT: connect: connection refused``):
    aiohttp's own text shows the SSLContext object it was given, not what went wrong."""
    cause = getattr(exc, "certificate_error", None) or exc.os_error
    if isinstance(cause, socket.gaierror):
        return "dial tcp: lookup %s: %s" % (exc.host, cause.strerror or cause)
    if isinstance(cause, ssl.SSLError) or cause is None or not getattr(cause, "errno", None):
        return "tls: %s (%s:%s)" % (getattr(cause, "verify_message", None) or cause or type(exc).__name__,
                                    exc.host, exc.port)
    return "dial tcp %s:%s: connect: %s" % (exc.host, exc.port, os.strerror(cause.errno).lower())
