# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""DNS on loopback for the tests and benchmarks of the tether's embedded DNS server (agent/dns_server.py):

* ``Upstream``: a tiny DNS server of the test's own (dnspython, UDP and TCP) on a loopback address, answering
  A questions from a table, NXDOMAIN (authoritative) for other names, SERVFAIL for its ``failing`` names; it
  counts the questions it got. Nothing leaves the loopback.
* ``EmbeddedServer``: the tether's ``dns_server.Server`` run on an event loop of its own in a thread, bound on
  a loopback address and a free port, as a test or benchmark drives it from plain code.
"""

import asyncio
import contextlib
import socket
import struct
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from ansible_collections.vic.containers.services.tether.agent import dns_server


class _Loop:
    """An event loop in a daemon thread; ``call(coro)`` runs a coroutine on it and returns its result."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def free_port(address):
    """A port free for both UDP and TCP on ``address``."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((address, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((address, port))
                except OSError:
                    continue
                return port


class Upstream:
    """A DNS server of the test's own at ``(address, port)``; ``answers`` {name: ip}; ``failing`` names get SERVFAIL."""

    def __init__(self, address, port, answers, failing=()):
        self.address, self.port = address, port
        self.answers = {name.lower().rstrip("."): ip for name, ip in answers.items()}
        self.failing = {name.lower().rstrip(".") for name in failing}
        self.questions = []
        self._loop = _Loop()
        self._udp, self._tcp = self._loop.call(self._start())

    async def _start(self):
        loop = asyncio.get_running_loop()
        udp, _protocol = await loop.create_datagram_endpoint(lambda: _UpstreamDatagrams(self), local_addr=(self.address, self.port))
        tcp = await asyncio.start_server(self._stream, self.address, self.port)
        return udp, tcp

    def reply(self, wire):
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.questions.append(name)
        response = dns.message.make_response(query, recursion_available=True)
        if name in self.failing:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif name in self.answers:
            if question.rdtype == dns.rdatatype.A:
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", self.answers[name]))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.flags |= dns.flags.AA
        return response.to_wire()

    async def _stream(self, reader, writer):
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            reply = self.reply(await reader.readexactly(size))
            writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()
        writer.close()

    def close(self):
        async def stop():
            self._udp.close()
            self._tcp.close()
            await self._tcp.wait_closed()
        self._loop.call(stop())
        self._loop.stop()


class _UpstreamDatagrams(asyncio.DatagramProtocol):
    def __init__(self, upstream):
        self._upstream = upstream
        self._transport = None

    def connection_made(self, transport):
        self._transport = transport

    def datagram_received(self, data, addr):
        self._transport.sendto(self._upstream.reply(data), addr)


class EmbeddedServer:
    """The tether's DNS server on ``address`` (a free port), forwarding to ``servers`` at ``upstream_port``."""

    def __init__(self, address, servers=(), search=(), upstream_port=dns_server.PORT, entries=(), options=()):
        self.address = address
        self.port = free_port(address)
        self.server = dns_server.Server(list(servers), search, port=upstream_port, options=options)
        self.server.update(entries)
        self._loop = _Loop()
        self._loop.call(self.server.start(dns_server.bind(address, self.port)))

    def update(self, entries):
        """New entries, given on the server's loop (as the tether's ``hosts`` request does)."""
        async def update():
            self.server.update(entries)
        self._loop.call(update())

    def close(self):
        self._loop.call(self.server.close())
        self._loop.stop()
