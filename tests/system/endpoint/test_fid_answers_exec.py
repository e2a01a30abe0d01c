"""exec as the docker CLI and the Docker SDK use it (issue 12), against containers that really run: a VCH on
vcsim, its endpoint, and the host emulator running the real tether (``tools/harness/emulator.py``)."""

import pytest

from ansible_collections.vic.containers.tools.harness.emulator import emulated
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli, sdk
from ansible_collections.vic.containers.tools.harness.waiting import until


@pytest.fixture(scope="module")
def fx(vcsim, tmp_path_factory, registries):
    with emulated(vcsim) as emulator:
        certs = tmp_path_factory.mktemp("certs") / "fx"
        registry = registries.trusted()
        summary = deploy(vcsim, "fx", certs, registry=registry)
        endpoint = Endpoint(vcsim, "fx")
        vch = {"summary": summary, "certs": certs, "endpoint": endpoint, "emulator": emulator,
               "host": "tcp://127.0.0.1:%d" % endpoint.port,
               "image": registries.get("anonymous").host + "/library/busybox"}
        try:
            pulled = docker_cli(vch, "pull", vch["image"])
            assert pulled.returncode == 0, pulled.stderr
            yield vch
        finally:
            endpoint.stop()
        until(lambda: emulator.processes() == [], "the containers' processes to end")


def run(vch, *args):
    result = docker_cli(vch, *args)
    assert result.returncode == 0, "%s\nendpoint:\n%s\nemulator:\n%s" % (
        result.stderr, vch["endpoint"].log()[-3000:], vch["emulator"].log()[-3000:])
    return result.stdout


def test_exec_right_after_run_runs_and_the_sdk_detach_keys_are_accepted(fx):
    cid = run(fx, "run", "-d", fx["image"], "sleep", "600").strip()
    try:
        # inspect says running as soon as the VM is on; the tether dials in a moment later.
        assert run(fx, "exec", cid, "echo", "hi") == "hi\n"
        client = sdk(fx)
        try:
            made = client.api.exec_create(cid, ["echo", "there"], detach_keys="ctrl-p,ctrl-q")
            assert client.api.exec_start(made["Id"]) == b"there\n"
        finally:
            client.close()
    finally:
        run(fx, "rm", "-f", cid)
