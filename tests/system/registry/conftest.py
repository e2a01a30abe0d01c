"""The registry service's tests: one deployment (docker-registry + the service, as the role makes it)
per test module; the helpers are in tools/harness/vic_registry.py."""

import pytest

from ansible_collections.vic.containers.tools.harness.registry import TestImages
from ansible_collections.vic.containers.tools.harness.vic_registry import VicRegistry


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    deployment = VicRegistry(tmp_path_factory.mktemp("vic-registry")).start()
    yield deployment
    assert deployment.stop() == 0, "the service did not end cleanly on SIGTERM"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return TestImages(tmp_path_factory.mktemp("images"))
