"""The registry service's tests: one deployment (docker-registry + the service, as the role makes it)
per test module; the helpers are in tools/harness/vic_registry.py."""

from pathlib import Path

import pytest

from ansible_collections.vic.containers.tools.harness.registry import TestImages
from ansible_collections.vic.containers.tools.harness.vic_registry import VicRegistry


@pytest.fixture(scope="module")
def registry(request, tmp_path_factory):
    """The module's deployment; a module's WORKERS sets the service's worker processes (default 1)."""
    workers = getattr(request.module, "WORKERS", 1)
    deployment = VicRegistry(tmp_path_factory.mktemp("vic-registry"), workers=workers).start()
    others = deployment.workers()
    assert len(others) == workers - 1
    yield deployment
    assert deployment.stop() == 0, "the service did not end cleanly on SIGTERM"
    assert not [pid for pid in others if Path("/proc/%d" % pid).exists()], "a worker outlived SIGTERM"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return TestImages(tmp_path_factory.mktemp("images"))
