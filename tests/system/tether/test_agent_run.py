# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether runs a container's primary process: output, exit codes, the log, the halt."""

import asyncio
import os
import signal

from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.tools.harness.waiting import until_async


def test_echo_hello_then_exit_3_with_stderr_and_log(kit, busybox_layer, tmp_path):
    script = "echo hello; echo oops >&2; printf partial; exit 3"

    async def scenario():
        async with kit.world() as w:
            spec = w.boot_spec("c-echo", {"Cmd": ["sh", "-c", script], "RunBlock": True})
            disks = {0: busybox_layer, 1: kit.rw_disk(tmp_path / "rw.img")}
            async with kit.running(tmp_path, spec, disks, w.port) as agent:
                await w.connected("c-echo")
                attachment = await w.concentrator.attach("c-echo")
                out, err = await kit.collect(attachment)
                code = await attachment.exit_code()
                assert await agent.wait() == 0, agent.stderr()     # halted by itself: not a VM, so exit 0
                return out, err, code, await w.exit_of("c-echo"), agent.log_entries(starts=True)

    out, err, code, reported, log = kit.run(scenario())
    # The run's start line first (a VM that goes off while the process runs leaves it without an exit line).
    assert set(log.pop(0)) == {"start", "time"} and not any("start" in e for e in log)
    assert (out, err) == (b"hello\npartial", b"oops\n")
    assert code == reported == 3
    lines = [(e.get("stream"), e.get("log")) for e in log if "log" in e]
    assert sorted(lines) == sorted([("stdout", "hello\n"), ("stderr", "oops\n"), ("stdout", "partial")])
    assert log[-1]["exit"] == 3 and "log" not in log[-1]
    assert all(e["time"].endswith("Z") and len(e["time"].split(".")[1]) == 10 for e in log if "log" in e)
    protocol.parse_exit({"code": log[-1]["exit"], "finished_at": log[-1]["time"]})


async def read_until(attachment, marker, seen=b""):
    """Output read until ``marker`` appears (the TTY echoes input and answers in pieces). It answers as a
    terminal does: busybox's line editor asks where the cursor is (ESC [6n) and waits for the answer, and
    input that comes meanwhile (a ^D) is lost."""
    while marker not in seen:
        item = await attachment.read()
        assert item is not None, f"the output ended before {marker!r}: {seen!r}"
        if b"\x1b[6n" in item[1]:
            await attachment.write_stdin(b"\x1b[1;1R")
        seen += item[1]
    return seen


def test_tty_with_resize_and_ctrl_d(kit, busybox_layer, tmp_path):
    async def scenario():
        async with kit.world() as w:
            spec = w.boot_spec("c-tty", {"Cmd": ["sh"], "Tty": True, "OpenStdin": True, "StdinOnce": True,
                                         "RunBlock": True})
            disks = {0: busybox_layer, 1: kit.rw_disk(tmp_path / "rw.img")}
            async with kit.running(tmp_path, spec, disks, w.port) as agent:
                await w.connected("c-tty")
                attachment = await w.concentrator.attach("c-tty", tty=True, stdin=True, term_size=(100, 30))
                await attachment.write_stdin(b"stty size\n")
                first = await read_until(attachment, b"30 100")
                attachment.resize(40, 120)
                await attachment.write_stdin(b"stty size; echo $TERM\n")
                second = await read_until(attachment, b"xterm\r\n")
                await read_until(attachment, b"# ", second.split(b"xterm\r\n", 1)[1])  # the next prompt
                attachment.close_stdin()        # StdinOnce: the client's EOF is the terminal's ^D
                rest, _err = await kit.collect(attachment)
                code = await attachment.exit_code()
                assert await agent.wait() == 0, agent.stderr()
                return first, second, rest, code, await w.exit_of("c-tty"), agent.log_entries()

    first, second, _rest, code, reported, log = kit.run(scenario())
    assert b"30 100\r\n" in first
    assert b"40 120\r\n" in second
    assert code == reported == 0
    assert all(e["stream"] == "stdout" for e in log if "log" in e)    # a TTY has one stream
    assert "40 120\r\n" in "".join(e["log"] for e in log if "log" in e)


def test_stdin_once_cat_and_missing_command(kit, busybox_layer, tmp_path):
    async def scenario():
        async with kit.world() as w:
            spec = w.boot_spec("c-cat", {"Cmd": ["cat"], "OpenStdin": True, "StdinOnce": True, "RunBlock": True})
            disks = {0: busybox_layer, 1: kit.rw_disk(tmp_path / "rw.img")}
            async with kit.running(tmp_path / "cat", spec, disks, w.port) as agent:
                await w.connected("c-cat")
                attachment = await w.concentrator.attach("c-cat", stdin=True)
                await attachment.write_stdin(b"line1\nline2")
                attachment.close_stdin()
                cat = await kit.collect(attachment), await attachment.exit_code()
                assert await agent.wait() == 0, agent.stderr()
            spec = w.boot_spec("c-missing", {"Cmd": ["nosuch", "arg"]})
            async with kit.running(tmp_path / "missing", spec, disks, w.port) as agent:
                missing = await w.exit_of("c-missing")
                assert await agent.wait() == 0, agent.stderr()
                return cat, missing, agent.log_entries()

    ((out, err), code), missing, log = kit.run(scenario())
    assert (out, err, code) == (b"line1\nline2", b"", 0)
    assert missing == 127
    assert log[0]["log"] == 'exec: "nosuch": executable file not found in $PATH\n' and log[0]["stream"] == "stderr"
    assert log[-1]["exit"] == 127


def test_volume_written_in_one_run_is_read_in_the_next(kit, busybox_layer, tmp_path):
    volume = kit.blank_disk(tmp_path / "volume.img", "32M")

    async def one_run(w, name, cmd, read_only=False):
        spec = w.boot_spec(name, {"Cmd": cmd, "RunBlock": True}, layers=[0], rw=1,
                           mounts=[{"unit": 2, "destination": "/data", "rw": not read_only}])
        disks = {0: busybox_layer, 1: kit.rw_disk(tmp_path / f"{name}-rw.img"), 2: volume}
        async with kit.running(tmp_path / name, spec, disks, w.port) as agent:
            await w.connected(name)
            attachment = await w.concentrator.attach(name)
            result = await kit.collect(attachment), await attachment.exit_code()
            assert await agent.wait() == 0, agent.stderr()
            return result

    async def scenario():
        async with kit.world() as w:
            first = await one_run(w, "c-vol1", ["sh", "-c", "echo x > /data/f"])
            second = await one_run(w, "c-vol2", ["sh", "-c", "cat /data/f; echo y > /data/g"], read_only=True)
            return first, second

    first, second = kit.run(scenario())
    assert first == ((b"", b""), 0)
    (out, err), code = second
    assert out == b"x\n" and b"Read-only file system" in err and code == 1


class Proxy:
    """What the host emulator does for a VM: a unix socket the tether dials, each connection relayed to the
    concentrator's TCP port; and the test can cut them all."""

    def __init__(self, target_port, path):
        self.target_port = target_port
        self.path = path
        self.server = None
        self._links = []

    async def start(self):
        self.server = await asyncio.start_unix_server(self._relay, str(self.path))
        return self

    async def _relay(self, reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._links.append((writer, up_writer))
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True)

    @staticmethod
    async def _pump(reader, writer):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    def cut(self):
        """Drop every relayed connection at once, as a lost serial link does."""
        for down, up in self._links:
            down.transport.abort()
            up.transport.abort()
        self._links.clear()

    async def stop(self):
        self.cut()
        self.server.close()
        await self.server.wait_closed()


def test_channel_dropped_mid_stream_loses_no_output(kit, busybox_layer, tmp_path):
    """The emulator's channel (a unix socket relayed to TCP) cut while the process prints: the tether redials,
    the process goes on undisturbed, the log has every line, a new attach gets what follows."""
    script = 'i=0; while [ $i -lt 60 ]; do echo "line $i"; i=$((i+1)); sleep 0.05; done'

    async def scenario():
        async with kit.world() as w:
            proxy = await Proxy(w.port, tmp_path / "serial.sock").start()
            events = []
            watcher = asyncio.ensure_future(_record(w.concentrator.events(), events))
            spec = w.boot_spec("c-drop", {"Cmd": ["sh", "-c", script]})
            disks = {0: busybox_layer, 1: kit.rw_disk(tmp_path / "rw.img")}
            try:
                async with kit.running(tmp_path, spec, disks, w.port, channel=f"unix://{proxy.path}") as agent:
                    await w.connected("c-drop")
                    # Any whole line: on a loaded machine the attach can come after "line 5" was printed
                    # (an attach gets what follows it), and then waiting for that line never ended.
                    before = await read_until(await w.concentrator.attach("c-drop"), b"\n")
                    proxy.cut()
                    await until_async(lambda: events[-2:] == ["disconnect", "connect"], "the tether to redial")
                    after, _err = await kit.collect(await w.concentrator.attach("c-drop"))
                    code = await w.exit_of("c-drop")
                    assert await agent.wait() == 0, agent.stderr()
                    return before, after, code, agent.log_entries()
            finally:
                watcher.cancel()
                await proxy.stop()

    before, after, code, log = kit.run(scenario())
    expected = "".join(f"line {i}\n" for i in range(60))
    assert "".join(e["log"] for e in log if "log" in e) == expected
    assert code == 0 and log[-1]["exit"] == 0
    assert before.decode() in expected and expected.endswith(after.decode()) and after     # attached late, then again


async def _record(events, into):
    async for event in events:
        into.append(event.kind)


def test_a_container_that_cannot_boot_says_why_in_the_log(kit, busybox_layer, tmp_path):
    async def scenario():
        async with kit.world() as w:
            spec = w.boot_spec("c-nodisk", {"Cmd": ["true"]})
            async with kit.running(tmp_path, spec, {0: busybox_layer}, w.port) as agent:    # no disk for unit 1
                return await agent.wait(), agent.log_entries()

    code, log = kit.run(scenario())
    assert code == 1
    assert log[0] == dict(log[0], stream="stderr", log="tether: no disk for SCSI unit 1\n")
    assert log[-1]["exit"] == 125


def test_a_blank_rw_disk_is_formatted_only_when_the_boot_spec_asks(kit, busybox_layer, tmp_path):
    """The endpoint makes a container's disk a child of its formatted template; a blank one (never made so)
    fails with the reason on the console and in the log, unless ``rw_format`` says the endpoint made it blank."""
    async def scenario(rw_format):
        name = "c-rwfmt" if rw_format else "c-rwblank"
        async with kit.world() as w:
            spec = w.boot_spec(name, {"Cmd": ["sh", "-c", "echo ok > /f; cat /f"]}, rw_format=rw_format)
            disks = {0: busybox_layer, 1: kit.blank_disk(tmp_path / f"{name}.img")}
            async with kit.running(tmp_path / name, spec, disks, w.port) as agent:
                return await agent.wait(), agent.stderr(), agent.log_entries()

    code, stderr, log = kit.run(scenario(False))
    assert code == 1
    said = ("tether: the container's read-write disk (SCSI unit 1) has no ext4 filesystem: it should be a child "
            "of the VCH's formatted template disk, and the boot spec does not ask to format it\n")
    assert said in stderr and log[0] == dict(log[0], stream="stderr", log=said) and log[-1]["exit"] == 125
    with open(tmp_path / "c-rwblank.img", "rb") as disk:
        assert not disk.read(1 << 20).strip(b"\0"), "nothing was written to the blank disk"
    code, stderr, log = kit.run(scenario(True))
    assert (code, [e.get("log") for e in log if "log" in e], log[-1]["exit"]) == (0, ["ok\n"], 0), stderr


def test_runblock_without_attach_starts_after_the_hello(kit, busybox_layer, tmp_path):
    """docker create + docker start without -a: nobody attaches, the process starts anyway (hello + 5 s)."""
    async def scenario():
        async with kit.world() as w:
            # Without OpenStdin (docker run without -i) stdin is at its end: cat returns at once.
            spec = w.boot_spec("c-unattached", {"Cmd": ["sh", "-c", "cat; echo alone"], "RunBlock": True})
            disks = {0: busybox_layer, 1: kit.rw_disk(tmp_path / "rw.img")}
            async with kit.running(tmp_path, spec, disks, w.port) as agent:
                code = await w.exit_of("c-unattached")
                assert await agent.wait() == 0, agent.stderr()
                return code, agent.log_entries()

    code, log = kit.run(scenario())
    assert code == 0 and log[0]["log"] == "alone\n" and log[-1]["exit"] == 0


def test_a_killed_tether_leaves_nothing_behind(kit, busybox_layer, tmp_path):
    """A power-off kills the tether (SIGKILL): its namespaces die, its mounts and loop devices go with them."""
    async def scenario():
        async with kit.world() as w:
            volume = kit.blank_disk(tmp_path / "volume.img", "32M")
            disks = {0: busybox_layer, 1: kit.rw_disk(tmp_path / "rw.img"), 2: volume}
            spec = w.boot_spec("c-killed", {"Cmd": ["sh", "-c", "sleep 1000 & sleep 1000"]},
                               mounts=[{"unit": 2, "destination": "/data", "rw": True}])
            async with kit.running(tmp_path, spec, disks, w.port) as agent:
                await w.connected("c-killed")
                attached = [kit.loops_of(path) for path in disks.values()]
                os.kill(agent.tether_pid(), signal.SIGKILL)
                return attached, await agent.wait()

    attached, code = kit.run(scenario())
    assert all(attached), attached      # each disk was on a loop device while it ran
    assert code != 0        # unshare reports its child's death; running() checked that nothing is left


def test_no_halt_keeps_the_tether_after_the_process_and_sigterm_ends_it(kit, busybox_layer, tmp_path):
    async def scenario():
        async with kit.world() as w:
            spec = w.boot_spec("c-nohalt", {"Cmd": ["echo", "done"]})
            disks = {0: busybox_layer, 1: kit.rw_disk(tmp_path / "rw.img")}
            async with kit.running(tmp_path, spec, disks, w.port, no_halt=True) as agent:
                code = await w.exit_of("c-nohalt")
                attachment = await w.concentrator.attach("c-nohalt")     # after the end: the exit status at once
                late = await kit.collect(attachment), await attachment.exit_code()
                still_running = agent.proc.returncode is None
                stopped = await agent.stop()
                return code, late, still_running, stopped

    code, late, still_running, stopped = kit.run(scenario())
    assert code == 0 and late == ((b"", b""), 0)
    assert still_running and stopped == 0
