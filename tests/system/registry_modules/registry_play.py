"""Run the registry modules through ansible-playbook with module_defaults of group/vic.containers.registry, and
read what the registry holds through its API (independently of the modules)."""

import urllib.parse

from ansible_collections.vic.containers.tools.harness import playbook
from ansible_collections.vic.containers.tools.harness.vic_registry import ADMIN


def run_tasks(tasks, defaults, check=False, diff=False, extra_env=None):
    """Run ``tasks`` ([(module, args) or (module, args, check), ...]) in one play; returns (results, output)."""
    return playbook.run_tasks(None, tasks, check=check, diff=diff, extra_env=extra_env,
                              module_defaults={"group/vic.containers.registry": defaults})


def project_state(registry, name):
    """{"metadata", "members": {user: role}, "storage_limit"} of a project as the API shows it, or None."""
    status, _headers, found = registry.api("GET", "/projects?q=" + urllib.parse.quote("name=%s" % name), ADMIN)
    assert status == 200, found
    if not found:
        return None
    project = found[0]
    status, _headers, members = registry.api("GET", "/projects/%d/members?page_size=100" % project["project_id"],
                                             ADMIN)
    assert status == 200, members
    status, _headers, quotas = registry.api("GET", "/quotas?reference=project&reference_id=%d"
                                            % project["project_id"], ADMIN)
    assert status == 200, quotas
    return {"metadata": project["metadata"], "members": {m["entity_name"]: m["role_name"] for m in members},
            "storage_limit": quotas[0]["hard"]["storage"], "repo_count": project["repo_count"]}
