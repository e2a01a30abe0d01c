# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The endpoint's end of the tether channel: SSH over each container VM's serial line.

Every container VM has a network-backed serial port that dials the endpoint
(VIC's serial concentrator). The tether inside the VM is the SSH *server* on
that byte stream and the endpoint the SSH *client*, although the VM dials the
TCP connection: ``asyncssh.listen_reverse`` here, ``connect_reverse`` in the
tether. ``docs/tether-protocol.md`` is the contract; in short:

* the tether names its container in its SSH version string and proves it with
  the container's own ed25519 host key, made at ``docker create``;
* the endpoint logs in with a key derived from the VCH key, so it keeps the
  same identity across restarts without storing another secret;
* one ``control@vic`` session per connection carries JSON lines: the tether's
  ``hello`` and ``exit`` events, the endpoint's ``signal`` requests;
* ``attach`` sessions carry the primary process's streams, ``exec`` sessions a
  new process's; both end with ``exit-status``.
"""

import asyncio
import collections
import inspect
import itertools
import json
import logging
import re
import signal as signals

import asyncssh
from ansible_collections.vic.containers.plugins.module_utils._errors import (
    VicError,
    InvalidInput,
    Conflict,
)
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

LOG = logging.getLogger("vic.tether")

PROTOCOL_VERSION = 1
SERVER_VERSION_PREFIX = "VICTether_1"      # the tether's SSH software version; the container id follows
USERNAME = "vic"
CONTROL_SUBSYSTEM = "control@vic"
ATTACH_SUBSYSTEM = "attach"
STDOUT, STDERR = 1, 2
DEFAULT_TERM_SIZE = (80, 24)                # columns, rows, until the client sends its own

_CLIENT_KEY_INFO = b"vic.containers tether endpoint client key v1"
_VERSION_RE = re.compile(r"^SSH-2\.0-" + re.escape(SERVER_VERSION_PREFIX) + r" ([0-9A-Za-z][0-9A-Za-z_.-]{0,127})$")
_ID_INFO = "vic_container_id"
_READ_HIGH_WATER = 1024 * 1024
_MAX_LINE = 64 * 1024

ConnectionEvent = collections.namedtuple("ConnectionEvent", "kind container_id")
"""``kind`` is ``"connect"`` (also when a new connection replaced the old one) or ``"disconnect"``."""


# -- keys -------------------------------------------------------------------------------------


def new_host_key():
    """A container's own SSH host key: (private key in OpenSSH format, public key line)."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    return key.export_private_key("openssh").decode("ascii"), public_key_text(key)


def endpoint_client_key(vch_key):
    """The endpoint's login key for every tether, derived from the VCH's secret key bytes.

    HKDF-SHA256 gives the ed25519 seed, so the same VCH key always gives the
    same SSH key: nothing new to store, the same identity after a restart.
    """
    if not isinstance(vch_key, (bytes, bytearray)) or len(vch_key) < 32:
        raise ValueError("the VCH key must be at least 32 bytes")
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_CLIENT_KEY_INFO).derive(bytes(vch_key))
    pem = Ed25519PrivateKey.from_private_bytes(seed).private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    return asyncssh.import_private_key(pem)


def public_key_text(key):
    """The one-line OpenSSH public key (``ssh-ed25519 AAAA...``) of an asyncssh key."""
    return key.export_public_key("openssh").decode("ascii").strip()


def announced_id(server_version):
    """The container id a tether put in its SSH version string, or None."""
    match = _VERSION_RE.match(server_version or "")
    return match.group(1) if match else None


def signal_name(sig):
    """The SSH name (RFC 4254: ``TERM``, ``KILL``...) of a signal given as ``SIGTERM``, ``TERM``, ``15`` or 15."""
    text = str(sig).strip().upper()
    try:
        if text.isdigit():
            return signals.Signals(int(text)).name[3:]
        name = text if text.startswith("SIG") else "SIG" + text
        return signals.Signals[name].name[3:]
    except (KeyError, ValueError):
        raise InvalidInput(f"invalid signal: {sig}") from None


def _no_known_hosts(_host, _addr, _port):
    # Trust comes only from the per-container key check in validate_host_public_key;
    # an empty list (not None) keeps that check on and ~/.ssh/known_hosts out.
    return [], [], []


def _not_running(container_id):
    return Conflict(f"container {container_id} is not running")


def _short(container_id):
    return (container_id or "?")[:12]


# -- sessions -------------------------------------------------------------------------------


class _StreamSession(asyncssh.SSHClientSession):
    """Collects a session's output in order (stdout and stderr interleaved as they came)."""

    def __init__(self):
        self._chan = None
        self._items = collections.deque()
        self._size = 0
        self._paused = False
        self._done = False
        self._ready = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def connection_made(self, chan):
        self._chan = chan

    def data_received(self, data, datatype):
        self._items.append((STDERR if datatype == asyncssh.EXTENDED_DATA_STDERR else STDOUT, data))
        self._size += len(data)
        if self._size > _READ_HIGH_WATER and not self._paused:
            self._paused = True
            self._chan.pause_reading()
        self._ready.set()

    def eof_received(self):
        self._done = True
        self._ready.set()
        return True  # the output ended; our stdin stays as the caller leaves it

    def connection_lost(self, exc):
        self._done = True
        self._ready.set()
        self._writable.set()

    def pause_writing(self):
        self._writable.clear()

    def resume_writing(self):
        self._writable.set()

    async def next_item(self):
        while not self._items:
            if self._done:
                return None
            self._ready.clear()
            await self._ready.wait()
        stream, data = self._items.popleft()
        self._size -= len(data)
        if self._paused and self._size <= _READ_HIGH_WATER // 2:
            self._paused = False
            self._chan.resume_reading()
        return stream, data

    async def writable(self):
        await self._writable.wait()


class Attachment:
    """The streams of one process in a container: the primary one (attach) or an exec'd one.

    ``async for stream, data in attachment`` reads the output (stream 1 stdout,
    2 stderr; a TTY's output is all stream 1) until the process ends or the
    channel closes.
    """

    def __init__(self, container_id, chan, session):
        self.container_id = container_id
        self._chan = chan
        self._session = session

    def __aiter__(self):
        return self

    async def __anext__(self):
        item = await self.read()
        if item is None:
            raise StopAsyncIteration
        return item

    async def read(self):
        """The next ``(stream, bytes)`` of output, or None at the end."""
        return await self._session.next_item()

    async def write_stdin(self, data):
        """Send bytes to the process's stdin (waits while the channel's window is full)."""
        if self._chan.is_closing():
            raise _not_running(self.container_id)
        self._chan.write(bytes(data))
        await self._session.writable()

    def close_stdin(self):
        """The client's stdin ended (EOF on the channel)."""
        if not self._chan.is_closing():
            self._chan.write_eof()

    def resize(self, height, width):
        """The client's terminal changed size."""
        if not self._chan.is_closing():
            self._chan.change_terminal_size(int(width), int(height))

    def signal(self, sig):
        """Signal this session's process."""
        if not self._chan.is_closing():
            self._chan.send_signal(signal_name(sig))

    async def exit_code(self):
        """Wait for the channel to close; the process's exit code, or None if it closed without one."""
        await self._chan.wait_closed()
        status = self._chan.get_exit_status()
        if status == -1:
            name = self._chan.get_exit_signal()[0]
            try:
                return 128 + signals.Signals["SIG" + name].value
            except KeyError:
                return 128
        return status

    def close(self):
        """Detach: close the channel without ending stdin."""
        self._chan.close()


# -- one tether connection ----------------------------------------------------------------------


class ProtocolError(Exception):
    """The peer does not speak the tether protocol as documented."""


async def _read_message(reader):
    line = await reader.readline()
    if not line:
        return None
    if len(line) > _MAX_LINE:
        raise ProtocolError("control message too long")
    try:
        message = json.loads(line)
    except ValueError:
        raise ProtocolError("control message is not JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("control message is not a JSON object")
    return message


class _Link:
    """The SSH connection of one container's tether, and its control session."""

    def __init__(self, container_id, conn):
        self.container_id = container_id
        self.conn = conn
        self.lost = False
        self._writer = None
        self._reader = None
        self._replies = {}
        self._seq = itertools.count(1)

    async def open_control(self):
        streams = await self.conn.open_session(subsystem=CONTROL_SUBSYSTEM, encoding="utf-8")
        self._writer, self._reader = streams[0], streams[1]
        hello = await _read_message(self._reader)
        if not hello or hello.get("type") != "hello":
            raise ProtocolError("the tether did not say hello")
        if hello.get("id") != self.container_id:
            raise ProtocolError(f"the tether said hello as container {hello.get('id')!r}")
        if hello.get("protocol") != PROTOCOL_VERSION:
            raise ProtocolError(f"the tether speaks protocol {hello.get('protocol')!r}, not {PROTOCOL_VERSION}")
        return hello

    async def messages(self):
        """The tether's events and replies until the control session ends."""
        while True:
            message = await _read_message(self._reader)
            if message is None:
                return
            if message.get("type") == "reply" and message.get("seq") in self._replies:
                future = self._replies.pop(message["seq"])
                if not future.done():
                    future.set_result(message)
                continue
            yield message

    async def request(self, message, timeout):
        seq = next(self._seq)
        future = asyncio.get_running_loop().create_future()
        self._replies[seq] = future
        try:
            self._writer.write(json.dumps(dict(message, seq=seq)) + "\n")
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise VicError(f"the tether of container {self.container_id} did not answer within {timeout:g}s") from None
        finally:
            self._replies.pop(seq, None)
        if not reply.get("ok"):
            raise Conflict(f"container {self.container_id}: {reply.get('error') or 'the tether refused the request'}")
        return reply

    def fail_requests(self):
        for future in self._replies.values():
            if not future.done():
                future.set_exception(_not_running(self.container_id))
        self._replies.clear()

    def close(self):
        self.conn.close()


class _TetherClient(asyncssh.SSHClient):
    """Checks that the peer is the container it claims to be: its id, proven by that container's host key."""

    def __init__(self, concentrator):
        self._concentrator = concentrator
        self._conn = None

    def connection_made(self, conn):
        self._conn = conn

    def validate_host_public_key(self, host, addr, port, key):
        container_id = announced_id(self._conn.get_extra_info("server_version"))
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


# -- the concentrator ---------------------------------------------------------------------------


class Concentrator:
    """Accepts the tethers' connections and gives the persona their processes.

    ``host_key_of(container_id)`` returns the container's public host key line
    (or None for an unknown container); ``client_key`` is ``endpoint_client_key()``;
    ``on_exit(container_id, code, finished_at)`` (sync or async) learns every
    exit of a primary process, attached or not. It may be called again for the
    same exit after a reconnect or an endpoint restart, so it must be idempotent.
    """

    def __init__(self, host_key_of, client_key, on_exit, *, keepalive_interval=10.0, keepalive_count_max=3,
                 handshake_timeout=20.0, request_timeout=15.0):
        self._host_key_of = host_key_of
        self._client_key = client_key
        self._on_exit = on_exit
        self._keepalive = (keepalive_interval, keepalive_count_max)
        self._handshake_timeout = handshake_timeout
        self._request_timeout = request_timeout
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
        self._acceptor = await asyncssh.listen_reverse(
            host, port, client_factory=lambda: _TetherClient(self), acceptor=self._accepted,
            error_handler=self._handshake_failed, username=USERNAME, client_keys=[self._client_key],
            known_hosts=_no_known_hosts, server_host_key_algs=["ssh-ed25519"], preferred_auth="publickey",
            agent_path=None, password=None, kbdint_auth=False, gss_auth=False, config=None,
            keepalive_interval=self._keepalive[0], keepalive_count_max=self._keepalive[1],
            login_timeout=self._handshake_timeout, reuse_address=True)
        bound = self._acceptor.get_port()
        name = advertise or host
        self._uri = f"tcp://[{name}]:{bound}" if ":" in name else f"tcp://{name}:{bound}"
        LOG.info("tether channel listening on %s:%d", host, bound)

    async def stop(self):
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
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

    def connected(self, container_id):
        return container_id in self._links

    async def wait_connected(self, container_id, timeout):
        """Wait until the container's tether is connected; VicError after timeout seconds."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: container_id in self._links), timeout)
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
        return await self._session(container_id, tty, term_size, subsystem=ATTACH_SUBSYSTEM)

    async def exec(self, container_id, spec):
        """Start a process in the container: spec has Cmd (list), and optionally Env, User, WorkingDir, Tty, ConsoleSize."""
        command = _exec_command(spec)
        size = spec.get("ConsoleSize")
        term_size = (size[1], size[0]) if size and len(size) == 2 and all(size) else None
        return await self._session(container_id, bool(spec.get("Tty")), term_size, command=command)

    async def signal(self, container_id, sig):
        """Signal the primary process, attached or not."""
        link = self._link(container_id)
        await link.request({"op": "signal", "signal": signal_name(sig)}, self._request_timeout)

    # -- internals

    def host_key_matches(self, container_id, key):
        try:
            expected = self._host_key_of(container_id)
            return bool(expected) and asyncssh.import_public_key(expected).public_data == key.public_data
        except Exception as exc:  # noqa: BLE001  # pylint: disable=broad-except  # a bad record must refuse, not crash kex
            LOG.error("host key of container %s unusable: %s", _short(container_id), exc)
            return False

    def _link(self, container_id):
        link = self._links.get(container_id)
        if link is None:
            raise _not_running(container_id)
        return link

    async def _session(self, container_id, tty, term_size, **request):
        link = self._link(container_id)
        pty = {"request_pty": "force", "term_type": "xterm", "term_size": tuple(term_size or DEFAULT_TERM_SIZE)} \
            if tty else {"request_pty": False}
        try:
            chan, session = await link.conn.create_session(_StreamSession, encoding=None, **pty, **request)
        except asyncssh.ChannelOpenError as exc:
            raise Conflict(f"container {container_id}: {exc.reason}") from None
        except (asyncssh.Error, OSError):
            raise _not_running(container_id) from None
        return Attachment(container_id, chan, session)

    def _publish(self, kind, container_id):
        for queue in self._subscribers:
            queue.put_nowait(ConnectionEvent(kind, container_id))

    def _spawn(self, coro):
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _handshake_failed(self, conn, exc):
        LOG.info("tether handshake from %s failed: %s", (conn.get_extra_info("peername") or ("?",))[0], exc)

    async def _accepted(self, conn):
        container_id = conn.get_extra_info(_ID_INFO)
        link = _Link(container_id, conn)
        self._by_conn[conn] = link
        try:
            await asyncio.wait_for(link.open_control(), self._handshake_timeout)
        except (TimeoutError, asyncssh.Error, OSError, ProtocolError) as exc:
            LOG.warning("tether of container %s refused: %s", _short(container_id), exc or "timed out")
            conn.close()
            return
        if link.lost:
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

    async def _follow(self, link):
        try:
            async for message in link.messages():
                if message.get("type") == "exit":
                    self._exited(link.container_id, message)
                else:
                    LOG.debug("tether of container %s: ignoring %s message", _short(link.container_id), message.get("type"))
        except (asyncssh.Error, OSError, ProtocolError) as exc:
            LOG.warning("tether of container %s: control session failed: %s", _short(link.container_id), exc)
            link.close()

    def _exited(self, container_id, message):
        code, finished_at = message.get("code"), message.get("finished_at")
        if not isinstance(code, int) or isinstance(code, bool) or not isinstance(finished_at, str):
            LOG.warning("tether of container %s sent a malformed exit: %r", _short(container_id), message)
            return
        if self._reported.get(container_id) == (code, finished_at):
            return
        self._reported[container_id] = (code, finished_at)
        self._spawn(self._report_exit(container_id, code, finished_at))

    async def _report_exit(self, container_id, code, finished_at):
        try:
            result = self._on_exit(container_id, code, finished_at)
            if inspect.isawaitable(result):
                await result
        except Exception:  # pylint: disable=broad-except  # one bad handler must not end the channel
            LOG.exception("handling the exit of container %s failed", _short(container_id))
            self._reported.pop(container_id, None)  # so the next report (after a reconnect) retries

    def connection_lost(self, conn, exc):
        link = self._by_conn.pop(conn, None)
        if link is None:
            return
        link.lost = True
        link.fail_requests()
        if self._links.get(link.container_id) is link:
            del self._links[link.container_id]
            LOG.info("tether of container %s disconnected%s", _short(link.container_id), f": {exc}" if exc else "")
            self._publish("disconnect", link.container_id)


def _exec_command(spec):
    """The exec request's command string: the JSON spec the tether runs (see docs/tether-protocol.md)."""
    if not isinstance(spec, dict):
        raise InvalidInput("exec spec must be an object")
    cmd = spec.get("Cmd")
    if not isinstance(cmd, list) or not cmd or not all(isinstance(arg, str) for arg in cmd):
        raise InvalidInput("exec Cmd must be a non-empty list of strings")
    env = spec.get("Env") or []
    if not isinstance(env, list) or not all(isinstance(item, str) for item in env):
        raise InvalidInput("exec Env must be a list of KEY=value strings")
    command = {"Cmd": cmd, "Env": env, "User": spec.get("User") or "", "WorkingDir": spec.get("WorkingDir") or "",
               "Tty": bool(spec.get("Tty"))}
    return json.dumps(command)
