# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Published ports (``docker run -p`` / ``-P``): the endpoint listens, the tether channel carries.

VIC published a container's ports by NAT on the endpoint VM, which needed a route to the bridge
network. Here the endpoint listens on the host port itself and carries each accepted TCP connection
to the container's port as one SSH ``direct-tcpip`` channel of the container's tether connection
(docs/tether-protocol.md): the same path on ESXi (the serial port), under the host emulator and in
QEMU, and no route to the container is needed. The tether connects to the port inside the container
and refuses any other destination.

What a container publishes is chosen at ``docker create`` and kept in its record (``ports``: one
entry per binding, ``{"port", "host_ip", "host_port", "range"}``), written by the CreateVM that makes
the VM, so a random host port costs no vSphere call and survives an endpoint restart. ``range`` is
where the endpoint chose the host port from (``-p 80``, ``-P``, ``-p 8000-8010:80``); a chosen port
another process holds at a later start is chosen again (one Reconfigure, only then). ``host_ip`` ""
is the endpoint's publish address (its Docker API address, the VCH's public address, as VIC published
there).
"""

import asyncio
import collections
import errno
import ipaddress
import logging
import socket

import asyncssh
from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput, VicError

LOG = logging.getLogger("vic.endpoint.ports")
_CHUNK = 256 * 1024
# Seconds a connection accepted for a container that runs waits for its tether to connect (a VM boots).
CONNECT_WAIT = 30.0
# Where the kernel picks ephemeral ports from, and so dockerd its random host ports.
_LOCAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
_DEFAULT_RANGE = (49153, 65535)     # dockerd's when the file cannot be read
_TCP_ONLY = {"udp", "sctp"}

Request = collections.namedtuple("Request", "port host_ip host_port")
"""One binding a create asks for: the container's TCP port, the host address ("" the default), the host port
text ("" or "0" random, "8080", "8000-8010" a range)."""


def _port_number(text, what, allow_zero=False):
    try:
        number = int(text)
    except (TypeError, ValueError):
        number = -1
    if not (0 if allow_zero else 1) <= number <= 65535 or str(text).strip() != str(text):
        raise InvalidInput("invalid %s: %r (a port is 1-65535)" % (what, text))
    return number


def _key(key):
    """(port, protocol) of a PortBindings / ExposedPorts key ("80/tcp", "80")."""
    port, _slash, proto = str(key).partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidInput('invalid port specification: "%s": the protocol is tcp, udp or sctp' % key)
    return _port_number(port, "container port in %r" % key), proto


def _refuse_not_tcp(key, option):
    raise InvalidInput("%s %s: only TCP ports can be published on a VCH: the endpoint carries each connection to "
                       "the container through its tether channel, which carries TCP only" % (option, key))


def _host_port(text, key):
    """The host port text of a binding, checked: "" (random), "8080", "8000-8010"."""
    text = "" if text in (None, "0") else str(text)
    if text:
        first, dash, last = text.partition("-")
        low = _port_number(first, "host port in %r" % key)
        if dash and _port_number(last, "host port in %r" % key) < low:
            raise InvalidInput("invalid host port range %r for %s" % (text, key))
    return text


def _host_ip(text, key):
    if not text:
        return ""
    try:
        return str(ipaddress.ip_address(str(text).strip("[]")))
    except ValueError:
        raise InvalidInput("invalid host IP %r in the port bindings of %s" % (text, key)) from None


def check_bindings(host):
    """``-p``: the HostConfig's PortBindings checked (before the image is looked up, as dockerd does)."""
    return _bindings(host.get("PortBindings") or {})


def _bindings(bindings):
    found = []
    if not isinstance(bindings, dict):
        raise InvalidInput("PortBindings must be an object of container port: [bindings]")
    for key, entries in sorted(bindings.items()):
        port, proto = _key(key)
        if proto in _TCP_ONLY:
            _refuse_not_tcp(key, "-p")
        for entry in entries or [{}]:
            entry = entry or {}
            found.append(Request(port, _host_ip(entry.get("HostIp"), key), _host_port(entry.get("HostPort"), key)))
    return found


def requests(config, host):
    """Every binding a create asks for: ``-p`` ones, and with ``-P`` a random host port for each exposed port
    (the image's and ``--expose``) that ``-p`` does not bind."""
    found = check_bindings(host)
    if host.get("PublishAllPorts"):
        bound = {request.port for request in found}
        for key in sorted(config.get("ExposedPorts") or {}):
            port, proto = _key(key)
            if proto in _TCP_ONLY:
                _refuse_not_tcp(key, "-P (the container exposes it)")
            if port not in bound:
                found.append(Request(port, "", ""))
    return found


def local_range():
    """(low, high) of the host's ephemeral ports: where random host ports come from, as dockerd takes them."""
    try:
        with open(_LOCAL_RANGE, encoding="ascii") as file:
            low, high = (int(n) for n in file.read().split())
            return low, high
    except (OSError, ValueError):
        return _DEFAULT_RANGE


def entries(record):
    """The record's published ports, as chosen at create."""
    return list(record.get("ports") or ())


def container_ports(record):
    """The container's TCP ports the endpoint may connect to (the tether refuses any other)."""
    return sorted({entry["port"] for entry in entries(record)})


def shown(container, address):
    """What dockerd shows of a container's ports while it runs (nothing when it does not): [(port, protocol,
    host ip, host port)] in the order of the bindings, then each exposed port that is not published, with None
    for both."""
    if not container.running:
        return []
    published = entries(container.record)
    found = [(e["port"], "tcp", e.get("host_ip") or address, e["host_port"]) for e in published]
    bound = {e["port"] for e in published}
    exposed = set()
    for key in container.config.get("ExposedPorts") or {}:
        try:
            port, proto = _key(key)
        except InvalidInput:
            continue
        if proto != "tcp" or port not in bound:
            exposed.add((port, proto, None, None))
    return found + sorted(exposed)


def _family(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _free(address, port):
    """Whether ``address:port`` can be bound now (a listener would take it)."""
    with socket.socket(_family(address), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


class Publisher:
    """The listeners of the running containers' published ports, and the relays of their connections.

    ``tether`` is the Concentrator (``wait_connected``, ``open_tcp``); ``address`` the publish address a
    binding without a host IP listens on (set at the endpoint's start).
    """

    def __init__(self, tether, address="127.0.0.1"):
        self._tether = tether
        self.address = address
        self._servers = {}      # container id -> [asyncio.Server]
        self._bound = {}        # (ip, host port) -> container id
        self._relays = {}       # container id -> set of relay tasks

    # -- at create

    def choose(self, wanted, taken_by_records):
        """Record entries of a create's bindings, random and range host ports chosen now: free on the host and
        neither published nor recorded by another container (``taken_by_records``: set of (ip, port))."""
        chosen, taken = [], set(taken_by_records) | set(self._bound)
        for request in wanted:
            if request.host_port and "-" not in request.host_port:
                chosen.append({"port": request.port, "host_ip": request.host_ip,
                               "host_port": int(request.host_port), "range": None})
                continue
            if request.host_port:
                low, high = (int(n) for n in request.host_port.split("-"))
            else:
                low, high = local_range()
            entry = {"port": request.port, "host_ip": request.host_ip, "host_port": None, "range": [low, high]}
            entry["host_port"] = self._pick(entry, taken)
            taken.add((self.ip_of(entry), entry["host_port"]))
            chosen.append(entry)
        return chosen

    def _pick(self, entry, taken):
        low, high = entry["range"]
        address = self.ip_of(entry)
        if (low, high) == local_range():
            # The kernel's own choice of a free ephemeral port, as dockerd's allocator takes the same range.
            for _attempt in range(64):
                with socket.socket(_family(address), socket.SOCK_STREAM) as probe:
                    try:
                        probe.bind((address, 0))
                    except OSError as exc:
                        raise InvalidInput("cannot publish port %d on %s: %s (an address of the endpoint VM is "
                                           "needed)" % (entry["port"], address, exc.strerror or exc)) from None
                    port = probe.getsockname()[1]
                if (address, port) not in taken:
                    return port
        for port in range(low, high + 1):
            if (address, port) not in taken and _free(address, port):
                return port
        raise VicError("no free host port in %d-%d on %s for container port %d" % (low, high, address, entry["port"]))

    def ip_of(self, entry):
        """The address a binding listens on: its own, else the endpoint's publish address."""
        return entry.get("host_ip") or self.address

    # -- a run

    def is_open(self, container_id):
        return container_id in self._servers

    async def open(self, container, strict=True):
        """Listen on the container's bindings. A host port in use fails the whole (nothing stays open) with
        dockerd's words; a port the endpoint chose is chosen again instead. Returns the record's entries when
        one moved (the caller writes them), else None. With ``strict`` False (an endpoint restoring a running
        container) a binding that cannot listen is logged and left out."""
        wanted = entries(container.record)
        if not wanted or self.is_open(container.id):
            return None
        servers, moved = [], False
        self._servers[container.id] = servers
        try:
            for index, entry in enumerate(wanted):
                try:
                    servers.append(await self._listen(container, entry))
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE and entry.get("range") and strict:
                        wanted[index] = dict(entry, host_port=self._pick(entry, set(self._bound)))
                        servers.append(await self._listen(container, wanted[index]))
                        moved = True
                        continue
                    if strict:
                        raise VicError(self._refusal(container, entry, exc)) from None
                    LOG.warning("container %s: %s", container.id[:12], self._refusal(container, entry, exc))
        except BaseException:
            self.close(container.id)
            raise
        return wanted if moved else None

    def _refusal(self, container, entry, exc):
        where = "%s:%d" % (self.ip_of(entry), entry["host_port"])
        if exc.errno == errno.EADDRINUSE:
            reason = "Bind for %s failed: port is already allocated" % where
        else:
            reason = "Error starting userland proxy: listen tcp %s: bind: %s" % (where, exc.strerror or exc)
        return "driver failed programming external connectivity on endpoint %s (%s): %s" % (
            container.name, container.id, reason)

    async def _listen(self, container, entry):
        address, host_port = self.ip_of(entry), entry["host_port"]
        if (address, host_port) in self._bound:
            raise OSError(errno.EADDRINUSE, "address already in use")
        container_id, port = container.id, entry["port"]
        server = await asyncio.start_server(
            lambda reader, writer: self._accepted(container_id, port, reader, writer),
            address, host_port, family=_family(address), reuse_address=True)
        if container_id not in self._servers:     # the run ended while it started listening
            server.close()
            raise VicError("container %s ended before its ports were published" % container.name)
        self._bound[(address, host_port)] = container_id
        LOG.info("container %s: publishing %s:%d -> %d/tcp", container_id[:12], address, host_port, port)
        return server

    def close(self, container_id):
        """Stop listening for the container and end its relayed connections (its run ended)."""
        servers = self._servers.pop(container_id, None)
        if servers is None:
            return
        for server in servers:
            server.close()
        for key in [key for key, owner in self._bound.items() if owner == container_id]:
            del self._bound[key]
        for task in self._relays.pop(container_id, ()):
            task.cancel()
        LOG.info("container %s: its published ports are closed", container_id[:12])

    def close_all(self):
        for container_id in list(self._servers):
            self.close(container_id)

    # -- connections

    def _accepted(self, container_id, port, reader, writer):
        # A task of ours, not asyncio's: the container's end cancels its relays.
        task = asyncio.ensure_future(self._relay(container_id, port, reader, writer))
        relays = self._relays.setdefault(container_id, set())
        relays.add(task)
        task.add_done_callback(relays.discard)

    async def _relay(self, container_id, port, reader, writer):
        try:
            await self._tether.wait_connected(container_id, CONNECT_WAIT)
            inward, outward = await self._tether.open_tcp(container_id, port)
        except (VicError, asyncssh.Error, OSError) as exc:
            LOG.info("container %s: a connection to port %d was refused: %s", container_id[:12], port, exc)
            writer.close()
            return
        try:
            await asyncio.gather(_copy(reader, outward), _copy(inward, writer))
        finally:
            outward.close()
            writer.close()


async def _copy(reader, writer):
    """One direction of a relay, flow controlled by both sides (``drain``); EOF passed on as a half-close.
    A reset on either side ends both directions (the caller closes both)."""
    try:
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, asyncssh.Error):
        writer.close()
