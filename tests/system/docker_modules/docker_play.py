"""Run the Docker modules through ansible-playbook with module_defaults of group/vic.containers.docker,
and count the Docker API requests they make through a TLS proxy in front of the endpoint."""

import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

import yaml

_REQUEST_LINE = re.compile(rb"(?:^|\r\n)(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP/1\.[01]\r\n")


def run_tasks(tasks, defaults, check=False, diff=False, extra_env=None, play_vars=None):
    """Run ``tasks`` ([(module, args), ...]) in one play; returns (results, output).

    A failed task does not stop the play, so a test checks the failure and what follows it.
    """
    with tempfile.TemporaryDirectory(prefix="vic-docker-play-") as work:
        play_tasks = []
        for i, (module, args) in enumerate(tasks):
            play_tasks.append({"name": "task %d" % i, module: args, "register": "r%d" % i,
                               "ignore_errors": True, "check_mode": check, "diff": diff})
        out = os.path.join(work, "results.json")
        play_tasks.append({"name": "save results", "delegate_to": "localhost", "check_mode": False,
                           "ansible.builtin.copy": {
                               "dest": out,
                               "content": "{{ [%s] | to_json }}" % ", ".join("r%d" % i for i in range(len(tasks)))}})
        play = [{"hosts": "localhost", "gather_facts": False, "connection": "local", "vars": play_vars or {},
                 "module_defaults": {"group/vic.containers.docker": defaults}, "tasks": play_tasks}]
        path = os.path.join(work, "play.yml")
        with open(path, "w") as handle:
            yaml.safe_dump(play, handle)
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="False", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
        for name in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS", "DOCKER_API_VERSION",
                     "DOCKER_TIMEOUT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            env.pop(name, None)
        env.update(extra_env or {})
        proc = subprocess.run(["ansible-playbook", "-i", "localhost,", path] + (["--diff"] if diff else []),
                              cwd=work, env=env, capture_output=True, text=True, timeout=900, check=False)
        if not os.path.exists(out):
            raise AssertionError("ansible-playbook did not finish:\n%s\n%s" % (proc.stdout, proc.stderr))
        with open(out) as handle:
            return json.load(handle), proc.stdout + proc.stderr


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
        self._server_ctx.load_cert_chain(str(certs / "server-cert.pem"), str(certs / "server-key.pem"))
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
