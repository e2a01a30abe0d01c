"""Packing layer blobs into SquashFS disks (services/imagec/layers/squash.py) against ``tar2sqfs`` alone on the same
uncompressed tar, in the same run: time, CPU and peak memory.

``tar2sqfs`` alone is the floor: it packs the same tar with the same compressor, without the gzip
inflate, the two digests, the checks of every entry and Docker's rules the endpoint applies. Each case
runs in a process of its own, so its peak memory is its own.

    python3 benchmarks/bench_pack.py [--files 100000] [--large-mb 64] [--replaced 5000]
"""

import argparse
import gzip
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".build" / "collections"
sys.path[:0] = [str(COLLECTIONS)]

from ansible_collections.vic.containers.services.imagec.layers import squash as layers  # noqa: E402
from ansible_collections.vic.containers.tools.harness.registry import tar_bytes  # noqa: E402


def many_files(count):
    """``count`` small files in folders of 200, as a package manager's tree is."""
    entries = []
    for index in range(count):
        folder = "app/node_modules/pkg%05d" % (index // 200)
        if index % 200 == 0:
            entries.append((folder, "dir", None, 0o755))
        entries.append(("%s/file%06d.js" % (folder, index), "file", b"module.exports = %d;\n" % index, 0o644))
    return entries


def large(size_mb):
    """Incompressible bytes in files of 4 MB."""
    parts = [("big/part%d" % i, "file", os.urandom(4 << 20), 0o644) for i in range(max(1, size_mb // 4))]
    return [("big", "dir", None, 0o755)] + parts


def replaced_folders(count):
    """``count`` folders of two files each, then each folder replaced by a file: Docker applies entries
    in order, so every replacement removes a subtree."""
    entries = []
    for index in range(count):
        entries += [("d%05d" % index, "dir", None, 0o755), ("d%05d/a" % index, "file", b"a", 0o644),
                    ("d%05d/b" % index, "file", b"b", 0o644)]
    return entries + [("d%05d" % index, "file", b"file now", 0o644) for index in range(count)]


def cpu():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_case(kind, raw_path):
    """In this process: pack the tar at ``raw_path`` one way, read from disk as a download would arrive;
    print wall and CPU seconds and the peak memory it took (tar2sqfs's own, for the floor)."""
    with open(raw_path, "rb") as raw:
        diff_id = "sha256:" + hashlib.file_digest(raw, "sha256").hexdigest()
    base = _reset_peak()
    with tempfile.TemporaryDirectory() as work:
        start, used = time.perf_counter(), cpu()
        if kind == "endpoint":
            blob = raw_path + ".gz"
            with open(blob, "rb") as stream:
                try:
                    disk = layers.build(stream, "bench", work)
                except layers.Repack as again:  # as a pull does: the blob read a second time
                    with open(blob, "rb") as second:
                        disk = layers.repack(second, work, again.tree)
            layers.check_diff_id(disk, diff_id)
            peak = _memory("VmHWM") - base
        else:
            with open(raw_path, "rb") as stream:
                packed = subprocess.run(layers.TAR2SQFS + (os.path.join(work, "disk"),), stdin=stream, check=False,
                                        stderr=subprocess.DEVNULL)
            if packed.returncode:  # tar2sqfs refuses what only Docker's rules make sense of
                print(json.dumps(None))
                return
            peak = None
        wall, used = time.perf_counter() - start, cpu() - used
    print(json.dumps({"wall": wall, "cpu": used, "peak_mb": peak and peak / 1024}))


def _memory(field):
    """``VmRSS`` or ``VmHWM`` (the peak) of this process, in KiB. (ru_maxrss would not do: a process
    started by another inherits its peak across exec.)"""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def _reset_peak():
    """Start counting this process's peak memory again (Linux 4.0 and later); returns its memory now."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return _memory("VmRSS")


def measure(kind, raw_path):
    result = subprocess.run([sys.executable, __file__, "--case", kind, raw_path], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100000)
    parser.add_argument("--large-mb", type=int, default=64)
    parser.add_argument("--replaced", type=int, default=5000)
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run_case(*args.case)
        return
    cases = [("%d small files" % args.files, many_files(args.files)),
             ("%d MB random" % args.large_mb, large(args.large_mb)),
             ("%d folders replaced" % args.replaced, replaced_folders(args.replaced))]
    print("layer packing: the endpoint (gzip blob -> checks -> tar2sqfs) vs tar2sqfs alone on the tar (floor);")
    print("peak MB: what the endpoint's process grew by while packing (tar2sqfs's own memory not counted)")
    header = "%-22s %8s %8s %9s %8s %9s %8s" % (
        "layer", "entries", "wall s", "floor s", "cpu s", "floor cpu", "peak MB")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as scratch:
        for name, entries in cases:
            raw_path = os.path.join(scratch, "layer.tar")
            raw = tar_bytes(entries)
            Path(raw_path).write_bytes(raw)
            Path(raw_path + ".gz").write_bytes(gzip.compress(raw, 1))
            ours, floor = measure("endpoint", raw_path), measure("tar2sqfs", raw_path)
            floor = floor or {"wall": None, "cpu": None}
            print("%-22s %8d %8.2f %9s %8.2f %9s %8.0f" % (
                name, len(entries), ours["wall"], _figure(floor["wall"], "%.2f"), ours["cpu"],
                _figure(floor["cpu"], "%.2f"), ours["peak_mb"]))
            if len(entries) > 1000:
                print("%-22s %8s %7.0f µs per entry" % ("", "", ours["wall"] / len(entries) * 1e6))
    print("(-: tar2sqfs alone refuses a tar that names a path twice; only Docker's order of entries makes sense "
          "of it)")


def _figure(value, form):
    return "-" if value is None else form % value


if __name__ == "__main__":
    main()
