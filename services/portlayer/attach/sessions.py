# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The endpoint's sessions on one tether connection: the control session, attach and exec.

The messages, names and formats are ``services/tether/protocol.py``'s; this
module is where its ``ProtocolError`` about a user's value (a signal, an exec
spec) becomes the endpoint's ``InvalidInput``, and a refused or lost session
a ``Conflict``.
"""

import asyncio
import collections
import itertools

import asyncssh
from ansible_collections.vic.containers.plugins.module_utils._errors import (
    VicError,
    InvalidInput,
    Conflict,
    NotFound,
)
from ansible_collections.vic.containers.services.tether import protocol

_READ_HIGH_WATER = 1024 * 1024
_CHUNK = 64 * 1024
_TERM_TYPE = "xterm"


def user_value(convert, value):
    """``convert(value)`` with the protocol's refusal of a user's value as ``InvalidInput``."""
    try:
        return convert(value)
    except protocol.ProtocolError as exc:
        raise InvalidInput(str(exc)) from None


def signal_name(sig):
    """The SSH name of a signal a user gave as ``SIGTERM``, ``TERM``, ``15`` or 15 (InvalidInput if none)."""
    return user_value(protocol.signal_name, sig)


def not_running(container_id):
    """The error for a container whose tether is not connected (or went away)."""
    return Conflict(f"container {container_id} is not running")


# -- attach and exec ---------------------------------------------------------------------------


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
        stream = protocol.STDERR if datatype == asyncssh.EXTENDED_DATA_STDERR else protocol.STDOUT
        self._items.append((stream, data))
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
        """The next ``(stream, bytes)`` of output, or None once the output ended."""
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
        """Wait while the channel's send window is full."""
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
            raise not_running(self.container_id)
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
        if status == -1:  # an exit-signal, which the tether never sends, but a code is still due
            return protocol.signal_exit_code(self._chan.get_exit_signal()[0])
        return status

    def close(self):
        """Detach: close the channel without ending stdin."""
        self._chan.close()


async def open_process(conn, container_id, tty, term_size, **request):
    """An ``Attachment`` on a new session channel; ``request`` is its ``subsystem`` or exec ``command``."""
    pty = {"request_pty": "force", "term_type": _TERM_TYPE,
           "term_size": tuple(term_size or protocol.DEFAULT_TERM_SIZE)} if tty else {"request_pty": False}
    try:
        chan, session = await conn.create_session(_StreamSession, encoding=None, **pty, **request)
    except asyncssh.ChannelOpenError as exc:
        raise Conflict(f"container {container_id}: {exc.reason}") from None
    except (asyncssh.Error, OSError):
        raise not_running(container_id) from None
    return Attachment(container_id, chan, session)


def exec_request(spec):
    """``(tty, term_size, command)`` of an exec spec (the Docker API's: ConsoleSize is [rows, columns])."""
    command = user_value(protocol.exec_command, spec)
    size = spec.get("ConsoleSize")
    term_size = (size[1], size[0]) if size and len(size) == 2 and all(size) else None
    return bool(spec.get("Tty")), term_size, command


# -- archives (docker cp) --------------------------------------------------------------------------

_ARCHIVE_ERRORS = {protocol.ARCHIVE_NOT_FOUND: NotFound, protocol.ARCHIVE_INVALID: InvalidInput,
                   protocol.ARCHIVE_CONFLICT: Conflict}
ARCHIVE_STAT, ARCHIVE_GET, ARCHIVE_PUT = protocol.ARCHIVE_STAT, protocol.ARCHIVE_GET, protocol.ARCHIVE_PUT
ARCHIVE_EXPORT, ARCHIVE_CHANGES = protocol.ARCHIVE_EXPORT, protocol.ARCHIVE_CHANGES


def archive_request(op, path, **options):
    """``protocol.archive_request`` of a user's path, its refusal as ``InvalidInput``."""
    return user_value(lambda checked: protocol.archive_request(op, checked, **options), path)


class Archive:
    """One ``archive@vic`` channel: our request line, the tether's result line, and a tar stream
    after it (``get``) or before it (``put``). ``result`` raises the tether's refusal as
    NotFound / InvalidInput / Conflict by its ``kind``."""

    def __init__(self, container_id, writer, reader):
        self.container_id = container_id
        self._writer = writer
        self._reader = reader

    @classmethod
    async def open(cls, conn, container_id, request):
        try:
            writer, reader, _stderr = await conn.open_session(subsystem=protocol.ARCHIVE_SUBSYSTEM, encoding=None)
        except asyncssh.ChannelOpenError as exc:
            raise Conflict(f"container {container_id}: {exc.reason}") from None
        except (asyncssh.Error, OSError):
            raise not_running(container_id) from None
        writer.write(protocol.encode(request))
        return cls(container_id, writer, reader)

    async def result(self):
        """The tether's result line: the path's stat (``protocol.path_stat``) when it is ``ok``."""
        try:
            stat, error, kind = protocol.parse_archive_result(await self._reader.readuntil(b"\n"))
        except (asyncio.IncompleteReadError, asyncssh.Error, OSError, protocol.ProtocolError) as exc:
            raise VicError(f"the tether of container {self.container_id} gave no archive result: {exc}") from None
        if error is None:
            return stat
        raise _ARCHIVE_ERRORS.get(kind, Conflict)(error)

    async def read(self):
        """The next bytes of the tar stream the tether sends (``get``), b"" at its end."""
        return await self._reader.read(_CHUNK)

    async def changes(self):
        """What a ``changes`` request sends after its result line: Docker's ``[{"Path", "Kind"}]``."""
        data = b"".join([chunk async for chunk in self._chunks()])
        try:
            return protocol.decode_changes(data)
        except protocol.ProtocolError as exc:
            raise VicError(f"the tether of container {self.container_id} sent bad changes: {exc}") from None

    async def _chunks(self):
        while chunk := await self.read():
            yield chunk

    async def write(self, data):
        """Bytes of the tar stream to extract (``put``), waiting while the channel's window is full."""
        self._writer.write(bytes(data))
        await self._writer.drain()

    async def finish(self):
        """The tar stream ended (``put``): the tether extracts it and answers (``result``)."""
        self._writer.write_eof()
        return await self.result()

    def close(self):
        self._writer.close()


# -- the control session -------------------------------------------------------------------------


class ControlSession:
    """The ``control@vic`` session of one connection: the tether's events and replies, our requests."""

    def __init__(self, container_id, writer, reader):
        self.container_id = container_id
        self._writer = writer
        self._reader = reader
        self._lines = protocol.LineReader()
        self._pending = collections.deque()
        self._replies = {}
        self._seq = itertools.count(1)
        self.maintenance = False    # the tether of a maintenance boot (its hello says so): no run's

    @classmethod
    async def open(cls, conn, container_id):
        """Open the control session and take the tether's hello (ProtocolError if it is not the one expected)."""
        writer, reader, _stderr = await conn.open_session(subsystem=protocol.CONTROL_SUBSYSTEM, encoding=None)
        control = cls(container_id, writer, reader)
        control.maintenance = protocol.check_hello(await control.receive(), container_id)
        return control

    async def receive(self):
        """The tether's next message, or None when the session has ended."""
        while not self._pending:
            data = await self._reader.read(_CHUNK)
            if not data:
                return None
            self._pending.extend(self._lines.feed(data))
        return self._pending.popleft()

    async def messages(self):
        """The tether's events until the session ends; replies go to the requests that wait for them."""
        while (message := await self.receive()) is not None:
            seq = message.get("seq") if message.get("type") == protocol.REPLY else None
            future = self._replies.pop(seq, None) if isinstance(seq, int) else None
            if future is None:
                yield message
            elif not future.done():
                future.set_result(message)

    async def request(self, message, timeout):
        """Send a request and wait for the tether to do it; Conflict if it refuses."""
        seq = next(self._seq)
        future = asyncio.get_running_loop().create_future()
        self._replies[seq] = future
        try:
            self._writer.write(protocol.encode(dict(message, seq=seq)))
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise VicError(f"the tether of container {self.container_id} did not answer within {timeout:g}s") from None
        finally:
            self._replies.pop(seq, None)
        error = protocol.reply_error(reply)
        if error is not None:
            raise Conflict(f"container {self.container_id}: {error}")
        return reply

    def fail_requests(self):
        """The connection is gone: every request still waiting fails as not running."""
        for future in self._replies.values():
            if not future.done():
                future.set_exception(not_running(self.container_id))
        self._replies.clear()
