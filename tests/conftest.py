"""Test set-up: the collection importable as ansible_collections.vic.containers, and the simulator fixtures."""

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO_ROOT / ".build" / "collections"


def _link_collection():
    # The repository is the collection; Ansible and imports want it under ansible_collections/vic/containers.
    link = COLLECTIONS / "ansible_collections" / "vic" / "containers"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(REPO_ROOT)
        except FileExistsError:  # another xdist worker made it first
            pass


_link_collection()
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
os.environ["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS)
# Processes the tests start (the endpoint) import the collection the same way.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(COLLECTIONS), os.environ.get("PYTHONPATH")]))

pytest_plugins = ["ansible_collections.vic.containers.tools.harness.vcsim_fixtures"]
