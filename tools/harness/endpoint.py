"""The endpoint tests' parts: a VCH deployed on vcsim, its endpoint process (stopped by its pid),
and the real docker CLI and Docker SDK pointed at it over mutual TLS."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import jsonschema
import yaml

from ansible_collections.vic.containers.plugins.module_utils.vch import engine
from ansible_collections.vic.containers.plugins.module_utils.vch.spec import ARGUMENT_SPEC
from ansible_collections.vic.containers.plugins.module_utils.vsphere.session import Session

REPO = Path(__file__).resolve().parents[2]
# Where the repository is linked as ansible_collections/vic/containers (tests/conftest.py).
COLLECTIONS = REPO / ".build" / "collections"
# The API the endpoint speaks, as moby publishes it (tests/specs/README.md): its answers are checked against it.
SPEC = REPO / "tests" / "specs" / "docker-engine-api-v1.43.yaml"


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


def running_vch(sim, name, cert_path, registries, emulator=None, **options):
    """A VCH ``name`` deployed on ``sim`` (with vic_vch ``options``) that trusts the local registries, its
    endpoint started and the test busybox image pulled: the dict docker_cli and the tests take (``image``:
    that image's reference). The caller stops ``found["endpoint"]``."""
    summary = deploy(sim, name, cert_path, registry=registries.trusted(), **options)
    endpoint = Endpoint(sim, name)
    found = {"summary": summary, "certs": cert_path, "endpoint": endpoint, "sim": sim, "emulator": emulator,
             "host": "tcp://127.0.0.1:%d" % endpoint.port,
             "image": registries.get("anonymous").host + "/library/busybox"}
    pulled = docker_cli(found, "pull", found["image"])
    assert pulled.returncode == 0, pulled.stderr
    return found


class Endpoint:
    """The endpoint process, stopped by its own pid; its log goes to a file (``log()``), never to a pipe
    that nobody reads and that would block it once full.

    ``python``: another interpreter (a venv's) to run it with; it then gets the collection on its path
    and nothing else of this one's."""

    def __init__(self, sim, name, port=None, tether_port=None, python=None):
        self.port = port or free_port()
        # Container VMs keep the tether address in their serial ports: a restarted endpoint reuses it.
        self.tether_port = tether_port or free_port()
        env = dict(os.environ, VMWARE_HOST=sim.host, VMWARE_PORT=str(sim.port), VMWARE_USER=sim.username,
                   VMWARE_PASSWORD=sim.password, VMWARE_VALIDATE_CERTS="false")
        if python is not None:
            env["PYTHONPATH"] = str(COLLECTIONS)
        self._log = tempfile.NamedTemporaryFile(prefix="endpoint-%s-" % name, suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [str(python or sys.executable), "-m", "ansible_collections.vic.containers.services.endpoint",
             "--name", name, "--listen", "127.0.0.1:%d" % self.port,
             "--tether-listen", "127.0.0.1:%d" % self.tether_port],
            env=env, stdout=subprocess.PIPE, stderr=self._log, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise AssertionError("endpoint did not start: %s" % self.log())
        self.ready = json.loads(line)

    def log(self):
        return Path(self._log.name).read_text(errors="replace")

    def kill(self):
        """kill -9: nothing of the endpoint's may be needed to start again."""
        self._end(signal.SIGKILL)

    def stop(self):
        self._end(signal.SIGTERM)

    def _end(self, signum):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                # Never leave it behind: a stuck stop is a failure the log tells, not a leak.
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc.stdout.close()
        self._log.close()
        os.unlink(self._log.name)


def docker_command(vch, *args, certs=None, tmp_path=None):
    """The docker CLI's command line and environment for ``args`` against the VCH, with its client cert."""
    certs = certs or vch["certs"]
    env = dict(os.environ, DOCKER_CONFIG=str(tmp_path or vch["certs"].parent))
    env.pop("DOCKER_HOST", None)
    command = ["docker", "-H", vch["host"], "--tlsverify", "--tlscacert", str(vch["certs"] / "ca.pem"),
               "--tlscert", str(certs / "cert.pem"), "--tlskey", str(certs / "key.pem")] + list(args)
    return command, env


def docker_cli(vch, *args, certs=None, tmp_path=None, stdin=None, timeout=60):
    command, env = docker_command(vch, *args, certs=certs, tmp_path=tmp_path)
    return subprocess.run(command, env=env, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)


def sdk(vch, certs=None):
    certs = certs or vch["certs"]
    tls = docker.tls.TLSConfig(client_cert=(str(certs / "cert.pem"), str(certs / "key.pem")),
                               ca_cert=str(vch["certs"] / "ca.pem"), verify=True)
    return docker.DockerClient(base_url=vch["host"].replace("tcp://", "https://"), tls=tls, version="auto")


def timed(func):
    """(seconds ``func()`` took, what it returned)."""
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def sdk_in_parallel(vch, count, call, workers=8):
    """``call(client, index)`` for each index below ``count``, by ``workers`` threads with a Docker SDK client
    each; returns the seconds it took. The clients are closed afterwards."""
    local = threading.local()
    clients = []
    lock = threading.Lock()

    def run(index):
        if not hasattr(local, "client"):
            local.client = sdk(vch)
            with lock:
                clients.append(local.client)
        call(local.client, index)

    try:
        with ThreadPoolExecutor(workers) as pool:
            return timed(lambda: list(pool.map(run, range(count))))[0]
    finally:
        for client in clients:
            client.close()


def _spec():
    return _nullable(yaml.safe_load(SPEC.read_text()))


def _nullable(node):
    """Swagger 2's ``x-nullable: true`` as JSON Schema says it: null is one of the types."""
    if isinstance(node, dict):
        node = {k: _nullable(v) for k, v in node.items()}
        if node.get("x-nullable") and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        return node
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    return node


def spec_validator(definition):
    spec = _spec()
    return jsonschema.Draft4Validator({"$ref": "#/definitions/" + definition, "definitions": spec["definitions"]})


def response_validator(path, method="get", status=200):
    """The schema of an answer the API description gives inline, under its path."""
    spec = _spec()
    schema = dict(spec["paths"][path][method]["responses"][status]["schema"], definitions=spec["definitions"])
    return jsonschema.Draft4Validator(schema)
