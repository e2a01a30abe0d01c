# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``docker cp`` out of a stopped container (a maintenance boot of its VM) side by side with one out of a
running container, under the host emulator: the seconds the docker CLI took and the vSphere SOAP calls
made (the live caches' long polls, the endpoint's and the emulator's, counted apart), until the
maintenance boot has ended (its VM off again, after its linger); then N ``docker cp`` back to back out of
the stopped container, which share one boot (the power-ons are counted).

Everything runs locally: vcsim, a local registry with busybox, a VCH's endpoint and the host emulator
running the real tether.

    python3 benchmarks/bench_cp_stopped.py [--repeat 5] [--tether-python host|iso]
"""

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".build" / "collections"
sys.path[:0] = [str(COLLECTIONS)]
# The endpoint and emulator processes import the collection the same way.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(COLLECTIONS), os.environ.get("PYTHONPATH")]))

from ansible_collections.vic.containers.tools.harness.vcsim import Simulator  # noqa: E402
from ansible_collections.vic.containers.services.tether import iso  # noqa: E402
from ansible_collections.vic.containers.tools.harness.emulator import Emulator, install_tether_iso  # noqa: E402
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli  # noqa: E402
from ansible_collections.vic.containers.tools.harness.registry import Registries  # noqa: E402
from ansible_collections.vic.containers.tools.harness.waiting import until  # noqa: E402

NAME = "bench-cp"
LONG_POLL = "WaitForUpdatesEx"


def checked(vch, *args):
    done = docker_cli(vch, *args, timeout=300)
    if done.returncode != 0:
        raise RuntimeError("docker %s failed: %s" % (" ".join(args), done.stderr))
    return done


def measured(sim, emulator, vch, copies, target):
    """(seconds of the ``docker cp`` calls, SOAP methods other than long polls, long polls) until no VM but
    the running container's is on."""
    target.mkdir()
    mark = sim.mark()
    start = time.perf_counter()
    for index in range(copies):
        checked(vch, "cp", "%s:/etc" % vch["which"], str(target / str(index)))
    seconds = time.perf_counter() - start
    until(lambda: len(emulator.processes()) <= vch["running_processes"], "the maintenance boot to end", timeout=120)
    methods = [c["method"] for c in sim.calls_since(mark) if "method" in c]
    others = [m for m in methods if m != LONG_POLL]
    return seconds, others, len(methods) - len(others)


def tally(methods):
    return ", ".join("%s %d" % item for item in collections.Counter(methods).most_common()) or "none"


def report(what, seconds, others, polls):
    print("%s: %.2f s; %d SOAP calls (%s) + %d long polls" % (what, seconds, len(others), tally(others), polls))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
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
            checked(vch, "pull", image)
            checked(vch, "run", "--name", "stopped", image, "true")
            checked(vch, "run", "-d", "--name", "running", image, "sleep", "3600")
            until(lambda: docker_cli(vch, "top", "running").returncode == 0, "the running container's tether")
            until(lambda: len(emulator.processes()) > 0, "the running container's VM")
            vch["running_processes"] = len(emulator.processes())
            target = Path(scratch) / "out"
            target.mkdir()
            vch["which"] = "running"
            measured(sim, emulator, vch, 1, target / "warm")  # warm: the first request loads the endpoint's code
            report("docker cp out of a running container", *measured(sim, emulator, vch, 1, target / "r1"))
            vch["which"] = "stopped"
            report("docker cp out of a stopped container (one maintenance boot, until its VM is off)",
                   *measured(sim, emulator, vch, 1, target / "s1"))
            seconds, others, polls = measured(sim, emulator, vch, args.repeat, target / "s5")
            report("%d docker cp back to back out of a stopped container (%d power-on: one boot shared)"
                   % (args.repeat, others.count("PowerOnVM_Task")), seconds, others, polls)
            vch["which"] = "running"
            report("%d docker cp back to back out of a running container" % args.repeat,
                   *measured(sim, emulator, vch, args.repeat, target / "r5"))
            checked(vch, "rm", "-f", "stopped", "running")
        finally:
            if endpoint is not None:
                endpoint.stop()
            print("left behind on the host: %s" % (emulator.finish()[0] or "nothing"))
            registries.close()


if __name__ == "__main__":
    sys.exit(main())
