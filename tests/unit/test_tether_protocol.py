# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""services/tether/protocol.py: what the endpoint and the tether encode, decode and refuse, without a connection."""

import json

import asyncssh
import pytest
from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.services.tether.protocol import ProtocolError

# -- the container id in the SSH version string --------------------------------------------------


@pytest.mark.parametrize("container_id", ["abc123", "a", "A-b_c.d", "f" * 64, "x" * 128])
def test_server_version_round_trip(container_id):
    version = protocol.server_version(container_id)
    assert version == f"VICTether_1 {container_id}"
    assert protocol.announced_id("SSH-2.0-" + version) == container_id


@pytest.mark.parametrize("container_id", ["", "-abc", ".abc", "a b", "a/b", "x" * 129, "abc\n", None, 7])
def test_server_version_refuses_a_bad_id(container_id):
    with pytest.raises(ProtocolError, match="invalid container id"):
        protocol.server_version(container_id)


@pytest.mark.parametrize("version", [
    "SSH-2.0-VICTether_1",                     # no id at all
    "SSH-2.0-VICTether_1 ",                    # an empty one
    "SSH-2.0-VICTether_1 -abc",                # must start with a letter or digit
    "SSH-2.0-VICTether_1 a b",                 # one id, no second word
    "SSH-2.0-VICTether_1  abc",                # exactly one space
    "SSH-2.0-VICTether_1 abc\n",               # nothing after the id, not even a newline
    "SSH-2.0-VICTether_1 " + "x" * 129,        # too long
    "SSH-2.0-VICTether_2 abc",                 # another protocol's tether
    "SSH-2.0-OpenSSH_9.2",
    "SSH-1.99-VICTether_1 abc",
    None,
])
def test_announced_id_refuses_what_names_no_container(version):
    assert protocol.announced_id(version) is None


# -- control lines -------------------------------------------------------------------------------


@pytest.mark.parametrize("message", [
    protocol.hello("c1"),
    protocol.exit_report(137, "2026-01-02T03:04:05.123456Z"),
    protocol.reply(4),
    protocol.reply(5, "the process is not running"),
    dict(protocol.signal_request("SIGTERM"), seq=6),
    {"type": "future", "text": "\u00fcn\u00efcode \n and a newline"},
])
def test_control_lines_round_trip(message):
    line = protocol.encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert protocol.decode(line) == message


@pytest.mark.parametrize("line, error", [
    (b'{"type": "hello", "id": \n', "not JSON"),
    (b"hello\n", "not JSON"),
    (b"\n", "not JSON"),
    (b'["hello"]\n', "not a JSON object"),
    (b"null\n", "not a JSON object"),
    (b'{"type": "\xff"}\n', "not UTF-8"),
])
def test_decode_refuses_a_malformed_line(line, error):
    with pytest.raises(ProtocolError, match=error):
        protocol.decode(line)


def _line_of(size):
    """A control line of exactly ``size`` bytes, newline included."""
    padding = size - len(protocol.encode({"pad": ""}))
    return protocol.encode({"pad": "x" * padding})


def test_the_line_limit_counts_bytes_with_the_newline():
    longest = _line_of(protocol.MAX_LINE)
    assert len(longest) == protocol.MAX_LINE and protocol.decode(longest)["pad"]
    with pytest.raises(ProtocolError, match="longer than"):
        protocol.decode(_line_of(protocol.MAX_LINE + 1))
    with pytest.raises(ProtocolError, match="longer than"):
        protocol.encode({"pad": "x" * protocol.MAX_LINE})
    with pytest.raises(ProtocolError, match="longer than"):
        protocol.encode({"error": "\u00e9" * (protocol.MAX_LINE // 2)})  # the limit is in bytes, not characters


def test_line_reader_reassembles_messages_from_any_chunks():
    messages = [protocol.hello("c1"), protocol.reply(1), protocol.exit_report(0, protocol.timestamp())]
    stream = b"".join(protocol.encode(message) for message in messages)
    for size in (1, 7, len(stream)):
        reader = protocol.LineReader()
        received = []
        for start in range(0, len(stream), size):
            received += reader.feed(stream[start:start + size])
        assert received == messages


def test_line_reader_refuses_an_oversize_line_before_it_ends():
    reader = protocol.LineReader()
    assert reader.feed(b'{"pad": "' + b"x" * (protocol.MAX_LINE // 2)) == []
    with pytest.raises(ProtocolError, match="longer than"):
        reader.feed(b"x" * (protocol.MAX_LINE // 2))


def test_line_reader_refuses_a_malformed_line_between_good_ones():
    reader = protocol.LineReader()
    with pytest.raises(ProtocolError, match="not JSON"):
        reader.feed(protocol.encode(protocol.hello("c1")) + b"{oops\n")


# -- messages ------------------------------------------------------------------------------------


def test_hello_is_checked_against_the_announced_id_and_version():
    protocol.check_hello(protocol.hello("c1"), "c1")
    for message, error in [
        (None, "did not say hello"),
        ({"type": "exit", "code": 0}, "did not say hello"),
        (protocol.hello("c2"), "as container 'c2'"),
        (dict(protocol.hello("c1"), protocol=2), "speaks protocol 2"),
        ({"type": "hello", "id": "c1"}, "speaks protocol None"),
    ]:
        with pytest.raises(ProtocolError, match=error):
            protocol.check_hello(message, "c1")


def test_exit_round_trip_with_the_timestamp_format():
    finished_at = protocol.timestamp()
    assert protocol.parse_exit(protocol.decode(protocol.encode(protocol.exit_report(5, finished_at)))) == (5, finished_at)
    assert protocol.parse_exit({"type": "exit", "code": 0, "finished_at": "2026-01-02T03:04:05Z"})[0] == 0


@pytest.mark.parametrize("code, finished_at, error", [
    (True, "2026-01-02T03:04:05.1Z", "not an integer"),
    ("5", "2026-01-02T03:04:05.1Z", "not an integer"),
    (None, "2026-01-02T03:04:05.1Z", "not an integer"),
    (5, None, "not an RFC 3339 UTC time"),
    (5, "2026-01-02 03:04:05", "not an RFC 3339 UTC time"),
    (5, "2026-01-02T03:04:05+01:00", "not an RFC 3339 UTC time"),
])
def test_malformed_exits_are_refused(code, finished_at, error):
    with pytest.raises(ProtocolError, match=error):
        protocol.parse_exit({"type": "exit", "code": code, "finished_at": finished_at})


def test_reply_error():
    assert protocol.reply_error(protocol.reply(1)) is None
    assert protocol.reply_error(protocol.reply(1, "no process")) == "no process"
    assert protocol.reply_error({"type": "reply", "seq": 1, "ok": False}) == "the tether refused the request"
    assert protocol.reply_error({"type": "reply", "seq": 1}) == "the tether refused the request"
    assert protocol.reply_error({"type": "reply", "seq": 1, "ok": "yes"}) is not None  # only true is true


def test_signal_request_round_trip():
    assert protocol.signal_request("15") == {"op": "signal", "signal": "TERM"}
    assert protocol.requested_signal(protocol.signal_request("SIGKILL")) == 9
    for message in ({"op": "signal"}, {"op": "signal", "signal": "SIGTERM"}, {"op": "signal", "signal": 15},
                    {"op": "signal", "signal": "NOPE"}):
        with pytest.raises(ProtocolError, match="invalid signal"):
            protocol.requested_signal(message)
    with pytest.raises(ProtocolError, match="invalid signal: SIGNOPE"):
        protocol.signal_request("SIGNOPE")


# -- exit codes ----------------------------------------------------------------------------------


def test_exit_codes_follow_docker():
    assert protocol.exit_code(0) == 0 and protocol.exit_code(3) == 3
    assert protocol.exit_code(-9) == 137 and protocol.exit_code(-15) == 143
    assert protocol.signal_exit_code("KILL") == 137
    assert protocol.signal_exit_code("NOPE") == 128
    assert protocol.exec_failure_code(FileNotFoundError(2, "no such file")) == 127
    assert protocol.exec_failure_code(PermissionError(13, "permission denied")) == 126


# -- exec ----------------------------------------------------------------------------------------


def test_exec_command_round_trip_fills_the_defaults():
    command = protocol.exec_command({"Cmd": ["sh", "-c", "echo hi"], "Env": None, "Tty": 1, "ConsoleSize": [24, 80]})
    assert json.loads(command) == {"Cmd": ["sh", "-c", "echo hi"], "Env": [], "User": "", "WorkingDir": "", "Tty": True}
    assert protocol.parse_exec_command(command) == json.loads(command)


@pytest.mark.parametrize("command, error", [
    ("sh -c 'echo hi'", "not JSON"),
    (None, "not JSON"),
    ('["sh"]', "must be an object"),
    ('{"Cmd": []}', "Cmd must be a non-empty list"),
    ('{"Cmd": "sh"}', "Cmd must be a non-empty list"),
    ('{"Cmd": ["sh", 1]}', "Cmd must be a non-empty list"),
    ('{"Cmd": ["sh"], "Env": "A=b"}', "Env must be a list"),
    ('{"Cmd": ["sh"], "User": 0}', "User and WorkingDir must be strings"),
    ('{"Cmd": ["sh"], "WorkingDir": ["/"]}', "User and WorkingDir must be strings"),
])
def test_malformed_exec_commands_are_refused(command, error):
    with pytest.raises(ProtocolError, match=error):
        protocol.parse_exec_command(command)


# -- keys ----------------------------------------------------------------------------------------


def test_host_key_texts_round_trip():
    private, public = protocol.new_host_key()
    host_key = protocol.import_host_key(private)
    assert protocol.public_key_text(host_key) == public
    assert protocol.import_public_key(public).public_data == host_key.public_data
    assert protocol.import_public_key(public + "\n").public_data == host_key.public_data
    assert protocol.authorized_keys(public) is not None


def test_keys_that_are_not_one_ed25519_key_are_refused():
    ecdsa = asyncssh.generate_private_key("ecdsa-sha2-nistp256")
    two_lines = protocol.new_host_key()[1] + "\n" + protocol.new_host_key()[1]
    for bad, error in [(protocol.public_key_text(ecdsa), "not ssh-ed25519"), ("ssh-ed25519 AAAAnope", "unusable"),
                       (two_lines, "one line"), (None, "one line")]:
        with pytest.raises(ProtocolError, match=error):
            protocol.import_public_key(bad)
        with pytest.raises(ProtocolError, match=error):
            protocol.authorized_keys(bad)
    with pytest.raises(ProtocolError, match="not ssh-ed25519"):
        protocol.import_host_key(ecdsa.export_private_key("openssh").decode("ascii"))
    with pytest.raises(ProtocolError, match="unusable host key"):
        protocol.import_host_key("-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n-----END OPENSSH PRIVATE KEY-----\n")


# -- started, stats, archives, the boot spec -------------------------------------------------------


def test_started_round_trips_and_refuses_a_bad_pid():
    message = protocol.decode(protocol.encode(protocol.started_report(1, "2026-01-02T03:04:05.000001Z")))
    assert protocol.parse_started(message) == (1, "2026-01-02T03:04:05.000001Z")
    with pytest.raises(ProtocolError, match="pid 0"):
        protocol.parse_started(protocol.started_report(0, "2026-01-02T03:04:05Z"))
    with pytest.raises(ProtocolError, match="started_at"):
        protocol.parse_started(protocol.started_report(3, "yesterday"))


def test_stats_reply_carries_counts_only():
    figures = protocol.guest_stats(10, 20, 2, 3 << 20, 512 << 20, 4)
    assert protocol.parse_stats(protocol.decode(protocol.encode(protocol.stats_reply(7, figures)))) == figures
    with pytest.raises(ProtocolError, match="memory_usage"):
        protocol.parse_stats({"stats": dict(figures, memory_usage=-1)})
    with pytest.raises(ProtocolError, match="no figures"):
        protocol.parse_stats(protocol.reply(7))


@pytest.mark.parametrize("op, path, sentence", [("list", "/", "unknown archive operation"),
                                                ("get", "etc", "must be absolute"),
                                                ("put", None, "must be absolute")])
def test_archive_request_refuses(op, path, sentence):
    with pytest.raises(ProtocolError, match=sentence):
        protocol.parse_archive_request(json.dumps({"op": op, "path": path}).encode())


def test_go_file_mode_flags_directories_and_links():
    assert protocol.go_file_mode(0o040755) == (1 << 31) | 0o755
    assert protocol.go_file_mode(0o120777) == (1 << 27) | 0o777
    assert protocol.go_file_mode(0o100644) == 0o644


def _spec(**changes):
    base = {"hostname": "c1", "layers": [0, 1], "rw": 2, "mounts": [{"unit": 3, "destination": "/data"}]}
    base.update(changes)
    return protocol.boot_spec("c1", "key", "ssh-ed25519 AAAA", {"Cmd": ["sh", "-c", "true"]}, **base)


def test_boot_spec_round_trips_with_defaults():
    spec = protocol.parse_boot_spec(json.dumps(_spec()))
    assert spec["process"] == {"Cmd": ["sh", "-c", "true"], "Env": [], "User": "", "WorkingDir": "", "Tty": False,
                               "OpenStdin": False, "StdinOnce": False, "RunBlock": False, "Ulimits": [],
                               "GroupAdd": []}
    assert spec["mounts"] == [{"unit": 3, "destination": "/data", "rw": True}]
    assert spec["rootfs"] == {"read_only": False, "tmpfs": {}, "shm_size": 64 << 20} and spec["sysctls"] == {}


@pytest.mark.parametrize("changes, sentence", [
    ({"layers": []}, "layers must be a non-empty list"),
    ({"layers": [7]}, "layers must be a non-empty list"),
    ({"rw": 1}, "uses a SCSI unit twice"),
    ({"mounts": [{"unit": 4, "destination": "data"}]}, "mounts must be"),
    ({"hosts": ["a\nb"]}, "hosts must be"),
    ({"rootfs": {"tmpfs": {"run": ""}}}, "rootfs must be"),
    ({"rootfs": {"shm_size": 0}}, "rootfs must be"),
    ({"sysctls": {"vm.swappiness": "1"}}, "sysctls must be"),
    ({"sysctls": {"net.ipv4/../../vm": "1"}}, "sysctls must be"),
])
def test_boot_spec_refuses(changes, sentence):
    with pytest.raises(ProtocolError, match=sentence):
        _spec(**changes)


def test_boot_spec_refuses_no_command_and_other_protocols():
    with pytest.raises(ProtocolError, match="Cmd must be a non-empty"):
        protocol.boot_spec("c1", "k", "e", {"Cmd": []}, hostname="h", layers=[0], rw=1)
    with pytest.raises(ProtocolError, match="for protocol 2"):
        protocol.parse_boot_spec(dict(_spec(), protocol=2))


def test_a_maintenance_boot_is_said_in_the_spec_and_the_hello():
    spec = _spec()
    on = protocol.with_maintenance(spec)
    assert on[protocol.MAINTENANCE] is True and protocol.MAINTENANCE not in spec
    assert protocol.with_maintenance(on, False) == protocol.parse_boot_spec(json.dumps(spec))
    with pytest.raises(ProtocolError, match="maintenance must be true or false"):
        protocol.parse_boot_spec(dict(spec, maintenance="yes"))
    assert protocol.check_hello(protocol.hello("c1", maintenance=True), "c1") is True
    assert protocol.check_hello(protocol.hello("c1"), "c1") is False
    assert "not running" in protocol.forward_refusal(dict(on, ports=[80]), "127.0.0.1", 80)


def test_top_reply_round_trips_and_refuses_ragged_rows():
    rows = [["root", "1", "0", "0", "10:00", "?", "00:00:00", "sh -c sleep 9"]]
    message = protocol.decode(protocol.encode(protocol.top_reply(3, rows)))
    assert protocol.parse_top(message) == (list(protocol.TOP_TITLES), rows)
    with pytest.raises(ProtocolError, match="rows of strings"):
        protocol.parse_top(protocol.top_reply(3, [["root", "1"]]))
    with pytest.raises(ProtocolError, match="no titles"):
        protocol.parse_top(protocol.reply(3))


def test_the_tethers_tmpfs_flags_are_the_ones_the_endpoint_lets_through():
    from ansible_collections.vic.containers.services.tether.agent import rootfs  # pylint: disable=import-outside-toplevel
    assert set(rootfs.TMPFS_BITS) == protocol.TMPFS_FLAGS
    flags, data = rootfs.tmpfs_options("size=1m,exec,ro")
    assert data == "mode=1777,size=1m" and flags & rootfs.linux.MS_RDONLY and not flags & rootfs.linux.MS_NOEXEC
    with pytest.raises(ProtocolError, match="rootfs must be"):
        _spec(rootfs={"tmpfs": {"/run": "bogus=1"}})
