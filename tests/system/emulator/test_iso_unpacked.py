# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether ISO unpacked as the namespace mode's root: a module of its own, so that no other emulator
(test_iso_worlds.py's QEMU one) follows its vcsim: two would both run each VM that powers on."""

from ansible_collections.vic.containers.tools.harness.emulator import emulated
from ansible_collections.vic.containers.tools.harness.endpoint import docker_cli
from test_iso_worlds import _vch, tether_iso  # noqa: F401  pylint: disable=unused-import  # the cached ISO build


def test_docker_run_echo_hello_with_the_tether_from_the_unpacked_iso(vcsim, tmp_path_factory, registries, tether_iso):
    with emulated(vcsim, tether_python="iso") as emulator:
        vch = _vch(vcsim, "isons", tmp_path_factory, registries, tether_iso)
        try:
            ran = docker_cli(vch, "run", "--rm", vch["image"], "echo", "hello", timeout=30)
            assert (ran.returncode, ran.stdout) == (0, "hello\n"), (ran.stderr, emulator.log()[-3000:])
        finally:
            vch["endpoint"].stop()
