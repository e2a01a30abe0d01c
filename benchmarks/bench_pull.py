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

What bounds the ratio is printed with it, from the same run: the CPU seconds each side spends (skopeo and
the registry; the endpoint with its tar2sqfs and the registry), the CPU that making this layer's disk
takes at the least (inflating and hashing the blob, tar2sqfs on its tar, nothing else), and a Docker
engine's way as a second peer (skopeo copy, then ``tar -xf`` of each layer into a folder: what dockerd
does after a download).

    python3 benchmarks/bench_pull.py [--large-mb 64] [--repeat 3]
"""

import argparse
import hashlib
import io
import os
import random
import re
import resource
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
# The endpoint process imports the collection the same way.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(COLLECTIONS), os.environ.get("PYTHONPATH")]))

from ansible_collections.vic.containers.tools.harness.vcsim import Simulator  # noqa: E402
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli, timed  # noqa: E402
from ansible_collections.vic.containers.tools.harness.registry import OciLayout, Registries, busybox_layer, tar_bytes  # noqa: E402
from ansible_collections.vic.containers.services.imagec.layers.squash import TAR2SQFS  # noqa: E402
from ansible_collections.vic.containers.services.imagec.layers.stream import Uncompressed  # noqa: E402

TARGET_RATIO = 0.8
IMAGES = ("busybox", "large", "files", "tiny", "zfiles")
# Judged against the target: an image of ordinary size, a large layer, and many small files as real images
# hold them; "tiny" (the same count of 500-byte files of one repeated line) shows the cost per entry alone,
# "zfiles" the files layer zstd-compressed (level 3, buildx's default for zstd), cheaper to decompress.
JUDGED = ("busybox", "large", "files")


def large_layer(size_mb):
    """Incompressible data in a few files: the transfer, not gzip, should dominate."""
    files = [("big", "dir", None, 0o755)]
    per_file = max(1, size_mb // 4)
    for i in range(0, size_mb, per_file):
        files.append(("big/part%d" % i, "file", os.urandom(per_file * 1024 * 1024), 0o644))
    return tar_bytes(files)


def files_layer(count, realistic=True, seed=12):
    """``count`` small text files in folders of 200, as a package manager's tree is. ``realistic``: 0.5 to 8 KB
    each (4 KB on average, as in language runtimes' and packages' trees), of words that compress about as
    source code does (3x); else 500 bytes of one repeated line, where the entries alone are the cost."""
    rng = random.Random(seed)
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


def process_cpu(pid):
    """CPU seconds of process ``pid`` and of the children it waited for (the endpoint's tar2sqfs)."""
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    """CPU seconds of this process's children so far (skopeo, the docker CLI, tar, tar2sqfs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(func, *pids):
    """(wall seconds, CPU seconds of this process's children, CPU seconds of each of ``pids``) of ``func()``."""
    before = children_cpu(), [process_cpu(pid) for pid in pids]
    seconds = timed(func)[0]
    return (seconds, children_cpu() - before[0]) + tuple(process_cpu(pid) - cpu for pid, cpu in zip(pids, before[1]))


def untar_layers(copied, layout, target):
    """A Docker engine's work after the download: each layer blob skopeo copied inflated and written out as
    files (``tar -xf``, which finds the compression itself, in order, into the folder ``target``)."""
    target.mkdir()
    for layer in layout.layers:
        blob = Path(copied) / layer["digest"].split(":")[1]
        subprocess.run(["tar", "-xf", str(blob), "-C", str(target)], check=True)


def compare(vch, sim, registry, endpoint, layout, name, repeat, scratch):
    """Medians of skopeo copy, of skopeo copy + tar -xf, and of docker pull (the image removed between runs):
    wall and CPU seconds of each side, and the vSphere SOAP calls and datastore HTTP requests of the last pull."""
    copies, engines, pulls = [], [], []
    for i in range(repeat):
        target = Path(scratch) / ("%s-%d" % (name, i))
        copies.append(measured(lambda target=target: skopeo_copy(registry, name, target), registry.proc.pid))
        unpacked = Path(scratch) / ("%s-%d-unpacked" % (name, i))
        untar = timed(lambda target=target, unpacked=unpacked: untar_layers(target, layout, unpacked))[0]
        engines.append(copies[-1][0] + untar)
        shutil.rmtree(target)
        shutil.rmtree(unpacked)
        mark = sim.mark()
        pulls.append(measured(lambda: docker_pull(vch, registry, name), registry.proc.pid, endpoint.proc.pid))
        calls = sim.calls_since(mark)
        docker_rmi(vch, registry, name)
    soap = sum(1 for c in calls if "method" in c)
    http = sum(1 for c in calls if "http" in c)
    return {"copy": [statistics.median(run[i] for run in copies) for i in range(3)],
            "engine": statistics.median(engines),
            "pull": [statistics.median(run[i] for run in pulls) for i in range(4)],
            "soap": soap, "http": http}


def packing_floor(layout, scratch):
    """CPU seconds that making the disk of ``layout``'s top layer takes at the least: its blob hashed,
    decompressed and hashed as a pull does it (the endpoint's own code: ISA-L or zstd, SHA-256, in pieces), and
    tar2sqfs on the tar, with nothing else (no header read, no download, no upload)."""
    blob = (layout.folder / "blobs" / "sha256" / layout.layers[-1]["digest"].split(":")[1]).read_bytes()
    started = time.process_time()
    hashlib.sha256(blob).digest()
    Uncompressed(io.BytesIO(blob), "floor").digest()
    inflate = time.process_time() - started
    raw = Uncompressed(io.BytesIO(blob), "floor").read(1 << 40)
    before = children_cpu()
    subprocess.run(TAR2SQFS + (str(Path(scratch) / "floor.sqfs"),), input=raw, stdout=subprocess.DEVNULL,
                   check=True)
    return inflate, children_cpu() - before


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


def print_ratios(rows, images, repeat):
    """The table of ratios; False if a judged image missed the target."""
    print("\ndocker pull into the image store vs skopeo copy to a directory, and vs a Docker engine's pull (skopeo copy "
          "+ tar -xf of each layer); median of %d runs" % repeat)
    header = "%-8s %12s %10s %10s %7s %6s %10s %9s %6s %6s" % (
        "image", "compressed", "skopeo s", "pull s", "ratio", "target", "engine s", "vs engine", "SOAP", "HTTP")
    print(header)
    print("-" * len(header))
    ok = True
    for name, row in rows.items():
        copy_s, pull_s = row["copy"][0], row["pull"][0]
        judged = name in JUDGED
        ratio = copy_s / pull_s
        ok &= ratio >= TARGET_RATIO or not judged
        verdict = ("ok" if ratio >= TARGET_RATIO else "MISSED") if judged else "(not judged)"
        print("%-8s %10.1fMB %10.3f %10.3f %6.2fx %6s %10.3f %8.2fx %6d %6d %s"
              % (name, image_size(images[name]) / 1e6, copy_s, pull_s, ratio, ">=%.1f" % TARGET_RATIO, row["engine"],
                 row["engine"] / pull_s, row["soap"], row["http"], verdict))
    return ok


def print_bounds(rows, floors):
    """CPU seconds of each side, and the best ratio a pull that makes a zstd SquashFS disk could reach."""
    cpus = os.cpu_count()
    print("\nCPU seconds (medians): skopeo copy = skopeo + the registry; docker pull = the endpoint (with its tar2sqfs) + "
          "the registry + the docker CLI")
    for name, row in rows.items():
        copy_s, copy_children, copy_registry = row["copy"]
        pull_s, pull_children, pull_registry, pull_endpoint = row["pull"]
        print("  %-8s skopeo %.2f + %.2f = %.2f CPU-s in %.3f s; pull %.2f + %.2f + %.2f = %.2f CPU-s in %.3f s"
              % (name, copy_children, copy_registry, copy_children + copy_registry, copy_s, pull_endpoint,
                 pull_registry, pull_children, pull_endpoint + pull_registry + pull_children, pull_s))
    print("\nthe least CPU a layer's disk takes (its blob decompressed and hashed as a pull does, tar2sqfs on its "
          "tar; no header read, download or upload), and the ratio a pull could reach at best, spread over all %d CPUs:"
          % cpus)
    for name, (inflate, tar2sqfs) in floors.items():
        least = (inflate + tar2sqfs) / cpus
        print("  %-8s decompress + hash %.3f CPU-s, tar2sqfs %.3f CPU-s: a pull takes at least %.3f s, ratio at most %.2fx"
              % (name, inflate, tar2sqfs, least, rows[name]["copy"][0] / least))


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
            # zfiles: other words (another seed), so that the endpoint's log tells its layer from files'.
            for name, realistic, seed, level, compression in (("files", True, 12, 6, "gzip"),
                                                              ("tiny", False, 12, 6, "gzip"),
                                                              ("zfiles", True, 13, 3, "zstd")):
                many = OciLayout(Path(scratch) / name, "latest",
                                 [busybox_layer(), files_layer(args.files, realistic, seed)], level=level,
                                 compression=compression)
                registries.images.add(name, many)
                registries.images.push(registry, name)
            certs = Path(scratch) / "certs"
            summary = deploy(sim, "bench", certs, registry={"ca_certs": [str(registries.ca.ca_path)],
                                                            "insecure": [], "whitelist": []})
            endpoint = Endpoint(sim, "bench")
            vch = {"summary": summary, "certs": certs, "host": "tcp://127.0.0.1:%d" % endpoint.port}
            try:
                rows = {name: compare(vch, sim, registry, endpoint, registries.images[name], name, args.repeat,
                                      scratch) for name in IMAGES}
                floors = {name: packing_floor(registries.images[name], scratch) for name in ("large", "files", "zfiles")}
                shared = shared_pull(vch, sim, registry)
                phases = {name: layer_phases(endpoint.log(), registries.images[name]) for name in IMAGES}
            finally:
                endpoint.stop()
        finally:
            registries.close()
    ok = print_ratios(rows, registries.images, args.repeat)
    print_bounds(rows, floors)
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
