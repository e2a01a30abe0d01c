"""The registry service's tests: one deployment (docker-registry + the service, as the role makes it)
per test module; the helpers are in tools/harness/vic_registry.py.

The service's database is SQLite unless a module names more in ``DATABASES`` (``"sqlite"``,
``"postgresql"``): its tests then run once against each, with a deployment per database."""

import itertools
from pathlib import Path

import pytest

from ansible_collections.vic.containers.tools.harness.registry import TestImages
from ansible_collections.vic.containers.tools.harness.vic_registry import Postgres, VicRegistry

_NAMES = itertools.count()


def pytest_generate_tests(metafunc):
    databases = getattr(metafunc.module, "DATABASES", None)
    if databases and "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", databases, indirect=True, scope="module")


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL cluster for the session (a database per user of it)."""
    cluster = Postgres().start()
    yield cluster
    cluster.stop()
    assert not cluster.folder.exists()


@pytest.fixture(scope="module")
def database_url(request):
    """A fresh database's URL for the service: a new PostgreSQL database, or None for SQLite in the
    deployment's folder (the role's default)."""
    kind = getattr(request, "param", "sqlite")
    if kind == "postgresql":
        return request.getfixturevalue("postgres").create_database("registry%d" % next(_NAMES))
    assert kind == "sqlite", kind
    return None


@pytest.fixture(scope="module")
def registry(request, tmp_path_factory, database_url):
    """The module's deployment; a module's WORKERS sets the service's worker processes (default 1)."""
    workers = getattr(request.module, "WORKERS", 1)
    deployment = VicRegistry(tmp_path_factory.mktemp("vic-registry"), workers=workers,
                             database_url=database_url).start()
    others = deployment.workers()
    assert len(others) == workers - 1
    yield deployment
    assert deployment.stop() == 0, "the service did not end cleanly on SIGTERM"
    assert not [pid for pid in others if Path("/proc/%d" % pid).exists()], "a worker outlived SIGTERM"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return TestImages(tmp_path_factory.mktemp("images"))
