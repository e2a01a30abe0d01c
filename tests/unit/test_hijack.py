"""Docker's hijacked attach / exec streams on aiohttp, spoken to the way the docker CLI and the Docker SDK do."""

import asyncio
import contextlib
import json
import socket
import struct

import docker
from aiohttp import http_parser, web, web_protocol
from ansible_collections.vic.containers.services.persona import hijack
from ansible_collections.vic.containers.tools.harness.waiting import WaitTimeout, until_async
from docker.utils import socket as docker_socket


async def _attach(request):
    """Echo: each stdin chunk comes back on stdout, then one stderr line; ends at stdin EOF."""
    stream = await hijack.upgrade(request, tty=request.query.get("tty") == "1")
    if request.query.get("stdin") == "1":
        while True:
            data = await stream.read()
            if not data:
                break
            await stream.write(hijack.STDOUT, data)
    else:
        # The Docker SDK reads the response head through a buffered file and then
        # switches to the raw socket, so output arriving in the same read as the head
        # is lost on its side (so it is with dockerd); a real process answers later. Kept as a
        # sleep: the server cannot see when the client switched, and answering late is the case here.
        await asyncio.sleep(0.2)
    await stream.write(hijack.STDERR, b"done\n")
    await stream.close()
    return stream.response


async def _exec_start(request):
    spec = await request.json()  # the body comes before the upgraded bytes
    stream = await hijack.upgrade(request, tty=bool(spec.get("Tty")))
    await stream.write(hijack.STDOUT, json.dumps(spec).encode())
    await stream.close()
    return stream.response


async def _inspect(request):
    # The SDK's attach() inspects the container first to learn whether it has a TTY.
    return web.json_response({"Id": request.match_info["id"], "Config": {"Tty": False}})


@contextlib.asynccontextmanager
async def _server():
    app = web.Application()
    app.router.add_post("/v1.41/containers/{id}/attach", _attach)
    app.router.add_post("/v1.41/exec/{id}/start", _exec_start)
    app.router.add_get("/v1.41/containers/{id}/json", _inspect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def _request(path, headers=(), body=b""):
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "User-Agent: Docker-Client/24.0.7 (linux)"]
    lines += list(headers)
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


_UPGRADE = ("Connection: Upgrade", "Upgrade: tcp")


def _exchange(port, request, stdin=b"", split=True):
    """What the docker CLI does: request, read the head, write stdin, CloseWrite, read to EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if split:
            sock.sendall(request)
        else:
            sock.sendall(request + stdin)  # stdin already behind the head, in the same segment
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before the response head: {received!r}"
            received += chunk
        head, rest = received.split(b"\r\n\r\n", 1)
        if split and stdin:
            sock.sendall(stdin)
        sock.shutdown(socket.SHUT_WR)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    status, *header_lines = head.decode().split("\r\n")
    headers = {}
    for line in header_lines:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def _frames(data):
    frames = []
    while data:
        kind, size = struct.unpack(">BxxxL", data[:8])
        frames.append((kind, data[8:8 + size]))
        data = data[8 + size:]
    return frames


async def _in_thread(func, *args):
    return await asyncio.to_thread(func, *args)


def test_frame_header_is_stdcopy():
    assert hijack.frame(1, b"hi") == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    assert hijack.frame(2, b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"


def test_upgrade_answers_101_and_streams_raw_both_ways():
    async def scenario():
        async with _server() as port:
            request = _request("/v1.41/containers/c1/attach?stream=1&stdin=1&stdout=1&stderr=1", _UPGRADE)
            return await _in_thread(_exchange, port, request, b"hello\nworld\n")

    status, headers, body = asyncio.run(scenario())
    assert status == "HTTP/1.1 101 UPGRADED"
    assert headers["content-type"] == hijack.MULTIPLEXED
    assert headers["connection"] == "Upgrade" and headers["upgrade"] == "tcp"
    assert "transfer-encoding" not in headers and "content-length" not in headers
    frames = _frames(body)
    assert b"".join(data for kind, data in frames if kind == 1) == b"hello\nworld\n"
    assert frames[-1] == (2, b"done\n")


def test_stdin_sent_with_the_request_head_is_kept_by_the_python_parser(monkeypatch):
    # Only aiohttp's pure-Python parser treats "Upgrade: tcp" as an upgrade and keeps
    # the bytes behind the head (see hijack's module docstring); they must reach read().
    monkeypatch.setattr(web_protocol, "HttpRequestParser", http_parser.HttpRequestParserPy)

    async def scenario():
        async with _server() as port:
            request = _request("/v1.41/containers/c1/attach?stream=1&stdin=1", _UPGRADE)
            return await _in_thread(_exchange, port, request, b"early bytes", False)

    status, _headers, body = asyncio.run(scenario())
    assert status.startswith("HTTP/1.1 101")
    assert b"".join(data for kind, data in _frames(body) if kind == 1) == b"early bytes"


def test_tty_stream_is_raw_bytes():
    async def scenario():
        async with _server() as port:
            request = _request("/v1.41/containers/c1/attach?stream=1&stdin=1&tty=1", _UPGRADE)
            return await _in_thread(_exchange, port, request, b"abc")

    status, headers, body = asyncio.run(scenario())
    assert status.startswith("HTTP/1.1 101")
    assert headers["content-type"] == hijack.RAW
    assert body == b"abcdone\n"


def test_without_upgrade_header_answers_200_unchunked():
    async def scenario():
        async with _server() as port:
            request = _request("/v1.41/containers/c1/attach?stream=1&stdin=1")
            return await _in_thread(_exchange, port, request, b"old client")

    status, headers, body = asyncio.run(scenario())
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == hijack.MULTIPLEXED
    assert "transfer-encoding" not in headers
    assert _frames(body) == [(1, b"old client"), (2, b"done\n")]


def test_exec_start_body_is_read_before_the_upgrade():
    async def scenario():
        async with _server() as port:
            body = json.dumps({"Detach": False, "Tty": False}).encode()
            request = _request("/v1.41/exec/e1/start", _UPGRADE, body)
            return await _in_thread(_exchange, port, request)

    status, _headers, body = asyncio.run(scenario())
    assert status.startswith("HTTP/1.1 101")
    assert json.loads(_frames(body)[0][1]) == {"Detach": False, "Tty": False}


def _sdk_attach(port):
    client = docker.APIClient(base_url=f"tcp://127.0.0.1:{port}", version="1.41", timeout=10)
    try:
        # High level: the SDK reads the hijacked socket itself and demultiplexes it.
        output = client.attach("c1", stdout=True, stderr=True, stream=False, demux=True)
        # Low level: the socket helpers `docker run -i`-style code uses.
        sock = client.attach_socket("c1", params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        raw = getattr(sock, "_sock", sock)
        raw.sendall(b"via sdk socket")
        raw.shutdown(socket.SHUT_WR)
        frames = list(docker_socket.frames_iter(sock, tty=False))
        sock.close()
        return output, frames
    finally:
        client.close()


def test_docker_sdk_attach_and_socket_helpers():
    async def scenario():
        async with _server() as port:
            return await _in_thread(_sdk_attach, port)

    output, frames = asyncio.run(scenario())
    assert output == (None, b"done\n")
    assert frames == [(1, b"via sdk socket"), (2, b"done\n")]


def test_client_gone_is_seen_by_read_and_write():
    seen = {}

    async def handler(request):
        stream = await hijack.upgrade(request, tty=False)
        seen["read"] = await stream.read()

        async def refused():
            try:
                await stream.write(hijack.STDOUT, b"too late")
            except ConnectionError:
                return True
            return False
        # A full close looks like a half-close until a write meets the reset, as with dockerd.
        try:
            await until_async(refused, "a write to meet the client's reset", timeout=10)
            seen["write"] = "refused"
        except WaitTimeout as exc:  # raised here it would only become a 500 nobody reads
            seen["write"] = str(exc)
        seen["disconnected"] = stream.disconnected
        return stream.response

    def client(port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(_request("/v1.41/containers/c1/attach?stream=1&stdin=1", _UPGRADE))
            assert sock.recv(65536).startswith(b"HTTP/1.1 101")

    async def scenario():
        app = web.Application()
        app.router.add_post("/v1.41/containers/{id}/attach", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            await _in_thread(client, runner.addresses[0][1])
            await until_async(lambda: "write" in seen, "the handler's writes after the client left to end")
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
    assert seen == {"read": b"", "disconnected": True, "write": "refused"}
