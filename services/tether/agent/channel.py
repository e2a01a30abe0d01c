# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The byte stream to the endpoint that SSH runs on, in each world: a serial line (a VM), a unix socket
(the host emulator), TCP (tests).

asyncssh dials through a "tunnel" object's ``create_connection``: that hook
exists in every asyncssh the tether runs on (Debian's 2.10 has no ``sock=``),
so one ``Dialer`` serves the three kinds. A serial line has no connection to
open or EOF: each dial gets a fresh socketpair, pumped to and from the line.
"""

import asyncio
import os
import socket

from ansible_collections.vic.containers.services.tether.agent import options

_CHUNK = 65536


class Dialer:
    """Opens a new byte stream to the endpoint for every SSH connection (``tunnel=`` of connect_reverse)."""

    def __init__(self, uri):
        self.scheme, self.address = options.channel_address(uri)
        self._serial = SerialLine(self.address) if self.scheme == "serial" else None

    async def create_connection(self, session_factory, _host, _port):
        loop = asyncio.get_running_loop()
        if self.scheme == "tcp":
            return await loop.create_connection(session_factory, *self.address)
        session = session_factory()
        if self.scheme == "unix":
            transport, _relay = await loop.create_unix_connection(lambda: _NotTcp(session), self.address)
        else:
            transport, _relay = await loop.create_connection(lambda: _NotTcp(session), sock=self._serial.new_stream())
        return transport, session

    def close(self):
        if self._serial is not None:
            self._serial.close()


class _HiddenSocket:
    """A transport that does not show its socket nor its addresses. asyncssh 2.10 sets TCP options on any
    socket it is shown (a unix socket or a socketpair refuses them: EOPNOTSUPP), and takes any address for
    (host, port) (a unix socket's path then breaks its log formatting): either ends the connection."""

    _HIDDEN = ("socket", "sockname", "peername")

    def __init__(self, transport):
        self._transport = transport

    def get_extra_info(self, name, default=None):
        return default if name in self._HIDDEN else self._transport.get_extra_info(name, default)

    def __getattr__(self, name):
        return getattr(self._transport, name)


class _NotTcp(asyncio.Protocol):
    """Relays a stream that is not TCP to asyncssh's connection, through ``_HiddenSocket``."""

    def __init__(self, session):
        self._session = session

    def connection_made(self, transport):
        self._session.connection_made(_HiddenSocket(transport))

    def data_received(self, data):
        self._session.data_received(data)

    def eof_received(self):
        return self._session.eof_received()

    def connection_lost(self, exc):
        self._session.connection_lost(exc)

    def pause_writing(self):
        self._session.pause_writing()

    def resume_writing(self):
        self._session.resume_writing()


class SerialLine:
    """A serial port in raw mode, relayed to the socketpair of the current SSH connection.

    Each direction is buffered and stops reading its source while the other end is
    full, so nothing is dropped; a new connection first discards what the line holds
    from before (the endpoint speaks only after the tether's version, so it is stale)."""

    def __init__(self, device):
        import termios  # pylint: disable=import-outside-toplevel  # only a VM has a serial channel
        import tty  # pylint: disable=import-outside-toplevel
        self._termios = termios
        self._fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        tty.setraw(self._fd, termios.TCSANOW)
        self._ours = None
        self._to_line = bytearray()
        self._to_ssh = bytearray()

    def new_stream(self):
        """A socket for the next SSH connection; the previous one's is dropped."""
        loop = asyncio.get_running_loop()
        self._drop()
        self._termios.tcflush(self._fd, self._termios.TCIFLUSH)
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        self._ours = ours
        loop.add_reader(self._fd, self._from_line)
        loop.add_reader(ours.fileno(), self._from_ssh)
        return theirs

    def _from_line(self):
        try:
            data = os.read(self._fd, _CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        if data and self._ours is not None:
            self._to_ssh += data
            self._flush_to_ssh()

    def _flush_to_ssh(self):
        loop = asyncio.get_running_loop()
        if self._ours is None:
            return
        while self._to_ssh:
            try:
                del self._to_ssh[:self._ours.send(self._to_ssh)]
            except BlockingIOError:
                loop.remove_reader(self._fd)  # the SSH side is full: leave the rest in the UART
                loop.add_writer(self._ours.fileno(), self._flush_to_ssh)
                return
            except OSError:
                self._drop()
                return
        loop.remove_writer(self._ours.fileno())
        loop.add_reader(self._fd, self._from_line)

    def _from_ssh(self):
        try:
            data = self._ours.recv(_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop()
            return
        self._to_line += data
        self._flush()

    def _flush(self):
        loop = asyncio.get_running_loop()
        while self._to_line:
            try:
                del self._to_line[:os.write(self._fd, self._to_line)]
            except BlockingIOError:
                if self._ours is not None:
                    loop.remove_reader(self._ours.fileno())  # the line is full: let SSH's window hold the rest
                loop.add_writer(self._fd, self._flush)
                return
        loop.remove_writer(self._fd)
        if self._ours is not None:
            loop.add_reader(self._ours.fileno(), self._from_ssh)

    def _drop(self):
        if self._ours is not None:
            loop = asyncio.get_running_loop()
            loop.remove_reader(self._ours.fileno())
            loop.remove_writer(self._ours.fileno())
            loop.remove_reader(self._fd)
            loop.remove_writer(self._fd)
            self._ours.close()
            self._ours = None
        # What either side had for the old connection means nothing to the next one.
        self._to_ssh.clear()
        self._to_line.clear()

    def close(self):
        self._drop()
        os.close(self._fd)
