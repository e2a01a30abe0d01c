# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The endpoint's serial concentrator: where every container's tether dials in.

Every container VM has a network-backed serial port that dials the endpoint
(VIC's serial concentrator). On that byte stream runs SSH with the roles
reversed from who dials: the tether is the SSH server, the endpoint the client.
``docs/tether-protocol.md`` is the contract, ``services/tether/protocol.py``
what both sides agree on.

It listens (the tether dials but is the SSH server: the endpoint runs the SSH
client on each accepted connection, and only once the tether has spoken, since a
serial line may drop or hold what was sent before the guest opened it), lets in
only a tether that proves the container id it announces with that container's
host key, logs in with the key derived from the VCH key,
keeps one connection per container (a redial replaces the old one), and hands
the persona the processes behind it (``sessions.py``).
"""

import asyncio
import collections
import inspect
import logging
import socket

import asyncssh
from ansible_collections.vic.containers.plugins.module_utils._errors import VicError
from ansible_collections.vic.containers.services.portlayer.attach import sessions
from ansible_collections.vic.containers.services.tether import protocol
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

LOG = logging.getLogger("vic.tether")

_CLIENT_KEY_INFO = b"vic.containers tether endpoint client key v1"
_ID_INFO = "vic_container_id"
# AES-GCM first (the client's order decides): with AES-NI, cryptography's AES-GCM is ~3x its ChaCha20 and
# Poly1305, which asyncssh prefers; a published port's throughput is bound by the cipher (bench_ports.py).
_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr")
# A published port's channel: packets larger than SSH's customary 32 KiB, a window of several, so the relay's
# per-packet work (framing, cipher, a Python call each side) is spread over more bytes.
_TCP_PACKET = 256 * 1024
_TCP_WINDOW = 8 * 1024 * 1024

ConnectionEvent = collections.namedtuple("ConnectionEvent", "kind container_id")
"""``kind`` is ``"connect"`` (also when a new connection replaced the old one) or ``"disconnect"``."""


def endpoint_client_key(vch_key):
    """The endpoint's login key for every tether, derived from the VCH's secret key bytes.

    HKDF-SHA256 gives the ed25519 seed, so the same VCH key always gives the
    same SSH key: nothing new to store, the same identity after a restart.
    The tether only ever sees its public line (``protocol.public_key_text``).
    """
    if not isinstance(vch_key, (bytes, bytearray)) or len(vch_key) < 32:
        raise ValueError("the VCH key must be at least 32 bytes")
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_CLIENT_KEY_INFO).derive(bytes(vch_key))
    pem = Ed25519PrivateKey.from_private_bytes(seed).private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    return asyncssh.import_private_key(pem)


def _no_known_hosts(_host, _addr, _port):
    # Trust comes only from the per-container key check in validate_host_public_key;
    # an empty list (not None) keeps that check on and ~/.ssh/known_hosts out.
    return [], [], []


def _short(container_id):
    return (container_id or "?")[:12]


class _Link:
    """The SSH connection of one container's tether, and its control session once open."""

    def __init__(self, container_id, conn):
        self.container_id = container_id
        self.conn = conn
        self.control = None
        self.lost = False

    def close(self):
        """End the connection; its sessions end without an exit status."""
        self.conn.close()


async def _spoken(sock):
    """True once the peer has sent a byte (left unread for SSH), False if it closed first."""
    loop = asyncio.get_running_loop()
    readable = loop.create_future()
    fd = sock.fileno()
    loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
    try:
        await readable
    finally:
        loop.remove_reader(fd)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except OSError:
        return False


class _TetherClient(asyncssh.SSHClient):
    """Checks that the peer is the container it claims to be: its id, proven by that container's host key."""

    def __init__(self, concentrator):
        self._concentrator = concentrator
        self._conn = None

    def connection_made(self, conn):
        self._conn = conn

    def validate_host_public_key(self, host, addr, port, key):
        container_id = protocol.announced_id(self._conn.get_extra_info("server_version"))
        if container_id is None:
            LOG.warning("tether connection from %s refused: it named no container", addr)
            return False
        if not self._concentrator.host_key_matches(container_id, key):
            LOG.warning("tether connection from %s refused: not the host key of container %s", addr, _short(container_id))
            return False
        self._conn.set_extra_info(**{_ID_INFO: container_id})
        return True

    def connection_lost(self, exc):
        if self._conn is not None:
            self._concentrator.connection_lost(self._conn, exc)


class Concentrator:
    """Accepts the tethers' connections and gives the persona their processes.

    ``host_key_of(container_id)`` returns the container's public host key line
    (or None for an unknown container); ``client_key`` is ``endpoint_client_key()``;
    ``on_exit(container_id, code, finished_at)`` (sync or async) learns every
    exit of a primary process, attached or not. It may be called again for the
    same exit after a reconnect or an endpoint restart, so it must be idempotent.
    ``on_started(container_id, pid, started_at)`` (sync) learns that the primary
    process runs, after each hello while it does (idempotent too). ``hosts_of(container_id)`` gives the
    container's peers (``protocol.hosts_request``'s entries), sent on every connection before the env key, so
    /etc/hosts has them when the process starts.
    """

    def __init__(self, host_key_of, client_key, on_exit, *, on_started=None, env_key_of=None, hosts_of=None,
                 keepalive_interval=protocol.KEEPALIVE_INTERVAL,
                 keepalive_count_max=protocol.KEEPALIVE_COUNT_MAX, handshake_timeout=20.0, request_timeout=15.0):
        self._host_key_of = host_key_of
        self._client_key = client_key
        self._on_exit = on_exit
        self._on_started = on_started
        self._env_key_of = env_key_of   # container id -> the key its boot spec's sealed env opens with
        self._hosts_of = hosts_of       # container id -> its peers' [(ip, [names])]
        self._keepalive = (keepalive_interval, keepalive_count_max)
        self._timeouts = (handshake_timeout, request_timeout)
        self._links = {}            # container id -> the live _Link
        self._by_conn = {}          # every connection past the handshake -> its _Link
        self._reported = {}         # container id -> last (code, finished_at) given to on_exit
        self._subscribers = set()
        self._tasks = set()
        self._changed = asyncio.Condition()
        self._acceptor = None
        self._uri = None

    # -- life cycle

    async def start(self, host, port, advertise=None):
        """Listen on host:port; ``advertise`` is the address VMs dial when host is a wildcard."""
        listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        listener.setblocking(False)
        self._acceptor = (listener, self._spawn(self._accept_forever(listener)))
        bound = listener.getsockname()[1]
        name = advertise or host
        self._uri = f"tcp://[{name}]:{bound}" if ":" in name else f"tcp://{name}:{bound}"
        LOG.info("tether channel listening on %s:%d", host, bound)

    async def stop(self):
        """Stop listening, close every connection and end the event streams."""
        if self._acceptor is not None:
            listener, accepting = self._acceptor
            accepting.cancel()
            await asyncio.gather(accepting, return_exceptions=True)
            listener.close()
            self._acceptor = None
        conns = list(self._by_conn)
        for conn in conns:
            conn.close()
        for conn in conns:
            await conn.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for queue in self._subscribers:
            queue.put_nowait(None)

    @property
    def serial_uri(self):
        """What a container VM's serial port dials: ``tcp://host:port``."""
        if self._uri is None:
            raise RuntimeError("the tether channel is not started")
        return self._uri

    # -- state

    def connected(self, container_id, maintenance=False):
        """True while the container's tether is connected and has said hello: a run's, or with ``maintenance``
        a maintenance boot's (``protocol.MAINTENANCE``)."""
        link = self._links.get(container_id)
        return link is not None and link.control.maintenance == maintenance

    async def wait_connected(self, container_id, timeout, maintenance=False):
        """Wait until the container's tether is connected (``connected``); VicError after timeout seconds."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.connected(container_id, maintenance)),
                                       timeout)
            except TimeoutError:
                raise VicError(f"container {container_id} did not connect to the endpoint within {timeout:g}s") from None

    async def events(self):
        """Async iterator of ``ConnectionEvent``; ends when the concentrator stops."""
        queue = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            self._subscribers.discard(queue)

    # -- requests

    async def attach(self, container_id, tty=False, stdin=False, term_size=None):
        """Open the primary process's streams. With ``stdin`` False nothing is ever written or closed on its stdin."""
        del stdin  # the channel is the same; the caller simply never writes (see docs/tether-protocol.md)
        return await sessions.open_process(self._link(container_id).conn, container_id, tty, term_size,
                                           subsystem=protocol.ATTACH_SUBSYSTEM)

    async def exec(self, container_id, spec):
        """Start a process in the container: spec has Cmd (list), and optionally Env, User, WorkingDir, Tty, ConsoleSize."""
        tty, term_size, command = sessions.exec_request(spec)
        return await sessions.open_process(self._link(container_id).conn, container_id, tty, term_size,
                                           command=command)

    async def signal(self, container_id, sig):
        """Signal the primary process, attached or not."""
        link = self._link(container_id)
        await link.control.request(sessions.user_value(protocol.signal_request, sig), self._timeouts[1])

    async def stats(self, container_id):
        """The guest's figures now (``protocol.parse_stats``: CPU ns, memory bytes, pids)."""
        reply = await self._link(container_id).control.request(protocol.stats_request(), self._timeouts[1])
        try:
            return protocol.parse_stats(reply)
        except protocol.ProtocolError as exc:
            raise VicError(f"the tether of container {container_id} sent bad figures: {exc}") from None

    async def top(self, container_id):
        """``(titles, rows)`` of the container's processes as ``ps -ef`` shows them, listed by the tether."""
        reply = await self._link(container_id).control.request(protocol.top_request(), self._timeouts[1])
        try:
            return protocol.parse_top(reply)
        except protocol.ProtocolError as exc:
            raise VicError(f"the tether of container {container_id} sent a bad process list: {exc}") from None

    async def archive(self, container_id, request, maintenance=False):
        """An ``archive@vic`` session for ``request`` (``protocol.archive_request``): see ``sessions.Archive``; on
        a maintenance boot's tether with ``maintenance``."""
        return await sessions.Archive.open(self._link(container_id, maintenance).conn, container_id, request)

    async def open_tcp(self, container_id, port):
        """``(reader, writer)`` of a direct-tcpip channel to the container's published TCP ``port``: the tether
        connects inside the container (``protocol.forward_refusal`` says what it refuses)."""
        conn = self._link(container_id).conn
        return await conn.open_connection(protocol.FORWARD_HOST, port, window=_TCP_WINDOW, max_pktsize=_TCP_PACKET)

    # -- internals

    def host_key_matches(self, container_id, key):
        """True if ``key`` is the host key recorded for the container; False for any other or none."""
        try:
            expected = self._host_key_of(container_id)
            return bool(expected) and protocol.import_public_key(expected).public_data == key.public_data
        except Exception as exc:  # noqa: BLE001  # pylint: disable=broad-except  # a bad record must refuse, not crash kex
            LOG.error("host key of container %s unusable: %s", _short(container_id), exc)
            return False

    def _link(self, container_id, maintenance=False):
        """The container's live link: a run's (a process behind it), or with ``maintenance`` a maintenance boot's."""
        link = self._links.get(container_id)
        if link is None or link.control.maintenance != maintenance:
            raise sessions.not_running(container_id)
        return link

    def _publish(self, kind, container_id):
        for queue in self._subscribers:
            queue.put_nowait(ConnectionEvent(kind, container_id))

    def _spawn(self, coro):
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _accept_forever(self, listener):
        loop = asyncio.get_running_loop()
        while True:
            sock, peer = await loop.sock_accept(listener)
            self._spawn(self._dialled(sock, peer))

    async def _dialled(self, sock, peer):
        """Run the SSH client on a connection once the tether has said its version: a VM's serial port
        dials at power-on, long before the guest opens the line, and bytes sent earlier may be lost."""
        sock.setblocking(False)
        try:
            spoke = await _spoken(sock)
        except asyncio.CancelledError:
            sock.close()
            raise
        if not spoke:
            sock.close()
            return
        try:
            conn = await asyncssh.connect(
                "tether", sock=sock, client_factory=lambda: _TetherClient(self), username=protocol.USERNAME,
                client_keys=[self._client_key], known_hosts=_no_known_hosts,
                server_host_key_algs=[protocol.HOST_KEY_ALGORITHM], preferred_auth="publickey", agent_path=None,
                password=None, kbdint_auth=False, gss_auth=False, config=None, encryption_algs=_CIPHERS,
                # None, not left out: asyncssh's defaults read ~/.ssh, and a DynamicUser service has no home.
                x509_trusted_certs=None, x509_trusted_cert_paths=None,
                keepalive_interval=self._keepalive[0], keepalive_count_max=self._keepalive[1],
                login_timeout=self._timeouts[0])
        except (asyncssh.Error, OSError, asyncio.TimeoutError) as exc:
            LOG.info("tether handshake from %s failed: %s", peer[0], exc or "timed out")
            sock.close()
            return
        except Exception:  # pylint: disable=broad-exception-caught
            # Not the tether's doing (the endpoint's own environment): said loudly, or containers wait for
            # a connection that never comes with nothing in the log.
            LOG.exception("tether handshake from %s failed in the endpoint", peer[0])
            sock.close()
            return
        await self._accepted(conn)

    async def _accepted(self, conn):
        container_id = conn.get_extra_info(_ID_INFO)
        link = _Link(container_id, conn)
        self._by_conn[conn] = link
        try:
            link.control = await asyncio.wait_for(sessions.ControlSession.open(conn, container_id), self._timeouts[0])
        except (TimeoutError, asyncssh.Error, OSError, protocol.ProtocolError) as exc:
            LOG.warning("tether of container %s refused: %s", _short(container_id), exc or "timed out")
            conn.close()
            return
        if link.lost:
            # A tether whose process just ended says hello and its exit at once; the line may drop
            # before we get here: still hear out what it sent (its exit), without making it the link.
            await self._follow(link)
            return
        old = self._links.get(container_id)
        self._links[container_id] = link
        if old is not None:
            LOG.info("tether of container %s reconnected; closing its old connection", _short(container_id))
            old.close()
        LOG.info("tether of container %s connected", _short(container_id))
        async with self._changed:
            self._changed.notify_all()
        self._publish("connect", container_id)
        self._spawn(self._follow(link))
        # The peers first: the tether does requests in order, and the env key starts the process.
        if self._hosts_of is not None:
            self._spawn(self._send_hosts(link, self._hosts_of(link.container_id)))
        if self._env_key_of is not None:
            self._spawn(self._hand_env(link))

    async def send_hosts(self, container_id, entries):
        """Give the container's tether its peers (``protocol.hosts_request``); False when it is not connected
        or did not take them (an old tether answers that it does not know the op: logged, nothing breaks)."""
        link = self._links.get(container_id)
        return link is not None and await self._send_hosts(link, entries)

    async def _send_hosts(self, link, entries):
        try:
            await link.control.request(protocol.hosts_request(entries), self._timeouts[1])
        except (VicError, asyncssh.Error, OSError, protocol.ProtocolError) as exc:
            LOG.warning("tether of container %s: its peers were not taken: %s", _short(link.container_id),
                        exc or "timed out")
            return False
        return True

    async def _hand_env(self, link):
        """Hand the tether its env key on each connection: its process starts once it has it (a tether that
        has it already, or whose env is not sealed, just answers)."""
        try:
            await link.control.request(protocol.env_request(self._env_key_of(link.container_id)), self._timeouts[1])
        except (VicError, asyncssh.Error, OSError) as exc:
            LOG.warning("tether of container %s: its env key was not taken: %s", _short(link.container_id),
                        exc or "timed out")

    async def _follow(self, link):
        try:
            async for message in link.control.messages():
                if message.get("type") == protocol.EXIT:
                    self._exited(link.container_id, message)
                elif message.get("type") == protocol.STARTED:
                    self._started(link.container_id, message)
                else:
                    LOG.debug("tether of container %s: ignoring %s message", _short(link.container_id), message.get("type"))
        except (asyncssh.Error, OSError, protocol.ProtocolError) as exc:
            LOG.warning("tether of container %s: control session failed: %s", _short(link.container_id), exc)
            link.close()

    def _started(self, container_id, message):
        try:
            pid, started_at = protocol.parse_started(message)
        except protocol.ProtocolError as exc:
            LOG.warning("tether of container %s sent a malformed started: %s", _short(container_id), exc)
            return
        if self._on_started is not None:
            self._on_started(container_id, pid, started_at)

    def _exited(self, container_id, message):
        try:
            report = protocol.parse_exit(message)
        except protocol.ProtocolError as exc:
            LOG.warning("tether of container %s sent a malformed exit: %s", _short(container_id), exc)
            return
        if self._reported.get(container_id) == report:
            return
        self._reported[container_id] = report
        self._spawn(self._report_exit(container_id, *report))

    async def _report_exit(self, container_id, code, finished_at):
        try:
            result = self._on_exit(container_id, code, finished_at)
            if inspect.isawaitable(result):
                await result
        except Exception:  # pylint: disable=broad-except  # one bad handler must not end the channel
            LOG.exception("handling the exit of container %s failed", _short(container_id))
            self._reported.pop(container_id, None)  # so the next report (after a reconnect) retries

    def connection_lost(self, conn, exc):
        """A connection ended: its requests fail, and the container is disconnected if it was its live one."""
        link = self._by_conn.pop(conn, None)
        if link is None:
            return
        link.lost = True
        if link.control is not None:
            link.control.fail_requests()
        if self._links.get(link.container_id) is link:
            del self._links[link.container_id]
            LOG.info("tether of container %s disconnected%s", _short(link.container_id), f": {exc}" if exc else "")
            self._publish("disconnect", link.container_id)
