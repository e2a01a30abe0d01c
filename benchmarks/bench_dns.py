# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the tether's embedded DNS server (services/tether/agent/dns_server.py) answers per second, and how fast,
side by side with the /etc/hosts look-ups containers had before it.

It runs in network and mount namespaces of its own (``unshare``, as root: nothing leaves them, nothing is left),
as a container VM is: ``lo`` up, the server at 127.0.0.11:53 in a process of its own with PEERS peers, a test
upstream at 127.0.0.53:53 (tools/harness/dns_upstream.py) for the forwarded name. It prints queries/s (one
question at a time) and p50 / p99 latency of:

* a peer name and a forwarded name asked over UDP by a plain socket (what a stub resolver sends);
* a peer name through the C library's ``getaddrinfo`` (AF_INET), once by DNS (resolv.conf naming 127.0.0.11,
  an /etc/hosts without the peers) and once from an /etc/hosts that lists them (the tether's, before);
* the first question, which imports dnspython.

    sudo PYTHONPATH=.build/collections python3 benchmarks/bench_dns.py [--queries 3000] [--peers 100]
"""

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

SERVER, UPSTREAM = "127.0.0.11", "127.0.0.53"
_SERVE = """
import asyncio, sys
from ansible_collections.vic.containers.services.tether.agent import dns_server
async def main(peers):
    server = dns_server.Server([%r])
    server.update([("10.0.%%d.%%d" %% (i // 250, i %% 250 + 2), ["peer%%d" %% i, "alias%%d" %% i]) for i in range(peers)])
    await server.start(dns_server.bind())
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main(int(sys.argv[1])))
""" % UPSTREAM
_UPSTREAM = """
import time
from ansible_collections.vic.containers.tools.harness.dns_upstream import Upstream
Upstream(%r, 53, {"outside.test": "10.9.8.7"})
print("ready", flush=True)
time.sleep(3600)
""" % UPSTREAM


def question(name, ident=0x4242):
    """A stub resolver's A question for ``name``, recursion desired."""
    wire = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        wire += bytes([len(label)]) + label.encode()
    return wire + b"\0" + struct.pack("!HH", 1, 1)


def timed(ask, count):
    """(queries/s, p50 ms, p99 ms) of ``count`` calls of ``ask`` one after another."""
    times = []
    started = time.perf_counter()
    for _number in range(count):
        begun = time.perf_counter()
        ask()
        times.append(time.perf_counter() - begun)
    wall = time.perf_counter() - started
    cuts = statistics.quantiles(times, n=100)
    return count / wall, cuts[49] * 1000, cuts[98] * 1000


def udp_asker(name):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(10)
    sock.connect((SERVER, 53))
    wire = question(name)

    def ask():
        sock.send(wire)
        reply = sock.recv(4096)
        assert reply[:2] == wire[:2] and struct.unpack("!H", reply[6:8])[0] >= 1, reply
    return ask


def libc_asker(name):
    def ask():
        assert socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    return ask


def started(code, *args):
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("a helper process did not start")
    return proc


def inside(args):
    """The measurements, in the namespaces: lo up, the files bound over /etc's, the server and upstream started."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    scratch = tempfile.mkdtemp(prefix="bench-dns-")
    files = {name: os.path.join(scratch, name) for name in ("resolv.conf", "hosts", "hosts-with-peers", "nsswitch.conf")}
    with open(files["resolv.conf"], "w", encoding="ascii") as file:
        file.write("nameserver %s\noptions ndots:0\n" % SERVER)
    with open(files["hosts"], "w", encoding="ascii") as file:
        file.write("127.0.0.1\tlocalhost\n")
    with open(files["hosts-with-peers"], "w", encoding="ascii") as file:
        lines = ["10.0.%d.%d\tpeer%d alias%d\n" % (i // 250, i % 250 + 2, i, i) for i in range(args.peers)]
        file.write("127.0.0.1\tlocalhost\n" + "".join(lines))
    with open(files["nsswitch.conf"], "w", encoding="ascii") as file:
        file.write("hosts: files dns\n")
    mounted = []
    for name in ("resolv.conf", "hosts", "nsswitch.conf"):
        subprocess.run(["mount", "--bind", files[name], "/etc/" + name], check=True)
        mounted.append("/etc/" + name)
    helpers = [started(_UPSTREAM)]
    try:
        peer = "peer%d" % (args.peers // 2)
        helpers.append(started(_SERVE, str(args.peers)))
        first = time.perf_counter()
        udp_asker(peer)()
        first = (time.perf_counter() - first) * 1000
        rows = [("peer name, DNS over UDP", timed(udp_asker(peer), args.queries)),
                ("forwarded name, DNS over UDP", timed(udp_asker("outside.test"), args.queries)),
                ("peer name, getaddrinfo by DNS", timed(libc_asker(peer), args.queries))]
        subprocess.run(["mount", "--bind", files["hosts-with-peers"], "/etc/hosts"], check=True)
        mounted.append("/etc/hosts")
        rows.append(("peer name, getaddrinfo by /etc/hosts", timed(libc_asker(peer), args.queries)))
    finally:
        for helper in helpers:
            helper.kill()
            helper.wait()
        for target in reversed(mounted):
            subprocess.run(["umount", target], check=True)
        for name in files.values():
            os.unlink(name)
        os.rmdir(scratch)
    print("%d peers, %d questions each, one at a time; the first question (imports dnspython): %.1f ms; load %.2f"
          % (args.peers, args.queries, first, os.getloadavg()[0]))
    print("%-40s %12s %10s %10s" % ("", "queries/s", "p50 (ms)", "p99 (ms)"))
    for label, (rate, p50, p99) in rows:
        print("%-40s %12.0f %10.3f %10.3f" % (label, rate, p50, p99))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--queries", type=int, default=3000)
    parser.add_argument("--peers", type=int, default=100)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside(args)
        return
    if os.geteuid() != 0:
        raise SystemExit("needs root: it runs in network and mount namespaces of its own (unshare)")
    subprocess.run(["unshare", "--net", "--mount", "--fork", "--", sys.executable, os.path.abspath(__file__), "--inside",
                    "--queries", str(args.queries), "--peers", str(args.peers)], check=True)


if __name__ == "__main__":
    main()
