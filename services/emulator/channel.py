# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A container VM's network-backed serial port, as the emulator plays it.

The tether runs in a network namespace of its own, which cannot reach the host's
loopback where the endpoint listens. So the emulator listens on a unix socket
per VM (path sockets are not network-namespaced) and, for each connection the
tether makes, opens a fresh TCP connection to the VM's serial URI from the host
and pumps bytes both ways until either side closes: each redial of the tether is
a new TCP connection, as a serial line reconnecting on ESXi is.
"""

import asyncio
import contextlib
import logging
import os
import urllib.parse

LOG = logging.getLogger("vic.emulator.channel")
_CHUNK = 64 * 1024


class SerialRelay:
    """The unix socket at ``path`` whose every connection is relayed to ``serial_uri`` (``tcp://host:port``)."""

    def __init__(self, path, serial_uri, name):
        self.path = path
        self.name = name
        parsed = urllib.parse.urlsplit(serial_uri)
        self.host, self.port = parsed.hostname, parsed.port
        self._server = None
        self._pumps = set()

    async def start(self):
        self._server = await asyncio.start_unix_server(self._relay, path=self.path)

    async def close(self):
        """Stop listening, end every relayed connection and remove the socket file."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._pumps):
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _relay(self, reader, writer):
        task = asyncio.current_task()
        self._pumps.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                # The tether redials; the endpoint may be restarting.
                LOG.info("%s: cannot reach the endpoint at %s:%s: %s", self.name, self.host, self.port, exc)
                return
            try:
                await _pump_both(reader, writer, up_reader, up_writer)
            finally:
                await _close(up_writer)
        finally:
            await _close(writer)
            self._pumps.discard(task)


async def _pump_both(reader, writer, up_reader, up_writer):
    """Copy both ways until either side closes (then the other is closed too)."""
    pumps = [asyncio.ensure_future(_pump(reader, up_writer)), asyncio.ensure_future(_pump(up_reader, writer))]
    try:
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


async def _pump(reader, writer):
    with contextlib.suppress(ConnectionError):
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                return
            writer.write(data)
            await writer.drain()


async def _close(writer):
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()
