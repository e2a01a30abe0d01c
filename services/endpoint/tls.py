# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The endpoint's TLS server context, built from the VCH record and its sealed secrets."""

import asyncio
import logging
import os
import ssl
import tempfile
import time

from aiohttp import web

LOG = logging.getLogger("vic.endpoint")
HANDSHAKE_SECONDS = 15  # as long as a request's headers may take (persona.limits.READ_TIMEOUT)


def server_context(tls_record, server_key_pem):
    """An SSLContext serving the VCH's certificate; with verify, clients must show a cert of its CA.

    None when the VCH was created with TLS off (plain TCP, as vic-machine --no-tls).
    """
    if not tls_record.get("enabled"):
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl loads a key only from a file: a private folder, gone once loaded.
    with tempfile.TemporaryDirectory(prefix="vch-tls-") as folder:
        cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        with open(cert, "w", encoding="ascii") as handle:
            handle.write(tls_record["server_cert"])
        descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(server_key_pem)
        context.load_cert_chain(cert, key)
    if tls_record.get("verify"):
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=tls_record["client_ca"])
    return context


class RefusalLog:
    """Refused TLS handshakes at INFO, with the peer and the reason, once per peer per ``interval`` seconds: the
    client only sees "EOF" (a certificate of another CA, none at all), so the reason must be in the log, and a
    client retrying in a loop must not flood it."""

    def __init__(self, interval=60.0, clock=time.monotonic):
        self._interval, self._clock = interval, clock
        self._last = {}

    def refused(self, peer, reason):
        host = peer[0] if peer else "unknown peer"
        now = self._clock()
        if now - self._last.get(host, -self._interval) < self._interval:
            return
        self._last = {h: t for h, t in self._last.items() if now - t < self._interval}  # forget the quiet ones
        self._last[host] = now
        LOG.info("TLS handshake with %s refused: %s", "%s:%s" % peer[:2] if peer else host, _why(reason))


def _why(exc):
    if isinstance(exc, ssl.SSLError):
        if getattr(exc, "verify_message", None):
            return "its certificate was not accepted: %s" % exc.verify_message
        return exc.reason or str(exc)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "no handshake within %d seconds" % HANDSHAKE_SECONDS
    return str(exc) or type(exc).__name__


class TlsSite(web.BaseSite):
    """aiohttp's TCPSite, but the TLS handshake is done here (``loop.start_tls``) so a refused one is logged:
    asyncio's TLS server drops a failed handshake without a word."""

    def __init__(self, runner, host, port, context):
        super().__init__(runner, ssl_context=context)
        self._host, self._port = host, port
        self._refusals = RefusalLog()

    @property
    def name(self):
        return "https://%s:%d" % (self._host, self._port)

    async def start(self):
        await super().start()
        server, context, refusals = self._runner.server, self._ssl_context, self._refusals
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Handshake(server, context, refusals), self._host, self._port, reuse_address=True)


class _Handshake(asyncio.Protocol):
    """A connection until its TLS handshake is done; then the HTTP protocol (``factory()``) takes over."""

    def __init__(self, factory, context, refusals):
        self._factory, self._context, self._refusals = factory, context, refusals
        self._task = None

    def connection_made(self, transport):
        transport.pause_reading()  # the ClientHello is for start_tls, not for this protocol
        self._task = asyncio.ensure_future(self._start(transport))

    def connection_lost(self, exc):
        if self._task is not None:
            self._task.cancel()  # gone before the handshake began

    async def _start(self, transport):
        peer = transport.get_extra_info("peername")
        inner = _Deferred(self._factory())
        try:
            tls = await asyncio.get_running_loop().start_tls(transport, inner, self._context, server_side=True,
                                                             ssl_handshake_timeout=HANDSHAKE_SECONDS)
        except asyncio.CancelledError:
            transport.abort()
            raise
        except (OSError, asyncio.TimeoutError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            self._refusals.refused(peer, exc)
            transport.abort()
            return
        inner.connected(tls)


class _Deferred(asyncio.Protocol):
    """Holds what arrives between the handshake's end and ``connected`` (the client may send its request in the
    same packet as its Finished), then hands the connection to the HTTP protocol."""

    def __init__(self, protocol):
        self.protocol = protocol
        self._early, self._eof, self._lost = [], False, None

    def connected(self, transport):
        transport.set_protocol(self.protocol)
        self.protocol.connection_made(transport)
        for data in self._early:
            self.protocol.data_received(data)
        if self._eof:
            self.protocol.eof_received()
        if self._lost is not None:
            self.protocol.connection_lost(self._lost or None)

    def data_received(self, data):
        self._early.append(data)

    def eof_received(self):
        self._eof = True
        return True

    def connection_lost(self, exc):
        self._lost = exc or False
