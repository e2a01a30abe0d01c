# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether channel protocol: what the endpoint and a container's tether must agree on.

``docs/tether-protocol.md`` is the contract and this module its one definition
in code. Both sides import it: the endpoint (``services/portlayer/attach/``) and
the tether, PID 1 in the container VM, which carries ``services/tether/`` on its
ISO and nothing else of the collection. So this module imports only the standard
library, asyncssh (the tether needs it anyway, to be the SSH server) and the
``cryptography`` asyncssh is built on (to open a sealed environment), and
raises its own ``ProtocolError``: the endpoint turns that into its error
hierarchy where the bad value came from a user (a signal name, an exec spec).
"""

import base64
import datetime
import hashlib
import hmac
import ipaddress
import json
import re
import signal as signals
import stat as stat_module

import asyncssh
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PROTOCOL_VERSION = 1
SERVER_VERSION_PREFIX = "VICTether_1"       # the tether's SSH software version; the container id follows
USERNAME = "vic"
HOST_KEY_ALGORITHM = "ssh-ed25519"          # the only host (and client) key type either side offers or accepts
CONTROL_SUBSYSTEM = "control@vic"
ATTACH_SUBSYSTEM = "attach"
STDOUT, STDERR = 1, 2                        # stderr is SSH extended data type 1 (SSH_EXTENDED_DATA_STDERR)
DEFAULT_TERM_SIZE = (80, 24)                 # columns, rows, until the client sends its own
KEEPALIVE_INTERVAL = 10.0                    # seconds between keep-alives, on both sides
KEEPALIVE_COUNT_MAX = 3                      # unanswered keep-alives that end the connection
MAX_LINE = 64 * 1024                         # bytes of one control line, its "\n" included

ARCHIVE_SUBSYSTEM = "archive@vic"
# Published ports: the endpoint opens a direct-tcpip channel to this address and a port of the boot spec's
# "ports"; the tether connects inside the container and refuses any other destination (forward_refusal).
FORWARD_HOST = "127.0.0.1"
# Control messages: "type" from the tether, "op" from the endpoint.
HELLO, STARTED, EXIT, REPLY = "hello", "started", "exit", "reply"
SIGNAL, STATS, TOP, ENV, HOSTS = "signal", "stats", "top", "env", "hosts"
# Archive requests (the first line of an archive channel).
ARCHIVE_STAT, ARCHIVE_GET, ARCHIVE_PUT = "stat", "get", "put"
ARCHIVE_EXPORT, ARCHIVE_CHANGES = "export", "changes"     # of the root: docker export, docker diff

# Docker's exit codes: 128 + N for a process ended by signal N; an exec that cannot start.
SIGNAL_EXIT_BASE = 128
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

_CONTAINER_ID = r"[0-9A-Za-z][0-9A-Za-z_.-]{0,127}"
_CONTAINER_ID_RE = re.compile(_CONTAINER_ID)
_VERSION_RE = re.compile(r"SSH-2\.0-" + re.escape(SERVER_VERSION_PREFIX) + " (" + _CONTAINER_ID + ")")
_TOO_LONG = f"control message longer than {MAX_LINE} bytes"
_TIMESTAMP_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


class ProtocolError(ValueError):
    """A message or value that breaks the tether protocol; the sentence says what was wrong."""


# -- the tether's identity ---------------------------------------------------------------------


def server_version(container_id):
    """The asyncssh ``server_version`` by which a tether names its container."""
    if not isinstance(container_id, str) or not _CONTAINER_ID_RE.fullmatch(container_id):
        raise ProtocolError(f"invalid container id: {container_id!r}")
    return f"{SERVER_VERSION_PREFIX} {container_id}"


def announced_id(version):
    """The container id in a tether's SSH version string (``SSH-2.0-VICTether_1 <id>``), or None."""
    match = _VERSION_RE.fullmatch(version) if isinstance(version, str) else None
    return match.group(1) if match else None


# -- keys ------------------------------------------------------------------------------------


def new_host_key():
    """A container's own SSH host key: (private key in OpenSSH format, public key line)."""
    key = asyncssh.generate_private_key(HOST_KEY_ALGORITHM)
    return key.export_private_key("openssh").decode("ascii"), public_key_text(key)


def public_key_text(key):
    """The one-line OpenSSH public key (``ssh-ed25519 AAAA...``) of an asyncssh key."""
    return key.export_public_key("openssh").decode("ascii").strip()


def import_host_key(text):
    """The tether's host key from its OpenSSH private key text (``new_host_key()[0]``)."""
    return _ed25519(asyncssh.import_private_key, text, "host key")


def import_public_key(line):
    """An asyncssh public key from its one-line text (``public_key_text``)."""
    if not isinstance(line, str) or "\n" in line.strip():
        raise ProtocolError("a public key must be one line of text")
    return _ed25519(asyncssh.import_public_key, line, "public key")


def authorized_keys(line):
    """What the tether accepts for login: exactly the endpoint's public key line."""
    import_public_key(line)
    return asyncssh.import_authorized_keys(line.strip() + "\n")


def _ed25519(importer, text, what):
    try:
        key = importer(text)
    except (asyncssh.KeyImportError, TypeError, ValueError) as exc:
        raise ProtocolError(f"unusable {what}: {exc}") from None
    if key.get_algorithm() != HOST_KEY_ALGORITHM:
        raise ProtocolError(f"the {what} is {key.get_algorithm()}, not {HOST_KEY_ALGORITHM}")
    return key


# -- control lines ---------------------------------------------------------------------------


def encode(message):
    """One control line: the message as JSON, UTF-8, ``\\n``-terminated."""
    line = json.dumps(message).encode("utf-8") + b"\n"
    if len(line) > MAX_LINE:
        raise ProtocolError(_TOO_LONG)
    return line


def decode(line):
    """The JSON object of one control line, as bytes (with or without its ``\\n``)."""
    body = line[:-1] if line.endswith(b"\n") else line
    if len(body) >= MAX_LINE:
        raise ProtocolError(_TOO_LONG)
    try:
        message = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProtocolError("control message is not UTF-8") from None
    except ValueError:
        raise ProtocolError("control message is not JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("control message is not a JSON object")
    return message


class LineReader:
    """Splits a control session's bytes into messages as they arrive, in any chunks.

    An over-long line is refused as soon as it is too long, not when its end
    comes, so a peer cannot make the other side buffer without limit.
    """

    def __init__(self):
        self._partial = b""

    def feed(self, data):
        """The messages completed by ``data``, in order."""
        *lines, self._partial = (self._partial + data).split(b"\n")
        if len(self._partial) >= MAX_LINE:
            raise ProtocolError(_TOO_LONG)
        return [decode(line) for line in lines]


# -- tether -> endpoint ----------------------------------------------------------------------


def hello(container_id, maintenance=False):
    """The tether's first control line; a maintenance boot's says so (its connection is no run's)."""
    found = {"type": HELLO, "id": container_id, "protocol": PROTOCOL_VERSION}
    if maintenance:
        found[MAINTENANCE] = True
    return found


def check_hello(message, container_id):
    """Accept a hello only from the container the SSH version string named, in our protocol version; whether
    it is a maintenance boot's."""
    if not message or message.get("type") != HELLO:
        raise ProtocolError("the tether did not say hello")
    if message.get("id") != container_id:
        raise ProtocolError(f"the tether said hello as container {message.get('id')!r}")
    if message.get("protocol") != PROTOCOL_VERSION:
        raise ProtocolError(f"the tether speaks protocol {message.get('protocol')!r}, not {PROTOCOL_VERSION}")
    return message.get(MAINTENANCE) is True


def started_report(pid, started_at):
    """The primary process is running as ``pid`` (in the container) since ``started_at`` (``timestamp()``)."""
    return {"type": STARTED, "pid": pid, "started_at": started_at}


def parse_started(message):
    """``(pid, started_at)`` of a started message."""
    pid, started_at = message.get("pid"), message.get("started_at")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid < 1:
        raise ProtocolError(f"pid {pid!r} is not a process id")
    return pid, _checked_time(started_at, "started_at")


def exit_report(code, finished_at):
    """The primary process ended with Docker's ``code`` at ``finished_at`` (``timestamp()``)."""
    return {"type": EXIT, "code": code, "finished_at": finished_at}


def parse_exit(message):
    """``(code, finished_at)`` of an exit message."""
    code, finished_at = message.get("code"), message.get("finished_at")
    if not isinstance(code, int) or isinstance(code, bool):
        raise ProtocolError(f"exit code {code!r} is not an integer")
    return code, _checked_time(finished_at, "finished_at")


def _checked_time(value, field):
    if not isinstance(value, str) or not _TIMESTAMP_RE.fullmatch(value):
        raise ProtocolError(f"{field} {value!r} is not an RFC 3339 UTC time")
    return value


def reply(seq, error=None):
    """The tether's answer to request ``seq``: done, or refused with a one-sentence ``error``."""
    if error is None:
        return {"type": REPLY, "seq": seq, "ok": True}
    return {"type": REPLY, "seq": seq, "ok": False, "error": str(error)}


def reply_error(message):
    """None if the reply says the request was done, else the tether's reason."""
    if message.get("ok") is True:
        return None
    error = message.get("error")
    return error if isinstance(error, str) and error else "the tether refused the request"


def timestamp(moment=None):
    """``finished_at``'s format: RFC 3339 in UTC with microseconds, e.g. ``2026-01-02T03:04:05.123456Z``."""
    moment = moment or datetime.datetime.now(datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- the container's log (output.log) ---------------------------------------------------------
# Docker's json-file driver's lines, which the tether writes to the VM's file-backed log port and the
# endpoint reads back for ``docker logs``; the tether marks where each run of the primary process began
# (a start line) and ends it with an exit line, how it ended, which the endpoint takes when the VM powered
# off before the tether could tell it (a start line with no exit after it: a run that vanished).

LOG_FILE = "output.log"                      # in the container VM's folder: the log port's backing file
LOG_TEXT, LOG_STREAM, LOG_TIME, LOG_EXIT, LOG_START = "log", "stream", "time", "exit", "start"
LOG_STREAMS = {STDOUT: "stdout", STDERR: "stderr"}
_LOG_STREAM_NUMBERS = {name: number for number, name in LOG_STREAMS.items()}


def log_output_line(stream, text, stamp):
    """One json-file line (bytes, ``\\n``-terminated) of ``stream``'s (STDOUT, STDERR) output ``text``."""
    return json.dumps({LOG_TEXT: text, LOG_STREAM: LOG_STREAMS[stream], LOG_TIME: stamp}).encode("utf-8") + b"\n"


def log_exit_line(code, finished_at):
    """The log's last line: the primary process's Docker exit code and when it ended."""
    return json.dumps({LOG_EXIT: code, LOG_TIME: finished_at}).encode("utf-8") + b"\n"


def log_start_line(started_at):
    """The line before a run's output: the primary process started at ``started_at``."""
    return json.dumps({LOG_START: True, LOG_TIME: started_at}).encode("utf-8") + b"\n"


def parse_log_line(line):
    """``(LOG_TEXT, stream, text, time)`` of an output line, ``(LOG_EXIT, code, None, time)`` of the exit line,
    ``(LOG_START, None, None, time)`` of a start line, None for a torn or foreign line (the writer can stop
    mid-line: a VM powered off)."""
    try:
        item = json.loads(line)
        stamp = item[LOG_TIME]
        if not isinstance(stamp, str):
            return None
        if item.get(LOG_START) is True:
            return (LOG_START, None, None, stamp)
        if LOG_EXIT in item:
            code = item[LOG_EXIT]
            return (LOG_EXIT, code, None, stamp) if isinstance(code, int) and not isinstance(code, bool) else None
        text = item[LOG_TEXT]
        stream = _LOG_STREAM_NUMBERS[item.get(LOG_STREAM, LOG_STREAMS[STDOUT])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return (LOG_TEXT, stream, text, stamp) if isinstance(text, str) else None


# -- endpoint -> tether ----------------------------------------------------------------------


def signal_request(sig):
    """The request to signal the primary process (the sender adds ``seq``)."""
    return {"op": SIGNAL, "signal": signal_name(sig)}


def env_request(key):
    """The request that hands the tether the key its boot spec's sealed env opens with (the sender adds ``seq``)."""
    return {"op": ENV, "key": base64.b64encode(key).decode("ascii")}


def requested_env_key(message):
    """The key an env request carries."""
    try:
        key = base64.b64decode(message.get("key") or "", validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ProtocolError("the env request carries no 256-bit key")
    return key


def seal(plain, key, associated):
    """``plain`` (bytes) sealed with AES-256-GCM (nonce || ciphertext, base64). The nonce is an HMAC of the
    text under the key: the same text seals to the same value, so a record or boot spec written again
    unchanged reads the same (vSphere and the endpoint's cache compare values)."""
    nonce = hmac.new(key, plain, hashlib.sha256).digest()[:12]
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plain, associated)).decode("ascii")


def unseal(text, key, associated):
    """What ``seal`` sealed; ProtocolError when it does not open with ``key``."""
    try:
        raw = base64.b64decode(text, validate=True)
        return AESGCM(key).decrypt(raw[:12], raw[12:], associated)
    except (InvalidTag, ValueError):
        raise ProtocolError("the sealed value does not open with this key") from None


# A name of a hosts line: what a resolver takes from /etc/hosts (no blank, no comment sign, no control character).
_HOST_NAME_RE = re.compile(r"[^\s#\x00-\x1f\x7f]{1,255}")


def host_name(name):
    """Whether ``name`` can stand in an /etc/hosts line (dockerd takes any network alias; these could not)."""
    return isinstance(name, str) and bool(_HOST_NAME_RE.fullmatch(name))


def hosts_request(entries):
    """The request that gives the tether the container's peers, ``[(ip, [name, ...]), ...]`` in the order their
    lines go in /etc/hosts after the container's own (the sender adds ``seq``; ``parse_hosts`` checks it)."""
    return {"op": HOSTS, "entries": [[ip, list(names)] for ip, names in parse_hosts({"entries": entries})]}


def parse_hosts(message):
    """The ``[(ip, [name, ...])]`` of a hosts request: each an IP address and at least one ``host_name``."""
    entries = message.get("entries")
    _check(isinstance(entries, (list, tuple)), "the hosts request carries no entries")
    found = []
    for entry in entries:
        _check(isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[1], (list, tuple))
               and entry[1] and all(host_name(n) for n in entry[1]),
               f"hosts entry {entry!r} is not [ip, [name, ...]] of names a hosts file can hold")
        try:
            address = str(ipaddress.ip_address(entry[0]))
        except (TypeError, ValueError):
            raise ProtocolError(f"hosts entry {entry!r} has no IP address") from None
        found.append((address, list(entry[1])))
    return found


def stats_request():
    """The request for the guest's resource figures (the sender adds ``seq``); the reply carries ``stats``."""
    return {"op": STATS}


def stats_reply(seq, stats):
    """The tether's answer to a stats request: ``stats`` as ``parse_stats`` reads it."""
    return dict(reply(seq), stats=stats)


_STATS_FIELDS = ("cpu_total_ns", "cpu_system_ns", "online_cpus", "memory_usage", "memory_limit", "pids")


def guest_stats(cpu_total_ns, cpu_system_ns, online_cpus, memory_usage, memory_limit, pids):
    """The figures a stats reply carries, all integers: the container's CPU time used (ns), the guest's
    whole CPU time (ns, Docker's ``system_cpu_usage``), CPUs, memory in use and in all (bytes), processes."""
    return dict(zip(_STATS_FIELDS, (cpu_total_ns, cpu_system_ns, online_cpus, memory_usage, memory_limit, pids)))


def parse_stats(message):
    """The figures of a stats reply, every field an integer >= 0."""
    stats = message.get("stats")
    if not isinstance(stats, dict):
        raise ProtocolError("the stats reply carries no figures")
    for field in _STATS_FIELDS:
        value = stats.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ProtocolError(f"stats field {field} is {value!r}, not a count")
    return {field: stats[field] for field in _STATS_FIELDS}


TOP_TITLES = ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")   # ps -ef's, as dockerd's top shows them


def top_request():
    """The request for the container's processes (``docker top``; the sender adds ``seq``)."""
    return {"op": TOP}


def top_reply(seq, processes):
    """The tether's answer to a top request: one row of ``TOP_TITLES`` strings per process."""
    return dict(reply(seq), titles=list(TOP_TITLES), processes=processes)


def parse_top(message):
    """``(titles, processes)`` of a top reply, every row as many strings as there are titles."""
    titles, processes = message.get("titles"), message.get("processes")
    if not isinstance(titles, list) or not all(isinstance(t, str) for t in titles):
        raise ProtocolError("the top reply has no titles")
    if not isinstance(processes, list) or not all(
            isinstance(row, list) and len(row) == len(titles) and all(isinstance(v, str) for v in row)
            for row in processes):
        raise ProtocolError("the top reply's processes are not rows of strings")
    return titles, processes


def requested_signal(message):
    """The signal number a signal request names."""
    return signal_number(message.get("signal"))


# -- signals and exit codes ------------------------------------------------------------------


def signal_name(sig):
    """The SSH name (RFC 4254: ``TERM``, ``KILL``...) of a signal given as ``SIGTERM``, ``TERM``, ``15`` or 15."""
    text = str(sig).strip().upper()
    try:
        if text.isdigit():
            return signals.Signals(int(text)).name[3:]
        name = text if text.startswith("SIG") else "SIG" + text
        return signals.Signals[name].name[3:]
    except (KeyError, ValueError):
        raise ProtocolError(f"invalid signal: {sig}") from None


def signal_number(name):
    """The number of a signal by its SSH name (``TERM``), as a signal request or ``signal`` channel request carries it."""
    try:
        return signals.Signals["SIG" + name].value
    except (KeyError, TypeError):
        raise ProtocolError(f"invalid signal: {name!r}") from None


def exit_code(returncode):
    """Docker's exit code of a process from its ``returncode`` (asyncio/subprocess: -N when signal N ended it)."""
    return SIGNAL_EXIT_BASE - returncode if returncode < 0 else returncode


def signal_exit_code(name):
    """Docker's exit code of a process ended by the signal named ``name``; 128 when the name is unknown."""
    try:
        return SIGNAL_EXIT_BASE + signal_number(name)
    except ProtocolError:
        return SIGNAL_EXIT_BASE


def exec_failure_code(error):
    """The exit code of an exec whose process could not start with ``error`` (an OSError)."""
    return EXIT_NOT_FOUND if isinstance(error, FileNotFoundError) else EXIT_NOT_EXECUTABLE


# -- exec ------------------------------------------------------------------------------------


def exec_command(spec):
    """The ``exec`` request's command string for a spec with Cmd, and optionally Env, User, WorkingDir, Tty."""
    return json.dumps(_exec_spec(spec))


def parse_exec_command(command):
    """The spec an ``exec`` request's command string carries, with every field present."""
    try:
        spec = json.loads(command)
    except (TypeError, ValueError):
        raise ProtocolError("exec command is not JSON") from None
    return _exec_spec(spec)


def _exec_spec(spec):
    if not isinstance(spec, dict):
        raise ProtocolError("exec spec must be an object")
    cmd = spec.get("Cmd")
    if not isinstance(cmd, list) or not cmd or not all(isinstance(arg, str) for arg in cmd):
        raise ProtocolError("exec Cmd must be a non-empty list of strings")
    env = _given(spec, "Env", [])
    if not isinstance(env, list) or not all(isinstance(item, str) for item in env):
        raise ProtocolError("exec Env must be a list of KEY=value strings")
    user, workdir = _given(spec, "User", ""), _given(spec, "WorkingDir", "")
    if not isinstance(user, str) or not isinstance(workdir, str):
        raise ProtocolError("exec User and WorkingDir must be strings")
    return {"Cmd": cmd, "Env": env, "User": user, "WorkingDir": workdir, "Tty": bool(spec.get("Tty"))}


def _given(spec, field, default):
    # JSON null is "not given", as the Docker API sends it; any other value must be of the right type.
    value = spec.get(field)
    return default if value is None else value


# -- archives (docker cp, the archive API) ----------------------------------------------------


def archive_request(op, path, **options):
    """The first line of an ``archive@vic`` channel: ``stat`` / ``get`` / ``put`` of an absolute ``path``
    in the container; ``put`` takes ``no_overwrite_dir_non_dir`` (bool) as Docker's API does."""
    return _archive_request(dict(options, op=op, path=path))


def parse_archive_request(line):
    """The request of an archive channel's first line (bytes, with or without its ``\n``)."""
    return _archive_request(decode(line))


def _archive_request(request):
    op, path = request.get("op"), request.get("path")
    if op not in (ARCHIVE_STAT, ARCHIVE_GET, ARCHIVE_PUT, ARCHIVE_EXPORT, ARCHIVE_CHANGES):
        raise ProtocolError(f"unknown archive operation: {op!r}")
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise ProtocolError(f"archive path must be absolute: {path!r}")
    return {"op": op, "path": path, "no_overwrite_dir_non_dir": bool(request.get("no_overwrite_dir_non_dir"))}


ARCHIVE_NOT_FOUND, ARCHIVE_INVALID, ARCHIVE_CONFLICT = "not_found", "invalid", "conflict"


def encode_changes(changes):
    """What follows the result line of a ``changes`` request: Docker's ``[{"Path", "Kind"}]`` as JSON,
    to the end of the channel (no line limit: a container may change many files)."""
    return json.dumps(changes).encode("utf-8")


def decode_changes(data):
    """The changes a tether sent (``encode_changes``), checked: Kind 0 modified, 1 added, 2 deleted."""
    try:
        changes = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("the changes are not JSON") from None
    if not isinstance(changes, list) or not all(
            isinstance(change, dict) and isinstance(change.get("Path"), str) and change.get("Kind") in (0, 1, 2)
            for change in changes):
        raise ProtocolError("the changes are not a list of {Path, Kind}")
    return changes


def archive_result(stat=None, error=None, kind=ARCHIVE_INVALID):
    """The tether's result line of an archive request: done (with the path's ``stat``), or refused with a
    one-sentence ``error`` of a ``kind`` the endpoint turns into Docker's status."""
    if error is None:
        return encode({"ok": True, "stat": stat or {}})
    if kind not in (ARCHIVE_NOT_FOUND, ARCHIVE_INVALID, ARCHIVE_CONFLICT):
        raise ProtocolError(f"unknown archive error kind: {kind!r}")
    return encode({"ok": False, "error": str(error), "kind": kind})


def parse_archive_result(line):
    """``(stat, None, None)`` of a done request, ``(None, error, kind)`` of a refused one."""
    answer = decode(line)
    if answer.get("ok") is True:
        stat = answer.get("stat")
        return (stat if isinstance(stat, dict) else {}), None, None
    error = answer.get("error")
    kind = answer.get("kind")
    return (None, error if isinstance(error, str) and error else "the tether refused the request",
            kind if kind in (ARCHIVE_NOT_FOUND, ARCHIVE_INVALID, ARCHIVE_CONFLICT) else ARCHIVE_CONFLICT)


def path_stat(name, size, mode, mtime, link_target=""):
    """What ``stat`` answers (and ``get`` sends first): Docker's ``X-Docker-Container-Path-Stat`` fields.

    ``mode`` is Go's ``os.FileMode`` bits as Docker sends them (see ``go_file_mode``), ``mtime`` RFC 3339."""
    return {"name": name, "size": size, "mode": mode, "mtime": mtime, "linkTarget": link_target}


_GO_MODE_DIR, _GO_MODE_SYMLINK = 1 << 31, 1 << 27


def go_file_mode(st_mode):
    """Go's ``os.FileMode`` of a POSIX ``st_mode`` (what Docker's path stat carries): permission bits
    plus the directory or symlink flag."""
    mode = stat_module.S_IMODE(st_mode)
    if stat_module.S_ISDIR(st_mode):
        mode |= _GO_MODE_DIR
    elif stat_module.S_ISLNK(st_mode):
        mode |= _GO_MODE_SYMLINK
    return mode


# -- how a container VM boots: the boot spec -----------------------------------------------------

BOOT_KEY = "guestinfo.vice./boot"   # the VM's extraConfig key that holds the boot spec (JSON)
# The boot spec field of a maintenance boot: the tether assembles the container's root as for a run, but starts
# no process, writes nothing to the log and serves archive@vic sessions only, until the VM is powered off.
MAINTENANCE = "maintenance"


def boot_spec(container_id, host_key, endpoint_key, process, *, hostname, domainname="", layers, rw,
              mounts=(), nics=(), dns=None, hosts=(), rootfs=None, sysctls=None, rw_format=False, ports=()):
    """Everything the tether needs to boot a container, made by the endpoint at create.

    ``process``: ``Cmd`` (the whole argv, Entrypoint + Cmd resolved), ``Env`` or ``EnvSealed`` (the env
    sealed with a key only the endpoint hands over, see ``env_request``), ``User``,
    ``WorkingDir``, ``Tty``, ``OpenStdin``, ``StdinOnce``, ``RunBlock`` (start only once an attach
    channel is open). ``layers``: the SCSI units of the image's layer disks, base first; ``rw``: the
    unit of the container's own disk; ``mounts``: [{"unit", "destination", "rw"}]; ``nics``:
    [{"mac", "addresses": ["ip/prefix"], "gateway"}]; ``dns``: {"servers", "search", "options", "embedded" (the
    tether is the container's DNS server, at 127.0.0.11, and forwards to the servers: on a user-defined network)};
    ``hosts``: extra ``/etc/hosts`` lines ("ip name..."); ``rootfs``: {"read_only", "tmpfs": {destination:
    options}, "shm_size" (bytes of /dev/shm)}; ``sysctls``: {name: value} (only those a container's own
    namespaces hold). The process may also carry ``Ulimits`` ([{"Name", "Soft", "Hard"}]) and ``GroupAdd``.
    ``rw_format``: the container's disk was made blank (no formatted template yet): the tether formats it;
    else it is a child of the formatted template and a blank one is an error. ``ports``: the TCP ports the
    container publishes (the only ones a direct-tcpip channel may reach, ``forward_refusal``). A spec may
    also say ``maintenance`` (``with_maintenance``)."""
    return parse_boot_spec({
        "protocol": PROTOCOL_VERSION, "id": container_id, "host_key": host_key, "endpoint_key": endpoint_key,
        "process": dict(process), "hostname": hostname, "domainname": domainname, "layers": list(layers), "rw": rw,
        "mounts": [dict(m) for m in mounts], "nics": [dict(n) for n in nics],
        "dns": dict(dns or {"servers": [], "search": [], "options": []}), "hosts": list(hosts),
        "rootfs": dict(rootfs or {}), "sysctls": dict(sysctls or {}), "rw_format": bool(rw_format),
        "ports": sorted(set(ports))})


def format_spec(vm_id, units):
    """The boot spec of a one-shot VM whose tether only makes an ext4 filesystem on the disks at SCSI ``units``,
    says how it went in its log (an exit line, 0 when all are formatted) and halts: how the endpoint makes the
    formatted template every container's read-write disk is a child of (portlayer/storage/rw_template.py)."""
    return parse_boot_spec({"protocol": PROTOCOL_VERSION, "id": vm_id, "format": list(units)})


def parse_boot_spec(spec):
    """A boot spec (a dict, or its JSON text) checked field by field; the sentence names what is wrong."""
    if isinstance(spec, (str, bytes)):
        try:
            spec = json.loads(spec)
        except ValueError:
            raise ProtocolError("boot spec is not JSON") from None
    if not isinstance(spec, dict):
        raise ProtocolError("boot spec must be an object")
    if spec.get("protocol") != PROTOCOL_VERSION:
        raise ProtocolError(f"boot spec is for protocol {spec.get('protocol')!r}, not {PROTOCOL_VERSION}")
    server_version(spec.get("id"))
    if "format" in spec:
        _check(_units(spec["format"]) and spec["format"], "boot spec format must be a non-empty list of SCSI units")
        return spec
    for field in ("host_key", "endpoint_key", "hostname", "domainname"):
        _check(isinstance(spec.get(field), str), f"boot spec {field} must be a string")
    process = spec.get("process")
    _check(isinstance(process, dict), "boot spec process must be an object")
    _check(isinstance(process.get("Cmd"), list) and process["Cmd"] and all(isinstance(a, str) for a in process["Cmd"]),
           "boot spec process Cmd must be a non-empty list of strings")
    _check(isinstance(process.get("Env", []), list) and all(isinstance(e, str) for e in process.get("Env", [])),
           "boot spec process Env must be a list of strings")
    _check(isinstance(process.get("EnvSealed", ""), str) and not (process.get("EnvSealed") and process.get("Env")),
           "boot spec process EnvSealed must be a string, and Env empty beside it")
    for field in ("User", "WorkingDir"):
        _check(isinstance(process.get(field, ""), str), f"boot spec process {field} must be a string")
    _check(_units(spec.get("layers")) and spec["layers"], "boot spec layers must be a non-empty list of SCSI units")
    _check(_unit(spec.get("rw")), "boot spec rw must be a SCSI unit")
    mounts = spec.get("mounts")
    _check(isinstance(mounts, list) and all(_mount(m) for m in mounts),
           "boot spec mounts must be a list of {unit, destination (absolute), rw}")
    used = spec["layers"] + [spec["rw"]] + [m["unit"] for m in mounts]
    _check(len(set(used)) == len(used), "boot spec uses a SCSI unit twice")
    nics = spec.get("nics")
    _check(isinstance(nics, list) and all(isinstance(n, dict) and isinstance(n.get("mac"), str) for n in nics),
           "boot spec nics must be a list of {mac, addresses, gateway}")
    dns = spec.get("dns")
    _check(isinstance(dns, dict) and all(isinstance(dns.get(k, []), list) for k in ("servers", "search", "options")),
           "boot spec dns must be {servers, search, options} lists")
    _check(isinstance(dns.get("embedded", False), bool), "boot spec dns embedded must be true or false")
    _check(isinstance(spec.get("hosts"), list) and all(isinstance(h, str) and "\n" not in h for h in spec["hosts"]),
           "boot spec hosts must be a list of one-line strings")
    _check(isinstance(process.get("Ulimits", []), list) and all(_ulimit(u) for u in process.get("Ulimits", [])),
           "boot spec process Ulimits must be a list of {Name, Soft, Hard} (integers, -1 for unlimited)")
    _check(isinstance(process.get("GroupAdd", []), list) and all(isinstance(g, str) for g in process.get("GroupAdd", [])),
           "boot spec process GroupAdd must be a list of strings")
    rootfs = spec.setdefault("rootfs", {})
    _check(isinstance(rootfs, dict) and isinstance(rootfs.get("tmpfs", {}), dict)
           and all(isinstance(d, str) and d.startswith("/") and isinstance(o, str)
                   and all(tmpfs_option(option) for option in filter(None, o.split(",")))
                   for d, o in rootfs.get("tmpfs", {}).items())
           and _count(rootfs.get("shm_size", DEFAULT_SHM_SIZE)),
           "boot spec rootfs must be {read_only, tmpfs: {absolute destination: dockerd's options}, shm_size: bytes}")
    sysctls = spec.setdefault("sysctls", {})
    _check(isinstance(sysctls, dict) and all(isinstance(k, str) and isinstance(v, str) and namespaced_sysctl(k)
                                             for k, v in sysctls.items()),
           "boot spec sysctls must be {name: value} of sysctls a container's own namespaces hold")
    process.setdefault("Env", [])
    for field in ("User", "WorkingDir"):
        process.setdefault(field, "")
    for field in ("Ulimits", "GroupAdd"):
        process.setdefault(field, [])
    for field in ("Tty", "OpenStdin", "StdinOnce", "RunBlock"):
        process[field] = bool(process.get(field))
    for mount in mounts:
        mount["rw"] = bool(mount.get("rw", True))
    rootfs["read_only"] = bool(rootfs.get("read_only"))
    dns.setdefault("embedded", False)     # an earlier endpoint's spec: no embedded DNS server
    rootfs.setdefault("tmpfs", {})
    rootfs.setdefault("shm_size", DEFAULT_SHM_SIZE)
    # A spec without the field is an earlier endpoint's, which always made the disk blank.
    spec["rw_format"] = bool(spec.get("rw_format", True))
    _check(_ports(spec.setdefault("ports", [])), "boot spec ports must be a list of TCP ports (1-65535)")
    _check(isinstance(spec.get(MAINTENANCE, False), bool), "boot spec maintenance must be true or false")
    return spec


def with_maintenance(spec, on=True):
    """The boot spec ``spec`` with its maintenance mode on (``MAINTENANCE``) or off: what the endpoint writes
    before it powers a stopped container's VM on to serve archive requests, and again after it powered it off."""
    changed = {field: value for field, value in spec.items() if field != MAINTENANCE}
    if on:
        changed[MAINTENANCE] = True
    return parse_boot_spec(changed)


def _ports(values):
    return isinstance(values, list) and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 65536
                                            for v in values)


def _own_addresses(spec):
    """The container's addresses its boot spec gives its NICs ("ip/prefix"; one that does not parse is none)."""
    own = set()
    for nic in spec.get("nics", ()):
        for text in nic.get("addresses", ()):
            try:
                own.add(ipaddress.ip_interface(text).ip)
            except ValueError:
                continue
    return own


def forward_refusal(spec, dest_host, dest_port):
    """Why a direct-tcpip channel to ``dest_host:dest_port`` is refused, or None: only a port the container
    publishes (the boot spec's ``ports``), on a loopback address or one of the container's own (an IP
    literal: no name is resolved), so the channel reaches nothing but the container's published ports.
    A maintenance boot runs nothing to reach."""
    if spec.get(MAINTENANCE):
        return "the container is not running (a maintenance boot serves archive requests only)"
    if dest_port not in spec.get("ports", ()):
        return f"port {dest_port} is not published by this container"
    try:
        address = ipaddress.ip_address(dest_host)
    except ValueError:
        return f"{dest_host!r} is not an IP address"
    if not address.is_loopback and address not in _own_addresses(spec):
        return f"{dest_host} is not an address of this container"
    return None


DEFAULT_SHM_SIZE = 64 * 1024 * 1024        # dockerd's /dev/shm
# What dockerd's tmpfs mounts take (moby/sys/mount's ParseTmpfsOptions): mount flags, and tmpfs's data options.
TMPFS_FLAGS = frozenset(("ro", "rw", "noexec", "exec", "nosuid", "suid", "nodev", "dev", "sync", "async",
                         "noatime", "atime", "nodiratime", "diratime", "relatime", "norelatime", "strictatime"))
_TMPFS_DATA = frozenset(("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"))


def tmpfs_option(option):
    """Whether one option of a ``--tmpfs`` mount (``noexec``, ``size=1m``, ...) is one dockerd takes."""
    return option in TMPFS_FLAGS or option.split("=", 1)[0] in _TMPFS_DATA


# Docker's --ulimit names (RLIMIT_<NAME>).
ULIMITS = frozenset(("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
                     "rss", "rtprio", "rttime", "sigpending", "stack"))
# The sysctls runc lets a container set: those of its own IPC and network namespaces.
_IPC_SYSCTLS = frozenset(("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                          "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"))


def namespaced_sysctl(name):
    """Whether a container may set sysctl ``name`` (it is its own, not the host's, under the emulator too)."""
    return name in _IPC_SYSCTLS or (name.startswith(("fs.mqueue.", "net.")) and ".." not in name and "/" not in name)


def _ulimit(limit):
    return isinstance(limit, dict) and limit.get("Name") in ULIMITS and all(
        isinstance(limit.get(k), int) and not isinstance(limit.get(k), bool) and limit[k] >= -1 for k in ("Soft", "Hard"))


def _count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _mount(mount):
    return isinstance(mount, dict) and _unit(mount.get("unit")) and isinstance(mount.get("destination"), str) \
        and mount["destination"].startswith("/")


def _unit(value):
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 15 and value != 7


def _units(values):
    return isinstance(values, list) and all(_unit(v) for v in values)


def _check(condition, sentence):
    if not condition:
        raise ProtocolError(sentence)
