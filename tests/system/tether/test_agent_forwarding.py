# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Published ports at the tether: a direct-tcpip channel the endpoint opens (logged in with its key) reaches the
container's published port, and nothing else: not another port (a server listens there), not another address,
not a name. The agent runs here in the host's network namespace, so what it could reach is what the test's
own listeners are."""

import socket

import asyncssh
import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import free_port
from ansible_collections.vic.containers.tools.harness.waiting import until_async

CID = "c-fwd"


async def _get(reader, writer):
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    writer.write_eof()
    answer = await reader.read()
    writer.close()
    return answer


async def _refusal(w, host, port):
    with pytest.raises(asyncssh.ChannelOpenError) as refused:
        await w.conn(CID).open_connection(host, port)
    return refused.value.code, refused.value.reason


def test_a_direct_tcpip_channel_reaches_only_a_published_port_of_the_container(kit, busybox_layer, tmp_path):
    published = free_port()
    command = f"mkdir -p /www && echo forwarded > /www/index.html && exec httpd -f -p 127.0.0.1:{published} -h /www"

    async def scenario():
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            other.listen()
            unpublished = other.getsockname()[1]
            async with kit.world() as w:
                spec = w.boot_spec(CID, {"Cmd": ["sh", "-c", command]}, ports=[published])
                disks = {0: busybox_layer, 1: kit.rw_disk(tmp_path / "rw.img")}
                async with kit.running(tmp_path, spec, disks, w.port, no_halt=True):
                    await w.connected(CID)

                    async def served():
                        try:
                            return await _get(*await w.concentrator.open_tcp(CID, published))
                        except asyncssh.ChannelOpenError:
                            return b""

                    # Until httpd listens (a count of quick tries ran out under load before it did).
                    answer = await until_async(served, "httpd in the container to answer on its published port")
                    refusals = {
                        "unpublished": await _refusal(w, "127.0.0.1", unpublished),
                        "address": await _refusal(w, "192.0.2.1", published),
                        "name": await _refusal(w, "localhost", published),
                    }
                    return answer, refusals

    answer, refusals = kit.run(scenario())
    assert answer.startswith(b"HTTP/1.") and answer.endswith(b"\r\n\r\nforwarded\n"), answer
    prohibited = asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED
    assert refusals["unpublished"][0] == prohibited and "is not published by this container" in refusals["unpublished"][1]
    assert refusals["address"] == (prohibited, "192.0.2.1 is not an address of this container")
    assert refusals["name"] == (prohibited, "'localhost' is not an IP address")
