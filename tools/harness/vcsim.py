"""Launcher for the vCenter simulator harness in tools/vcsim (stdlib only).

Library use::

    from ansible_collections.vic.containers.tools.harness.vcsim import Simulator, build
    with Simulator(build()).start(mode="vpx", extra_vms=10) as sim:
        print(sim.url, sim.username, sim.password, sim.datastores)
        mark = sim.mark()
        ...                                    # talk to sim.host:sim.port
        print([e["method"] for e in sim.calls_since(mark) if "method" in e])
        sim.inject_fault("CreateVM_Task")      # next CreateVM_Task fails

Command line (e.g. for the README demo)::

    python tools/harness/vcsim.py start --state /tmp/vcsim.json [--mode esx] [--extra-vms N]
    python tools/harness/vcsim.py stop --state /tmp/vcsim.json

``start`` leaves the simulator running detached and writes its ready line
(url, host, port, username, password, thumbprint, datastores, ...) plus
``pid``, ``workdir``, ``tmpdir`` and ``binary`` to the state file; ``stop``
terminates that pid (SIGKILL after 10 s, and then removes the datastore
folders vcsim could not), removes the work directory (call log, stderr log)
and the state file, and fails if the process is still running.
"""

import argparse
import contextlib
import fcntl
import json
import os
import select
import selectors
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
GOPATH = "/usr/share/gocode"  # Debian's golang-github-vmware-govmomi-dev

# Python keyword -> Go flag for the inventory shape (see main.go).
TOPOLOGY = {
    "datacenters": "-datacenters",
    "clusters": "-clusters",
    "cluster_hosts": "-cluster-hosts",
    "standalone_hosts": "-standalone-hosts",
    "portgroups": "-portgroups",
    "datastores": "-datastores",
    "vms": "-vms",
    "pools": "-pools",
}


class SimulatorError(RuntimeError):
    pass


def build(repo_root=REPO_ROOT, force=False):
    """Build ``.build/vcsim`` unless it is newer than main.go; return its path.

    A lock file serialises concurrent builds (pytest-xdist workers) and the
    binary is replaced atomically, so a running simulator is never clobbered.
    """
    repo_root = Path(repo_root)
    source = repo_root / "tools" / "vcsim" / "main.go"
    out_dir = repo_root / ".build"
    binary = out_dir / "vcsim"
    out_dir.mkdir(exist_ok=True)

    def fresh():
        return binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime

    if fresh() and not force:
        return binary
    with open(out_dir / "vcsim.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if fresh() and not force:
            return binary
        tmp = out_dir / f"vcsim.tmp.{os.getpid()}"
        env = dict(
            os.environ,
            GOPATH=GOPATH,
            GO111MODULE="off",
            GOFLAGS="",
            GOCACHE=os.environ.get("GOCACHE") or str(out_dir / "gocache"),
        )
        proc = subprocess.run(
            ["go", "build", "-o", str(tmp), "./tools/vcsim"],
            check=False,
            cwd=repo_root,
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise SimulatorError(f"go build failed:\n{proc.stdout}{proc.stderr}")
        os.replace(tmp, binary)
    return binary


def default_tmpdir():
    """Where the simulator's datastore directories go: $VCSIM_TMPDIR, else
    /dev/shm when it is a writable tmpfs with room for layer disks and logs
    (some machines give it only 64 MB), else the usual temp dir.

    vcsim writes a few files per VM; on ext4 creating thousands of files right
    after deleting thousands (the previous simulator) is several times slower
    than on tmpfs (about 6 s against 0.7 s for 2,000 VMs here).
    """
    if os.environ.get("VCSIM_TMPDIR"):
        return os.environ["VCSIM_TMPDIR"]
    shm = "/dev/shm"
    with contextlib.suppress(OSError):
        with open("/proc/mounts") as mounts:
            on_tmpfs = any(line.split()[1:3] == [shm, "tmpfs"] for line in mounts)
        room = os.statvfs(shm)
        if on_tmpfs and os.access(shm, os.W_OK | os.X_OK) and room.f_bavail * room.f_frsize >= _SHM_ROOM:
            return shm
    return tempfile.gettempdir()


_SHM_ROOM = 4 << 30     # what parallel test runs' datastores may hold at once (images, logs, volumes)


def _unverified():
    # Our own self-signed simulator on loopback: nothing to verify.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Simulator:
    """One simulator process. ``start()`` returns self; use as a context manager."""

    def __init__(self, binary=None):
        self.binary = Path(binary) if binary else build()
        self.proc = None
        self.info = {}
        self.workdir = None
        self.call_log = None
        self.tmpdir = None

    # -- lifecycle -----------------------------------------------------

    def start(
        self,
        mode="vpx",
        extra_vms=0,
        extra_datastores=("nfs0",),
        call_log=None,
        username="user",
        password="pass",
        tls=True,
        timeout=60,
        tmpdir=None,
        listen="127.0.0.1",
        **topology,
    ):
        """Launch and wait (up to ``timeout`` s) for the ready line.

        ``topology`` takes the keys of TOPOLOGY (datacenters, clusters,
        cluster_hosts, standalone_hosts, portgroups, datastores, vms, pools).
        Without ``call_log`` the call log goes to a private work directory.
        Datastore directories are created under ``tmpdir`` (default: see
        default_tmpdir()). ``listen``: the address to serve on, loopback by default; a role
        test gives its test bridge's host address so the test host reaches the simulator.
        """
        if self.proc is not None:
            raise SimulatorError("already started")
        unknown = set(topology) - set(TOPOLOGY)
        if unknown:
            raise TypeError(f"unknown topology keys: {sorted(unknown)}")

        self.workdir = tempfile.mkdtemp(prefix="vcsim-run-")
        self.call_log = str(call_log or Path(self.workdir) / "calls.jsonl")
        Path(self.call_log).touch()
        self.stderr_path = Path(self.workdir) / "stderr.log"
        args = [
            str(self.binary),
            "-mode",
            mode,
            "-listen",
            f"{listen}:0",
            "-username",
            username,
            "-password",
            password,
            f"-tls={str(bool(tls)).lower()}",
            "-call-log",
            self.call_log,
            "-extra-vms",
            str(int(extra_vms)),
            "-extra-datastores",
            ",".join(extra_datastores or ()),
        ]
        for key, value in topology.items():
            args += [TOPOLOGY[key], str(int(value))]

        self.tmpdir = str(tmpdir or default_tmpdir())
        env = dict(os.environ, TMPDIR=self.tmpdir)
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                start_new_session=True,
            )
        try:
            line = self._read_line(timeout)
            self.info = json.loads(line)
        except BaseException:
            self.stop()
            raise
        return self

    def _read_line(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SimulatorError(
                        f"no ready line within {timeout}s; stderr: {self.stderr()}"
                    )
                if not sel.select(left):
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    self.proc.wait()
                    raise SimulatorError(
                        f"vcsim exited with {self.proc.returncode}; stderr: {self.stderr()}"
                    )
                buf += chunk
        return buf.split(b"\n", 1)[0]

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")[-4000:]
        except (OSError, AttributeError):
            return ""

    def stop(self, timeout=10):
        """SIGTERM our own pid, SIGKILL after ``timeout`` s; idempotent."""
        if self.proc is None:
            return
        killed = False
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                killed = True
        if self.proc.stdout:
            self.proc.stdout.close()
        if killed:
            # vcsim never got to clean up its own datastore directories.
            for path in self.datastores.values():
                if path.startswith(self.tmpdir.rstrip(os.sep) + os.sep):
                    shutil.rmtree(path, ignore_errors=True)
        self.proc = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- endpoint ------------------------------------------------------

    url = property(lambda self: self.info["url"])
    host = property(lambda self: self.info["host"])
    port = property(lambda self: self.info["port"])
    username = property(lambda self: self.info["username"])
    password = property(lambda self: self.info["password"])
    thumbprint = property(lambda self: self.info["thumbprint"])
    mode = property(lambda self: self.info["mode"])
    datastores = property(lambda self: self.info.get("datastores", {}))

    @property
    def pid(self):
        return self.proc.pid if self.proc else self.info.get("pid")

    def connect_kwargs(self):
        """Keyword arguments for pyVim.connect.SmartConnect."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.username,
            "pwd": self.password,
            "disableSslCertValidation": True,
        }

    # -- call log ------------------------------------------------------

    def _entries(self):
        with open(self.call_log, "rb") as f:
            data = f.read()
        # A line still being written has no newline yet; leave it out.
        return data[: data.rfind(b"\n") + 1].splitlines()

    def mark(self):
        """Current number of call-log lines (SOAP and plain HTTP)."""
        return len(self._entries())

    def calls_since(self, mark=0):
        """Parsed call-log entries after ``mark``: {"method", "this"} or {"http", "path"}."""
        return [json.loads(line) for line in self._entries()[mark:]]

    def soap_calls(self, mark=0):
        """Number of SOAP calls (including injected faults) after ``mark``."""
        return sum(1 for e in self.calls_since(mark) if "method" in e)

    def soap_methods(self, mark=0):
        return [e["method"] for e in self.calls_since(mark) if "method" in e]

    # -- control endpoint ---------------------------------------------

    def _control(self, method, path, body=None):
        base = self.url.rsplit("/sdk", 1)[0]
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        ctx = _unverified() if base.startswith("https") else None
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return json.load(resp)

    def inject_fault(self, method, count=1, skip=0):
        """Make the next ``count`` calls of SOAP ``method`` (after ``skip``) fail
        with vim SystemError "vcsim: injected fault in <method>"; ``method`` "<HTTP method> <suffix>"
        ("PUT .json") fails the datastore transfers of that method whose path ends with the suffix
        with HTTP 500."""
        return self._control(
            "POST", "/vcsim/fault", {"method": method, "count": count, "skip": skip}
        )

    def clear_faults(self):
        return self._control("DELETE", "/vcsim/fault")

    def counters(self):
        """{"soap": N, "http": M} as counted by the server since start."""
        return self._control("GET", "/vcsim/calls")


class SoapCounter:
    """Counts the SOAP calls a simulator received since creation or reset()."""

    def __init__(self, sim):
        self.sim = sim
        self.reset()

    def reset(self):
        self.start = self.sim.mark()

    @property
    def calls(self):
        return [e for e in self.sim.calls_since(self.start) if "method" in e]

    @property
    def methods(self):
        return [e["method"] for e in self.calls]

    @property
    def count(self):
        return len(self.calls)

    def __len__(self):
        return self.count


# -- command line ------------------------------------------------------


def _is_vcsim(pid, binary):
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return False
    return Path(cmd).name == Path(binary).name


def _cli_start(args):
    sim = Simulator(build())
    sim.start(
        mode=args.mode,
        extra_vms=args.extra_vms,
        extra_datastores=[d for d in args.extra_datastores.split(",") if d],
        call_log=args.call_log,
    )
    state = dict(
        sim.info,
        pid=sim.pid,
        workdir=sim.workdir,
        tmpdir=sim.tmpdir,
        call_log=sim.call_log,
        binary=str(sim.binary),
    )
    sim.proc.stdout.close()
    sim.proc.returncode = 0  # detached on purpose: keep Popen from warning at exit
    Path(args.state).write_text(json.dumps(state, indent=2) + "\n")
    print(json.dumps({k: state[k] for k in ("url", "username", "password", "pid")}))


def _end_detached(pid, binary):
    """SIGTERM, then SIGKILL after 10s, to a simulator started detached (not our child: no waitpid).

    Returns True when it had to be killed (it then never cleaned up its datastore folders).
    """
    try:
        # A pidfd keeps naming this process: signals through it cannot reach a later process given the pid.
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        # The pid may have been reused since start; only signal our binary.
        if not _is_vcsim(pid, binary):
            return False
        signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        # The pidfd turns readable when the process ends: a wait on the exit itself, not a poll.
        if select.select([pidfd], [], [], 10)[0]:
            return False
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        if not select.select([pidfd], [], [], 10)[0]:
            raise SimulatorError(f"vcsim pid {pid} is still running after SIGKILL")
        return True
    finally:
        os.close(pidfd)


def _cli_stop(args):
    path = Path(args.state)
    state = json.loads(path.read_text())
    killed = _end_detached(state["pid"], state.get("binary", "vcsim"))
    if killed and state.get("tmpdir"):
        # vcsim never got to clean up its own datastore directories.
        tmpdir = state["tmpdir"].rstrip(os.sep) + os.sep
        for folder in state.get("datastores", {}).values():
            if folder.startswith(tmpdir):
                shutil.rmtree(folder, ignore_errors=True)
    if state.get("workdir"):
        shutil.rmtree(state["workdir"], ignore_errors=True)
    path.unlink()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a detached simulator")
    start.add_argument(
        "--state", required=True, help="JSON file to write the endpoint to"
    )
    start.add_argument("--mode", choices=("vpx", "esx"), default="vpx")
    start.add_argument("--extra-vms", type=int, default=0)
    start.add_argument("--extra-datastores", default="nfs0", help="comma separated")
    start.add_argument("--call-log", default=None)
    start.set_defaults(func=_cli_start)
    stop = sub.add_parser("stop", help="stop the simulator recorded in --state")
    stop.add_argument("--state", required=True)
    stop.set_defaults(func=_cli_stop)
    builder = sub.add_parser("build", help="build .build/vcsim if missing or older than main.go")
    builder.set_defaults(func=lambda args: print(build()))
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except SimulatorError as exc:
        print(f"vcsim.py {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
