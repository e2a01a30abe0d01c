# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The container's processes: started in its root as its user, their output fanned out, their exits reaped.

The tether is PID 1 (of the VM, or of the emulator's pid namespace), so every
orphan of the container becomes its child: one SIGCHLD-driven ``Reaper`` waits
for all of them, hands the statuses of the tether's own children to their
``Process`` and discards the rest. That is why processes are forked here and not
through asyncio's subprocess support, whose child watcher would race the reaper.

The forked child enters the container (chroot), resolves the user, the working
dir and argv[0] there, with the container's own files, and reports a failure
as dockerd would: one sentence on its stderr, Docker's exit code (126/127).
"""

import asyncio
import collections
import errno
import fcntl
import os
import resource
import signal
import struct
import termios

from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.services.tether.agent import users

_RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                  signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2)
_CHUNK = 65536
# Linux's RLIMIT_* numbers (the resource module lacks RLIMIT_LOCKS).
_RLIMITS = {"cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6, "nofile": 7, "memlock": 8,
            "locks": 10, "sigpending": 11, "msgqueue": 12, "nice": 13, "rtprio": 14, "rttime": 15}
OUTPUT_GRACE = 1.0      # seconds to wait, after a process exited, for output its children still hold open

ProcessSpec = collections.namedtuple("ProcessSpec", "cmd env extra_env user workdir tty hostname ulimits group_add",
                                     defaults=((), ()))
"""``cmd`` argv; ``env`` the container's Env, ``extra_env`` an exec's; ``user``/``workdir`` Docker's strings;
``ulimits`` the container's [{"Name", "Soft", "Hard"}] and ``group_add`` its extra groups (every process's)."""


class Reaper:
    """Waits for every child of the tether (PID 1 adopts the container's orphans)."""

    def __init__(self):
        self._waiters = {}

    def install(self, loop):
        loop.add_signal_handler(signal.SIGCHLD, self.reap)
        self.reap()

    def watch(self, pid, callback):
        """``callback(returncode)`` (-N for signal N) when child ``pid`` ends."""
        self._waiters[pid] = callback

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            callback = self._waiters.pop(pid, None)
            if callback is not None:        # else an orphan: its status is nobody's
                callback(os.waitstatus_to_exitcode(status))


def set_winsize(fd, columns, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def _read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError:
        return ""


def _rlim(value):
    return resource.RLIM_INFINITY if value == -1 else value


def _child(root, spec, stdio, errfd):
    """In the forked child: become the container's process or report why not. Never returns."""
    code, message = protocol.EXIT_NOT_EXECUTABLE, "tether: cannot start the process"
    try:
        for number in _RESET_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.setsid()
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        if spec.tty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        os.closerange(3, errfd)
        os.closerange(errfd + 1, 65536)
        os.chroot(root)
        os.chdir("/")
        group_text = _read_text("/etc/group")
        user = users.resolve_user(spec.user, _read_text("/etc/passwd"), group_text)
        groups = users.extra_groups(user.groups, spec.group_add, group_text)
        env = users.environment(spec.env, spec.extra_env, hostname=spec.hostname, home=user.home, tty=spec.tty)
        workdir = spec.workdir or "/"
        try:
            if not os.path.lexists(workdir):
                os.makedirs(workdir)        # Docker creates a missing working dir
            os.chdir(workdir)
        except OSError as exc:
            raise users.StartError(f'chdir to cwd ("{workdir}") set in config.json failed: {exc.strerror.lower()}',
                                   protocol.EXIT_NOT_EXECUTABLE) from None
        path = users.look_path(spec.cmd[0], env["PATH"])
        for limit in spec.ulimits:
            resource.setrlimit(_RLIMITS[limit["Name"]], (_rlim(limit["Soft"]), _rlim(limit["Hard"])))
        os.setgroups(groups)
        os.setgid(user.gid)
        os.setuid(user.uid)
        os.execve(path, spec.cmd, env)
    except users.StartError as exc:
        code, message = exc.code, str(exc)
    except OSError as exc:
        code = protocol.EXIT_NOT_FOUND if exc.errno == errno.ENOENT else protocol.EXIT_NOT_EXECUTABLE
        message = f'exec: "{spec.cmd[0]}": {(exc.strerror or str(exc)).lower()}'
    except BaseException as exc:  # pylint: disable=broad-except  # the child must never return into the tether
        message = f"tether: cannot start the process: {exc}"
    try:
        os.write(2, message.encode("utf-8", "replace") + b"\n")
        os.write(errfd, str(code).encode())
    finally:
        os._exit(code)  # pylint: disable=protected-access


def spawn(root, spec, reaper, term_size=None):
    """Start a process in the container root; a ``Process`` (ended at once, with Docker's code, if it
    could not start: ``failed`` is then True and its stderr says why)."""
    if spec.tty:
        master, slave = os.openpty()
        set_winsize(slave, *(term_size or protocol.DEFAULT_TERM_SIZE))
        stdio, parent_fds = (slave, slave, slave), {"master": master}
        child_ends = [slave]
    else:
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        stdio, parent_fds = (stdin_r, stdout_w, stderr_w), {"stdin": stdin_w, "stdout": stdout_r, "stderr": stderr_r}
        child_ends = [stdin_r, stdout_w, stderr_w]
    err_r, err_w = os.pipe()        # close-on-exec: EOF means the exec happened
    pid = os.fork()
    if pid == 0:
        os.close(err_r)
        _child(root, spec, stdio, err_w)
    os.close(err_w)
    for fd in child_ends:
        os.close(fd)
    report = b""
    while chunk := os.read(err_r, 64):
        report += chunk
    os.close(err_r)
    process = Process(pid, tty=spec.tty, failed=bool(report), **parent_fds)
    reaper.watch(pid, process.exited)    # before the loop runs again, so the reaper cannot miss it
    return process


class FdWriter:
    """Non-blocking writes to a descriptor (a pipe or a pty master), queued while it is full."""

    def __init__(self, fd, owns):
        self._fd, self._owns = fd, owns
        self._buffer = bytearray()
        self._closing = False
        self.closed = False

    def write(self, data):
        if self.closed or self._closing:
            return
        self._buffer += data
        self._flush()

    def close(self):
        """Close after what is queued is written (a pipe: the process's stdin ends)."""
        self._closing = True
        self._flush()

    def abort(self):
        if not self.closed:
            asyncio.get_running_loop().remove_writer(self._fd)
            self._buffer.clear()
            self._end()

    def _flush(self):
        loop = asyncio.get_running_loop()
        while self._buffer:
            try:
                self._buffer[:os.write(self._fd, self._buffer)] = b""
            except BlockingIOError:
                loop.add_writer(self._fd, self._flush)
                return
            except OSError:     # the reader is gone (EPIPE, EIO): what it did not read is dropped
                self._buffer.clear()
                self._closing = True
        loop.remove_writer(self._fd)
        if self._closing:
            self._end()

    def _end(self):
        if not self.closed:
            self.closed = True
            if self._owns:
                os.close(self._fd)


class Process:
    """A started process: output to every listener, stdin, resize, signals, its Docker exit code."""

    def __init__(self, pid, tty, failed=False, master=None, stdin=None, stdout=None, stderr=None):
        self.pid, self.tty, self.failed = pid, tty, failed
        self.listeners = []         # callables(stream, data), in the order added
        self.code = None
        self.finished_at = None
        self.done = asyncio.Event()
        self._master = master
        if tty:
            outputs = {master: protocol.STDOUT}
            self._stdin = FdWriter(master, owns=False)
        else:
            outputs = {stdout: protocol.STDOUT, stderr: protocol.STDERR}
            self._stdin = FdWriter(stdin, owns=True)
        self._outputs = outputs
        self._open = set(outputs)
        self._eof = asyncio.Event()
        self._returncode = None
        loop = asyncio.get_running_loop()
        for fd in list(outputs) + ([] if tty else [stdin]):
            os.set_blocking(fd, False)
        for fd in outputs:
            loop.add_reader(fd, self._readable, fd)

    # -- output

    def _readable(self, fd):
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return
        except OSError:     # EIO on a pty master: every holder of the slave side is gone
            data = b""
        if not data:
            self._output_ended(fd)
            return
        for listener in list(self.listeners):
            listener(self._outputs[fd], data)

    def _output_ended(self, fd):
        if fd in self._open:
            self._open.discard(fd)
            asyncio.get_running_loop().remove_reader(fd)
            if not self._open:
                self._eof.set()

    def exited(self, returncode):
        """The reaper's report: the process ended with ``returncode`` (-N for signal N)."""
        self._returncode = returncode
        asyncio.ensure_future(self._finish())

    async def _finish(self):
        try:
            await asyncio.wait_for(self._eof.wait(), OUTPUT_GRACE)
        except asyncio.TimeoutError:
            for fd in list(self._open):     # a child of the process holds the output: take what is there
                while fd in self._open and self._pending(fd):
                    self._readable(fd)
                self._output_ended(fd)
        self._stdin.abort()
        for fd in self._outputs:
            if fd != self._master:
                os.close(fd)
        if self._master is not None:
            os.close(self._master)
        self.code = protocol.exit_code(self._returncode)
        self.finished_at = protocol.timestamp()
        self.done.set()

    @staticmethod
    def _pending(fd):
        try:
            return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0] > 0
        except OSError:
            return False

    # -- input and control

    def write(self, data):
        """Bytes to the process's stdin (queued while it does not read)."""
        if not self.done.is_set():
            self._stdin.write(data)

    def close_stdin(self):
        """The client's stdin ended: EOF on a pipe, ^D on a terminal."""
        if self.done.is_set():
            return
        if self.tty:
            self._stdin.write(b"\x04")
        else:
            self._stdin.close()

    def resize(self, columns, rows):
        if self.tty and not self.done.is_set() and columns and rows:
            set_winsize(self._master, columns, rows)

    def signal(self, number):
        """Signal the process; ProcessLookupError once it has ended."""
        if self.done.is_set() or self._returncode is not None:
            raise ProcessLookupError("the process is not running")
        os.kill(self.pid, number)
