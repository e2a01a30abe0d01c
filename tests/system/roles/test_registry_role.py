# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The ``registry`` role's molecule scenario (roles/registry/molecule/default): a Debian host booted by
the test-host harness, converge, idempotence (changed=0), verify (health over TLS, a push with skopeo as
admin, the notification indexed, an anonymous pull refused; then the role again on the same host with a
CA, certificate and key given to it: the service presents that certificate, the key is 0600, the CA is
trusted), destroy; nothing may be left after it."""

import os
import subprocess
import sys
from pathlib import Path

from ansible_collections.vic.containers.tools.harness import testhost

REPO = Path(__file__).resolve().parents[3]


def test_registry_role_molecule(tmp_path):
    env = dict(os.environ, MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / "molecule"), NO_COLOR="1",
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", VIC_REGISTRY_ADMIN_PASSWORD="Adm1n-" + tmp_path.name[-8:],
               ANSIBLE_COLLECTIONS_PATH=str(REPO / ".build" / "collections"), PY_COLORS="0")
    molecule = [sys.executable, "-m", "molecule", "test"]
    try:
        proc = subprocess.run(molecule, cwd=REPO / "roles" / "registry", env=env, capture_output=True, text=True,
                              timeout=1800, check=False)
    finally:
        # molecule's destroy step stops the machine; after a timeout or a crash nobody else would.
        run = testhost.Run(tmp_path / "molecule" / "testhost")
        if run.state_path.exists():
            run.down()
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-20000:]
    for step in ("converge", "idempotence", "verify", "destroy"):
        assert "%s: Executed: Successful" % step in output.replace(" > ", ": ").replace(" ➜ ", ": "), step
    # The harness's destroy stopped everything: no machine left mounted or linked.
    assert str(tmp_path) not in Path("/proc/self/mountinfo").read_text()
    assert not (tmp_path / "molecule" / "testhost").exists()
