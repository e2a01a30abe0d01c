# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The vch role's options mirror vic_vch's: every option of the module (but what the role decides itself)
is a ``vch_`` variable of the role with the same type, elements, choices and suboptions, and the role
passes each one to the module; the secrets are no_log in both role specs."""

from pathlib import Path

import yaml

from ansible_collections.vic.containers.plugins.modules import vic_vch

REPO = Path(__file__).resolve().parents[2]
# name and state are the role's vch_name / vch_state; tether_iso is built on the endpoint host unless
# vch_tether_iso is given (type path in both); delete_volume_stores is an explicit role variable.
DECIDED_BY_THE_ROLE = {"name", "state"}
KEYS = ("type", "elements", "choices")


def _role_options(role, entry="main"):
    spec = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return spec["argument_specs"][entry]["options"]


def _shape(option, nested="suboptions"):
    return {"keys": {key: option.get(key) for key in KEYS},
            "sub": {name: _shape(sub, nested) for name, sub in (option.get(nested) or {}).items()}}


def test_every_vic_vch_option_is_a_role_variable_of_the_same_shape():
    module = yaml.safe_load(vic_vch.DOCUMENTATION)["options"]
    role = _role_options("vch")
    for name, option in module.items():
        if name in DECIDED_BY_THE_ROLE:
            continue
        assert "vch_" + name in role, name
        role_shape = _shape(role["vch_" + name], "options")
        assert role_shape == _shape(option), name


def test_the_role_passes_every_option_to_vic_vch():
    tasks = yaml.safe_load((REPO / "roles" / "vch" / "tasks" / "present.yml").read_text())
    present = next(task["vic.containers.vic_vch"] for task in tasks if "vic.containers.vic_vch" in task)
    module = yaml.safe_load(vic_vch.DOCUMENTATION)["options"]
    # The connection options come from the vsphere doc fragment; delete_volume_stores is for absent.
    expected = set(module) - {"delete_volume_stores"} | {"hostname", "username", "password", "port", "validate_certs"}
    assert set(present) == expected
    for name in set(module) - DECIDED_BY_THE_ROLE - {"delete_volume_stores", "tether_iso"}:
        assert "vch_" + name in present[name], name


def test_secrets_are_no_log():
    vch, endpoint = _role_options("vch"), _role_options("endpoint_vm")
    assert vch["vch_password"].get("no_log") and vch["vch_ops_password"].get("no_log")
    assert endpoint["endpoint_vm_vsphere_password"].get("no_log")
    assert _role_options("endpoint_vm", "tether_iso")["endpoint_vm_vsphere_password"].get("no_log")


def test_the_networks_variable_is_passed_to_vic_network_with_its_shapes():
    from ansible_collections.vic.containers.plugins.modules import vic_network  # pylint: disable=import-outside-toplevel
    module = yaml.safe_load(vic_network.DOCUMENTATION)["options"]
    entry = _role_options("vch")["vch_networks"]["options"]
    tasks = yaml.safe_load((REPO / "roles" / "vch" / "tasks" / "present.yml").read_text())
    block = next(task["block"] for task in tasks if any("vic.containers.vic_network" in t for t in task.get("block", ())))
    passed = next(task["vic.containers.vic_network"] for task in block if "vic.containers.vic_network" in task)
    for name, option in entry.items():
        assert {key: option.get(key) for key in KEYS} == {key: module[name].get(key) for key in KEYS}, name
        assert "item.%s" % name in passed[name], name
    assert "connected" not in passed    # the networks' containers are left as they are
