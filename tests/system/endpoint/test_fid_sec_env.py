# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A container's Env (where passwords go: ``-e DB_PASSWORD=...``) is nowhere in clear in its VM's extraConfig
(issue 12, Security): sealed in the record with the VCH key (shown by ``docker inspect``, again after an
endpoint restart, which reads it back from vSphere) and in the boot spec with a per-container key the
endpoint hands the tether over the channel, so the process still gets it. Against vcsim with the real docker
CLI, a local registry and the host emulator running the real tether."""

import json

import pytest

from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc
from ansible_collections.vic.containers.plugins.module_utils.vsphere.session import Session
from ansible_collections.vic.containers.services.portlayer.containers import envseal
from ansible_collections.vic.containers.services.portlayer.containers import model as port
from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli

NAME = "fidenv"
SECRET = "DB_PASSWORD=hunter2-do-not-show"


@pytest.fixture(scope="module")
def vch(vcsim, tmp_path_factory, registries, emulator):  # pylint: disable=redefined-outer-name
    certs = tmp_path_factory.mktemp("certs") / NAME
    summary = deploy(vcsim, NAME, certs, registry=registries.trusted())
    made = {"summary": summary, "certs": certs, "endpoint": Endpoint(vcsim, NAME), "emulator": emulator}
    made["host"] = "tcp://127.0.0.1:%d" % made["endpoint"].port
    made["image"] = registries.get("anonymous").host + "/library/busybox"
    try:
        run(made, "pull", made["image"])
        yield made
    finally:
        made["endpoint"].stop()


def run(vch, *args):
    result = docker_cli(vch, *args)
    assert result.returncode == 0, "%s\nendpoint:\n%s\nemulator:\n%s" % (
        result.stderr, vch["endpoint"].log()[-3000:], vch["emulator"].log()[-3000:])
    return result.stdout.strip()


def extra_config(sim, container_id):
    """The extraConfig of the container's VM, as anyone with read access to the VM sees it."""
    from pyVmomi import vim  # pylint: disable=import-outside-toplevel
    with Session(sim.host, sim.username, sim.password, sim.port, validate_certs=False) as session:
        view = session.content.viewManager.CreateContainerView(session.content.rootFolder, [vim.VirtualMachine], True)
        try:
            found = pc.retrieve(session, [pc.object_spec(view, [pc.traversal("v", "ContainerView", "view")],
                                                         skip=True)], {"VirtualMachine": ["config.extraConfig"]})
        finally:
            view.Destroy()
    for vm in found:
        values = codec.as_dict(vm.get("config.extraConfig"))
        record = codec.join_value(values, port.RECORD_KEY)
        if record and json.loads(record)["id"] == container_id:
            return values
    raise AssertionError("no VM for container %s" % container_id)


def test_the_env_is_sealed_in_the_record_and_shown_by_inspect_across_a_restart(vcsim, vch):
    cid = run(vch, "create", "-e", SECRET, "-e", "MODE=prod", vch["image"], "true")
    values = extra_config(vcsim, cid)
    record = json.loads(codec.join_value(values, port.RECORD_KEY))
    assert "hunter2" not in json.dumps(record) and "MODE=prod" not in json.dumps(record)
    assert envseal.SEALED in record and "Env" not in record["config"]
    assert SECRET in json.loads(run(vch, "inspect", cid))[0]["Config"]["Env"]
    boot = codec.join_value(values, protocol.BOOT_KEY)
    assert "hunter2" not in boot and "MODE=prod" not in boot
    assert json.loads(boot)["process"]["EnvSealed"] and json.loads(boot)["process"]["Env"] == []
    vch["endpoint"].stop()
    vch["endpoint"] = Endpoint(vcsim, NAME, port=vch["endpoint"].port, tether_port=vch["endpoint"].tether_port)
    env = json.loads(run(vch, "inspect", cid))[0]["Config"]["Env"]
    assert SECRET in env and "MODE=prod" in env
    # A rename rewrites the record: the env stays sealed, and the same.
    run(vch, "rename", cid, "renamed")
    assert "hunter2" not in codec.join_value(extra_config(vcsim, cid), port.RECORD_KEY)
    assert SECRET in json.loads(run(vch, "inspect", "renamed"))[0]["Config"]["Env"]
    run(vch, "rm", cid)


def test_the_process_gets_its_env_from_the_sealed_boot_spec(vcsim, vch):
    """The tether opens the env with the key the endpoint hands it, then starts the process (-d and attached)."""
    assert run(vch, "run", "--rm", "-e", SECRET, vch["image"], "sh", "-c", "echo $DB_PASSWORD") == "hunter2-do-not-show"
    cid = run(vch, "run", "-d", "-e", SECRET, vch["image"], "sh", "-c", "echo $DB_PASSWORD; echo $PATH")
    assert run(vch, "wait", cid) == "0"
    assert run(vch, "logs", cid).splitlines() == ["hunter2-do-not-show", "/bin"]     # the image's env too
    assert "hunter2" not in json.dumps(extra_config(vcsim, cid))
    run(vch, "rm", cid)
