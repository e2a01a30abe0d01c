# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The container's DNS server on a user-defined network, as dockerd's embedded one (docs/tether.md, "The embedded DNS server").

The tether, PID 1 of the VM, shares its network namespace with the container's processes: it binds
127.0.0.11:53 (UDP, and TCP for answers too long for a datagram) before the primary process starts, and
answers the names of the container's peers, the ones the endpoint's ``hosts`` op gives it (the same entries
/etc/hosts lists: one source), and its own hostname. Every other question goes to the upstream servers (the
boot spec's ``dns`` servers: ``--dns``, or the network's), tried in turn as dockerd does; with none, or none
answering, the client gets SERVFAIL, as from dockerd.

Only the standard library here: the wire format is dnspython's (``dns_answers``), imported at the first
question, so a container that never asks pays nothing at start-up.
"""

import asyncio
import ipaddress
import socket
import struct

ADDRESS, PORT = "127.0.0.11", 53
MAX_UPSTREAMS = 3           # dockerd's maxExtDNS
FORWARD_TIMEOUT = 4.0       # seconds for one upstream's answer (dockerd's extIOTimeout)
MAX_FORWARDS = 1024         # questions forwarded at once (dockerd's maxConcurrent); beyond, REFUSED at once
TCP_IDLE = 10.0             # seconds a TCP client may stay silent before its connection is closed
_SERVFAIL, _REFUSED = 2, 5
HEADER = 12                 # bytes of a DNS message's header


def upstreams(servers, port=PORT):
    """``[(ip, port)]`` of the spec's servers that are IP addresses (the first ``MAX_UPSTREAMS``, as dockerd),
    never this server's own address (a loop)."""
    found = []
    for server in servers:
        try:
            address = ipaddress.ip_address(server)
        except ValueError:
            continue
        if str(address) != ADDRESS:
            found.append((str(address), port))
    return found[:MAX_UPSTREAMS]


def bind(address=ADDRESS, port=PORT):
    """The server's UDP and TCP sockets, bound (an OSError says why not): done before the process starts, so
    its first question waits in the socket, not refused."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        udp.bind((address, port))
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((address, port))
        tcp.listen(64)
    except OSError:
        udp.close()
        tcp.close()
        raise
    for sock in (udp, tcp):
        sock.setblocking(False)
    return udp, tcp


def ndots_set(options):
    """Whether the container's options set ndots above 0 (dockerd's NdotsSet): then a single-label name the
    server does not hold is answered empty, not forwarded, so the client goes on with its search domains."""
    for option in options:
        name, _sep, value = option.partition(":")
        if name == "ndots" and value.isdigit() and int(value) > 0:
            return True
    return False


class Names:
    """The names the server answers, each to its addresses: case-insensitive, with or without a final dot,
    and with or without one of the container's search domains after it (a resolver adds them)."""

    def __init__(self, entries=(), search=(), single_label_local=False):
        self.single_label_local = single_label_local     # ndots_set: a single-label name is never forwarded
        self._addresses = {}    # lower-case name -> [address, ...] in the order the entries give them
        self._names = {}        # address -> the first name of its first entry (PTR)
        for address, names in entries:
            for name in names:
                found = self._addresses.setdefault(name.lower().rstrip("."), [])
                if address not in found:
                    found.append(address)
            self._names.setdefault(address, names[0])
        self._search = [domain.lower().strip(".") for domain in search if domain.strip(".")]

    def addresses(self, name):
        """The addresses of ``name`` (text), or None when it is not one of the names."""
        name = name.lower().rstrip(".")
        found = self._addresses.get(name)
        for domain in self._search:
            if found is not None:
                break
            if name.endswith("." + domain):
                found = self._addresses.get(name[:-len(domain) - 1])
        return found

    def name_of(self, address):
        """The name an address (text) has, or None."""
        return self._names.get(address)


class Server:
    """The DNS server: ``start`` with the sockets of ``bind``, ``update`` with each new set of entries, ``close``."""

    def __init__(self, servers, search=(), port=PORT, options=()):
        self.upstreams = upstreams(servers, port)
        self.search = list(search)
        self._ndots_set = ndots_set(options)
        self.names = Names((), self.search, self._ndots_set)
        self._answers = None        # the dns_answers module, from the first question on
        self._udp = None
        self._tcp = None
        self._tasks = set()
        self.forwarding = 0

    async def start(self, sockets):
        udp, tcp = sockets
        loop = asyncio.get_running_loop()
        self._udp, _protocol = await loop.create_datagram_endpoint(lambda: _Datagrams(self), sock=udp)
        self._tcp = await asyncio.start_server(self._stream, sock=tcp)

    def update(self, entries):
        """The names are now ``entries`` (``[(ip, [name, ...])]``); the next question sees them."""
        self.names = Names(entries, self.search, self._ndots_set)

    async def close(self):
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    def _module(self):
        if self._answers is None:
            # dnspython: imported at the first question, not at start-up.
            from ansible_collections.vic.containers.services.tether.agent import dns_answers  # pylint: disable=import-outside-toplevel
            self._answers = dns_answers
        return self._answers

    def received(self, wire, send, tcp):
        """A question: answered at once when the names hold it (or it is malformed), else forwarded in a task
        that calls ``send`` with the reply. False when nothing is sent (not a question: no header, a reply)."""
        answers = self._module()
        reply, query = answers.answer(wire, self.names, tcp)
        if reply is not None:
            send(reply)
        elif query is None:
            return False
        elif self.forwarding >= MAX_FORWARDS:
            send(answers.failure(query, _REFUSED))
        else:
            task = asyncio.ensure_future(self._forward(wire, query, send, tcp))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    async def _forward(self, wire, query, send, tcp):
        self.forwarding += 1
        try:
            reply = await self.forward(wire, tcp)
        finally:
            self.forwarding -= 1
        send(reply if reply is not None else self._module().failure(query, _SERVFAIL))

    async def forward(self, wire, tcp=False):
        """The first upstream reply that is neither SERVFAIL nor REFUSED (dockerd goes on to the next then),
        as the upstream sent it; None when there is none."""
        for address in self.upstreams:
            try:
                reply = await asyncio.wait_for(_exchange_tcp(address, wire) if tcp else _exchange_udp(address, wire),
                                               FORWARD_TIMEOUT)
            except (OSError, EOFError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                continue
            if reply[3] & 0x0F not in (_SERVFAIL, _REFUSED):
                return reply
        return None

    async def _stream(self, reader, writer):
        """One TCP client: length-prefixed questions, each answered in turn, until it closes or is silent."""
        replies = asyncio.Queue()
        try:
            while True:
                size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), TCP_IDLE))[0]
                if not self.received(await asyncio.wait_for(reader.readexactly(size), TCP_IDLE), replies.put_nowait,
                                     tcp=True):
                    break
                reply = await asyncio.wait_for(replies.get(), FORWARD_TIMEOUT * (MAX_UPSTREAMS + 1))
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, server):
        self._server = server
        self._transport = None

    def connection_made(self, transport):
        self._transport = transport

    def datagram_received(self, data, addr):
        transport = self._transport
        self._server.received(data, lambda reply: transport.is_closing() or transport.sendto(reply, addr), tcp=False)

    def error_received(self, exc):
        pass    # an ICMP error of a client gone: nothing to do


async def _exchange_udp(address, wire):
    """The reply of one upstream over UDP, from the server's own socket (connected: only its datagrams come in)."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
        await loop.sock_sendall(sock, wire)
        while True:
            reply = await loop.sock_recv(sock, 65535)
            if len(reply) >= HEADER and reply[:2] == wire[:2] and reply[2] & 0x80:
                return reply


async def _exchange_tcp(address, wire):
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        size = struct.unpack("!H", await reader.readexactly(2))[0]
        reply = await reader.readexactly(size)
        if len(reply) < HEADER or reply[:2] != wire[:2]:
            raise EOFError("the upstream's reply is not for this question")
        return reply
    finally:
        writer.close()


def header_reply(wire, rcode):
    """A reply of only a header (no question): for a question too malformed to parse further (FORMERR)."""
    ident, flags = struct.unpack("!HH", wire[:4])
    return struct.pack("!HHHHHH", ident, 0x8000 | (flags & 0x7900) | 0x0080 | rcode, 0, 0, 0, 0)
