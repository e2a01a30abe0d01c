"""Fixtures of the endpoint tests (helpers in tools/harness/endpoint.py)."""

import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy


@pytest.fixture(autouse=True)
def _own_ca_only(monkeypatch):
    # requests lets these override the CA a Docker SDK client is given (psf/requests#3829).
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def vch(vcsim, tmp_path_factory):
    certs = tmp_path_factory.mktemp("certs") / "ep"
    summary = deploy(vcsim, "ep", certs)
    endpoint = Endpoint(vcsim, "ep")
    yield {"summary": summary, "certs": certs, "endpoint": endpoint, "host": "tcp://127.0.0.1:%d" % endpoint.port}
    endpoint.stop()
