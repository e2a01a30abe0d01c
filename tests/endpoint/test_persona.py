"""The endpoint's Docker API over mutual TLS: the real docker CLI and Docker SDK against it.

The endpoint starts from what vSphere (vcsim) holds: the VCH record, its sealed
secrets and the key in the image store.
"""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import docker
import jsonschema
import pytest
import yaml

from ansible_collections.vic.containers.plugins.module_utils import _certs
from ansible_collections.vic.containers.plugins.module_utils import _vch as engine
from ansible_collections.vic.containers.plugins.module_utils._vch_spec import ARGUMENT_SPEC
from ansible_collections.vic.containers.plugins.module_utils._vsphere_session import Session

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO.parent / "shared" / "specs" / "docker-engine-api-v1.43.yaml"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def deploy(sim, name, cert_path, **extra):
    params = {k: v.get("default") for k, v in ARGUMENT_SPEC.items()}
    params.update(name=name, datacenter="DC0", compute="DC0_C0", image_store="LocalDS_0",
                  volume_stores={"default": "LocalDS_0/vols-" + name}, tls={"cert_path": str(cert_path)},
                  cpu={"limit_mhz": 8000, "reservation_mhz": None, "shares": None},
                  public_network_ip="127.0.0.1/8")  # the embedded world: the endpoint on loopback
    params.update(extra)
    with Session(sim.host, sim.username, sim.password, sim.port, validate_certs=False) as session:
        ctx, plan = engine.plan_present(session, params)
        plan.apply()
        return engine.result(ctx, params, False, plan)


class Endpoint:
    """The endpoint process, stopped by its own pid."""

    def __init__(self, sim, name):
        self.port = free_port()
        env = dict(os.environ, VMWARE_HOST=sim.host, VMWARE_PORT=str(sim.port), VMWARE_USER=sim.username,
                   VMWARE_PASSWORD=sim.password, VMWARE_VALIDATE_CERTS="false")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ansible_collections.vic.containers.appliance.endpoint", "--name", name,
             "--listen", "127.0.0.1:%d" % self.port], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("endpoint did not start: %s" % self.proc.stderr.read())
        self.ready = json.loads(line)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()


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


def docker_cli(vch, *args, certs=None, tmp_path=None):
    certs = certs or vch["certs"]
    env = dict(os.environ, DOCKER_CONFIG=str(tmp_path or vch["certs"].parent))
    env.pop("DOCKER_HOST", None)
    command = ["docker", "-H", vch["host"], "--tlsverify", "--tlscacert", str(vch["certs"] / "ca.pem"),
               "--tlscert", str(certs / "cert.pem"), "--tlskey", str(certs / "key.pem")] + list(args)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def sdk(vch, certs=None):
    certs = certs or vch["certs"]
    tls = docker.tls.TLSConfig(client_cert=(str(certs / "cert.pem"), str(certs / "key.pem")),
                               ca_cert=str(vch["certs"] / "ca.pem"), verify=True)
    return docker.DockerClient(base_url=vch["host"].replace("tcp://", "https://"), tls=tls, version="auto")


def spec_validator(definition):
    spec = yaml.safe_load(SPEC.read_text())
    return jsonschema.Draft4Validator({"$ref": "#/definitions/" + definition, "definitions": spec["definitions"]})


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


def test_an_unknown_vch_is_one_clear_line(vcsim):
    env = dict(os.environ, VMWARE_HOST=vcsim.host, VMWARE_PORT=str(vcsim.port), VMWARE_USER=vcsim.username,
               VMWARE_PASSWORD=vcsim.password, VMWARE_VALIDATE_CERTS="false")
    result = subprocess.run([sys.executable, "-m", "ansible_collections.vic.containers.appliance.endpoint",
                             "--name", "nope", "--listen", "127.0.0.1:%d" % free_port()],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "endpoint: No VCH 'nope' in datacenter DC0."
