# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Docker modules against community.docker's: 20 containers with volumes and a network, first run and re-run.

One VCH on vcsim with its endpoint (and, with ``--emulator``, the host emulator running the
containers' tethers), a local registry holding busybox, and a TLS proxy in front of the endpoint
that counts the Docker API requests (tests/system/docker_modules/docker_play.CountingProxy). Two
generated playbooks do the same thing on the same endpoint under different names:

* vic.containers: ``vic_network``, 20 ``vic_volume``,
  20 ``vic_container`` (image, command, env, labels, a named volume, the network, memory, started);
* community.docker: ``docker_network``, 20 ``docker_volume``, 20 ``docker_container`` with the
  same options.

Each side runs once on an empty VCH (vic, then community.docker), then re-runs in ``--reruns``
alternating rounds (the median round is shown, and the targets compare medians: on a shared
machine one round's difference is mostly noise). A callback plugin marks when each task starts,
so the requests the proxy saw are counted per task. Prints the wall and CPU time of each run (CPU:
ansible-playbook and all it ran, steadier than wall time under others' load) and, per kind of
task, the mean seconds and the mean / max requests, side by side, and checks the targets: a
no-change container task costs at most 2 requests, and the re-run is no slower than
community.docker's.

community.docker comes from the ``ansible`` package on PyPI (``pip download``, cached in
.build/bench/) and is unpacked into the benchmark's own collections path (.build/bench/collections),
never into the tests' one.

    python3 benchmarks/bench_docker_modules.py [--containers 20] [--reruns 3] [--emulator]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".build" / "collections"
BENCH = REPO / ".build" / "bench"
PEER_COLLECTIONS = BENCH / "collections"
ANSIBLE_PACKAGE = "ansible>=11,<12"  # community.docker 4.x, which runs on the ansible-core we test with
sys.path[:0] = [str(COLLECTIONS), str(REPO / "tests" / "system" / "docker_modules")]
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(COLLECTIONS), os.environ.get("PYTHONPATH")]))

from ansible_collections.vic.containers.tools.harness.vcsim import Simulator  # noqa: E402
from ansible_collections.vic.containers.tools.harness.emulator import Emulator  # noqa: E402
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli  # noqa: E402
from ansible_collections.vic.containers.tools.harness.playbook import CLIENT_VARIABLES  # noqa: E402
from ansible_collections.vic.containers.tools.harness.registry import Registries  # noqa: E402

from docker_play import CountingProxy  # noqa: E402

NAME = "bench-dm"

# Marks each task's start (and the play's end) in the file BENCH_MARKS names: requests between two
# marks belong to the first task. Results say whether the task changed or failed.
CALLBACK = '''
import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_marks"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, record):
        with open(os.environ["BENCH_MARKS"], "a") as handle:
            handle.write(json.dumps(record) + "\\n")

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._write({"start": time.time(), "task": task.get_name()})

    def v2_runner_on_ok(self, result):
        self._write({"task": result.task_name, "changed": bool(result._result.get("changed"))})

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write({"task": result.task_name, "failed": str(result._result.get("msg", ""))[:300]})

    def v2_playbook_on_stats(self, stats):
        self._write({"start": time.time(), "task": "END"})
'''


def community_docker():
    """The collections path holding community.docker, unpacked from the ``ansible`` wheel on first use."""
    target = PEER_COLLECTIONS / "ansible_collections" / "community" / "docker"
    if (target / "MANIFEST.json").exists():
        return PEER_COLLECTIONS
    wheels = BENCH / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    if not list(wheels.glob("ansible-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d",
                        str(wheels), ANSIBLE_PACKAGE], check=True)
    wheel = sorted(wheels.glob("ansible-*.whl"))[-1]
    prefix = "ansible_collections/community/docker/"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(PEER_COLLECTIONS, [m for m in archive.namelist() if m.startswith(prefix)])
    return PEER_COLLECTIONS


def playbooks(image, count):
    """The two plays: {side: (module_defaults group, tasks)}, the same objects under each side's prefix."""
    def containers(side, module):
        return [{"name": "container %d" % i, module: {
            "name": "%s-c%d" % (side, i), "image": image, "state": "started", "command": ["sleep", "3600"],
            "env": {"INDEX": str(i)}, "labels": {"bench": side}, "volumes": ["%s-v%d:/data" % (side, i)],
            "networks": [{"name": side + "-net"}], "memory": "512M"}} for i in range(count)]

    def volumes(module):
        return lambda side: [{"name": "volume %d" % i, module: {"name": "%s-v%d" % (side, i), "labels": {"bench": side}}}
                             for i in range(count)]

    vic_network = {"name": "network", "vic.containers.vic_network": {"name": "vic-net"}}
    peer_network = {"name": "network", "community.docker.docker_network": {"name": "cd-net"}}
    return {
        "vic": ("group/vic.containers.docker",
                [vic_network] + volumes("vic.containers.vic_volume")("vic")
                + containers("vic", "vic.containers.vic_container")),
        "cd": ("group/community.docker.docker",
               [peer_network] + volumes("community.docker.docker_volume")("cd")
               + containers("cd", "community.docker.docker_container")),
    }


def run_play(side, group, tasks, connection, proxy, work, env):
    """Run one play; returns its wall seconds and, per task, (name, seconds, requests, outcome)."""
    marks = Path(work) / ("%s-%d.marks" % (side, time.monotonic_ns()))
    play = [{"name": side, "hosts": "localhost", "gather_facts": False, "connection": "local",
             "module_defaults": {group: connection}, "tasks": tasks}]
    path = Path(work) / ("%s.yml" % side)
    path.write_text(yaml.safe_dump(play))
    proxy.reset()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(["ansible-playbook", "-i", "localhost,", str(path)], cwd=work,
                          env=dict(env, BENCH_MARKS=str(marks)), capture_output=True, text=True, timeout=3600,
                          check=False)
    wall = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of ansible-playbook and everything it ran (waited-for children roll up): on a machine
    # others load, a steadier figure than the wall time.
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    records = [json.loads(line) for line in marks.read_text().splitlines()]
    starts = [r for r in records if "start" in r]
    outcomes = {r["task"]: r for r in records if "start" not in r}
    with proxy._lock:  # pylint: disable=protected-access
        stamps = list(proxy.times)
    tasks_done = []
    for here, following in zip(starts, starts[1:]):
        count = sum(1 for t in stamps if here["start"] <= t < following["start"])
        outcome = outcomes.get(here["task"], {})
        tasks_done.append((here["task"], following["start"] - here["start"], count,
                           "failed: " + outcome["failed"] if "failed" in outcome else
                           ("changed" if outcome.get("changed") else "ok")))
    if done.returncode != 0:
        failed = [t for t in tasks_done if t[3].startswith("failed")]
        raise RuntimeError("%s play failed (%s):\n%s" % (side, failed[:3], done.stdout[-3000:]))
    return wall, tasks_done, cpu


def summary(tasks_done, kind):
    picked = [t for t in tasks_done if t[0].split(" ")[0] == kind]
    if not picked:
        return None
    return (statistics.mean(t[1] for t in picked), statistics.mean(t[2] for t in picked), max(t[2] for t in picked),
            sum(1 for t in picked if t[3] == "changed"), len(picked))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--reruns", type=int, default=3, help="rounds of re-runs, alternating (the median is shown)")
    parser.add_argument("--emulator", action="store_true",
                        help="run the containers' tethers in the host emulator (else a started container VM "
                             "is powered on in vcsim and runs nothing)")
    args = parser.parse_args()
    peer_path = community_docker()
    peer_version = json.loads((peer_path / "ansible_collections/community/docker/MANIFEST.json").read_text())[
        "collection_info"]["version"]
    with tempfile.TemporaryDirectory(prefix="bench-dm-") as scratch, Simulator() as sim:
        sim.start()
        registries = Registries(Path(scratch) / "registries")
        emulator = Emulator(sim, tether_python="host", log_level="INFO") if args.emulator else None
        endpoint = proxy = None
        try:
            certs = Path(scratch) / "certs"
            trust = {"ca_certs": [str(registries.ca.ca_path)], "insecure": [], "whitelist": []}
            summary_ = deploy(sim, NAME, certs, registry=trust)
            endpoint = Endpoint(sim, NAME)
            proxy = CountingProxy(certs, endpoint.port)
            host = "tcp://127.0.0.1:%d" % proxy.port
            connection = dict(summary_["docker_connection"], docker_host=host)
            image = registries.get("anonymous").host + "/library/busybox:latest"
            # Pulled once beforehand: neither side's first run pays for the pull.
            pulled = docker_cli({"certs": certs, "host": host}, "pull", image, timeout=300)
            if pulled.returncode != 0:
                raise RuntimeError("pull failed: %s" % pulled.stderr)
            plays = playbooks(image, args.containers)
            callbacks = Path(scratch) / "callbacks"
            callbacks.mkdir()
            (callbacks / "bench_marks.py").write_text(CALLBACK)
            env = {k: v for k, v in os.environ.items() if k not in CLIENT_VARIABLES}
            env.update(ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([str(COLLECTIONS), str(peer_path)]),
                       ANSIBLE_CALLBACK_PLUGINS=str(callbacks), ANSIBLE_CALLBACKS_ENABLED="bench_marks",
                       ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False",
                       ANSIBLE_INVENTORY_UNPARSED_WARNING="False", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
            runs = {}
            for side in ("vic", "cd"):
                group, tasks = plays[side]
                runs[(side, "first")] = run_play(side, group, tasks, connection, proxy, scratch, env)
            # Re-runs alternate, several rounds: on a shared machine one round's difference is mostly noise.
            reruns = {"vic": [], "cd": []}
            for _round in range(args.reruns):
                for side in ("vic", "cd"):
                    group, tasks = plays[side]
                    reruns[side].append(run_play(side, group, tasks, connection, proxy, scratch, env))
            for side, done in reruns.items():
                runs[(side, "re-run")] = sorted(done, key=lambda run: run[0])[len(done) // 2]
            report(runs, args, peer_version, reruns)
        except RuntimeError:
            if endpoint is not None:
                (BENCH / "endpoint.log").write_text(endpoint.log())
                print("endpoint log: %s" % (BENCH / "endpoint.log"))
            raise
        finally:
            if proxy is not None:
                proxy.close()
            if endpoint is not None:
                endpoint.stop()
            if emulator is not None:
                print("left behind on the host: %s" % (emulator.finish()[0] or "nothing"))
            registries.close()


def report(runs, args, peer_version, reruns):
    columns = [("vic", "first"), ("cd", "first"), ("vic", "re-run"), ("cd", "re-run")]
    world = "host emulator" if args.emulator else "no emulator"
    print("%d containers with a volume each and one network, one VCH endpoint on vcsim (%s), "
          "requests counted at a TLS proxy in front of it" % (args.containers, world))
    print("vic = vic.containers, cd = community.docker %s" % peer_version)
    print()
    header = "%-28s" % "" + "".join("%16s" % ("%s %s" % c) for c in columns)
    print(header)
    print("%-28s" % "play wall time (s)" + "".join("%16.1f" % runs[c][0] for c in columns))
    print("%-28s" % "play CPU time (s)" + "".join("%16.1f" % runs[c][2] for c in columns))
    print("%-28s" % "requests, whole play" + "".join("%16d" % sum(t[2] for t in runs[c][1]) for c in columns))
    for kind, label in (("network", "network task"), ("volume", "volume task"), ("container", "container task")):
        figures = {c: summary(runs[c][1], kind) for c in columns}
        print("%-28s" % (label + ": s (mean)") + "".join("%16.2f" % figures[c][0] for c in columns))
        print("%-28s" % (label + ": requests mean/max")
              + "".join("%16s" % ("%.1f / %d" % (figures[c][1], figures[c][2])) for c in columns))
        print("%-28s" % (label + ": changed") + "".join("%16s" % ("%d of %d" % (figures[c][3], figures[c][4]))
                                                        for c in columns))
    rerun = summary(runs[("vic", "re-run")][1], "container")
    for label, index in (("wall", 0), ("CPU", 2)):
        print("re-run %s times, alternating rounds (s): vic %s; cd %s" % (
            label, ", ".join("%.1f" % run[index] for run in reruns["vic"]),
            ", ".join("%.1f" % run[index] for run in reruns["cd"])))
    print()
    print("target: a no-change container task <= 2 requests: max %d -> %s"
          % (rerun[2], "met" if rerun[2] <= 2 and rerun[3] == 0 else "MISSED"))
    for label, index in (("wall", 0), ("CPU", 2)):
        ours = statistics.median(run[index] for run in reruns["vic"])
        theirs = statistics.median(run[index] for run in reruns["cd"])
        print("target: re-run no slower than community.docker's (median %s time): %.1f s vs %.1f s (%.2fx) -> %s"
              % (label, ours, theirs, ours / theirs, "met" if ours <= theirs else "MISSED"))


if __name__ == "__main__":
    sys.exit(main())
