# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""vic_vch's tether_iso: the local ISO uploaded as the image store's bootstrap.iso once per version."""

import hashlib
import subprocess
from pathlib import Path

import pytest

from ansible_collections.vic.containers.plugins.module_utils.vch import tether_iso
from ansible_collections.vic.containers.tools.harness.playbook import run

VCH = "vic.containers.vic_vch"


def stamped_iso(directory, version, application=None):
    """A small ISO 9660 image with the builder's stamp (or another application id)."""
    tree = directory / ("tree-" + version)
    tree.mkdir()
    (tree / "VERSION").write_text(version + "\n")
    path = directory / ("tether-%s.iso" % version)
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", str(path), "-V", "TETHER",
                    "-A", application or tether_iso.stamp(version), "-J", "-R", str(tree)], check=True)
    return path


def test_read_version_round_trips_and_names_a_foreign_iso(tmp_path):
    assert tether_iso.read_version(stamped_iso(tmp_path, "9.8.7+abc123")) == "9.8.7+abc123"
    with pytest.raises(ValueError, match="is not a tether ISO built by vic.containers"):
        tether_iso.read_version(stamped_iso(tmp_path, "x", application="SOMETHING ELSE"))
    plain = tmp_path / "plain.iso"
    plain.write_bytes(b"\0" * 40000)
    with pytest.raises(ValueError, match="is not a tether ISO: not an ISO 9660 image"):
        tether_iso.read_version(plain)


def _uploaded(sim, result):
    folder = "%s/VIC/%s/bootstrap.iso" % ("iso", result["vch"]["uuid"])
    return Path(sim.datastores["LocalDS_0"]) / folder


def test_tether_iso_is_uploaded_once_per_version(vcsim, tmp_path):
    first, second = stamped_iso(tmp_path, "9.8.7+aaa"), stamped_iso(tmp_path, "9.8.7+bbb")
    args = {"name": "iso", "compute": "DC0_C0", "image_store": "LocalDS_0/iso",
            "tls": {"cert_path": str(tmp_path / "certs")}, "tether_iso": str(first)}

    checked = run(vcsim, VCH, args, check=True)
    assert any(c.startswith("upload tether ISO 9.8.7+aaa from %s" % first) for c in checked["changes"]), checked
    created = run(vcsim, VCH, args)
    assert created["changed"] and created["vch"]["config"]["tether_iso_version"] == "9.8.7+aaa"
    on_datastore = _uploaded(vcsim, created)
    assert hashlib.sha256(on_datastore.read_bytes()).digest() == hashlib.sha256(first.read_bytes()).digest()

    again = run(vcsim, VCH, args)
    assert again["changed"] is False, again.get("changes")

    upgraded = run(vcsim, VCH, dict(args, tether_iso=str(second)), diff=True)
    assert upgraded["changed"]
    assert upgraded["changes"][0].startswith("upload tether ISO 9.8.7+bbb"), upgraded["changes"]
    assert on_datastore.read_bytes() == second.read_bytes()
    assert upgraded["vch"]["config"]["tether_iso_version"] == "9.8.7+bbb"
    run(vcsim, VCH, {"name": "iso", "state": "absent"})


@pytest.mark.parametrize("given, sentence", [
    ("missing", "tether_iso: cannot read"),
    ("foreign", "is not a tether ISO built by vic.containers"),
    ("both", "mutually exclusive with bootstrap_iso"),
])
def test_a_bad_tether_iso_is_refused_naming_the_option(vcsim, tmp_path, given, sentence):
    args = {"name": "iso-bad", "compute": "DC0_C0", "image_store": "LocalDS_0",
            "tls": {"cert_path": str(tmp_path / "certs")}}
    if given == "missing":
        args["tether_iso"] = str(tmp_path / "nowhere.iso")
    elif given == "foreign":
        args["tether_iso"] = str(stamped_iso(tmp_path, "y", application="OTHER"))
    else:
        args.update(tether_iso=str(stamped_iso(tmp_path, "9.8.7+ccc")), bootstrap_iso="[LocalDS_0] a/b.iso")
    result = run(vcsim, VCH, args)
    assert result.get("failed") and sentence in result["msg"], result
    assert "tether_iso" in result["msg"]
