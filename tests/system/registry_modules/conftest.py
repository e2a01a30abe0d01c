"""Fixtures of the registry module tests: one VIC registry (docker-registry + the service, as the registry role
deploys it) on loopback per test module, its users, and the connection the modules get."""

import pytest

from ansible_collections.vic.containers.tools.harness.registry import TestImages
from ansible_collections.vic.containers.tools.harness.vic_registry import ADMIN, VicRegistry, make_user

USERS = ("alice", "bob", "carol")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    deployment = VicRegistry(tmp_path_factory.mktemp("vic-registry")).start()
    for user in USERS:
        make_user(deployment, user)
    yield deployment
    assert deployment.stop() == 0, "the service did not end cleanly on SIGTERM"


@pytest.fixture(scope="module")
def connection(registry):
    return {"registry_url": registry.url, "username": ADMIN[0], "password": ADMIN[1]}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return TestImages(tmp_path_factory.mktemp("images"))
