# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The ``vch`` and ``endpoint_vm`` roles' molecule scenario (roles/vch/molecule/default), in one world:

* this test makes the test bridge (tools/harness/testhost.py) and binds to its host address, and nothing
  else, vcsim (a password with characters the connection file must escape), a registry holding busybox
  (trusted through vic_vch's ``registry.ca_certs``) and the host emulator (``iso`` mode: container VMs
  run the tether of the ISO the role built on the endpoint host and vic_vch uploaded);
* molecule boots the endpoint host on that bridge, converges the vch role (the tether ISO built there
  from a seeded cache and fetched, vic_vch, the endpoint_vm role delegated there, the Docker API awaited
  over mutual TLS, a volume, an image pull, the client bundle), checks idempotence (changed=0), verifies
  (the hardened unit, the 0600 connection file, the password in no argv, unit or journal; ``docker
  info``/``volume create``/``ps``/``run ... echo TOKEN`` through the bundle; kill -9 of the endpoint ->
  systemd restarts it and the volumes are still listed), runs the role with ``vch_state: absent`` (no VCH
  in vcsim, nothing on the host) and destroys the host;
* then the world stops by pid and nothing may be left: processes, mounts, loop devices, namespaces, links.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ansible_collections.vic.containers.services.tether import iso
from ansible_collections.vic.containers.tools.harness import testhost
from ansible_collections.vic.containers.tools.harness.emulator import emulated
from ansible_collections.vic.containers.tools.harness.registry import Registries
from ansible_collections.vic.containers.tools.harness.vcsim import Simulator

REPO = Path(__file__).resolve().parents[3]
# Characters systemd's environment files and shells treat specially: the role must write them as they are.
PASSWORD = 'p@ss "w$rd`\\ \'x'


def test_vch_role_molecule(tmp_path, vcsim_binary):
    ephemeral = tmp_path / "molecule"
    run = testhost.Run(ephemeral / "testhost")
    started = time.monotonic()
    # The ISO builder's cache of this tree, filled as the other ISO tests fill it: the endpoint host's cache is
    # seeded from it, so the role's build there is the builder's cache hit, not a download of its packages.
    iso.build(tmp_path / "iso" / "tether.iso")
    try:
        run.network()  # the bridge first: the world binds to its host address
        address = run.host_address
        with Simulator(vcsim_binary).start(mode="vpx", listen=address, password=PASSWORD) as sim, \
                emulated(sim, tether_python="iso") as emulator:
            registries = Registries(tmp_path / "registries", address=address)
            try:
                registry = registries.get("anonymous", push=("busybox",))
                world = tmp_path / "world.json"
                world.write_text(json.dumps({
                    "vcsim": {"host": sim.host, "port": sim.port, "username": sim.username, "password": sim.password},
                    "datastore": sim.datastores["LocalDS_0"],
                    "registry_ca": str(registries.ca.ca_path),
                    "image": registry.host + "/library/busybox",
                    "wheelhouse": str(testhost.wheelhouse([REPO / "services" / "requirements.txt"])),
                    "tether_cache": str(iso.builder.DEFAULT_CACHE),
                    "work": str(tmp_path / "work")}))
                proc = _molecule(ephemeral, world)
            finally:
                registries.close()
            output = proc.stdout + proc.stderr
            # Shown with a failure of what follows (the emulator's own check on leaving) too.
            print(output)
            vm_processes = emulator.processes()
    finally:
        # After the world: the bridge's address goes with the host's bridge, and the emulator's and vcsim's
        # sockets on it would hang. (So the scenario has no destroy step: this is it, as destroy.yml does.)
        run = testhost.Run(run.folder)  # as molecule's create left it: the machine is in it now
        if run.state_path.exists():
            run.down()
    print("vch role scenario: %.0f s" % (time.monotonic() - started))
    assert proc.returncode == 0, output[-30000:]
    for step in ("check", "converge", "idempotence", "verify", "side_effect"):
        assert "%s: Executed: Successful" % step in output.replace(" > ", ": ").replace(" ➜ ", ": "), step
    assert vm_processes == []
    # down() stopped everything and checked it (emulated() checked the emulator's own): nothing mounted or linked.
    assert str(tmp_path) not in Path("/proc/self/mountinfo").read_text()
    assert not (ephemeral / "testhost").exists()
    assert run.leftovers() == []


def _molecule(ephemeral, world):
    env = dict(os.environ, MOLECULE_EPHEMERAL_DIRECTORY=str(ephemeral), NO_COLOR="1", ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", PY_COLORS="0", VIC_ROLES_WORLD=str(world),
               ANSIBLE_COLLECTIONS_PATH=str(REPO / ".build" / "collections"))
    for name in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        env.pop(name, None)
    # --destroy never: after a failure too, the host stays until the world has stopped (see above).
    return subprocess.run([sys.executable, "-m", "molecule", "test", "--destroy", "never"], cwd=REPO / "roles" / "vch", env=env,
                          capture_output=True, text=True, timeout=1800, check=False)
