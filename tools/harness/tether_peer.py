"""A minimal tether-side peer of the tether channel protocol, for tests only.

This is NOT the product tether (that is PID 1 in a container VM and comes in
the next issue). It speaks the tether's side of docs/tether-protocol.md over
``asyncssh.connect_reverse`` and runs real local processes, so the endpoint's
``Concentrator`` can be tested against something that behaves like a tether:
the primary process (optionally started only at the first attach, like a
``docker run`` that waits for its client), exec'd processes, signals, exit
reports, started reports, the guest's figures (stats, from /proc), archives
(``archive@vic``: tar of a local directory standing for the container's root),
redialing after a dropped connection. It can take its configuration from a boot
spec (``TetherPeer.from_boot_spec``), as the tether does. It does no namespaces,
mounts, users or logging. Whatever goes on the wire (names, keys, control lines, exit
codes) comes from ``services/tether/protocol.py``, as the real tether's will,
so the endpoint is tested against the shared definition, not a copy of it.
"""

import asyncio
import datetime
import fcntl
import io
import os
import pty
import signal as signals
import struct
import tarfile
import termios

import asyncssh
from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.services.tether.agent import jsonlog, stats


RUN_BLOCK_GRACE = 5.0  # seconds after a hello a RunBlock process starts with nobody attached (the tether's)


def _set_winsize(fd, width, height):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class Process:
    """A local process with its output fanned out to listeners, stdin fed by sessions."""

    def __init__(self, argv, env=None, cwd=None, user=None, tty=False, term_size=None):
        self.argv, self.env, self.cwd, self.user, self.tty = argv, env, cwd, user, tty
        self.term_size = term_size or protocol.DEFAULT_TERM_SIZE
        self.listeners = set()    # callables(stream, data)
        self.code = None
        self.started_at = None
        self.finished_at = None
        self.done = asyncio.Event()
        self._proc = None
        self._master = None

    async def start(self):
        if self.tty:
            self._master, slave = pty.openpty()
            _set_winsize(slave, *self.term_size)
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=slave, stdout=slave, stderr=slave, env=self.env, cwd=self.cwd, user=self.user,
                start_new_session=True)
            os.close(slave)
            self.started_at = protocol.timestamp()
            asyncio.ensure_future(self._pump_pty())
        else:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=self.env, cwd=self.cwd, user=self.user)
            self.started_at = protocol.timestamp()
            asyncio.ensure_future(self._pump_pipes())

    async def _pump_pipes(self):
        await asyncio.gather(self._pump(self._proc.stdout, protocol.STDOUT), self._pump(self._proc.stderr, protocol.STDERR))
        self._finish(await self._proc.wait())

    async def _pump(self, reader, stream):
        while True:
            data = await reader.read(65536)
            if not data:
                return
            self._emit(stream, data)

    async def _pump_pty(self):
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.run_in_executor(None, os.read, self._master, 65536)
            except OSError:  # EIO: the last holder of the slave side is gone
                data = b""
            if not data:
                break
            self._emit(protocol.STDOUT, data)
        os.close(self._master)
        self._finish(await self._proc.wait())

    def _emit(self, stream, data):
        for listener in list(self.listeners):
            listener(stream, data)

    def _finish(self, returncode):
        self.code = protocol.exit_code(returncode)
        self.finished_at = protocol.timestamp()
        self.done.set()

    def write(self, data):
        if self.done.is_set():
            return
        if self.tty:
            os.write(self._master, data)
        elif not self._proc.stdin.is_closing():
            self._proc.stdin.write(data)

    def close_stdin(self):
        if self.tty:
            os.write(self._master, b"\x04")
        elif not self._proc.stdin.is_closing():
            self._proc.stdin.close()

    def signal(self, number):
        if self.done.is_set() or self._proc is None:
            raise ProcessLookupError("the process is not running")
        self._proc.send_signal(number)

    def resize(self, width, height):
        if self.tty and not self.done.is_set():
            _set_winsize(self._master, width, height)

    @property
    def pid(self):
        return self._proc.pid

    def stats(self):
        """``protocol.guest_stats`` of this process (and its reaped children) and of this machine, from /proc."""
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/%d/stat" % self.pid, encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        used = sum(int(f) for f in fields[11:15]) * 1_000_000_000 // ticks   # utime stime cutime cstime
        with open("/proc/stat", encoding="ascii") as stat:
            system = sum(int(f) for f in stat.readline().split()[1:8]) * 1_000_000_000 // ticks
        rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return protocol.guest_stats(used, system, os.cpu_count() or 1, rss, total, 1)


class _Session(asyncssh.SSHServerSession):
    """One session channel: the control session, an attach or an exec."""

    def __init__(self, peer):
        self._peer = peer
        self._chan = None
        self._kind = None
        self._command = None
        self._process = None
        self._lines = protocol.LineReader()
        self._early = []          # stdin and EOF that came before the process was ready
        self._archive = None

    def connection_made(self, chan):
        self._chan = chan

    def pty_requested(self, term_type, term_size, term_modes):
        return True

    def subsystem_requested(self, subsystem):
        if subsystem == protocol.ARCHIVE_SUBSYSTEM:
            self._kind = subsystem
            self._archive = _ArchiveWork(self._peer.root)
            return True
        if subsystem in (protocol.CONTROL_SUBSYSTEM, protocol.ATTACH_SUBSYSTEM):
            self._kind = subsystem
            return True
        return False

    def exec_requested(self, command):
        try:
            self._command = protocol.parse_exec_command(command)
        except protocol.ProtocolError:
            return False
        self._kind = "exec"
        return True

    def session_started(self):
        if self._kind == protocol.CONTROL_SUBSYSTEM:
            self._peer.control_opened(self._chan)
        elif self._kind == protocol.ATTACH_SUBSYSTEM:
            asyncio.ensure_future(self._attach())
        elif self._kind == "exec":
            asyncio.ensure_future(self._exec())

    def _term_size(self):
        width, height = self._chan.get_terminal_size()[:2]
        return (width, height) if width and height else None

    async def _attach(self):
        self._ready(await self._peer.attach_primary(self._term_size()))
        await self._stream(self._process)

    def _ready(self, process):
        self._process = process
        for data in self._early:
            if data is None:
                process.close_stdin()
            else:
                process.write(data)
        self._early = None

    async def _exec(self):
        spec = self._command
        env = dict(os.environ, **dict(item.split("=", 1) for item in spec["Env"]))
        process = Process(spec["Cmd"], env=env, cwd=spec["WorkingDir"] or None, user=spec["User"] or None,
                          tty=spec["Tty"], term_size=self._term_size())
        try:
            await process.start()
        except OSError as exc:
            self._chan.write_stderr(f"exec failed: {exc}\n".encode())
            self._chan.exit(protocol.exec_failure_code(exc))
            return
        self._ready(process)
        await self._stream(process)

    async def _stream(self, process):
        def forward(stream, data):
            if stream == protocol.STDERR:
                self._chan.write_stderr(data)
            else:
                self._chan.write(data)

        process.listeners.add(forward)
        try:
            await process.done.wait()
        finally:
            process.listeners.discard(forward)
        if not self._chan.is_closing():
            self._chan.exit(process.code)

    def data_received(self, data, datatype):
        if self._kind == protocol.ARCHIVE_SUBSYSTEM:
            self._archive.feed(self._chan, data)
        elif self._kind == protocol.CONTROL_SUBSYSTEM:
            try:
                messages = self._lines.feed(data)
            except protocol.ProtocolError:
                self._chan.close()
                return
            for message in messages:
                self._peer.control_request(self._chan, message)
        elif self._process is not None:
            self._process.write(data)
        elif self._early is not None:
            self._early.append(data)

    def eof_received(self):
        if self._kind == protocol.ARCHIVE_SUBSYSTEM:
            self._archive.put_ended(self._chan)
            return True
        if self._kind == "exec" or self._peer.stdin_once:
            if self._process is not None:
                self._process.close_stdin()
            elif self._early is not None:
                self._early.append(None)
        return True

    def signal_received(self, signal):
        if self._process is not None:
            try:
                self._process.signal(protocol.signal_number(signal))
            except (ProcessLookupError, protocol.ProtocolError):
                pass

    def terminal_size_changed(self, width, height, pixwidth, pixheight):
        if self._process is not None:
            self._process.resize(width, height)

    def connection_lost(self, exc):
        if self._kind == protocol.CONTROL_SUBSYSTEM:
            self._peer.control_closed(self._chan)


def _answer(chan, ok, stat=None, error=None, kind=protocol.ARCHIVE_INVALID):
    chan.write(protocol.archive_result(stat=stat if ok else None, error=None if ok else error, kind=kind))


class _ArchiveWork:
    """One ``archive@vic`` channel on the peer: its request line, then a tar of a path under ``root``
    (``get``) or a tar to extract there (``put``). Paths resolve inside ``root``, never outside it."""

    def __init__(self, root):
        self.root = os.path.realpath(root or "/")
        self.request = None
        self.buffer = b""

    def _local(self, path):
        local = os.path.realpath(os.path.join(self.root, path.lstrip("/")))
        if local != self.root and not local.startswith(self.root + os.sep):
            local = self.root  # a symlink out of the root resolves inside it, as it would in the container
        return local

    def _stat(self, chan, path):
        local = self._local(path)
        try:
            st = os.lstat(local)
        except FileNotFoundError:
            _answer(chan, ok=False, error=f"no such file or directory: {path}", kind="not_found")
            return None
        mtime = datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc).isoformat().replace("+00:00", "Z")
        link = os.readlink(local) if os.path.islink(local) else ""
        name = os.path.basename(path.rstrip("/")) or "/"
        return local, protocol.path_stat(name, st.st_size, protocol.go_file_mode(st.st_mode), mtime, link)

    def feed(self, chan, data):
        if self.request is not None:
            self.buffer += data       # the tar of a put
            return
        self.buffer += data
        if b"\n" not in self.buffer:
            return
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            self.request = protocol.parse_archive_request(line)
        except protocol.ProtocolError as exc:
            _answer(chan, ok=False, error=str(exc), kind="invalid")
            chan.close()
            return
        if self.request["op"] == protocol.ARCHIVE_PUT:
            return
        found = self._stat(chan, self.request["path"])
        if found is not None:
            local, stat = found
            _answer(chan, ok=True, stat=stat)
            if self.request["op"] == protocol.ARCHIVE_GET:
                tar = io.BytesIO()
                with tarfile.open(fileobj=tar, mode="w") as archive:
                    archive.add(local, arcname=stat["name"])
                chan.write(tar.getvalue())
        chan.write_eof()
        chan.close()

    def put_ended(self, chan):
        if self.request is None or self.request["op"] != protocol.ARCHIVE_PUT:
            return
        local = self._local(self.request["path"])
        if not os.path.isdir(local):
            kind = "not_found" if not os.path.exists(local) else "invalid"
            _answer(chan, ok=False, error=f"not a directory: {self.request['path']}", kind=kind)
        else:
            try:
                with tarfile.open(fileobj=io.BytesIO(self.buffer), mode="r") as archive:
                    archive.extractall(local, filter="data")
                _answer(chan, ok=True, stat={})
            except (tarfile.TarError, OSError) as exc:
                _answer(chan, ok=False, error=f"cannot extract: {exc}", kind="invalid")
        chan.close()


class _PeerServer(asyncssh.SSHServer):
    def __init__(self, peer):
        self._peer = peer

    def connection_made(self, conn):
        self._peer.conn = conn

    def begin_auth(self, username):
        return True

    def session_requested(self):
        return _Session(self._peer)


class TetherPeer:
    """The tether side of one container, dialing the endpoint's concentrator and redialing when dropped."""

    def __init__(self, container_id, host_key, endpoint_key, argv, *, announce=None, wait_for_attach=False,
                 tty=False, stdin_once=True, redial_delay=0.1, keepalive_interval=protocol.KEEPALIVE_INTERVAL,
                 root=None, env=None, run_block_grace=None, log_path=None, hosts=None, maintenance=False):
        self.container_id = container_id
        self.maintenance = maintenance  # its hello says it is a maintenance boot's (protocol.MAINTENANCE)
        # A list: the peers of each hosts request are appended to it and taken; None: refused as unknown,
        # as a tether built before the op refuses it.
        self.hosts = hosts
        self.log_path = log_path  # the VM's output.log, written as the tether writes it (json-file lines, exit line)
        self.run_block_grace = run_block_grace  # with wait_for_attach: start anyway this long after a hello
        self.root = root          # the local directory archives read and write, standing for the container's /
        self.env = env
        self.announce = announce or container_id
        self.host_key = protocol.import_host_key(host_key)
        self.authorized = protocol.authorized_keys(endpoint_key)
        self.argv, self.tty, self.stdin_once = argv, tty, stdin_once
        self.wait_for_attach = wait_for_attach
        self.redial_delay = redial_delay
        self.keepalive_interval = keepalive_interval
        self.conn = None
        self.connections = 0      # handshakes completed, for tests of redialing
        self.refused = 0          # handshakes that failed
        self.primary = None
        self._starting = None
        self._timers = []         # RunBlock grace timers, cancelled at stop
        self._controls = set()
        self._task = None
        self._log = None

    @classmethod
    def from_boot_spec(cls, spec, **options):
        """A peer configured as the tether is, from a boot spec (a dict or its JSON; ``parse_boot_spec`` checks it):
        its id, keys, command, environment (over this machine's, so PATH finds the commands), TTY, StdinOnce and
        RunBlock. ``options`` as for the constructor."""
        spec = protocol.parse_boot_spec(spec)
        process = spec["process"]
        env = dict(os.environ, **dict(item.split("=", 1) for item in process["Env"] if "=" in item))
        env["PATH"] = os.environ.get("PATH", env.get("PATH", ""))
        options = dict({"wait_for_attach": process["RunBlock"], "tty": process["Tty"],
                        "stdin_once": process["StdinOnce"], "env": env, "run_block_grace": RUN_BLOCK_GRACE}, **options)
        return cls(spec["id"], spec["host_key"], spec["endpoint_key"], process["Cmd"], **options)

    async def start(self, host, port):
        if not self.wait_for_attach:
            await self._start_primary(None)
        self._task = asyncio.ensure_future(self._dial_forever(host, port))

    async def stop(self):
        for timer in self._timers:
            timer.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.conn is not None:
            self.conn.close()
            await self.conn.wait_closed()
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)  # a start under way ends first
        if self.primary is not None and not self.primary.done.is_set():
            self.primary.signal(signals.SIGKILL)
            await self.primary.done.wait()

    def drop(self):
        """Close the current connection (the peer redials)."""
        if self.conn is not None:
            self.conn.close()

    async def _dial_forever(self, host, port):
        while True:
            try:
                conn = await asyncssh.connect_reverse(
                    host, port, server_factory=lambda: _PeerServer(self), server_host_keys=[self.host_key],
                    server_version=protocol.server_version(self.announce),
                    authorized_client_keys=self.authorized, password_auth=False, kbdint_auth=False,
                    gss_host=None, encoding=None, keepalive_interval=self.keepalive_interval, config=None)
            except (OSError, asyncssh.Error):
                self.refused += 1
            else:
                self.connections += 1
                await conn.wait_closed()
            await asyncio.sleep(self.redial_delay)

    async def _start_primary(self, term_size):
        self.primary = Process(self.argv, env=self.env, tty=self.tty, term_size=term_size)
        if self.log_path is not None:
            self._log = jsonlog.LogWriter(os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
            self.primary.listeners.add(self._log.output)
        await self.primary.start()
        for chan in list(self._controls):
            self._send_started(chan)
        asyncio.ensure_future(self._report_exit(self.primary))

    def _send_started(self, chan):
        self._send(chan, protocol.started_report(self.primary.pid, self.primary.started_at))

    def _start_unattached(self):
        # A docker create + start without -a must not wait for an attach that never comes.
        if self._starting is None:
            asyncio.ensure_future(self.attach_primary(None))

    async def attach_primary(self, term_size):
        # One start, whoever asks first (an attach, the RunBlock grace): the others wait for it. The first
        # starts it itself, so its listener is in before the output pumps run (nothing is missed).
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_future()
            try:
                await self._start_primary(term_size)
            finally:
                self._starting.set_result(None)
        else:
            await self._starting
        return self.primary

    async def _report_exit(self, process):
        await process.done.wait()
        if self._log is not None:  # the log first, as the tether: the endpoint may read the exit from it
            self._log.exit(process.code, process.finished_at)
            os.close(self._log.fd)
            self._log = None
        for chan in list(self._controls):
            self._send_exit(chan)

    def _send_exit(self, chan):
        self._send(chan, protocol.exit_report(self.primary.code, self.primary.finished_at))

    @staticmethod
    def _send(chan, message):
        if not chan.is_closing():
            chan.write(protocol.encode(message))

    def control_opened(self, chan):
        self._controls.add(chan)
        self._send(chan, protocol.hello(self.announce, self.maintenance))
        if self.primary is None and self.run_block_grace is not None:
            self._timers.append(asyncio.get_running_loop().call_later(self.run_block_grace, self._start_unattached))
        if self.primary is not None and self.primary.done.is_set():
            self._send_exit(chan)
        elif self.primary is not None:
            self._send_started(chan)

    def control_closed(self, chan):
        self._controls.discard(chan)

    def control_request(self, chan, message):
        if message.get("op") == protocol.TOP:  # the primary process, if it runs (this machine's other processes are not ours)
            running = self.primary is not None and not self.primary.done.is_set()
            rows = [row for row in stats.process_rows({}) if row[1] == str(self.primary.pid)] if running else []
            self._send(chan, protocol.top_reply(message.get("seq"), rows))
            return
        if message.get("op") == protocol.STATS:
            if self.primary is None or self.primary.done.is_set():
                self._send(chan, protocol.reply(message.get("seq"), "the process is not running"))
            else:
                self._send(chan, protocol.stats_reply(message.get("seq"), self.primary.stats()))
            return
        if message.get("op") == protocol.HOSTS and self.hosts is not None:
            self.hosts.append(protocol.parse_hosts(message))
            self._send(chan, protocol.reply(message.get("seq")))
            return
        self._send(chan, protocol.reply(message.get("seq"), self._refusal(message)))

    def _refusal(self, message):
        """None once the request is done, else why not."""
        if message.get("op") != protocol.SIGNAL:
            return f"unknown op {message.get('op')!r}"
        try:
            if self.primary is None:
                raise ProcessLookupError("the process is not running")
            self.primary.signal(protocol.requested_signal(message))
        except (ProcessLookupError, protocol.ProtocolError) as exc:
            return str(exc)
        return None
