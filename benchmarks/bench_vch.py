"""vSphere round trips and wall time of VCH create, idempotent re-run, info and absent.

Runs the engine the modules use against vcsim at two inventory sizes, side by
side, and prints a table. Round trips are counted by the simulator's call log
(SOAP calls; datastore HTTP transfers shown apart). Targets from issue 3:
create <= 40, re-run <= 8, info <= 4 SOAP calls, the same at both sizes; absent
(delete_volume_stores: true, with the folders the VCH made above its stores) <= 30.

    python3 benchmarks/bench_vch.py [--large 2000] [--repeat 3]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / ".build" / "collections")]

from ansible_collections.vic.containers.tools.harness.vcsim import Simulator  # noqa: E402
from ansible_collections.vic.containers.plugins.module_utils.vch import engine  # noqa: E402
from ansible_collections.vic.containers.plugins.module_utils.vch.spec import ARGUMENT_SPEC  # noqa: E402
from ansible_collections.vic.containers.plugins.module_utils.vsphere.session import Session  # noqa: E402

TARGETS = {"create": 40, "re-run": 8, "info": 4, "absent": 30}


def params(name, cert_dir, **kw):
    p = {k: v.get("default") for k, v in ARGUMENT_SPEC.items()}
    p.update(name=name, datacenter="DC0", compute="/DC0/host/DC0_C0", image_store="LocalDS_0/" + name,
             volume_stores={"default": "LocalDS_0/volumes-" + name, "backup": "nfs0/vols-" + name},
             public_network_ip="127.0.0.9/8", tls={"cert_path": str(Path(cert_dir) / name)},
             container_networks=[{"port_group": "DC0_DVPG0", "name": "services", "gateway": None,
                                  "ip_range": None, "dns": None}])
    p.update(kw)
    return p


def measure(sim, work):
    mark = sim.mark()
    start = time.perf_counter()
    with Session(sim.host, sim.username, sim.password, sim.port, validate_certs=False) as session:
        work(session)
    elapsed = time.perf_counter() - start
    calls = sim.calls_since(mark)
    return sum(1 for c in calls if "method" in c), sum(1 for c in calls if "http" in c), elapsed


def present(p):
    def work(session):
        ctx, plan = engine.plan_present(session, p)
        plan.apply()
        engine.result(ctx, p, False, plan)
    return work


def absent(p):
    def work(session):
        plan = engine.plan_absent(session, dict(p, state="absent", delete_volume_stores=True))[1]
        plan.apply()
    return work


def run_size(repeat, cert_dir, **start):
    rows = {}
    with Simulator() as sim:
        t0 = time.perf_counter()
        sim.start(**start)
        boot = time.perf_counter() - t0
        label = "%d VMs" % count_vms(sim)
        samples = {op: [] for op in TARGETS}
        for i in range(repeat):
            p = params("bench-%d" % i, cert_dir)
            samples["create"].append(measure(sim, present(p)))
            samples["re-run"].append(measure(sim, present(p)))
            samples["info"].append(measure(sim, lambda s: engine.info(s, "DC0")))
            samples["absent"].append(measure(sim, absent(p)))
        for op, values in samples.items():
            rows[op] = (max(v[0] for v in values), max(v[1] for v in values),
                        statistics.median(v[2] for v in values) * 1000)
    return label, boot, rows


def count_vms(sim):
    """The inventory size, counted independently of the engine."""
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim
    si = SmartConnect(**sim.connect_kwargs())
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        count = len(view.view)
        view.DestroyView()
        return count
    finally:
        Disconnect(si)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=2000, help="extra VMs in the large inventory")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cert_dir:
        sizes = [run_size(args.repeat, cert_dir, vms=5),
                 run_size(args.repeat, cert_dir, extra_vms=args.large)]
    print("\nVCH engine against vcsim (median wall time of %d runs; SOAP = round trips, max)" % args.repeat)
    header = "%-10s %-12s %6s %6s %10s %8s" % ("operation", "inventory", "SOAP", "HTTP", "wall ms", "target")
    print(header)
    print("-" * len(header))
    ok = True
    for op, target in TARGETS.items():
        for label, unused, rows in sizes:
            soap, http, ms = rows[op]
            met = soap <= target
            ok &= met
            verdict = "ok" if met else "MISSED"
            print("%-10s %-12s %6d %6d %10.1f %5s %s" % (op, label, soap, http, ms, "<=%d" % target, verdict))
    same = all(sizes[0][2][op][0] == sizes[1][2][op][0] for op in TARGETS)
    print("\nround trips the same at both sizes: %s" % ("yes" if same else "NO"))
    for label, boot, unused in sizes:
        print("simulator start with %s: %.1f s" % (label, boot))
    return 0 if ok and same else 1


if __name__ == "__main__":
    sys.exit(main())
