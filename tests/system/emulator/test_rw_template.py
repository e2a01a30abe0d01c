# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The read-write disk template (portlayer/storage/rw_template.py), against a VCH on vcsim, its endpoint and
the host emulator running the real tether: made once per VCH by a one-shot format VM, each new container's
disk a child of it (ext4 before its VM boots), nothing half-made ever used."""

import os

import pytest

from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.services.tether.agent import disks
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, docker_cli, running_vch
from ansible_collections.vic.containers.tools.harness.waiting import until

NAME = "rwtemplate"


@pytest.fixture(scope="module")
def vch(vcsim, tmp_path_factory, registries, emulator, template_folder):  # pylint: disable=redefined-outer-name
    found = running_vch(vcsim, NAME, tmp_path_factory.mktemp("certs") / NAME, registries, emulator)
    found["template"] = template_folder(vcsim, found["endpoint"].log())
    yield found
    found["endpoint"].stop()


def docker(vch, *args):
    result = docker_cli(vch, *args)
    assert result.returncode == 0, result.stderr + vch["endpoint"].log()[-4000:]
    return result.stdout.strip()


def logs(vch):
    return "endpoint:\n%s\nemulator:\n%s" % (vch["endpoint"].log()[-3000:], vch["emulator"].log()[-3000:])


def complete(vch):
    return os.path.exists(os.path.join(vch["template"], "formatted"))


@pytest.fixture(name="rw_disk")
def rw_disk_fixture(rw_disk_of):
    return lambda vch, name: rw_disk_of(vch["sim"], name)


def creates(vch, mark):
    return [m for m in vch["sim"].soap_methods(mark) if m in ("CreateVM_Task", "CreateChildVM_Task")]


def restart_endpoint(vch):
    tether_port = vch["endpoint"].tether_port
    vch["endpoint"].stop()
    vch["endpoint"] = Endpoint(vch["sim"], NAME, port=int(vch["host"].rsplit(":", 1)[1]), tether_port=tether_port)


def test_a_failed_format_leaves_no_template_and_the_container_still_runs(vch, rw_disk):
    until(lambda: complete(vch), lambda: "the template made at the first start\n" + logs(vch))
    os.unlink(os.path.join(vch["template"], "formatted"))     # as if its making had been cut short
    # The restarted endpoint removes the half-made template and makes it again; its one power-on (the
    # format VM's) fails.
    vch["sim"].inject_fault("PowerOnVM_Task", 1)
    try:
        restart_endpoint(vch)
        until(lambda: "could not make the read-write disk template" in vch["endpoint"].log(), lambda: logs(vch))
    finally:
        vch["sim"].clear_faults()
    until(lambda: not os.path.exists(vch["template"]), lambda: logs(vch))
    assert not format_vm_folders(vch), "no format VM folder left"
    # A container made meanwhile has a blank disk its tether formats, and runs; within the retry delay a
    # create makes no other format VM.
    mark = vch["sim"].mark()
    docker(vch, "create", "--name", "early", vch["image"], "echo", "hello")
    assert len(creates(vch, mark)) == 1
    boot, backing = rw_disk(vch, "early")
    assert boot["rw_format"] is True and backing.parent is None
    assert docker(vch, "start", "-a", "early") == "hello"
    docker(vch, "rm", "early")


def test_the_template_is_made_once_and_new_disks_are_its_ext4_children(vch, rw_disk):
    restart_endpoint(vch)     # forgets the failure above: makes the template at its start
    until(lambda: complete(vch), lambda: "the template\n" + logs(vch))
    assert not format_vm_folders(vch), "the format VM is destroyed"
    flat = os.path.join(vch["template"], "scratch-8g-flat.vmdk")
    assert disks.filesystem(flat) == "ext4"
    template_before = os.stat(flat)
    for name in ("first", "second"):
        mark = vch["sim"].mark()
        docker(vch, "create", "--name", name, vch["image"], "sh", "-c", "echo %s > /written; cat /written" % name)
        assert len(creates(vch, mark)) == 1, "no format VM for a container once the template is made"
        boot, backing = rw_disk(vch, name)
        assert boot["rw_format"] is False
        assert backing.parent.fileName.endswith("/images/scratch-8g/scratch-8g.vmdk"), backing.parent.fileName
        # The child's chain ends in an ext4 disk before the VM ever boots.
        assert disks.filesystem(flat) == "ext4"
    assert docker(vch, "start", "-a", "second") == "second"
    assert docker(vch, "start", "-a", "first") == "first"
    docker(vch, "rm", "first", "second")
    after = os.stat(flat)
    assert (after.st_size, after.st_mtime_ns) == (template_before.st_size, template_before.st_mtime_ns)
    assert complete(vch), "destroying its children leaves the template"
    # A restart finds it complete: no format VM.
    mark = vch["sim"].mark()
    restart_endpoint(vch)
    docker(vch, "create", "--name", "third", vch["image"], "true")
    assert len(creates(vch, mark)) == 1
    docker(vch, "rm", "third")


def test_a_blank_disk_without_rw_format_fails_with_a_clear_message(tmp_path):
    spec = protocol.boot_spec("a" * 64, "key", "key", {"Cmd": ["true"]}, hostname="h", layers=[0], rw=1)
    blank = tmp_path / "rw"
    blank.write_bytes(b"\0" * 4096)
    with pytest.raises(disks.DiskError, match="read-write disk .SCSI unit 1. has no ext4 filesystem"):
        disks.require_ext4(str(blank), spec["rw"])
    assert spec["rw_format"] is False
    assert protocol.parse_boot_spec({k: v for k, v in spec.items() if k != "rw_format"})["rw_format"] is True


def format_vm_folders(vch):
    datastore_root = os.path.dirname(os.path.dirname(os.path.dirname(vch["template"])))
    return [p for p in os.listdir(datastore_root) if "-format-" in p]


def test_an_endpoint_killed_while_making_the_template_leaves_nothing_half_made(vch):
    until(lambda: complete(vch), lambda: logs(vch))
    os.unlink(os.path.join(vch["template"], "formatted"))
    tether_port, port = vch["endpoint"].tether_port, int(vch["host"].rsplit(":", 1)[1])
    vch["endpoint"].kill()
    # Started, it removes the half-made template and starts making it again: killed at once, midway.
    vch["endpoint"] = Endpoint(vch["sim"], NAME, port=port, tether_port=tether_port)
    vch["endpoint"].kill()
    vch["endpoint"] = Endpoint(vch["sim"], NAME, port=port, tether_port=tether_port)
    until(lambda: complete(vch) and not format_vm_folders(vch), lambda: logs(vch))
    mark = vch["sim"].mark()
    docker(vch, "create", "--name", "after-kill", vch["image"], "true")
    assert len(creates(vch, mark)) == 1
    docker(vch, "rm", "after-kill")
