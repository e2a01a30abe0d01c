# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""services/requirements.txt is all an endpoint VM installs: a fresh venv with only those packages (no
system site-packages) starts the endpoint of a VCH on vcsim, and the Docker SDK gets /_ping and /info
from it. The venv is kept under .build/, keyed by the file's hash: it is built again only when the file
changes."""

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time

from ansible_collections.vic.containers.plugins.module_utils._version import VERSION
from ansible_collections.vic.containers.tools.harness.endpoint import REPO, Endpoint, deploy, sdk

REQUIREMENTS = REPO / "services" / "requirements.txt"
VENVS = REPO / ".build" / "venvs"


def _isolated_env():
    # pip's own settings (PIP_FIND_LINKS, the machine's wheels and indexes) stay; nothing that would put
    # this interpreter's packages on the venv's path does.
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


def endpoint_venv():
    """The venv's python, built if this requirements file has none yet; (python, seconds it took)."""
    started = time.monotonic()
    key = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    folder = VENVS / ("endpoint-" + key)
    python = folder / "bin" / "python"
    done = folder / ".installed"
    VENVS.mkdir(parents=True, exist_ok=True)
    # Two runs on one tree (or xdist workers) must not build one venv at once, nor use it half built.
    with open(VENVS / "endpoint.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what an interrupted build left
            for stale in VENVS.glob("endpoint-*"):  # made of earlier versions of the file
                if stale.is_dir() and stale != folder:
                    shutil.rmtree(stale, ignore_errors=True)
            env = _isolated_env()
            subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, env=env, timeout=300)
            installed = subprocess.run(
                [str(python), "-m", "pip", "install", "--no-input", "--disable-pip-version-check", "-q",
                 "-r", str(REQUIREMENTS)], env=env, capture_output=True, text=True, timeout=900, check=False)
            assert installed.returncode == 0, installed.stdout + installed.stderr
            done.write_text(REQUIREMENTS.read_text())
    return python, time.monotonic() - started


def _pins(path):
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line)
            assert match, "%s: %r is not pinned as name==version" % (path.relative_to(REPO), line)
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def test_the_requirements_files_pin_each_package_alike():
    versions = {}
    for path in [REQUIREMENTS] + sorted(REPO.glob("requirements*.txt")):
        for name, version in _pins(path).items():
            versions.setdefault(name, {})[str(path.relative_to(REPO))] = version
    assert {name: where for name, where in versions.items() if len(set(where.values())) > 1} == {}


def test_a_venv_with_only_the_services_requirements_starts_the_endpoint(vcsim, tmp_path):
    python, seconds = endpoint_venv()
    print("\nendpoint venv ready in %.1fs (%s)" % (seconds, python.parent.parent.name))
    isolated = subprocess.run([str(python), "-c", "import sys; print(sys.prefix == sys.base_prefix); import ansible"],
                              env=_isolated_env(), capture_output=True, text=True, timeout=60, check=False)
    assert isolated.stdout.strip() == "False", isolated.stdout + isolated.stderr  # a venv's interpreter
    assert "No module named 'ansible'" in isolated.stderr  # and none of this interpreter's packages

    certs = tmp_path / "certs"
    deploy(vcsim, "req", certs)
    endpoint = Endpoint(vcsim, "req", python=python)
    client = sdk({"certs": certs, "host": "tcp://127.0.0.1:%d" % endpoint.port})
    try:
        assert client.ping() is True  # GET /_ping
        info = client.info()
        assert (info["Name"], info["ServerVersion"], info["OSType"]) == ("req", VERSION, "linux")
        log = endpoint.log()
        assert "Traceback" not in log, log
    finally:
        client.close()
        endpoint.stop()
