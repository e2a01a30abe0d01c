# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A VCH pulls from the VIC registry (services/registry, deployed as the role does it, over TLS with the
tests' CA) as users of VIC and Harbor expect: a private project needs ``docker login`` of a member, a
non-member is refused, a public project needs no login, and the audit log names who pulled what."""

import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli
from ansible_collections.vic.containers.tools.harness.registry import TestImages
from ansible_collections.vic.containers.tools.harness.vic_registry import (
    ADMIN, PASSWORD, VicRegistry, add_member, make_project, make_user, push)
from ansible_collections.vic.containers.tools.harness.waiting import until

GUEST = 3


@pytest.fixture(scope="module")
def harbor(registries, tmp_path_factory):
    """The VIC registry: a private project ``team`` (alice a guest, bob no member) and a public ``pub``."""
    deployment = VicRegistry(tmp_path_factory.mktemp("vic-registry"), ca=registries.ca).start()
    images = TestImages(tmp_path_factory.mktemp("images"))
    for user in ("alice", "bob"):
        make_user(deployment, user)
    make_project(deployment, "team")
    make_project(deployment, "pub", public=True)
    add_member(deployment, "team", "alice", GUEST)
    for ref in ("team/app:v1", "pub/app:v1"):
        code, err = push(deployment, images, "busybox", ref, creds=ADMIN)
        assert code == 0, err
    yield deployment
    assert deployment.stop() == 0


@pytest.fixture(scope="module")
def vr(vcsim, registries, harbor, tmp_path_factory):  # pylint: disable=redefined-outer-name
    certs = tmp_path_factory.mktemp("certs") / "vr"
    deploy(vcsim, "vr", certs, registry=registries.trusted())
    vch = {"certs": certs, "sim": vcsim, "endpoint": Endpoint(vcsim, "vr")}
    vch["host"] = "tcp://127.0.0.1:%d" % vch["endpoint"].port
    yield vch
    vch["endpoint"].stop()


def pulls(harbor, user):  # pylint: disable=redefined-outer-name
    _status, _headers, entries = harbor.api("GET", "/projects/team/logs", ADMIN)
    return [e for e in entries if e["operation"] == "pull" and e["username"] == user]


def test_a_vch_pulls_a_private_project_only_after_a_members_login(vr, harbor, tmp_path):  # pylint: disable=redefined-outer-name
    private = harbor.host + "/team/app:v1"
    denied = docker_cli(vr, "pull", private, tmp_path=tmp_path)
    assert denied.returncode != 0 and "denied" in denied.stderr, denied.stderr
    wrong = docker_cli(vr, "login", harbor.host, "-u", "alice", "--password-stdin", tmp_path=tmp_path, stdin="nope")
    assert wrong.returncode != 0 and "unauthorized: incorrect username or password" in wrong.stderr, wrong.stderr
    ok = docker_cli(vr, "login", harbor.host, "-u", "alice", "--password-stdin", tmp_path=tmp_path, stdin=PASSWORD)
    assert ok.returncode == 0 and "Login Succeeded" in ok.stdout, ok.stderr
    pulled = docker_cli(vr, "pull", private, tmp_path=tmp_path)
    assert pulled.returncode == 0, pulled.stderr + vr["endpoint"].log()[-2000:]
    assert "Downloaded newer image for " + private in pulled.stdout
    entries = until(lambda: pulls(harbor, "alice"), lambda: "alice's pull in the project's audit log: %s"
                    % (harbor.api("GET", "/projects/team/logs", ADMIN)[2],))
    assert entries[0]["resource"] == "team/app:v1"
    shown = docker_cli(vr, "images", "--format", "{{.Repository}}:{{.Tag}}", tmp_path=tmp_path)
    assert private in shown.stdout.split()


def test_a_non_member_is_refused_and_a_public_project_needs_no_login(vr, harbor, tmp_path):  # pylint: disable=redefined-outer-name
    ok = docker_cli(vr, "login", harbor.host, "-u", "bob", "--password-stdin", tmp_path=tmp_path, stdin=PASSWORD)
    assert ok.returncode == 0, ok.stderr
    refused = docker_cli(vr, "pull", harbor.host + "/team/app:v1", tmp_path=tmp_path)
    assert refused.returncode != 0 and "denied" in refused.stderr, refused.stderr
    assert pulls(harbor, "bob") == []
    anonymous = tmp_path / "anonymous"
    anonymous.mkdir()
    public = docker_cli(vr, "pull", harbor.host + "/pub/app:v1", tmp_path=anonymous)
    assert public.returncode == 0, public.stderr
