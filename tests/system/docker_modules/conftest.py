"""Fixtures of the Docker module tests: one VCH on vcsim with its endpoint, a local registry holding the
test images, the connection the modules get from vic_vch's docker_connection, and a request-counting proxy."""

import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy

from docker_play import CountingProxy


@pytest.fixture(autouse=True)
def _own_ca_only(monkeypatch):
    # requests lets these override the CA a Docker SDK client is given (psf/requests#3829).
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def vch(vcsim, tmp_path_factory, registries):
    """The VCH "dm", its endpoint and the connection vic_vch returned for it (pointed at the endpoint's port)."""
    certs = tmp_path_factory.mktemp("certs") / "dm"
    summary = deploy(vcsim, "dm", certs, registry=registries.trusted(),
                     volume_stores={"default": "LocalDS_0/vols-dm", "backup": "LocalDS_0/backup-dm"})
    endpoint = Endpoint(vcsim, "dm")
    host = "tcp://127.0.0.1:%d" % endpoint.port
    # The endpoint listens on a free port of this machine, not on 2376: only docker_host moves.
    connection = dict(summary["docker_connection"], docker_host=host)
    vch = {"summary": summary, "certs": certs, "endpoint": endpoint, "host": host, "connection": connection,
           "registry": registries.get("anonymous").host, "sim": vcsim}
    yield vch
    endpoint.stop()


@pytest.fixture
def proxy(vch):
    counting = CountingProxy(vch["certs"], vch["endpoint"].port)
    yield counting
    counting.close()
