# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Docker's hijacked HTTP connections (attach, exec start) on an aiohttp server.

The docker CLI sends ``Connection: Upgrade`` and ``Upgrade: tcp``; the daemon
answers ``101 UPGRADED`` and from then on the socket carries raw bytes both
ways: the client's stdin in, the process's output out (Docker's 8-byte stdcopy
frames without a TTY, plain bytes with one). Older clients send no Upgrade
header and get ``200 OK`` followed by the same raw stream, never chunked,
ended by closing the connection.

aiohttp has no public API for this, so ``upgrade()`` uses the two seams its own
WebSocket support uses: the response is written with its length check off (no
chunked encoding), and the protocol's ``set_parser`` hands over the bytes the
HTTP parser already buffered past the headers. On top of that the transport
gets a small protocol of ours, because aiohttp closes the whole socket when the
client half-closes, and the docker CLI half-closes after stdin EOF while it
still waits for the output.

Known limit: aiohttp 3.14's C parser (the default) switches protocols for
``Upgrade: websocket`` only, so it parses an ``Upgrade: tcp`` request as plain
HTTP and drops bytes a client sends *before* reading the response head (the
pure-Python parser keeps them and ``set_parser`` passes them on). Docker
clients never do that: the CLI and the SDK read the head first, and the socket
is ours before the head goes out, so nothing they send after it is lost.
"""

import asyncio
import struct

from aiohttp import hdrs, web

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"
STDIN, STDOUT, STDERR = 0, 1, 2
_HEADER = struct.Struct(">BxxxL")
_READ_HIGH_WATER = 256 * 1024


def frame(stream_no, data):
    """One stdcopy frame: stream type, three zero bytes, big-endian length, payload."""
    if stream_no not in (STDIN, STDOUT, STDERR):
        raise ValueError(f"stream must be 0 (stdin), 1 (stdout) or 2 (stderr), not {stream_no!r}")
    return _HEADER.pack(stream_no, len(data)) + bytes(data)


def wants_upgrade(request):
    """Whether the client asked for Docker's ``Upgrade: tcp`` (the docker CLI and SDK do)."""
    tokens = {token.strip().lower() for token in request.headers.get(hdrs.CONNECTION, "").split(",")}
    return "upgrade" in tokens and request.headers.get(hdrs.UPGRADE, "").strip().lower() == "tcp"


class _HijackResponse(web.StreamResponse):
    # Same switch aiohttp's WebSocketResponse flips: without it an HTTP/1.1
    # response of unknown length is chunk-encoded, and Docker clients read
    # the raw socket after the headers.
    _length_check = False


class _Inbound:
    """The client's bytes after the request head, with EOF on half-close, and read flow control."""

    def __init__(self, transport):
        self._transport = transport
        self._chunks = []
        self._size = 0
        self._eof = False
        self._paused = False
        self._waiter = None

    # The parser interface aiohttp's set_parser expects (it feeds the buffered tail).
    def feed_data(self, data):
        if data:
            self._chunks.append(bytes(data))
            self._size += len(data)
            if self._size > _READ_HIGH_WATER and not self._paused:
                self._paused = True
                self._transport.pause_reading()
            self._wake()
        return False, b""

    def feed_eof(self):
        self._eof = True
        self._wake()

    def _wake(self):
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self):
        while not self._chunks and not self._eof:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if not self._chunks:
            return b""
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        if self._paused and not self._transport.is_closing():
            self._paused = False
            self._transport.resume_reading()
        return data


class _HijackedProtocol(asyncio.Protocol):
    """Takes the socket over from aiohttp's request handler after the response head.

    Incoming bytes go to the stream; write flow control and the end of the
    connection are passed on to aiohttp's handler so its writer and its
    connection bookkeeping keep working.
    """

    def __init__(self, inbound, http_protocol):
        self._inbound = inbound
        self._http = http_protocol
        self.lost = False

    def data_received(self, data):
        self._inbound.feed_data(data)

    def eof_received(self):
        self._inbound.feed_eof()
        return True  # keep our half open: the output still has to go out

    def connection_lost(self, exc):
        self.lost = True
        self._inbound.feed_eof()
        self._http.connection_lost(exc)

    def pause_writing(self):
        self._http.pause_writing()

    def resume_writing(self):
        self._http.resume_writing()


class Stream:
    """A hijacked client connection: ``read()`` the client's stdin, ``write()`` the process's output."""

    def __init__(self, request, response, inbound, protocol, tty, upgraded):
        self._request = request
        self._response = response
        self._inbound = inbound
        self._protocol = protocol
        self.tty = tty
        self.upgraded = upgraded

    @property
    def response(self):
        """The prepared response; return it from the handler."""
        return self._response

    @property
    def disconnected(self):
        """True once the connection is gone.

        A client's full close reads as EOF first, like a half-close; the
        connection counts as gone once a write meets the peer's reset.
        """
        return self._protocol.lost

    async def read(self):
        """The client's next stdin bytes; ``b""`` once it half-closed or went away."""
        return await self._inbound.read()

    async def write(self, stream_no, data):
        """Send output of stream 1 (stdout) or 2 (stderr); framed unless the stream is a TTY.

        Raises ``ConnectionResetError`` when the client is gone.
        """
        if not data:
            return
        await self._response.write(bytes(data) if self.tty else frame(stream_no, data))

    async def close(self):
        """End the output and the connection (Docker ends the stream when the process ends)."""
        transport = self._request.transport
        try:
            await self._response.write_eof()
        except ConnectionError:
            pass
        if transport is not None:
            _allow_tls_shutdown(transport)
            transport.close()


def _keep_tls_half_open(transport):
    """Let a TLS client half-close, as Go's ``tls.Conn.CloseWrite`` does after stdin EOF.

    The docker CLI over TLS ends stdin with a close_notify alert and keeps
    reading the output. asyncio's SSL protocol answers a close_notify by shutting
    the whole connection down (Python has no public switch for it), so for a
    hijacked stream the shutdown it starts on a received alert is skipped;
    OpenSSL still lets this side write, and ``Stream.close`` puts the real
    shutdown back before closing.
    """
    ssl_protocol = getattr(transport, "_ssl_protocol", None)
    if ssl_protocol is not None and hasattr(ssl_protocol, "_start_shutdown"):
        ssl_protocol._start_shutdown = lambda: None


def _allow_tls_shutdown(transport):
    ssl_protocol = getattr(transport, "_ssl_protocol", None)
    if ssl_protocol is not None:
        ssl_protocol.__dict__.pop("_start_shutdown", None)


async def upgrade(request, tty):
    """Answer a hijacking request (``101 UPGRADED``, or ``200 OK`` for clients that did not ask) and take the socket.

    Read the request body (e.g. exec start's JSON) before calling this. The
    handler returns ``stream.response`` when it is done.
    """
    upgraded = wants_upgrade(request)
    response = _HijackResponse(status=101 if upgraded else 200, reason="UPGRADED" if upgraded else "OK")
    response.content_type = RAW if tty else MULTIPLEXED
    if upgraded:
        response.headers[hdrs.CONNECTION] = "Upgrade"
        response.headers[hdrs.UPGRADE] = "tcp"
    response.force_close()
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client closed the connection before the stream started")
    inbound = _Inbound(transport)
    http_protocol = request.protocol
    # Swap before the response head goes out so no byte the client sends
    # after reading it can reach aiohttp's HTTP parser.
    http_protocol.set_parser(inbound)
    protocol = _HijackedProtocol(inbound, http_protocol)
    transport.set_protocol(protocol)
    _keep_tls_half_open(transport)
    await response.prepare(request)
    return Stream(request, response, inbound, protocol, tty, upgraded)
