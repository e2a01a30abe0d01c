"""The VIC registry service against the same Debian docker-registry without it, side by side in one run.

* Push and pull of a one-layer image (``--mb`` MB of incompressible data, 64 by default) with skopeo:
  through the service with token auth (every request proxied, a token per scope) against a
  docker-registry with no auth at all. Ratio = direct time / service time (target >= 0.9). The
  user logged in once before (as ``docker login`` does), so the one bcrypt check is not timed.
* Tokens issued per second: ``--clients`` concurrent keep-alive clients asking /service/token with
  Basic credentials and one repository scope each (target >= 1,000/s on 2 cores). The clients run in
  this process on the same cores.
* Project/member API p50 latency (sequential requests, one client).

    python3 benchmarks/bench_registry.py [--mb 64] [--repeat 3] [--seconds 5] [--clients 16]
"""

import argparse
import asyncio
import base64
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".build" / "collections"
sys.path[:0] = [str(COLLECTIONS)]
# The service process imports the collection the same way.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(COLLECTIONS), os.environ.get("PYTHONPATH")]))

import aiohttp  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.vic.containers.tools.harness.registry import (  # noqa: E402  pylint: disable=wrong-import-position
    OciLayout, Registry, TestCA, tar_bytes)
from ansible_collections.vic.containers.tools.harness.vic_registry import (  # noqa: E402  pylint: disable=wrong-import-position
    ADMIN, PASSWORD, VicRegistry, add_member, make_project, make_user)


def image(folder, megabytes):
    """A one-layer OCI layout of ``megabytes`` of random bytes (a fresh layer each time: nothing is
    already there to skip)."""
    layer = tar_bytes([("blob", "file", os.urandom(megabytes << 20), 0o644)])
    return OciLayout(folder, "latest", [layer], level=1)


def timed(command, home):
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=dict(os.environ, HOME=home))
    if result.returncode:
        raise SystemExit("failed: %s\n%s" % (" ".join(command), result.stderr))
    return time.perf_counter() - started


def push_pull(host, layout, ref, creds, work, between):
    """(push time, pull time); ``between()`` is called after the push."""
    base = ["skopeo", "--insecure-policy", "copy", "--quiet", "--retry-times", "0", "--src-tls-verify=false",
            "--dest-tls-verify=false"]
    push = timed(base + (["--dest-creds", creds] if creds else []) +
                 ["oci:%s:latest" % layout.folder, "docker://%s/%s" % (host, ref)], str(work))
    between()
    target = work / "pulled"
    shutil.rmtree(target, ignore_errors=True)
    pull = timed(base + (["--src-creds", creds] if creds else []) +
                 ["docker://%s/%s" % (host, ref), "dir:%s" % target], str(work))
    shutil.rmtree(target, ignore_errors=True)
    return push, pull


async def token_rate(url, seconds, clients):
    auth = "Basic " + base64.b64encode(b"bench:" + PASSWORD.encode()).decode()
    count = 0
    deadline = time.perf_counter() + seconds

    async def client(session, number):
        nonlocal count
        while time.perf_counter() < deadline:
            scope = "repository:bench/app%d:pull,push" % (number % 4)
            async with session.get(url + "/service/token", params={"service": "vic-registry", "scope": scope},
                                   headers={"Authorization": auth}) as response:
                assert response.status == 200, response.status
                await response.read()
            count += 1
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        # Warm the credential check once (bcrypt), as any client's first login does.
        async with session.get(url + "/service/token", headers={"Authorization": auth}) as response:
            await response.read()
        started = time.perf_counter()
        await asyncio.gather(*(client(session, n) for n in range(clients)))
        return count / (time.perf_counter() - started), count


def cpu_seconds(pid):
    """User + system CPU time of a process so far (all its threads), from /proc."""
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p50(registry, calls, rounds):
    result = {}
    for name, (method, path, body) in calls.items():
        samples = []
        for _round in range(rounds):
            started = time.perf_counter()
            status = registry.api(method, path, ADMIN, body)[0]
            samples.append(time.perf_counter() - started)
            assert status < 300, (name, status)
        result[name] = statistics.median(samples) * 1000
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mb", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--api-rounds", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="service processes (config ``workers``)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        tmp = Path(tmp)
        service = VicRegistry(tmp / "service", expiry=1800, workers=args.workers).start()
        direct = Registry(tmp / "direct", TestCA(tmp / "ca"), "plain").start()
        try:
            make_project(service, "bench")
            make_user(service, "bench")
            add_member(service, "bench", "bench", 2)
            # As after ``docker login``: the credentials were checked once (bcrypt), before the timed pushes.
            service.token(("bench", PASSWORD))
            rows = []
            workers = [service.service.pid] + service.workers()
            # CPU seconds of each process over all pushes and all pulls: what the service adds, whatever
            # else the machine runs (wall times move with the load, these hardly do).
            processes = {"direct": {"docker-registry": [direct.proc.pid]},
                         "service": {"docker-registry": [service.dist.pid], "service": workers}}
            cpu = {(kind, name, step): 0.0 for kind, names in processes.items() for name in names
                   for step in ("push", "pull")}

            def sample(kind):
                return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in processes[kind].items()}

            # One untimed round of a small image first on both: the first requests of a process pay for
            # its lazy imports and caches, which no later push does.
            for kind, host, creds in (("direct", direct.host, None), ("service", service.host, "bench:" + PASSWORD)):
                layout = image(tmp / ("warm-" + kind), 1)
                push_pull(host, layout, "bench/warm:latest", creds, tmp / kind, lambda: None)
                shutil.rmtree(layout.folder)
            for number in range(args.repeat):
                for kind in ("direct", "service"):
                    layout = image(tmp / ("%s-%d" % (kind, number)), args.mb)
                    marks = [sample(kind)]
                    times = push_pull(direct.host if kind == "direct" else service.host, layout,
                                      "bench/app%d:latest" % number, None if kind == "direct" else "bench:" + PASSWORD,
                                      tmp / kind, lambda kind=kind: marks.append(sample(kind)))
                    marks.append(sample(kind))
                    for name in processes[kind]:
                        cpu[kind, name, "push"] += marks[1][name] - marks[0][name]
                        cpu[kind, name, "pull"] += marks[2][name] - marks[1][name]
                    rows.append((kind, number) + times)
                    shutil.rmtree(layout.folder)
            medians = {kind: [statistics.median(r[i] for r in rows if r[0] == kind) for i in (2, 3)]
                       for kind in ("direct", "service")}
            print("push/pull of a %d MB image (skopeo, median of %d; load average %.1f):" % (
                args.mb, args.repeat, os.getloadavg()[0]))
            print("  %-34s push %6.2f s  %6.1f MB/s   pull %6.2f s  %6.1f MB/s" % (
                "docker-registry, no auth", medians["direct"][0], args.mb / medians["direct"][0],
                medians["direct"][1], args.mb / medians["direct"][1]))
            print("  %-34s push %6.2f s  %6.1f MB/s   pull %6.2f s  %6.1f MB/s" % (
                "vic-registry, token auth (proxied)", medians["service"][0], args.mb / medians["service"][0],
                medians["service"][1], args.mb / medians["service"][1]))
            print("  ratio (direct time / service time): push %.2f  pull %.2f  (target >= 0.9)" % (
                medians["direct"][0] / medians["service"][0], medians["direct"][1] / medians["service"][1]))
            # Each round runs direct then service back to back: the median of the rounds' own ratios moves
            # less with the load of a shared machine than the ratio of the medians.
            rounds = list(zip((r[2:] for r in rows if r[0] == "direct"), (r[2:] for r in rows if r[0] == "service")))
            paired = [[direct_times[i] / service_times[i] for direct_times, service_times in rounds] for i in (0, 1)]
            print("  median of each round's ratio:       push %.2f  pull %.2f  (rounds: push %s)" % (
                statistics.median(paired[0]), statistics.median(paired[1]),
                " ".join("%.2f" % ratio for ratio in paired[0])))
            for step in ("push", "pull"):
                print("  CPU per %s: docker-registry alone %.3f s; behind the service: docker-registry %.3f s + "
                      "service %.3f s" % (step, cpu["direct", "docker-registry", step] / args.repeat,
                                          cpu["service", "docker-registry", step] / args.repeat,
                                          cpu["service", "service", step] / args.repeat))
            before = sum(cpu_seconds(pid) for pid in workers)
            rate, count = asyncio.run(token_rate(service.url, args.seconds, args.clients))
            used = sum(cpu_seconds(pid) for pid in workers) - before
            print("tokens issued: %.0f/s wall (%d clients in this process, %.0f s, Basic auth + one scope; "
                  "target >= 1000/s on 2 cores); load average now %.1f"
                  % (rate, args.clients, args.seconds, os.getloadavg()[0]))
            print("  service CPU per token %.2f ms = %.0f tokens per CPU second (%d service processes)" % (
                used / count * 1000, count / used, len(workers)))
            make_user(service, "member1")
            calls = {
                "GET /projects/{name}": ("GET", "/projects/bench", None),
                "GET /projects?q=name=": ("GET", "/projects?q=name%3Dbench", None),
                "GET /projects/{name}/members": ("GET", "/projects/bench/members", None),
                "PUT /projects/{name} metadata": ("PUT", "/projects/bench", {"metadata": {"auto_scan": "false"}}),
            }
            latencies = p50(service, calls, args.api_rounds)
            print("API p50 latency (%d sequential calls each, admin, Basic auth):" % args.api_rounds)
            for name, value in latencies.items():
                print("  %-34s %6.2f ms" % (name, value))
        finally:
            direct.stop()
            service.stop()


if __name__ == "__main__":
    main()
