"""A local registry for the demo: Debian's docker-registry on loopback (plain HTTP) with a test image
made from busybox-static and pushed with skopeo (the same parts the tests use, tools/harness/registry.py).

    python3 scripts/demo_registry.py start --state .build/demo/registry.json
    python3 scripts/demo_registry.py stop --state .build/demo/registry.json

``start`` leaves the registry running and writes {"host", "pid", "folder"} to the state file.
"""

import argparse
import json
import os
import shutil
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / ".build" / "collections")]

from ansible_collections.vic.containers.tools.harness.registry import Registry, TestCA, TestImages  # noqa: E402


def start(state):
    folder = state.parent / "registry"
    shutil.rmtree(folder, ignore_errors=True)
    registry = Registry(folder / "plain", TestCA(folder / "ca"), "plain").start()
    TestImages(folder / "images").push(registry, "busybox")
    state.write_text(json.dumps({"host": registry.host, "pid": registry.proc.pid, "folder": str(folder)}))
    print(registry.host)


def stop(state):
    if not state.exists():
        return
    found = json.loads(state.read_text())
    try:
        os.kill(found["pid"], signal.SIGTERM)
    except ProcessLookupError:
        pass
    shutil.rmtree(found["folder"], ignore_errors=True)
    state.unlink()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--state", required=True, type=Path)
    args = parser.parse_args()
    (start if args.action == "start" else stop)(args.state)


if __name__ == "__main__":
    main()
