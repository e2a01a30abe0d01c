# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether over a serial line: a pty stands in for the VM's /dev/ttyS1, its other side relayed to a real
Concentrator as ESXi's network-backed serial port relays it.

The agent runs in a mount namespace only (a pid namespace would give it a devpts of its own, where the
host's pty is not), so it is not PID 1 here; the rest is the VM's path: SSH on a raw serial line."""

import asyncio
import os
import tty


class LineRelay:
    """The pty's master side <-> a TCP connection to the concentrator."""

    def __init__(self, master):
        self.master = master
        self.writer = None
        self.task = None

    async def start(self, port):
        reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        asyncio.get_running_loop().add_reader(self.master, self._from_line)
        self.task = asyncio.ensure_future(self._to_line(reader))

    def _from_line(self):
        try:
            data = os.read(self.master, 65536)
        except OSError:
            data = b""
        if data:
            self.writer.write(data)

    async def _to_line(self, reader):
        while data := await reader.read(65536):
            os.write(self.master, data)

    def stop(self):
        asyncio.get_running_loop().remove_reader(self.master)
        self.task.cancel()
        self.writer.close()


def test_ssh_over_a_serial_line(kit, busybox_layer, tmp_path):
    master, slave = os.openpty()
    # A VM's UART never echoes: nobody has ttyS1 open before the tether sets it raw. A pty open here with its
    # default line discipline would echo the endpoint's first bytes back before the agent opens it.
    tty.setraw(slave)

    async def scenario():
        async with kit.world() as w:
            spec = w.boot_spec("c-serial", {"Cmd": ["echo", "over serial"], "RunBlock": True})
            relay = LineRelay(master)
            await relay.start(w.port)
            disks = {0: busybox_layer, 1: kit.rw_disk(tmp_path / "rw.img")}
            try:
                async with kit.running(tmp_path, spec, disks, w.port, channel=f"serial://{os.ttyname(slave)}",
                                       namespaces=kit.Agent.MOUNT_ONLY) as agent:
                    await w.connected("c-serial")
                    attachment = await w.concentrator.attach("c-serial")
                    result = await kit.collect(attachment), await attachment.exit_code(), await w.exit_of("c-serial")
                    assert await agent.wait() == 0, agent.stderr()
                    return result, agent.log_entries()
            finally:
                relay.stop()

    try:
        ((out, err), code, reported), log = kit.run(scenario())
    finally:
        os.close(master)
        os.close(slave)
    assert (out, err, code, reported) == (b"over serial\n", b"", 0, 0)
    assert log[0]["log"] == "over serial\n" and log[-1]["exit"] == 0
