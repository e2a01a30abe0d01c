# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether's SSH server over the channel to the endpoint, and the container's life behind it.

docs/tether-protocol.md is the contract: the tether dials (and redials, backing
off 0.1 s doubling to 5 s) but is the SSH server; the endpoint logs in with its
key and opens ``control@vic`` (hello, started, exit; signal, stats, top, env and hosts requests),
``attach`` channels (the primary process), ``exec`` channels and
``archive@vic`` channels. On a user-defined network it is also the container's DNS server
(``dns_server``), answering the peers the ``hosts`` requests give. The process keeps running while the channel is down;
its output still goes to the log. A maintenance boot (``protocol.MAINTENANCE``) runs no
process and serves control and archive channels only, until the VM is powered off.
"""

import asyncio
import json
import os
import sys

import asyncssh
from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.services.tether.agent import dns_server, process, rootfs, stats, users

REDIAL_FIRST, REDIAL_MAX = 0.1, 5.0
RUNBLOCK_WAIT = 5.0         # seconds after the hello before a RunBlock process starts without an attach
# A handshake that stalls (on a serial line, the endpoint may still be reading the previous session's bytes)
# is given up as a dead link is: then the tether starts SSH again on the same line.
LOGIN_TIMEOUT = protocol.KEEPALIVE_INTERVAL * protocol.KEEPALIVE_COUNT_MAX
HALT_GRACE = 30.0           # seconds to wait for the endpoint to take the exit before halting anyway
CLOSE_GRACE = 5.0           # seconds for attach channels to take their last output and exit status
EXIT_LINGER = 0.5           # seconds the connection stays up after the exit line (the endpoint has no ack for it)
_CHUNK = 65536
_HIGH_WATER = 1024 * 1024


def warn(sentence):
    """A line on the console (the tether's stderr): the endpoint never sees it."""
    print(sentence, file=sys.stderr, flush=True)


class Tether:
    """The container's primary process, its attachers and control sessions, and the link to the endpoint."""

    def __init__(self, spec, root, log, dialer, dns_sockets=None, broken=None):
        self.spec = spec
        # A maintenance boot (protocol.MAINTENANCE) starts no process and serves archive requests only;
        # ``broken``: why its root could not be assembled, the answer to each of them.
        self.maintenance = bool(spec.get(protocol.MAINTENANCE))
        self.broken = broken
        self.root = root                        # the container's root directory (chroot target)
        self.log = log                          # jsonlog.LogWriter, or None
        self.dialer = dialer
        self.reaper = process.Reaper()
        self.primary = None
        self.started_at = None
        self.attaches = set()                   # _Session of open attach channels
        self.controls = set()                   # channels of open control sessions
        self.conn = None
        self.ended = asyncio.Event()            # the primary process ended and its exit is logged
        self.exit_delivered = asyncio.Event()   # ... and written on a control session
        self.stopping = asyncio.Event()
        self._host_key = protocol.import_host_key(spec["host_key"])
        self._authorized = protocol.authorized_keys(spec["endpoint_key"])
        self._runblock_timer = None
        self._tasks = set()
        # A sealed env opens with the key the endpoint hands over the channel: nothing starts before it.
        self._env_sealed = spec["process"].get("EnvSealed") or None
        self._start_waiting = None      # (term_size,) of a start asked for before the env was open
        self._attach_waiting = []       # attach sessions opened before the env was open
        self._peers = []                # the peers /etc/hosts lists (none at boot: rootfs.write_etc)
        self._dns_sockets = dns_sockets     # bound for the embedded DNS server (dns_server.bind), or None
        self.dns = None                     # dns_server.Server once started

    # -- life cycle

    async def serve(self, halt):
        """Run until the primary process ended and the endpoint took its exit (``halt``), or until stopped."""
        loop = asyncio.get_running_loop()
        self.reaper.install(loop)
        for number in (process.signal.SIGTERM, process.signal.SIGINT):
            loop.add_signal_handler(number, self.stopping.set)
        if self._dns_sockets is not None:
            await self._start_dns()
        if not self.spec["process"]["RunBlock"]:
            self.start_primary()
        dialing = self.spawn_task(self._dial_forever())
        stop = self.spawn_task(self.stopping.wait())
        if halt:
            await asyncio.wait([self.spawn_task(self._ended_and_told()), stop], return_when=asyncio.FIRST_COMPLETED)
        else:
            await stop
        await self._shutdown(dialing)

    async def _start_dns(self):
        """The embedded DNS server, before the process starts: the container's own names at once, its peers
        with the first ``hosts`` request."""
        sockets, self._dns_sockets = self._dns_sockets, None
        dns = self.spec["dns"]
        server = dns_server.Server(dns["servers"], dns["search"], options=dns["options"])
        server.update(rootfs.dns_entries(self.spec, self._peers))
        try:
            await server.start(sockets)
        except OSError as exc:
            warn(f"tether: the DNS server at {dns_server.ADDRESS} cannot start: {exc}")
            for sock in sockets:
                sock.close()
            return
        self.dns = server

    async def _ended_and_told(self):
        await self.ended.wait()
        try:
            await asyncio.wait_for(self.exit_delivered.wait(), HALT_GRACE)
        except asyncio.TimeoutError:
            warn(f"tether: the endpoint did not take the exit within {HALT_GRACE:g}s; it is in the log")
        closing = [s.closed.wait() for s in list(self.attaches)]
        if closing:
            await asyncio.wait([self.spawn_task(c) for c in closing], timeout=CLOSE_GRACE)
        # The exit line is written, not yet read: an endpoint that just accepted the connection drops what
        # a connection that closes at once said. Give it a moment, unless it closes first.
        if self.conn is not None:
            await asyncio.wait([self.spawn_task(self.conn.wait_closed())], timeout=EXIT_LINGER)

    async def _shutdown(self, dialing):
        dialing.cancel()
        if self.dns is not None:
            await self.dns.close()
        if self.conn is not None:
            self.conn.close()
            try:
                await asyncio.wait_for(self.conn.wait_closed(), CLOSE_GRACE)
            except asyncio.TimeoutError:
                pass
        if self.primary is not None and not self.primary.done.is_set():
            try:
                self.primary.signal(process.signal.SIGKILL)
            except ProcessLookupError:
                pass
        for task in list(self._tasks):
            task.cancel()
        self.dialer.close()

    def spawn_task(self, coro):
        """Run ``coro`` as a task the tether cancels when it shuts down."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _dial_forever(self):
        delay = REDIAL_FIRST
        while True:
            try:
                conn = await asyncssh.connect_reverse(
                    "tether", 22, tunnel=self.dialer, server_factory=lambda: _Server(self),
                    server_host_keys=[self._host_key], server_version=protocol.server_version(self.spec["id"]),
                    authorized_client_keys=self._authorized, password_auth=False, kbdint_auth=False,
                    gss_host=None, encoding=None, config=None, keepalive_interval=protocol.KEEPALIVE_INTERVAL,
                    keepalive_count_max=protocol.KEEPALIVE_COUNT_MAX, login_timeout=LOGIN_TIMEOUT)
            except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
                if delay >= REDIAL_MAX:
                    warn(f"tether: cannot reach the endpoint: {exc}")
            except Exception as exc:  # pylint: disable=broad-except  # whatever failed, the tether must dial again
                warn(f"tether: connection failed: {exc!r}")
            else:
                delay = REDIAL_FIRST
                self.conn = conn
                await conn.wait_closed()
                self.conn = None
                await asyncio.sleep(REDIAL_FIRST)
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, REDIAL_MAX)

    # -- the primary process

    def process_spec(self, exec_spec=None):
        """The ``ProcessSpec`` of the primary process, or of an exec (its fields over the container's)."""
        config = self.spec["process"]
        limits = {"ulimits": config["Ulimits"], "group_add": config["GroupAdd"]}
        if exec_spec is None:
            return process.ProcessSpec(config["Cmd"], config["Env"], [], config["User"], config["WorkingDir"],
                                       config["Tty"], self.spec["hostname"], **limits)
        return process.ProcessSpec(exec_spec["Cmd"], config["Env"], exec_spec["Env"], exec_spec["User"] or config["User"],
                                   exec_spec["WorkingDir"] or config["WorkingDir"], exec_spec["Tty"], self.spec["hostname"],
                                   **limits)

    def start_primary(self, term_size=None):
        if self.primary is not None or self.maintenance:
            return
        if self._env_sealed is not None:
            if self._start_waiting is None:
                self._start_waiting = (term_size,)
            return
        if self._runblock_timer is not None:
            self._runblock_timer.cancel()
        self.primary = process.spawn(self.root, self.process_spec(), self.reaper, term_size)
        self.started_at = protocol.timestamp()
        if not self.spec["process"]["OpenStdin"] and not self.spec["process"]["Tty"]:
            self.primary.close_stdin()      # docker run without -i: the process reads EOF at once, never waits
        if self.log is not None:
            if not self.primary.failed:
                self.log.start(self.started_at)
            self.primary.listeners.append(self.log.output)
        if not self.primary.failed:
            for chan in list(self.controls):
                self._send(chan, protocol.started_report(self.primary.pid, self.started_at))
        self.spawn_task(self._primary_ended())
        waiting, self._attach_waiting = self._attach_waiting, []
        for session in waiting:
            session.ready(self.primary)

    async def _primary_ended(self):
        primary = self.primary
        await primary.done.wait()
        if self.log is not None:
            self.log.exit(primary.code, primary.finished_at)
        for session in list(self.attaches):
            session.finish(primary.code)
        for chan in list(self.controls):
            self._send_exit(chan)
        self.ended.set()

    def attach(self, session):
        """An attach channel opened: the first one starts a RunBlock process."""
        self.attaches.add(session)
        if self.primary is None:
            self.start_primary(session.term_size())
        if self.primary is None:
            self._attach_waiting.append(session)    # ready once the endpoint handed the env key
        elif self.primary.done.is_set():
            session.finish(self.primary.code)
        else:
            session.ready(self.primary)

    # -- control sessions

    def control_opened(self, chan):
        self.controls.add(chan)
        self._send(chan, protocol.hello(self.spec["id"], self.maintenance))
        if self.maintenance:
            return
        if self.primary is None:
            if self._runblock_timer is None:
                self._runblock_timer = asyncio.get_running_loop().call_later(RUNBLOCK_WAIT, self.start_primary)
        elif self.primary.done.is_set():
            self._send_exit(chan)
        elif not self.primary.failed:
            self._send(chan, protocol.started_report(self.primary.pid, self.started_at))

    def _open_env(self, message):
        """The env key the endpoint handed over: open the boot spec's env, and start what waited for it."""
        if self._env_sealed is None:
            return None     # open already (every connection hands it again), or never sealed
        try:
            key = protocol.requested_env_key(message)
            env = json.loads(protocol.unseal(self._env_sealed, key, self.spec["id"].encode()))
        except (protocol.ProtocolError, ValueError) as exc:
            return str(exc)
        self.spec["process"]["Env"], self._env_sealed = env, None
        if self._start_waiting is not None or not self.spec["process"]["RunBlock"]:
            self.start_primary(*(self._start_waiting or ()))
        return None

    def _write_peers(self, message):
        """The container's peers the endpoint sent: /etc/hosts rewritten with them, unless they are the ones
        it holds (the endpoint sends them on every connection). None, or why not."""
        try:
            peers = protocol.parse_hosts(message)
            if peers != self._peers:
                if self.dns is not None:
                    self.dns.update(rootfs.dns_entries(self.spec, peers))
                rootfs.rewrite_hosts(self.spec, self.root, peers)
                self._peers = peers
        except (protocol.ProtocolError, OSError) as exc:
            return str(exc)
        return None

    def control_closed(self, chan):
        self.controls.discard(chan)

    def _send_exit(self, chan):
        if self._send(chan, protocol.exit_report(self.primary.code, self.primary.finished_at)):
            self.exit_delivered.set()

    @staticmethod
    def _send(chan, message):
        if chan.is_closing():
            return False
        chan.write(protocol.encode(message))
        return True

    def user_names(self):
        """uid -> name from the container's own /etc/passwd (``docker top`` shows its names)."""
        try:
            # Not followed if a link: the image's /etc/passwd must not name a file outside its root.
            fd = os.open(os.path.join(self.root, "etc/passwd"), os.O_RDONLY | os.O_NOFOLLOW)
            with open(fd, encoding="utf-8", errors="replace") as file:
                return {entry.uid: entry.name for entry in users.parse_passwd(file.read())}
        except OSError:
            return {}

    def control_request(self, chan, message):
        op, seq = message.get("op"), message.get("seq")
        if op == protocol.STATS:
            self._send(chan, protocol.stats_reply(seq, stats.guest_stats()))
            return
        if op == protocol.TOP:
            self._send(chan, protocol.top_reply(seq, stats.process_rows(self.user_names())))
            return
        if op == protocol.ENV:
            self._send(chan, protocol.reply(seq, self._open_env(message)))
            return
        if op == protocol.HOSTS:
            self._send(chan, protocol.reply(seq, self._write_peers(message)))
            return
        error = None
        if op != protocol.SIGNAL:
            error = f"unknown op {op!r}"
        else:
            try:
                if self.primary is None:
                    raise ProcessLookupError("the process is not running")
                self.primary.signal(protocol.requested_signal(message))
            except (ProcessLookupError, protocol.ProtocolError) as exc:
                error = str(exc)
        self._send(chan, protocol.reply(seq, error))


class _Server(asyncssh.SSHServer):
    def __init__(self, tether):
        self._tether = tether

    def begin_auth(self, username):
        return True     # public key only: asyncssh checks it against the endpoint's key

    def session_requested(self):
        return _Session(self._tether)

    def connection_requested(self, dest_host, dest_port, orig_host, orig_port):
        """A published port's connection (direct-tcpip): asyncssh connects to it, inside the container, only
        when the boot spec publishes that port and the address is the container's own."""
        refusal = protocol.forward_refusal(self._tether.spec, dest_host, dest_port)
        if refusal is not None:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED, refusal)
        return True


class _Session(asyncssh.SSHServerSession):
    """One session channel: control, attach, exec or archive."""

    def __init__(self, tether):
        self._tether = tether
        self._chan = None
        self._kind = None
        self._exec = None
        self._process = None
        self._early = []            # stdin (bytes) and EOF (None) that came before the process was ready
        self._lines = protocol.LineReader()
        self._archive = None
        self.closed = asyncio.Event()

    def connection_made(self, chan):
        self._chan = chan

    def pty_requested(self, term_type, term_size, term_modes):
        return True

    def subsystem_requested(self, subsystem):
        if subsystem == protocol.ATTACH_SUBSYSTEM and self._tether.maintenance:
            return False    # no process to attach to
        if subsystem in (protocol.CONTROL_SUBSYSTEM, protocol.ATTACH_SUBSYSTEM, protocol.ARCHIVE_SUBSYSTEM):
            self._kind = subsystem
            return True
        return False

    def exec_requested(self, command):
        if self._tether.maintenance:
            return False    # nothing runs in a maintenance boot
        try:
            self._exec = protocol.parse_exec_command(command)
        except protocol.ProtocolError:
            return False
        self._kind = "exec"
        return True

    def session_started(self):
        if self._kind == protocol.CONTROL_SUBSYSTEM:
            self._tether.control_opened(self._chan)
        elif self._kind == protocol.ATTACH_SUBSYSTEM:
            self._tether.attach(self)
        elif self._kind == "exec":
            try:
                proc = process.spawn(self._tether.root, self._tether.process_spec(self._exec), self._tether.reaper,
                                     self.term_size())
            except OSError as exc:      # no fork, no pipe: the exec cannot start, the container goes on
                self._chan.write_stderr(f"tether: cannot start the process: {exc}\n".encode())
                self._chan.exit(protocol.EXIT_NOT_EXECUTABLE)
                return
            self.ready(proc)
            self._tether.spawn_task(self._exec_ended())
        elif self._kind == protocol.ARCHIVE_SUBSYSTEM:
            self._archive = _Archive(self._tether, self._chan)

    def term_size(self):
        width, height = self._chan.get_terminal_size()[:2]
        return (width, height) if width and height else None

    def ready(self, proc):
        """Output of ``proc`` flows to this channel from now on; queued stdin is given to it."""
        self._process = proc
        proc.listeners.append(self._forward)
        for data in self._early:
            if data is None:
                proc.close_stdin()
            else:
                proc.write(data)
        self._early = None

    def _forward(self, stream, data):
        if self._chan.is_closing():
            return
        if stream == protocol.STDERR:
            self._chan.write_stderr(data)
        else:
            self._chan.write(data)

    def finish(self, code):
        """The process ended: its exit status, then the channel closes."""
        if self._process is not None and self._forward in self._process.listeners:
            self._process.listeners.remove(self._forward)
        if not self._chan.is_closing():
            self._chan.exit(code)

    async def _exec_ended(self):
        await self._process.done.wait()
        self.finish(self._process.code)

    def data_received(self, data, datatype):
        if self._kind == protocol.CONTROL_SUBSYSTEM:
            try:
                messages = self._lines.feed(data)
            except protocol.ProtocolError:
                self._chan.close()
                return
            for message in messages:
                self._tether.control_request(self._chan, message)
        elif self._kind == protocol.ARCHIVE_SUBSYSTEM:
            self._archive.data(data)
        elif self._process is not None:
            self._process.write(data)
        elif self._early is not None:
            self._early.append(data)

    def eof_received(self):
        if self._kind == protocol.ARCHIVE_SUBSYSTEM:
            self._archive.eof()
        elif self._kind == "exec" or (self._kind == protocol.ATTACH_SUBSYSTEM and self._tether.spec["process"]["StdinOnce"]):
            if self._process is not None:
                self._process.close_stdin()
            elif self._early is not None:
                self._early.append(None)
        return True     # half-close: our output goes on

    def signal_received(self, signal):
        if self._process is not None:
            try:
                self._process.signal(protocol.signal_number(signal))
            except (ProcessLookupError, protocol.ProtocolError):
                pass

    def terminal_size_changed(self, width, height, pixwidth, pixheight):
        if self._process is not None:
            self._process.resize(width, height)

    def pause_writing(self):
        if self._archive is not None:
            self._archive.pause()

    def resume_writing(self):
        if self._archive is not None:
            self._archive.resume()

    def connection_lost(self, exc):
        if self._kind == protocol.CONTROL_SUBSYSTEM:
            self._tether.control_closed(self._chan)
        elif self._kind == protocol.ATTACH_SUBSYSTEM:
            self._tether.attaches.discard(self)
        if self._process is not None and self._forward in self._process.listeners:
            self._process.listeners.remove(self._forward)     # a detach: the process goes on
        if self._archive is not None:
            self._archive.abort()
        self.closed.set()


class _Archive:
    """One archive@vic channel: its request line, then the child that serves it (archive.py)."""

    def __init__(self, tether, chan):
        self._tether, self._chan = tether, chan
        self._head = b""
        self._stdin = None
        self._stdout = None
        self._eof_early = False     # the EOF came with the request line, before the child

    def data(self, data):
        if self._stdin is not None:
            self._stdin.write(data)
            return
        self._head += data
        if b"\n" not in self._head:
            if len(self._head) >= protocol.MAX_LINE:
                self._refuse("archive request line too long")
            return
        line, _newline, rest = self._head.partition(b"\n")
        if self._tether.broken is not None:
            self._refuse(self._tether.broken, protocol.ARCHIVE_CONFLICT)
            return
        try:
            request = protocol.parse_archive_request(line)
        except protocol.ProtocolError as exc:
            self._refuse(str(exc))
            return
        from ansible_collections.vic.containers.services.tether.agent import archive  # pylint: disable=import-outside-toplevel  # tarfile: only for docker cp
        _pid, in_fd, out_fd = archive.start(self._tether.root, request, self._tether.reaper, lambda _code: None)
        os.set_blocking(in_fd, False)
        os.set_blocking(out_fd, False)
        self._stdin = process.FdWriter(in_fd, owns=True)
        self._stdout = out_fd
        asyncio.get_running_loop().add_reader(out_fd, self._readable)
        if rest:
            self._stdin.write(rest)
        if self._eof_early:
            self._stdin.close()

    def eof(self):
        if self._stdin is None:
            self._eof_early = True
        else:
            self._stdin.close()

    def _refuse(self, sentence, kind=protocol.ARCHIVE_INVALID):
        self._chan.write(protocol.archive_result(error=sentence, kind=kind))
        self._chan.close()

    def _readable(self):
        try:
            data = os.read(self._stdout, _CHUNK)
        except BlockingIOError:
            return
        if data:
            self._chan.write(data)
            return
        self._close_stdout()
        if not self._chan.is_closing():
            self._chan.write_eof()
            self._chan.close()

    def _close_stdout(self):
        if self._stdout is not None:
            asyncio.get_running_loop().remove_reader(self._stdout)
            os.close(self._stdout)
            self._stdout = None

    def pause(self):
        if self._stdout is not None:
            asyncio.get_running_loop().remove_reader(self._stdout)

    def resume(self):
        if self._stdout is not None:
            asyncio.get_running_loop().add_reader(self._stdout, self._readable)

    def abort(self):
        if self._stdin is not None:
            self._stdin.abort()
        self._close_stdout()
