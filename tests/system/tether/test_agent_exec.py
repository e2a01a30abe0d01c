# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One running container, many requests: exec (pipes and TTY, exit codes, env, user, working dir, dockerd's
errors), signals (KILL to an exec, TERM to a trapping primary), archive stat/get/put, stats."""

import io
import tarfile

from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.tools.harness.waiting import until_async

CID = "c-exec"
PRIMARY = 'trap "echo got TERM; exit 7" TERM; echo ready; while true; do sleep 0.1; done'


async def exec_run(w, spec, stdin=None):
    attachment = await w.concentrator.exec(CID, spec)
    if stdin is not None:
        await attachment.write_stdin(stdin)
        attachment.close_stdin()
    out, err = b"", b""
    async for stream, data in attachment:
        if stream == protocol.STDERR:
            err += data
        else:
            out += data
    return out.decode(), err.decode(), await attachment.exit_code()


async def archive(w, op, path, body=b""):
    """(result line as a dict, the bytes after it) of an archive@vic request."""
    writer, reader, _stderr = await w.conn(CID).open_session(subsystem=protocol.ARCHIVE_SUBSYSTEM, encoding=None)
    writer.write(protocol.encode(protocol.archive_request(op, path)))
    if body:
        writer.write(body)
    writer.write_eof()
    data = await reader.read()
    line, _newline, rest = data.partition(b"\n")
    return protocol.decode(line), rest


def tar_of(name, content):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


async def exec_cases(w):
    results = {}
    results["echo"] = await exec_run(w, {"Cmd": ["echo", "hi"]})
    results["exit"] = await exec_run(w, {"Cmd": ["sh", "-c", "echo out; echo err >&2; exit 4"]})
    results["env"] = await exec_run(w, {"Cmd": ["sh", "-c", "echo $GREETING $EXTRA $HOSTNAME $HOME $PATH"],
                                        "Env": ["EXTRA=x"]})
    results["user"] = await exec_run(w, {"Cmd": ["sh", "-c", "id; echo $HOME"], "User": "alice"})
    results["uid_gid"] = await exec_run(w, {"Cmd": ["id"], "User": "1000:2000"})
    results["workdir"] = await exec_run(w, {"Cmd": ["pwd"], "WorkingDir": "/new/dir"})
    results["tty"] = await exec_run(w, {"Cmd": ["sh", "-c", "tty; stty size"], "Tty": True, "ConsoleSize": [33, 101]})
    results["stdin"] = await exec_run(w, {"Cmd": ["cat"]}, stdin=b"abc\n")
    results["missing"] = await exec_run(w, {"Cmd": ["nosuch"]})
    results["missing_path"] = await exec_run(w, {"Cmd": ["/bin/nosuch"]})
    results["not_executable"] = await exec_run(w, {"Cmd": ["/bin/not-executable"]})
    results["unknown_user"] = await exec_run(w, {"Cmd": ["true"], "User": "bob"})
    results["unknown_group"] = await exec_run(w, {"Cmd": ["true"], "User": "alice:nogroupatall"})
    results["bad_workdir"] = await exec_run(w, {"Cmd": ["true"], "WorkingDir": "/etc/passwd"})
    results["hostname"] = await exec_run(w, {"Cmd": ["sh", "-c", "hostname; cat /etc/hostname; grep myhost /etc/hosts;"
                                                     " cat /etc/resolv.conf"]})
    # An orphan is adopted by PID 1, the tether, whose reaper must collect it: no zombie stays.
    results["orphans"] = await exec_run(w, {"Cmd": ["sh", "-c", "(sleep 0.1 &); sleep 0.6; ps -o stat,comm"]})
    return results


async def archive_cases(w):
    results = {"motd": await archive(w, "stat", "/etc/motd"),
               "missing": await archive(w, "stat", "/nonexistent"),
               "link": await archive(w, "stat", "/etc/link-to-motd"),
               "escape": await archive(w, "get", "/etc/escape/passwd"),
               "get_dir": await archive(w, "get", "/etc"),
               "get_root": await archive(w, "get", "/"),
               "put": await archive(w, "put", "/tmp", tar_of("newfile", b"put content\n")),
               "put_missing": await archive(w, "put", "/nonexistent", tar_of("x", b""))}
    results["after_put"] = await exec_run(w, {"Cmd": ["cat", "/tmp/newfile"]})
    return results


async def stats_and_kill(w):
    busy = await w.concentrator.exec(CID, {"Cmd": ["sh", "-c", "while :; do :; done"]})

    async def busy_figures():
        figures = await w.concentrator.stats(CID)
        figures["top"] = await w.concentrator.top(CID)
        return figures if figures["cpu_total_ns"] > 0 else None

    figures = await until_async(busy_figures, "CPU time of the container's processes")
    busy.signal("KILL")
    return figures, await busy.exit_code()


def test_exec_archive_stats_and_signals(kit, busybox_layer, tmp_path):

    async def scenario():
        async with kit.world() as w:
            spec = w.boot_spec(CID, {"Cmd": ["sh", "-c", PRIMARY]}, hostname="myhost",
                               dns={"servers": ["10.0.0.53"], "search": ["example.test"], "options": ["ndots:2"]},
                               hosts=["10.1.1.1 db"])
            disks = {0: busybox_layer, 1: kit.rw_disk(tmp_path / "rw.img")}
            async with kit.running(tmp_path, spec, disks, w.port) as agent:
                await w.connected(CID)
                execs = await exec_cases(w)
                archives = await archive_cases(w)
                figures, killed = await stats_and_kill(w)
                attachment = await w.concentrator.attach(CID)
                await w.concentrator.signal(CID, "TERM")
                out, _err = await kit.collect(attachment)
                code = await attachment.exit_code()
                assert await agent.wait() == 0, agent.stderr()
                return execs, archives, figures, killed, (out, code, await w.exit_of(CID)), agent.log_entries(), \
                    w.starts[CID]

    execs, archives, figures, killed, term, log, starts = kit.run(scenario())
    assert execs["echo"] == ("hi\n", "", 0)
    assert execs["exit"] == ("out\n", "err\n", 4)
    assert execs["env"] == ("hi x myhost /root /bin\n", "", 0)
    assert execs["user"][0] == "uid=1000(alice) gid=1000(alice) groups=1000(alice),2000(staff)\n/home/alice\n"
    assert execs["uid_gid"][0].startswith("uid=1000(alice) gid=2000(staff)")
    assert execs["workdir"] == ("/new/dir\n", "", 0)
    tty_out, tty_err, tty_code = execs["tty"]
    assert tty_out.startswith("/dev/pts/") and tty_out.endswith("\r\n33 101\r\n") and not tty_err and tty_code == 0
    assert execs["stdin"] == ("abc\n", "", 0)
    assert execs["missing"] == ("", 'exec: "nosuch": executable file not found in $PATH\n', 127)
    assert execs["missing_path"] == ("", 'exec: "/bin/nosuch": stat /bin/nosuch: no such file or directory\n', 127)
    assert execs["not_executable"] == ("", 'exec: "/bin/not-executable": permission denied\n', 126)
    assert execs["unknown_user"] == ("", "unable to find user bob: no matching entries in passwd file\n", 126)
    assert execs["unknown_group"] == ("", "unable to find group nogroupatall: no matching entries in group file\n", 126)
    assert execs["bad_workdir"][1:] == ('chdir to cwd ("/etc/passwd") set in config.json failed: not a directory\n', 126)
    assert execs["hostname"][0] == ("myhost\nmyhost\n127.0.1.1\tmyhost\n"
                                    "nameserver 10.0.0.53\nsearch example.test\noptions ndots:2\n")

    orphans_out, _err, _code = execs["orphans"]
    assert "sleep" in orphans_out and not [line for line in orphans_out.splitlines() if line.startswith("Z")], orphans_out

    motd, _motd_tar = archives["motd"]
    assert motd["ok"] and motd["stat"]["name"] == "motd" and motd["stat"]["size"] == 8
    assert motd["stat"]["mode"] == 0o644 and motd["stat"]["linkTarget"] == ""
    assert archives["missing"][0]["ok"] is False and archives["missing"][0]["kind"] == "not_found"
    link = archives["link"][0]["stat"]
    assert link["linkTarget"] == "/etc/motd" and link["mode"] == protocol.go_file_mode(0o120777)
    escape, escape_tar = archives["escape"]
    assert escape["ok"]
    with tarfile.open(fileobj=io.BytesIO(escape_tar)) as tar:
        assert b"alice" in tar.extractfile("passwd").read()     # the container's passwd, not the host's
    get_dir, dir_tar = archives["get_dir"]
    assert get_dir["stat"]["mode"] & (1 << 31)
    with tarfile.open(fileobj=io.BytesIO(dir_tar)) as tar:
        assert tar.extractfile("etc/motd").read() == b"welcome\n"
        assert tar.getmember("etc/hostname").isfile()
    root_stat, root_tar = archives["get_root"]
    assert root_stat["ok"]
    with tarfile.open(fileobj=io.BytesIO(root_tar)) as tar:
        names = tar.getnames()
    assert "./bin/busybox" in names and "./proc" in names and "./dev" in names
    assert not [n for n in names if n.startswith(("./proc/", "./sys/", "./dev/"))]     # the kernel's, not the container's
    assert archives["put"][0]["ok"] is True
    assert archives["put_missing"][0]["kind"] == "not_found"
    assert archives["after_put"] == ("put content\n", "", 0)

    titles, rows = figures.pop("top")
    assert titles == list(protocol.TOP_TITLES)
    # The container's processes, not the tether (pid 1 of its namespace): the busy loop among them, as root.
    busy = [row for row in rows if row[7] == "sh -c while :; do :; done"]
    assert busy and busy[0][0] == "root" and busy[0][1] != "1" and "1" not in [row[1] for row in rows], rows
    assert all(value > 0 for value in figures.values()), figures
    assert figures["pids"] >= 2 and figures["memory_limit"] >= figures["memory_usage"]
    assert killed == 137

    out, code, reported = term
    assert out == b"got TERM\n" and code == reported == 7
    assert [e["log"] for e in log if "log" in e] == ["ready\n", "got TERM\n"]
    assert log[-1]["exit"] == 7
    # The primary process's start, told after the hello; its pid is the container's first process but the tether.
    assert starts and all(pid > 1 for pid, _unused in starts), starts
