# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether runs a container's primary process: output, exit codes, the log, the halt."""

from ansible_collections.vic.containers.services.tether import protocol


def test_echo_hello_then_exit_3_with_stderr_and_log(kit, busybox_layer, tmp_path):
    script = "echo hello; echo oops >&2; printf partial; exit 3"

    async def scenario():
        async with kit.world() as w:
            spec = w.boot_spec("c-echo", {"Cmd": ["sh", "-c", script], "RunBlock": True})
            disks = {0: busybox_layer, 1: kit.blank_disk(tmp_path / "rw.img")}
            async with kit.running(tmp_path, spec, disks, w.port) as agent:
                await w.connected("c-echo")
                attachment = await w.concentrator.attach("c-echo")
                out, err = await kit.collect(attachment)
                code = await attachment.exit_code()
                assert await agent.wait() == 0, agent.stderr()     # halted by itself: not a VM, so exit 0
                return out, err, code, await w.exit_of("c-echo"), agent.log_entries()

    out, err, code, reported, log = kit.run(scenario())
    assert (out, err) == (b"hello\npartial", b"oops\n")
    assert code == reported == 3
    lines = [(e.get("stream"), e.get("log")) for e in log if "log" in e]
    assert sorted(lines) == sorted([("stdout", "hello\n"), ("stderr", "oops\n"), ("stdout", "partial")])
    assert log[-1]["exit"] == 3 and "log" not in log[-1]
    assert all(e["time"].endswith("Z") and len(e["time"].split(".")[1]) == 10 for e in log if "log" in e)
    protocol.parse_exit({"code": log[-1]["exit"], "finished_at": log[-1]["time"]})
