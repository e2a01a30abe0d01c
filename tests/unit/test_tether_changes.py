# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``docker diff`` from an overlay's upper dir (services/tether/agent/changes.py), with the upper and lower
dirs made here as overlayfs makes them: whiteouts as 0/0 character devices, opaque directories by xattr.
tests/system/endpoint/test_run.py runs it through a real overlay in a container."""

import os

import pytest

from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.services.tether.agent.changes import ADDED, DELETED, MODIFIED, changes


def _tree(base, entries):
    for path, content in entries.items():
        full = base / path
        full.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            full.mkdir(exist_ok=True)
        else:
            full.write_text(content)


def _whiteout(path):
    os.mknod(path, 0o600 | 0o020000, os.makedev(0, 0))


@pytest.fixture
def layers(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    _tree(lower, {"bin/sh": "sh", "bin/ls": "ls", "etc/passwd": "root", "data/old": "old", "keep/x": "x"})
    _tree(upper, {"bin": None, "etc/passwd": "root\nbob", "etc/hostname": "c1", "etc/hosts": "h",
                  "proc": None, "dev/pts": None, "new/a": "a", "data/fresh": "f", "keep": None})
    _whiteout(upper / "bin" / "ls")
    os.setxattr(upper / "data", "trusted.overlay.opaque", b"y")
    os.chmod(upper / "keep", 0o700)
    return upper, [lower]


def test_changes_are_dockerds_overlay_changes(layers):
    assert [(c["Path"], c["Kind"]) for c in changes(*layers)] == [
        ("/bin", MODIFIED), ("/bin/ls", DELETED),       # a whiteout; its parent is changed
        ("/data", DELETED), ("/data/fresh", ADDED),     # an opaque directory, as dockerd reports it
        ("/etc", MODIFIED), ("/etc/passwd", MODIFIED),  # hostname and hosts are the init layer's
        ("/keep", MODIFIED),                            # its mode changed
        ("/new", ADDED), ("/new/a", ADDED)]


def test_a_container_that_changed_nothing_but_the_init_files_has_no_changes(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    _tree(lower, {"bin/sh": "sh"})
    _tree(upper, {"etc/hostname": "c1", "etc/resolv.conf": "", "sys": None, "dev/shm": None})
    assert changes(upper, [lower]) == []


def test_changes_cross_the_channel_checked():
    found = [{"Path": "/a", "Kind": ADDED}] * 5000     # beyond one control line
    assert protocol.decode_changes(protocol.encode_changes(found)) == found
    for bad in (b"{}", b"[{\"Path\": \"/a\", \"Kind\": 7}]", b"\xff"):
        with pytest.raises(protocol.ProtocolError):
            protocol.decode_changes(bad)
