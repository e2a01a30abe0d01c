"""playbooks/multi_container.yml run as users run it (ansible-playbook, the VCH's docker_connection as an extra
variable) against a VCH on vcsim: check mode changes nothing, the first run makes the network, volume and both
containers (the web one's port published), a re-run changes nothing, check mode with a changed variable
predicts the one recreate; each result checked with the docker CLI."""

import json
import os
import re
import socket
import subprocess
import sys

from ansible_collections.vic.containers.tools.harness.endpoint import docker_cli
from ansible_collections.vic.containers.tools.harness.playbook import CLIENT_VARIABLES, REPO_ROOT

PLAYBOOK = REPO_ROOT / "playbooks" / "multi_container.yml"
_RECAP = re.compile(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


WEB_PORT = _free_port()


def play(vch, tmp_path, *options, **changed_vars):
    """Run the playbook; returns (ok, changed, failed) from its recap and the output."""
    extra = {"app_name": "mc", "app_registry": vch["registry"], "app_web_image": vch["registry"] + "/library/busybox",
             "app_db_image": vch["registry"] + "/library/busybox", "app_db_capacity": "512MB",
             "app_db_password": "mc-secret-1", "app_web_command": ["sleep", "3600"],
             "app_db_command": ["sleep", "3600"], "app_docker_connection": vch["connection"], "app_web_port": WEB_PORT,
             **changed_vars}
    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps(extra))
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_VARIABLES}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    done = subprocess.run(["ansible-playbook", "-i", "localhost,", str(PLAYBOOK), "-e", "@%s" % variables] + list(options),
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + done.stderr
    recap = _RECAP.search(output)
    assert recap, output
    ok, changed, unreachable, failed = (int(n) for n in recap.groups())
    assert unreachable == 0 and "mc-secret-1" not in output, output
    return ok, changed, failed, output


def cli_json(vch, *args):
    done = docker_cli(vch, *args)
    return json.loads(done.stdout)[0] if done.returncode == 0 else None


def test_multi_container_playbook(vch, tmp_path):
    try:
        _ok, changed, failed, output = play(vch, tmp_path, "--check")
        assert failed == 0 and changed > 0, output
        assert cli_json(vch, "container", "inspect", "mc-web") is None
        assert cli_json(vch, "volume", "inspect", "mc-db") is None

        _ok, changed, failed, output = play(vch, tmp_path)
        # The network, two pulls (one image under two names: the second finds it), the volume, two containers.
        assert failed == 0 and changed == 5, output
        network = cli_json(vch, "network", "inspect", "mc-net")
        db = cli_json(vch, "container", "inspect", "mc-db")
        web = cli_json(vch, "container", "inspect", "mc-web")
        volume = cli_json(vch, "volume", "inspect", "mc-db")
        assert network and volume and db and web
        assert db["State"]["Status"] == web["State"]["Status"] == "running"
        assert [(m["Name"], m["Destination"]) for m in db["Mounts"]] == [("mc-db", "/var/lib/postgresql/data")]
        assert list(db["NetworkSettings"]["Networks"]) == list(web["NetworkSettings"]["Networks"]) == ["mc-net"]
        assert "db" in db["NetworkSettings"]["Networks"]["mc-net"]["Aliases"]
        assert (db["Config"]["Labels"]["tier"], web["Config"]["Labels"]["tier"]) == ("db", "web")
        assert "DATABASE_HOST=db" in web["Config"]["Env"]
        assert db["HostConfig"]["Memory"] == 1024 ** 3 and web["HostConfig"]["Memory"] == 512 * 1024 ** 2
        assert volume["Labels"] == {"app": "mc"} and network["Labels"] == {"app": "mc"}
        assert docker_cli(vch, "port", "mc-web").stdout.split("\n")[0].endswith(":%d" % WEB_PORT)

        _ok, changed, failed, output = play(vch, tmp_path)
        assert failed == 0 and changed == 0, output
        assert cli_json(vch, "container", "inspect", "mc-web")["Id"] == web["Id"]
        assert cli_json(vch, "container", "inspect", "mc-db")["Id"] == db["Id"]

        # Check mode with another web command: the web container alone would be recreated; nothing is.
        _ok, changed, failed, output = play(vch, tmp_path, "--check", "--diff", app_web_command=["sleep", "7200"])
        assert failed == 0 and changed == 1 and "7200" in output, output  # the diff shows the command after
        assert cli_json(vch, "container", "inspect", "mc-web")["Config"]["Cmd"] == ["sleep", "3600"]
    finally:
        docker_cli(vch, "rm", "-f", "mc-web", "mc-db")
        docker_cli(vch, "volume", "rm", "mc-db")
        docker_cli(vch, "network", "rm", "mc-net")
    assert cli_json(vch, "container", "inspect", "mc-db") is None
    assert cli_json(vch, "network", "inspect", "mc-net") is None
