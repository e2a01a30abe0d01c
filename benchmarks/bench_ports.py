# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A published port (``docker run -p``): MB/s and connections/s through it, side by side with the same server
reached directly on loopback.

Everything runs locally: vcsim, a local registry with busybox, a VCH's endpoint and the host emulator running
the real tether. A container runs busybox httpd serving a file of ``--mb`` MiB and a 6-byte one, published with
``-p``; each GET through the published port is one TCP connection to the endpoint, one direct-tcpip channel of
the container's tether connection, and the tether's connection to httpd inside the container. The peer: the
same busybox httpd serving the same files on this host's loopback, no endpoint between (what the relay costs).
Prints, for each: the big file's MB/s (best and median of ``--rounds``), and sequential and ``--parallel``
connections/s of the small one; for the published port also the CPU seconds per GiB of the two processes
the relay adds (the endpoint; the container VM's processes, which is the tether: busybox httpd's
per-connection children are reaped unaccounted), which hold under load when MB/s do not.

    python3 benchmarks/bench_ports.py [--mb 64] [--rounds 5] [--connections 200] [--parallel 8]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".build" / "collections"
sys.path[:0] = [str(COLLECTIONS)]
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(COLLECTIONS), os.environ.get("PYTHONPATH")]))

from ansible_collections.vic.containers.tools.harness.vcsim import Simulator  # noqa: E402
from ansible_collections.vic.containers.tools.harness.emulator import Emulator  # noqa: E402
from ansible_collections.vic.containers.tools.harness.endpoint import (Endpoint, deploy, docker_cli,  # noqa: E402
                                                                       free_port)
from ansible_collections.vic.containers.tools.harness.registry import Registries  # noqa: E402
from ansible_collections.vic.containers.tools.harness.waiting import until  # noqa: E402

NAME = "bench-ports"
BUSYBOX = "/bin/busybox"
SERVE = ("mkdir -p {root} && echo hello > {root}/small && dd if=/dev/zero of={root}/big bs=1M count={mb} 2>/dev/null"
         " && exec {busybox}httpd -f -p {listen} -h {root}")


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d/%s" % (port, path), timeout=60) as answer:
        total = 0
        while True:
            chunk = answer.read(1 << 20)
            if not chunk:
                return total
            total += len(chunk)


def cpu_seconds(pids):
    """utime + stime (and of reaped children) of ``pids`` (those still there), from /proc."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid, encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(n) for n in fields[11:15])     # and its reaped children's: httpd forks per connection
    return total / os.sysconf("SC_CLK_TCK")


def throughput(port, mb, rounds):
    """MB/s of each GET of the big file."""
    figures = []
    for _unused in range(rounds):
        start = time.perf_counter()
        size = get(port, "big")
        figures.append(size / (1 << 20) / (time.perf_counter() - start))
        if size != mb << 20:
            raise RuntimeError("got %d bytes, not %d" % (size, mb << 20))
    return figures


def connections(port, count, parallel):
    """Connections/s of ``count`` GETs of the small file, ``parallel`` at a time."""
    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        sizes = list(pool.map(lambda _i: get(port, "small"), range(count)))
    if sizes != [6] * count:
        raise RuntimeError("a small GET failed: %s" % sizes[:5])
    return count / (time.perf_counter() - start)


def measure(label, port, args, on_path):
    """``on_path``: {name: function giving the pids} of the processes whose CPU per GiB is shown."""
    before = {name: cpu_seconds(pids()) for name, pids in on_path.items()}
    mbs = throughput(port, args.mb, args.rounds)
    gib = args.mb * args.rounds / 1024
    cpu = ", ".join("%s %.2f" % (name, (cpu_seconds(pids()) - before[name]) / gib) for name, pids in on_path.items())
    sequential = connections(port, args.connections, 1)
    parallel = connections(port, args.connections, args.parallel)
    print("%-34s %7.1f MB/s best, %7.1f median%s | %5.0f conn/s sequential, %5.0f %d at a time"
          % (label, max(mbs), statistics.median(mbs), " (CPU s/GiB: %s)" % cpu if cpu else "", sequential, parallel,
             args.parallel))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, Simulator() as sim:
        sim.start()
        registries = Registries(Path(scratch) / "registries")
        emulator = Emulator(sim, tether_python="host", log_level="INFO")
        endpoint = peer = None
        try:
            certs = Path(scratch) / "certs"
            deploy(sim, NAME, certs, registry={"ca_certs": [str(registries.ca.ca_path)], "insecure": [],
                                               "whitelist": []})
            endpoint = Endpoint(sim, NAME)
            vch = {"certs": certs, "host": "tcp://127.0.0.1:%d" % endpoint.port}
            image = registries.get("anonymous").host + "/library/busybox"
            if docker_cli(vch, "pull", image, timeout=300).returncode != 0:
                raise RuntimeError("pull failed")
            published = free_port()
            command = SERVE.format(root="/www", mb=args.mb, busybox="", listen="80")
            ran = docker_cli(vch, "run", "-d", "--name", "httpd", "-p", "127.0.0.1:%d:80" % published, image,
                             "sh", "-c", command, timeout=120)
            if ran.returncode != 0:
                raise RuntimeError("docker run failed: %s" % ran.stderr)
            until(lambda: _answers(published), "httpd through the published port", timeout=120)
            direct = free_port()
            root = Path(scratch) / "www"
            peer = subprocess.Popen(["sh", "-c", SERVE.format(root=root, mb=args.mb, busybox=BUSYBOX + " ",
                                                              listen="127.0.0.1:%d" % direct)])
            until(lambda: _answers(direct), "the peer httpd", timeout=60)
            print("GET of a %d MiB file (%d rounds), %d GETs of a 6-byte file; busybox httpd, this host's CPUs shared"
                  % (args.mb, args.rounds, args.connections))
            measure("published port (endpoint + tether)", published, args,
                    {"endpoint": lambda: [endpoint.proc.pid], "tether": emulator.processes})
            measure("peer: the same httpd on loopback", direct, args, {})
            docker_cli(vch, "rm", "-f", "httpd", timeout=120)
        finally:
            if peer is not None:
                peer.kill()
                peer.wait()
            if endpoint is not None:
                endpoint.stop()
            print("left behind on the host: %s" % (emulator.finish()[0] or "nothing"))
            registries.close()


def _answers(port):
    try:
        return get(port, "small") == 6
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
