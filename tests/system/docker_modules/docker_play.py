"""Run the Docker modules through ansible-playbook with module_defaults of group/vic.containers.docker,
and count the Docker API requests they make through a TLS proxy in front of the endpoint."""

import re
import socket
import ssl
import threading

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
    requests are read from the decrypted stream. Threads end when ``close()`` closes
    the sockets."""

    def __init__(self, certs, target_port):
        self.target_port = target_port
        self.requests = []
        self._lock = threading.Lock()
        self._server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        admin = certs / "admin"     # the server's files are not in the client's DOCKER_CERT_PATH
        self._server_ctx.load_cert_chain(str(admin / "server-cert.pem"), str(admin / "server-key.pem"))
        self._client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._client_ctx.load_verify_locations(str(certs / "ca.pem"))
        self._client_ctx.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def reset(self):
        with self._lock:
            self.requests = []

    def _accept(self):
        while True:
            try:
                raw, _addr = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, raw):
        try:
            client = self._server_ctx.wrap_socket(raw, server_side=True)
            upstream = self._client_ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.target_port)),
                                                    server_hostname="127.0.0.1")
        except (OSError, ssl.SSLError):
            raw.close()
            return
        self._sockets += [client, upstream]
        back = threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True)
        self._threads.append(back)
        back.start()
        self._pipe(client, upstream, True)

    def _pipe(self, source, sink, count):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if count:
                    with self._lock:
                        self.requests.extend((m.decode(), p.decode()) for m, p in _REQUEST_LINE.findall(data))
                sink.sendall(data)
        except (OSError, ssl.SSLError):
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that close() alone would not
        except OSError:
            pass
        self._listener.close()
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)
        assert not [t for t in self._threads if t.is_alive()], "proxy threads left running"
