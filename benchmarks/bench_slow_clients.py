"""Slow and half-sent requests against the endpoint: how long it holds them, and its memory meanwhile and after.

Everything runs locally: vcsim, the endpoint process and raw TLS sockets with the
VCH's client certificate. N connections send half of a request's headers and stop;
N more send their headers and half of a large JSON body (Content-Length says more)
and stop. Printed: the endpoint's resident memory (VmRSS) before, at the peak and
after the connections were closed by the endpoint; the seconds until the last one
was closed (the issue measured connections held 60-130 s, memory 96 -> 216 MB
and not given back); and whether the endpoint answers ``/_ping`` meanwhile.

    python3 benchmarks/bench_slow_clients.py [--connections 50] [--body-mb 2]
"""

import argparse
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".build" / "collections"
sys.path[:0] = [str(COLLECTIONS)]
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(COLLECTIONS), os.environ.get("PYTHONPATH")]))
os.environ.pop("REQUESTS_CA_BUNDLE", None)
os.environ.pop("CURL_CA_BUNDLE", None)

from ansible_collections.vic.containers.tools.harness.vcsim import Simulator, build  # noqa: E402
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, sdk  # noqa: E402

NAME = "bench-slow"


def rss_mb(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tls_socket(certs, port):
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    context.check_hostname = False
    context.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
    return context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=300))


def hold(sock, closed_at, index):
    """Wait until the endpoint closes ``sock``; note when."""
    try:
        while sock.recv(65536):
            pass
    except (OSError, ssl.SSLError):
        pass
    closed_at[index] = time.monotonic()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--body-mb", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-slow-") as folder:
        sim = Simulator(build())
        sim.start(mode="vpx")
        endpoint = None
        try:
            certs = Path(folder) / "certs"
            deploy(sim, NAME, certs)
            endpoint = Endpoint(sim, NAME)
            pid = endpoint.ready["pid"]
            client = sdk({"certs": certs, "host": "tcp://127.0.0.1:%d" % endpoint.port})
            client.ping()
            before = rss_mb(pid)
            socks, closed_at, threads = [], {}, []
            body = b'{"Name": "' + b"x" * int(args.body_mb * 2 ** 20)
            started = time.monotonic()
            for index in range(2 * args.connections):
                sock = tls_socket(certs, endpoint.port)
                if index % 2:
                    sock.sendall(b"POST /v1.43/volumes/create HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
                else:
                    sock.sendall(b"POST /v1.43/volumes/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                                 b"\r\nContent-Length: %d\r\n\r\n" % (2 * len(body)) + body)
                socks.append(sock)
                thread = threading.Thread(target=hold, args=(sock, closed_at, index), daemon=True)
                thread.start()
                threads.append(thread)
            sent = time.monotonic() - started
            peak, pings = rss_mb(pid), []
            while len(closed_at) < len(socks) and time.monotonic() - started < 300:
                ping_started = time.monotonic()
                client.ping()
                pings.append(time.monotonic() - ping_started)
                peak = max(peak, rss_mb(pid))
                time.sleep(0.5)
            last = max(closed_at.values(), default=time.monotonic()) - started
            time.sleep(5)
            after = rss_mb(pid)
            for sock in socks:
                sock.close()
            client.close()
            print("connections: %d half-sent headers + %d half-sent %.1f MB bodies (sent in %.1f s)"
                  % (args.connections, args.connections, args.body_mb, sent))
            print("closed by the endpoint: %d of %d; the last after %.1f s" % (len(closed_at), len(socks), last))
            print("endpoint RSS: %.0f MB before, %.0f MB peak, %.0f MB 5 s after the last close"
                  % (before, peak, after))
            print("/_ping meanwhile: %d answered, slowest %.0f ms" % (len(pings), max(pings or [0]) * 1000))
        finally:
            if endpoint is not None:
                endpoint.stop()
            sim.stop()


if __name__ == "__main__":
    main()
