# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``docker run --rm busybox true`` end to end under the host emulator, and parallel ``docker run -d``.

Everything runs locally: vcsim, a local registry with busybox, a VCH's endpoint and the host
emulator running the real tether. Prints p50 / p90 of N sequential ``docker run --rm busybox
true`` (the docker CLI's whole run: create, start, attach, the process, exit, remove), then
starts P ``docker run -d busybox true`` at once and prints how many failed, then a start
storm of S containers that each print their name and exit, ``docker run -d`` B at a time
(tools/harness/emulator.py ``start_storm``, as the storm test runs it): failures (a run,
an exit code or an output not as expected), p50 / p90 of the ``docker run -d`` calls, the
wall time until all had ended; and whether anything was left behind on the host. Side by
side: the issue's figures for VIC and for a runc-based Docker (not measurable here: no
Docker engine runs on these machines).

    python3 benchmarks/bench_run.py [--runs 20] [--parallel 10] [--storm 100] [--batch 10] [--tether-python host|iso]

``iso``: the tether from the ISO built from this tree (cached by its inputs), as the VMs boot it.
"""

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".build" / "collections"
sys.path[:0] = [str(COLLECTIONS)]
# The endpoint and emulator processes import the collection the same way.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(COLLECTIONS), os.environ.get("PYTHONPATH")]))

from ansible_collections.vic.containers.tools.harness.vcsim import Simulator  # noqa: E402
from ansible_collections.vic.containers.services.tether import iso  # noqa: E402
from ansible_collections.vic.containers.tools.harness.emulator import Emulator, install_tether_iso, start_storm  # noqa: E402
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli  # noqa: E402
from ansible_collections.vic.containers.tools.harness.registry import Registries  # noqa: E402
from ansible_collections.vic.containers.tools.harness.waiting import until  # noqa: E402

NAME = "bench-run"
TEMPLATE_MADE = re.compile(r"read-write disk template \S+ \S+ made in ([0-9.]+) s")
PEERS = "VIC: 13 s; runc-based Docker: 0.2-0.5 s (issue 11's figures, not measured here)"


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def sequential_runs(vch, image, count):
    seconds = []
    for _unused in range(count):
        start = time.perf_counter()
        ran = docker_cli(vch, "run", "--rm", image, "true", timeout=120)
        seconds.append(time.perf_counter() - start)
        if ran.returncode != 0:
            raise RuntimeError("docker run failed: %s" % ran.stderr)
    return seconds


def parallel_runs(vch, image, count):
    """Failures among ``count`` ``docker run -d`` started at once, once each container has ended."""
    def run(index):
        return docker_cli(vch, "run", "-d", "--name", "par-%d" % index, image, "true", timeout=300)
    with ThreadPoolExecutor(count) as pool:
        results = list(pool.map(run, range(count)))
    failures = [r.stderr.strip() for r in results if r.returncode != 0]
    for index, result in enumerate(results):
        if result.returncode == 0:
            until(lambda i=index: docker_cli(vch, "wait", "par-%d" % i, timeout=120).returncode == 0,
                  "par-%d to end" % index, timeout=300)
    docker_cli(vch, "rm", "-f", *("par-%d" % i for i in range(count)), timeout=300)
    return failures


def storm(vch, image, count, batch):
    results, wall = start_storm(vch, image, count, batch)
    seconds = [result["seconds"] for result in results.values()]
    failures = [(name, result) for name, result in results.items()
                if result["run"][0] != 0 or result["exit"] != 0 or result["output"] != name + "\n"]
    print("start storm, %d docker run -d (%d at a time) that each print and exit: %d failures; docker run -d "
          "p50 %.2f s, p90 %.2f s; %.1f s until all had ended with their output"
          % (count, batch, len(failures), statistics.median(seconds), percentile(seconds, 0.9), wall))
    for name, result in failures[:5]:
        print("  failure: %s %s" % (name, result))
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=10)
    parser.add_argument("--storm", type=int, default=100)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--tether-python", choices=("host", "iso"), default="host")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, Simulator() as sim:
        sim.start()
        registries = Registries(Path(scratch) / "registries")
        emulator = Emulator(sim, tether_python=args.tether_python, log_level="INFO")
        endpoint = None
        try:
            certs = Path(scratch) / "certs"
            deploy(sim, NAME, certs, registry={"ca_certs": [str(registries.ca.ca_path)], "insecure": [],
                                               "whitelist": []})
            if args.tether_python == "iso":
                install_tether_iso(sim, NAME, iso.build(Path(scratch) / "tether.iso").path)
            endpoint = Endpoint(sim, NAME)
            vch = {"certs": certs, "host": "tcp://127.0.0.1:%d" % endpoint.port}
            image = registries.get("anonymous").host + "/library/busybox"
            pulled = docker_cli(vch, "pull", image, timeout=300)
            if pulled.returncode != 0:
                raise RuntimeError("pull failed: %s" % pulled.stderr)
            docker_cli(vch, "run", "--rm", image, "true", timeout=120)  # warm: the first run loads caches
            # The first create started the read-write disk template's making (a one-shot format VM): the runs
            # timed below get children of it, as every container does once it is made.
            until(lambda: TEMPLATE_MADE.search(endpoint.log()), "the read-write disk template", timeout=300)
            print("read-write disk template (format VM, once per VCH): made in %s s"
                  % TEMPLATE_MADE.search(endpoint.log()).group(1))
            seconds = sequential_runs(vch, image, args.runs)
            print("docker run --rm busybox true, %d runs (tether: %s python): p50 %.2f s, p90 %.2f s, "
                  "mean %.2f s, max %.2f s" % (args.runs, args.tether_python, statistics.median(seconds),
                                               percentile(seconds, 0.9), statistics.mean(seconds), max(seconds)))
            print("  side by side: %s" % PEERS)
            start = time.perf_counter()
            failures = parallel_runs(vch, image, args.parallel)
            print("%d parallel docker run -d busybox true: %d failures (%.1f s until all had ended)"
                  % (args.parallel, len(failures), time.perf_counter() - start))
            for failure in failures[:5]:
                print("  failure: %s" % failure)
            if args.storm and storm(vch, image, args.storm, args.batch):
                # A lost container end is rare (~1 in 100 under load): keep what the emulator said, to find why.
                kept = Path(tempfile.mkstemp(prefix="bench-run-emulator-", suffix=".log")[1])
                kept.write_text(emulator.log())
                print("  the emulator's log is kept in %s" % kept)
        finally:
            if endpoint is not None:
                endpoint.stop()
            print("left behind on the host: %s" % (emulator.finish()[0] or "nothing"))
            registries.close()


if __name__ == "__main__":
    sys.exit(main())
