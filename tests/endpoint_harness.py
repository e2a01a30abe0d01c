"""The endpoint tests' parts: a VCH deployed on vcsim, its endpoint process (stopped by its pid),
and the real docker CLI and Docker SDK pointed at it over mutual TLS."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import docker
import jsonschema
import yaml

from ansible_collections.vic.containers.plugins.module_utils import _vch as engine
from ansible_collections.vic.containers.plugins.module_utils._vch_spec import ARGUMENT_SPEC
from ansible_collections.vic.containers.plugins.module_utils._vsphere_session import Session

REPO = Path(__file__).resolve().parents[1]
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

    def __init__(self, sim, name, port=None, tether_port=None):
        self.port = port or free_port()
        # Container VMs keep the tether address in their serial ports: a restarted endpoint reuses it.
        self.tether_port = tether_port or free_port()
        env = dict(os.environ, VMWARE_HOST=sim.host, VMWARE_PORT=str(sim.port), VMWARE_USER=sim.username,
                   VMWARE_PASSWORD=sim.password, VMWARE_VALIDATE_CERTS="false")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ansible_collections.vic.containers.appliance.endpoint", "--name", name,
             "--listen", "127.0.0.1:%d" % self.port, "--tether-listen", "127.0.0.1:%d" % self.tether_port],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
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
