"""Pull speed into a VCH image store against ``skopeo copy`` of the same image, and what a second
image sharing layers costs.

Everything runs locally: vcsim, a Distribution registry (Debian's docker-registry, TLS with a CA made
here), the endpoint process, the docker CLI and skopeo. For each image, in the same run: ``docker pull``
through the endpoint (registry -> layer disks on the datastore; the image removed again between runs)
against ``skopeo copy docker://... dir:`` (registry -> local files). Ratio = skopeo time / pull time
(target >= 0.8). The phases of each layer a pull stores (download, packing after it, upload of the
disk) come from the endpoint's log. Then a second image sharing the lower layer: the layer bytes it
uploads to the datastore (target: none for the shared layer) and its vSphere round trips, from the
simulator's log.

    python3 benchmarks/bench_pull.py [--large-mb 64] [--repeat 3]
"""

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".build" / "collections"
sys.path[:0] = [str(COLLECTIONS)]
# The endpoint process imports the collection the same way.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(COLLECTIONS), os.environ.get("PYTHONPATH")]))

from ansible_collections.vic.containers.tools.harness.vcsim import Simulator  # noqa: E402
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli, timed  # noqa: E402
from ansible_collections.vic.containers.tools.harness.registry import OciLayout, Registries, busybox_layer, tar_bytes  # noqa: E402

TARGET_RATIO = 0.8
IMAGES = ("busybox", "large", "files", "tiny")
# Judged against the target: an image of ordinary size, a large layer, and many small files as real images
# hold them; "tiny" (the same count of 500-byte files of one repeated line) shows the cost per entry alone.
JUDGED = ("busybox", "large", "files")


def large_layer(size_mb):
    """Incompressible data in a few files: the transfer, not gzip, should dominate."""
    files = [("big", "dir", None, 0o755)]
    per_file = max(1, size_mb // 4)
    for i in range(0, size_mb, per_file):
        files.append(("big/part%d" % i, "file", os.urandom(per_file * 1024 * 1024), 0o644))
    return tar_bytes(files)


def files_layer(count, realistic=True):
    """``count`` small text files in folders of 200, as a package manager's tree is. ``realistic``: 0.5 to 8 KB
    each (4 KB on average, as in language runtimes' and packages' trees), of words that compress about as
    source code does (3x); else 500 bytes of one repeated line, where the entries alone are the cost."""
    rng = random.Random(12)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _unused in range(rng.randint(2, 9)))
             for _unused in range(4000)]
    corpus = " ".join(rng.choice(words) + ("\n" if rng.random() < 0.1 else "") for _unused in range(300000))
    corpus = corpus.encode()
    files = []
    for index in range(count):
        folder = "app/node_modules/pkg%03d" % (index // 200)
        if index % 200 == 0:
            files.append((folder, "dir", None, 0o755))
        if realistic:
            size = rng.randint(512, 8192)
            start = rng.randrange(len(corpus) - size)
            text = corpus[start:start + size]
        else:
            text = (("module.exports = function f%d(x) { return x + %d; };\n" % (index, index)) * 8).encode()
        files.append(("%s/file%05d.js" % (folder, index), "file", text, 0o644))
    return tar_bytes(files)


def skopeo_copy(registry, name, target):
    command = ["skopeo", "--insecure-policy", "copy", "--quiet", "--src-cert-dir", str(registry.ca.cert_dir),
               "docker://%s/library/%s:latest" % (registry.host, name), "dir:%s" % target]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def docker_pull(vch, registry, name):
    result = docker_cli(vch, "pull", "%s/library/%s:latest" % (registry.host, name))
    assert result.returncode == 0, result.stderr
    return result.stdout


def docker_rmi(vch, registry, name):
    result = docker_cli(vch, "rmi", "%s/library/%s:latest" % (registry.host, name))
    assert result.returncode == 0, result.stderr


def compare(vch, sim, registry, name, repeat, scratch):
    """Median seconds of skopeo copy and of docker pull (the image removed between runs), and the
    vSphere SOAP calls and datastore HTTP requests of the last pull."""
    copies, pulls = [], []
    for i in range(repeat):
        target = Path(scratch) / ("%s-%d" % (name, i))
        copies.append(timed(lambda target=target: skopeo_copy(registry, name, target))[0])
        mark = sim.mark()
        pulls.append(timed(lambda: docker_pull(vch, registry, name))[0])
        calls = sim.calls_since(mark)
        docker_rmi(vch, registry, name)
    soap = sum(1 for c in calls if "method" in c)
    http = sum(1 for c in calls if "http" in c)
    return statistics.median(copies), statistics.median(pulls), soap, http


PHASES = re.compile(r"layer (\w+) stored: downloaded in ([\d.]+) s, its disk \((\d+) bytes\) packed ([\d.]+) s "
                    r"after \(CPU: packer ([\d.]+) s, tar2sqfs ([\d.]+) s\), uploaded in ([\d.]+) s")


def layer_phases(log, layout):
    """Median (download, packing after it, upload, packer CPU, tar2sqfs CPU) seconds and the disk size of each
    layer of ``layout``."""
    found = {}
    for match in PHASES.finditer(log):
        found.setdefault(match.group(1), []).append(match.groups()[1:])
    phases = []
    for diff_id in layout.diff_ids:
        runs = found.get(diff_id.split(":")[1], [])
        if runs:
            phases.append(tuple(statistics.median(float(r[i]) for r in runs) for i in (0, 2, 5, 3, 4))
                          + (int(runs[0][1]),))
    return phases


def image_size(layout):
    return sum(d["size"] for d in layout.layers)


def shared_pull(vch, sim, registry):
    """Pull busybox, then shared (same lower layer): what the second pull sent to the datastore."""
    docker_pull(vch, registry, "busybox")
    store = Path(sim.datastores["LocalDS_0"])
    mark = sim.mark()
    seconds = timed(lambda: docker_pull(vch, registry, "shared"))[0]
    calls = sim.calls_since(mark)
    puts = [c["path"] for c in calls if c.get("http") == "PUT"]
    layer_puts = {p: (store / p.split("/folder/", 1)[1]).stat().st_size for p in puts if p.endswith(".vmdk")}
    return {"seconds": seconds, "soap": [c["method"] for c in calls if "method" in c], "http_puts": puts,
            "layer_puts": layer_puts}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large-mb", type=int, default=64, help="size of the large test layer")
    parser.add_argument("--files", type=int, default=20000, help="small files in the files and tiny test layers")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    started_load = " ".join("%.2f" % x for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as scratch, Simulator() as sim:
        sim.start()
        registries = Registries(Path(scratch) / "registries")
        try:
            registry = registries.get("anonymous")
            large = OciLayout(Path(scratch) / "large", "latest", [busybox_layer(), large_layer(args.large_mb)],
                              level=1)
            registries.images.add("large", large)
            registries.images.push(registry, "large")
            for name, realistic in (("files", True), ("tiny", False)):
                many = OciLayout(Path(scratch) / name, "latest", [busybox_layer(), files_layer(args.files, realistic)],
                                 level=6)
                registries.images.add(name, many)
                registries.images.push(registry, name)
            certs = Path(scratch) / "certs"
            summary = deploy(sim, "bench", certs, registry={"ca_certs": [str(registries.ca.ca_path)],
                                                            "insecure": [], "whitelist": []})
            endpoint = Endpoint(sim, "bench")
            vch = {"summary": summary, "certs": certs, "host": "tcp://127.0.0.1:%d" % endpoint.port}
            try:
                rows = []
                for name in IMAGES:
                    copy_s, pull_s, soap, http = compare(vch, sim, registry, name, args.repeat, scratch)
                    rows.append((name, image_size(registries.images[name]), copy_s, pull_s, soap, http))
                shared = shared_pull(vch, sim, registry)
                phases = {name: layer_phases(endpoint.log(), registries.images[name]) for name in IMAGES}
            finally:
                endpoint.stop()
        finally:
            registries.close()
    print("\ndocker pull into the image store vs skopeo copy to a directory (median of %d runs)" % args.repeat)
    header = "%-8s %12s %10s %10s %7s %6s %6s %6s" % (
        "image", "compressed", "skopeo s", "pull s", "ratio", "target", "SOAP", "HTTP")
    print(header)
    print("-" * len(header))
    ok = True
    for name, size, copy_s, pull_s, soap, http in rows:
        judged = name in JUDGED
        ratio = copy_s / pull_s
        ok &= ratio >= TARGET_RATIO or not judged
        verdict = ("ok" if ratio >= TARGET_RATIO else "MISSED") if judged else "(not judged)"
        print("%-8s %10.1fMB %10.3f %10.3f %6.2fx %6s %6d %6d %s"
              % (name, size / 1e6, copy_s, pull_s, ratio, ">=%.1f" % TARGET_RATIO, soap, http, verdict))
    print("\nwhere a pull's time goes, per layer (medians, from the endpoint's log; the CPU seconds of packing do not "
          "depend on the machine's load):")
    for name, layers in phases.items():
        for download, packing, upload, packer_cpu, tar2sqfs_cpu, disk in layers[1:] if name != "busybox" else layers:
            print("  %-8s download %.3f s, disk packed %.3f s after it, upload of the %.1f MB disk %.3f s; "
                  "packing CPU %.3f s in the endpoint + %.3f s in tar2sqfs"
                  % (name, download, packing, disk / 1e6, upload, packer_cpu, tar2sqfs_cpu))
    print("\nload average (1, 5, 15 min) at the start: %s, at the end: %s (two CPUs: above 2 others share them)"
          % (started_load, " ".join("%.2f" % x for x in os.getloadavg())))
    print("\nsecond image sharing the lower layer (shared after busybox): %.3f s" % shared["seconds"])
    base, top = (d.split(":")[1] for d in registries.images["shared"].diff_ids)
    puts = shared["layer_puts"]
    print("  layer files uploaded: %d, %d bytes, all of its own top layer %s...: %s"
          % (len(puts), sum(puts.values()), top[:12], "yes" if all(top in p for p in puts) else "NO"))
    reused = sum(size for path, size in puts.items() if base in path)
    print("  bytes uploaded for the shared lower layer %s...: %d (target 0): %s"
          % (base[:12], reused, "ok" if not reused else "MISSED"))
    ok &= not reused
    print("  SOAP calls: %d (%s); datastore HTTP PUTs: %d"
          % (len(shared["soap"]), ", ".join(shared["soap"]), len(shared["http_puts"])))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
