"""Run the Docker modules through ansible-playbook with module_defaults of group/vic.containers.docker,
and count the Docker API requests they make through a TLS proxy in front of the endpoint."""

import asyncio
import re
import ssl
import threading
import time

from ansible_collections.vic.containers.tools.harness import playbook

_REQUEST_LINE = re.compile(rb"(?:^|\r\n)(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP/1\.[01]\r\n")


def run_tasks(tasks, defaults, check=False, diff=False, extra_env=None, play_vars=None):
    """Run ``tasks`` ([(module, args), ...]) in one play with ``defaults`` as the docker group's
    module_defaults; returns (results, output)."""
    return playbook.run_tasks(None, tasks, check=check, diff=diff, extra_env=extra_env, play_vars=play_vars,
                              module_defaults={"group/vic.containers.docker": defaults})


class CountingProxy:
    """A TLS proxy in front of the endpoint that records each request line it relays.

    It serves the VCH's own server certificate (from its cert folder) and reaches the
    endpoint with the client certificate, so a module sees the VCH itself; the
    requests are read from the decrypted stream. It runs on an asyncio loop in one
    thread: asyncio keeps each TLS connection's state in memory buffers, where two
    threads on one ``ssl`` socket (one reading, one writing), or ``select()`` on one,
    left some connections unanswered (4 in 25 opened right after another closed: the
    benchmark's 60 s read time-outs)."""

    def __init__(self, certs, target_port):
        self.target_port = target_port
        self.requests = []
        self.times = []  # when each request was read (time.time()), parallel to ``requests``
        self._lock = threading.Lock()
        self._server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        admin = certs / "admin"     # the server's files are not in the client's DOCKER_CERT_PATH
        self._server_ctx.load_cert_chain(str(admin / "server-cert.pem"), str(admin / "server-key.pem"))
        self._client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._client_ctx.load_verify_locations(str(certs / "ca.pem"))
        self._client_ctx.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._server_ctx))
        self.port = self._server.sockets[0].getsockname()[1]
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def reset(self):
        with self._lock:
            self.requests = []
            self.times = []

    async def _serve(self, reader, writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port, ssl=self._client_ctx, server_hostname="127.0.0.1")
        except (OSError, ssl.SSLError):
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, upstream_writer, True), self._pipe(upstream_reader, writer, False))

    async def _pipe(self, reader, writer, count):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if count:
                    lines = [(m.decode(), p.decode()) for m, p in _REQUEST_LINE.findall(data)]
                    with self._lock:
                        self.requests.extend(lines)
                        self.times.extend([time.time()] * len(lines))
                writer.write(data)
                await writer.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            # TLS has no half-close: one side done ends the connection, which ends the other pipe.
            writer.close()

    def close(self):
        async def shut():
            self._server.close()
            # A cancelled connection's tasks may start others (a pipe's close): until none is left.
            for _round in range(10):
                pipes = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
                if not pipes:
                    break
                for task in pipes:
                    task.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
                await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        assert not self._thread.is_alive(), "proxy thread left running"
        self._loop.close()
