"""The endpoint's Docker API over mutual TLS: the real docker CLI and Docker SDK against it.

The endpoint starts from what vSphere (vcsim) holds: the VCH record, its sealed
secrets and the key in the image store.
"""

import json
import os
import subprocess
import sys

import docker
import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli, free_port, sdk, spec_validator
from ansible_collections.vic.containers.plugins.module_utils import _certs


def test_the_docker_cli_negotiates_and_reads_the_vch(vch):
    result = docker_cli(vch, "version", "--format", "{{.Server.APIVersion}} {{.Client.APIVersion}}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "1.43"
    info = docker_cli(vch, "info", "--format", "{{json .}}")
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["Name"] == "ep" and data["ID"] == vch["summary"]["uuid"]
    assert ["VCH CPU limit", "8000 MHz"] in data["SystemStatus"]
    assert ["Volume store default", "[LocalDS_0] vols-ep/volumes"] in data["SystemStatus"]


def test_the_docker_sdk_negotiates_and_answers_match_the_api_description(vch):
    client = sdk(vch)
    try:
        assert client.ping() is True
        assert client.api.api_version == "1.43"
        version = client.version()
        spec_validator("SystemVersion").validate(version)
        info = client.info()
        spec_validator("SystemInfo").validate(info)
        assert info["Name"] == "ep"
    finally:
        client.close()


def test_a_client_certificate_of_another_ca_or_none_is_refused(vch, tmp_path):
    other = tmp_path / "other"
    _certs.generate(str(other), "intruder")
    refused = docker_cli(vch, "version", certs=other, tmp_path=tmp_path)
    assert refused.returncode != 0
    assert "Server:" not in refused.stdout
    env = dict(os.environ, DOCKER_CONFIG=str(tmp_path))
    bare = subprocess.run(["docker", "-H", vch["host"], "--tls", "--tlscacert", str(vch["certs"] / "ca.pem"),
                           "info"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert bare.returncode != 0
    # The endpoint is still serving the right clients afterwards.
    assert docker_cli(vch, "version").returncode == 0


def test_docker_style_errors(vch):
    client = sdk(vch)
    try:
        api = client.api
        for path, status, text in (("/v1.43/commit", 501, "docker commit is not supported"),
                                   ("/v1.43/build", 501, "docker build is not supported"),
                                   ("/v1.43/nonsense", 404, "page not found")):
            response = api._post(api.base_url + path)
            assert response.status_code == status, path
            assert text in response.json()["message"]
            assert response.headers["Api-Version"] == "1.43"
        too_new = api._get(api.base_url + "/v1.99/version")
        assert too_new.status_code == 400 and "too new" in too_new.json()["message"]
    finally:
        client.close()


def test_an_endpoint_without_tls_serves_plain_tcp(vcsim, tmp_path):
    deploy(vcsim, "plain", tmp_path / "none", tls={"enabled": False})
    endpoint = Endpoint(vcsim, "plain")
    try:
        assert endpoint.ready["tls"] is False
        client = docker.DockerClient(base_url="tcp://127.0.0.1:%d" % endpoint.port, version="auto")
        assert client.info()["Name"] == "plain"
        client.close()
    finally:
        endpoint.stop()


def _endpoint_run(vcsim, *args):
    env = dict(os.environ, VMWARE_HOST=vcsim.host, VMWARE_PORT=str(vcsim.port), VMWARE_USER=vcsim.username,
               VMWARE_PASSWORD=vcsim.password, VMWARE_VALIDATE_CERTS="false")
    return subprocess.run([sys.executable, "-m", "ansible_collections.vic.containers.services.endpoint"] + list(args),
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def test_an_unknown_vch_is_one_clear_line(vcsim):
    result = _endpoint_run(vcsim, "--name", "nope", "--listen", "127.0.0.1:%d" % free_port())
    assert result.returncode == 2
    assert result.stderr.strip() == "endpoint: No VCH 'nope' in datacenter DC0."


@pytest.mark.parametrize("option, value", [("--listen", "127.0.0.1"), ("--tether-listen", "127.0.0.1:port"),
                                           ("--tether-listen", "127.0.0.1:70000")])
def test_a_bad_address_is_one_clear_line(vch, vcsim, option, value):
    listen = ["--listen", "127.0.0.1:%d" % free_port()] if option != "--listen" else []
    result = _endpoint_run(vcsim, "--name", "ep", option, value, *listen)
    assert result.returncode == 2
    assert result.stderr.strip() == "endpoint: %s: %r is not address:port" % (option, value)
