# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether ISO under the emulator: booted in QEMU (TCG, ~10 s a boot: few tests), and unpacked as the
namespace mode's root. A VCH deployed on vcsim, its endpoint, the ISO built from this tree (cached by its
inputs) and put where the VCH's container VMs find it on their CD-ROM (``[image store] .../bootstrap.iso``,
where ``vic_vch`` uploads it)."""

import os

import pytest

from ansible_collections.vic.containers.services.tether import iso
from ansible_collections.vic.containers.tools.harness.emulator import emulated, install_tether_iso
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli
from ansible_collections.vic.containers.tools.harness.waiting import until


@pytest.fixture(scope="module")
def tether_iso(tmp_path_factory):
    return iso.build(tmp_path_factory.mktemp("iso") / "tether.iso").path


def _vch(sim, name, tmp_path_factory, registries, tether_iso):
    certs = tmp_path_factory.mktemp("certs") / name
    deploy(sim, name, certs, registry=registries.trusted())
    install_tether_iso(sim, name, tether_iso)
    endpoint = Endpoint(sim, name)
    vch = {"certs": certs, "endpoint": endpoint, "host": "tcp://127.0.0.1:%d" % endpoint.port}
    vch["image"] = registries.get("anonymous").host + "/library/busybox"
    assert docker_cli(vch, "pull", vch["image"]).returncode == 0
    return vch


@pytest.fixture(scope="module")
def qemu_vch(vcsim, tmp_path_factory, registries, tether_iso):
    with emulated(vcsim, hypervisor="qemu") as emulator:
        vch = _vch(vcsim, "qemu", tmp_path_factory, registries, tether_iso)
        vch["emulator"] = emulator
        vch["sim"] = vcsim
        yield vch
        vch["endpoint"].stop()


def test_a_container_vm_boots_the_tether_iso_in_qemu_and_its_output_reaches_docker_logs(qemu_vch):
    started = docker_cli(qemu_vch, "run", "-d", "--name", "booted", qemu_vch["image"], "echo", "hello from qemu")
    assert started.returncode == 0, started.stderr
    try:
        until(lambda: docker_cli(qemu_vch, "logs", "booted").stdout == "hello from qemu\n",
              lambda: "the ISO to boot and run the command:\n" + qemu_vch["emulator"].log()[-3000:], timeout=120)
    finally:
        docker_cli(qemu_vch, "rm", "-f", "booted")
    until(lambda: qemu_vch["emulator"].processes() == [], "QEMU to be killed")


def test_docker_run_echo_hello_through_the_iso_in_qemu_on_a_child_of_the_template(
        qemu_vch, template_folder, rw_disk_of):
    # The first container's create started the template's making: a format VM booted in QEMU.
    marker = os.path.join(template_folder(qemu_vch["sim"], qemu_vch["endpoint"].log()), "formatted")
    until(lambda: os.path.exists(marker), lambda: "the template:\n" + qemu_vch["endpoint"].log()[-3000:] +
          qemu_vch["emulator"].log()[-3000:], timeout=120)
    ran = docker_cli(qemu_vch, "run", "--name", "child", qemu_vch["image"], "echo", "hello", timeout=45)
    try:
        assert (ran.returncode, ran.stdout) == (0, "hello\n"), (ran.stderr, qemu_vch["emulator"].log()[-3000:])
        boot, backing = rw_disk_of(qemu_vch["sim"], "child")
        assert boot["rw_format"] is False and backing.parent.fileName.endswith("/scratch-8g.vmdk")
    finally:
        docker_cli(qemu_vch, "rm", "child")


def test_a_container_on_a_user_network_asks_its_tether_by_dns_in_a_qemu_vm(qemu_vch):
    # PID 1 of a real VM binds 127.0.0.11:53 on the VM's loopback and answers with the ISO's dnspython.
    assert docker_cli(qemu_vch, "network", "create", "qnet").returncode == 0
    try:
        ran = docker_cli(qemu_vch, "run", "--name", "asker", "--network", "qnet", "--hostname", "qhost",
                         qemu_vch["image"], "sh", "-c", "cat /etc/resolv.conf; nslookup qhost", timeout=120)
        own = docker_cli(qemu_vch, "inspect", "-f", "{{.NetworkSettings.Networks.qnet.IPAddress}}", "asker").stdout
        assert ran.stdout.startswith("nameserver 127.0.0.11\n"), (ran.stdout, ran.stderr)
        answer = "Name:\tqhost\nAddress: %s\n" % own.strip()
        assert answer in ran.stdout, (ran.stdout, ran.stderr, qemu_vch["emulator"].log()[-3000:])
    finally:
        docker_cli(qemu_vch, "rm", "-f", "asker")
        docker_cli(qemu_vch, "network", "rm", "qnet")
