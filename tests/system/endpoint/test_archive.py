# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``docker cp`` both ways and the archive API, end to end: the docker CLI and SDK -> the endpoint -> the
tether channel's ``archive@vic`` subsystem, played by a tether peer whose local directory stands for the
container's root."""

import base64
import io
import json
import tarfile

import docker
import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import docker_cli, running_vch, sdk
from test_container_streams import PeerLoop, wait_connected
from test_containers import run


@pytest.fixture(scope="module")
def cp(vcsim, tmp_path_factory, registries):
    vch = running_vch(vcsim, "cp", tmp_path_factory.mktemp("certs") / "cp", registries)
    vch["peers"] = PeerLoop()
    root = tmp_path_factory.mktemp("root")
    (root / "etc").mkdir()
    (root / "etc" / "hostname").write_text("web\n")
    (root / "tmp").mkdir()
    vch["root"] = root
    vch["cid"] = run(vch, "run", "-d", "--name", "web", vch["image"], "sleep", "600")
    vch["peers"].tether(vch, vch["cid"], root=str(root))
    wait_connected(vch, vch["cid"])
    yield vch
    vch["peers"].close()
    vch["endpoint"].stop()


def test_docker_cp_out_of_and_into_a_container(cp, tmp_path):
    out = docker_cli(cp, "cp", "web:/etc/hostname", str(tmp_path))
    assert out.returncode == 0, out.stderr + cp["endpoint"].log()[-2000:]
    assert (tmp_path / "hostname").read_text() == "web\n"
    (tmp_path / "f").write_text("x\n")
    into = docker_cli(cp, "cp", str(tmp_path / "f"), "web:/tmp/")
    assert into.returncode == 0, into.stderr + cp["endpoint"].log()[-2000:]
    assert (cp["root"] / "tmp" / "f").read_text() == "x\n"
    directory = docker_cli(cp, "cp", "web:/etc", str(tmp_path / "copy"))
    assert directory.returncode == 0 and (tmp_path / "copy" / "hostname").read_text() == "web\n"


def test_the_archive_api_as_dockerd_answers_it(cp):
    client = sdk(cp)
    try:
        url = client.api._url("/containers/{0}/archive", cp["cid"])  # pylint: disable=protected-access
        head = client.api.head(url,
                               params={"path": "/etc/hostname"})
        assert head.status_code == 200
        shown = json.loads(base64.b64decode(head.headers["X-Docker-Container-Path-Stat"]))
        assert shown["name"] == "hostname" and shown["size"] == 4 and shown["mode"] == 0o644
        data, stat = client.api.get_archive(cp["cid"], "/etc")
        assert stat["name"] == "etc" and stat["mode"] & (1 << 31)
        with tarfile.open(fileobj=io.BytesIO(b"".join(data))) as archive:
            assert sorted(archive.getnames()) == ["etc", "etc/hostname"]
        with pytest.raises(docker.errors.NotFound) as missing:
            client.api.get_archive(cp["cid"], "/nope")
        assert "Could not find the file /nope in container %s" % cp["cid"] in missing.value.explanation
        with pytest.raises(docker.errors.APIError) as relative:
            client.api.get_archive(cp["cid"], "etc")
        assert relative.value.status_code == 400
    finally:
        client.close()
