"""Run the real modules through ansible-playbook and return their registered results."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def connection(sim):
    """module_defaults for the vsphere action group, pointed at a simulator."""
    return {"hostname": sim.host, "port": sim.port, "username": sim.username,
            "password": sim.password, "validate_certs": False}


# What a play's environment must not inherit from the machine's: a client variable would change what the tasks do.
CLIENT_VARIABLES = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS", "DOCKER_API_VERSION",
                    "DOCKER_TIMEOUT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def run_tasks(sim, tasks, check=False, diff=False, extra_env=None, module_defaults=None, play_vars=None):
    """Run ``tasks`` ([(module, args) or (module, args, check), ...]) in one play; returns (results, output).

    ``module_defaults`` defaults to the vsphere action group pointed at ``sim`` (None for a play
    that needs no simulator). Each result is the task's registered value; a failed task does not
    stop the play, so tests can check the failure and what follows it.
    """
    if module_defaults is None:
        module_defaults = {"group/vic.containers.vsphere": connection(sim)}
    with tempfile.TemporaryDirectory(prefix="vic-play-") as work:
        play_tasks = []
        for i, (module, args, *task_check) in enumerate(tasks):
            # A third item, when given, is that task's check mode: a check and the real run in one play.
            play_tasks.append({"name": "task %d" % i, module: args, "register": "r%d" % i, "ignore_errors": True,
                               "check_mode": task_check[0] if task_check else check, "diff": diff})
        out = os.path.join(work, "results.json")
        play_tasks.append({"name": "save results", "delegate_to": "localhost", "check_mode": False,
                           "ansible.builtin.copy": {
                               "dest": out,
                               "content": "{{ [%s] | to_json }}" % ", ".join("r%d" % i for i in range(len(tasks)))}})
        play = [{"hosts": "localhost", "gather_facts": False, "connection": "local", "vars": play_vars or {},
                 "module_defaults": module_defaults, "tasks": play_tasks}]
        path = os.path.join(work, "play.yml")
        with open(path, "w") as handle:
            yaml.safe_dump(play, handle)
        env = {k: v for k, v in os.environ.items() if k not in CLIENT_VARIABLES}
        env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="False", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
        env.update(extra_env or {})
        proc = subprocess.run(["ansible-playbook", "-i", "localhost,", path] + (["--diff"] if diff else []),
                              cwd=work, env=env, capture_output=True, text=True, timeout=900, check=False)
        if not os.path.exists(out):
            raise AssertionError("ansible-playbook did not finish:\n%s\n%s" % (proc.stdout, proc.stderr))
        with open(out) as handle:
            return json.load(handle), proc.stdout + proc.stderr


def run(sim, module, args, check=False, diff=False):
    """Run one task; returns its registered result (with the play's output under ``_output``)."""
    results, output = run_tasks(sim, [(module, args)], check=check, diff=diff)
    result = results[0]
    result["_output"] = output
    return result
