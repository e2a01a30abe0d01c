# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A start storm: 100 containers that each run and exit, started by the real docker CLI ten at a time,
through a VCH's endpoint and the host emulator running the real tether. Every one ends with exit 0 and
its output, and the host is left as it was: no process, mount, loop device or namespace of any VM.
The tethers run from the ISO's unpacked tree (compiled Python: ~0.2 s to the first output, where the host's
Python with sources takes 1-1.5 s of CPU each), the ISO built from this tree (cached by its inputs)."""

import pytest

from ansible_collections.vic.containers.services.tether import iso
from ansible_collections.vic.containers.tools.harness.emulator import emulated, install_tether_iso, start_storm
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli
from ansible_collections.vic.containers.tools.harness.registry import Registries
from ansible_collections.vic.containers.tools.harness.waiting import until

STORM, BATCH = 100, 10


@pytest.fixture(scope="module")
def storm_vch(vcsim, tmp_path_factory):
    registries = Registries(tmp_path_factory.mktemp("registries"))
    try:
        tether_iso = iso.build(tmp_path_factory.mktemp("iso") / "tether.iso").path
        with emulated(vcsim, tether_python="iso") as emulator:  # on leaving: stopped, and checked it left nothing
            certs = tmp_path_factory.mktemp("certs") / "storm"
            deploy(vcsim, "storm", certs, registry=registries.trusted())
            install_tether_iso(vcsim, "storm", tether_iso)
            endpoint = Endpoint(vcsim, "storm")
            vch = {"certs": certs, "host": "tcp://127.0.0.1:%d" % endpoint.port, "emulator": emulator,
                   "image": registries.get("anonymous").host + "/library/busybox"}
            try:
                assert docker_cli(vch, "pull", vch["image"], timeout=300).returncode == 0
                yield vch
            finally:
                endpoint.stop()
    finally:
        registries.close()


def test_a_storm_of_100_containers_that_run_and_exit_all_end_with_their_output_and_leave_nothing(storm_vch):
    emulator = storm_vch["emulator"]
    results, _wall = start_storm(storm_vch, storm_vch["image"], STORM, BATCH)
    failed = {name: result for name, result in results.items()
              if result["run"][0] != 0 or result["exit"] != 0 or result["output"] != name + "\n"}
    assert failed == {}, (failed, emulator.log()[-5000:])
    assert docker_cli(storm_vch, "ps", "-aq").stdout == ""
    # While the emulator still runs: every VM's processes (and so its namespaces), mounts and loop devices gone
    # (the emulator's own run directory stays until it stops; then emulated checks that too).
    until(lambda: set(emulator.leftovers()) <= {"files"},
          lambda: "the VMs to leave nothing: %s\n%s" % (emulator.leftovers(), emulator.log()[-3000:]))
