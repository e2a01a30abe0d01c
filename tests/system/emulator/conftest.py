# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the emulator tests read of vcsim: a VCH's read-write disk template folder, a container VM's disks."""

import json
import os
import re

import pytest

from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore, pc
from ansible_collections.vic.containers.plugins.module_utils.vsphere.session import Session
from ansible_collections.vic.containers.services.tether import protocol

try:
    from pyVmomi import vim
except ImportError:  # pragma: no cover
    vim = None

_IMAGE_STORE = re.compile(r"image store (\[[^\]]+\] \S+): ")


def _session(sim):
    return Session(sim.host, sim.username, sim.password, sim.port, validate_certs=False)


def _view(session, kind, paths):
    view = session.content.viewManager.CreateContainerView(session.content.rootFolder, [kind], True)
    try:
        return pc.retrieve(session, [pc.object_spec(view, [pc.traversal("v", "ContainerView", "view")], skip=True)],
                           {kind.__name__.rsplit(".", 1)[-1]: paths})
    finally:
        view.Destroy()


@pytest.fixture(name="template_folder", scope="session")
def template_folder_fixture():
    def template_folder(sim, endpoint_log, size_gb=8):
        """The local folder (vcsim keeps each datastore in a directory) of the VCH's template, from the image
        store the endpoint's log names."""
        found = _IMAGE_STORE.search(endpoint_log)
        assert found, "the endpoint's log names no image store:\n" + endpoint_log[-2000:]
        name, path = datastore.parse_ds_path(found.group(1))
        with _session(sim) as session:
            urls = {d.get("name"): d.get("info.url") for d in _view(session, vim.Datastore, ("name", "info.url"))}
        return os.path.join(urls[name], path, "scratch-%dg" % size_gb)
    return template_folder


@pytest.fixture(name="rw_disk_of", scope="session")
def rw_disk_of_fixture():
    def rw_disk_of(sim, name):
        """The boot spec and the read-write disk's backing of container ``name``'s VM."""
        with _session(sim) as session:
            found = _view(session, vim.VirtualMachine, ("name", "config.extraConfig", "config.hardware.device"))
        for props in found:
            if not props.get("name", "").startswith(name + "-"):
                continue
            boot = json.loads(codec.join_value(codec.as_dict(props.get("config.extraConfig")), protocol.BOOT_KEY))
            units = {d.unitNumber: d.backing for d in props.get("config.hardware.device") or ()
                     if isinstance(d, vim.vm.device.VirtualDisk)}
            return boot, units[boot["rw"]]
        raise AssertionError("no VM for container %s" % name)
    return rw_disk_of
