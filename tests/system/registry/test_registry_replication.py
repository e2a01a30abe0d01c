"""Replication to a second docker-registry with skopeo: the tags a policy's filters match are copied,
others are not, manually and on push; executions and tasks are listed in Harbor's shapes."""

import json
import urllib.error
import urllib.request

import pytest

from ansible_collections.vic.containers.tools.harness.registry import Registry
from ansible_collections.vic.containers.tools.harness.registry import TestCA as CA
from ansible_collections.vic.containers.tools.harness.vic_registry import ADMIN, make_project, push, validate
from ansible_collections.vic.containers.tools.harness.waiting import until


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    folder = tmp_path_factory.mktemp("replica")
    replica = Registry(folder, CA(folder / "ca"), "plain").start()
    yield replica
    replica.stop()


def tags(replica, repository):
    try:
        with urllib.request.urlopen("http://%s/v2/%s/tags/list" % (replica.host, repository), timeout=10) as answer:
            return sorted(json.loads(answer.read())["tags"] or [])
    except urllib.error.HTTPError as error:
        assert error.code == 404
        return []


def finished(registry, execution_path):
    def done():
        execution = registry.api("GET", execution_path, ADMIN)[2]
        return execution if execution["status"] != "InProgress" else None
    return until(done, "the replication execution to end", timeout=120)


def test_replication_copies_matching_tags(registry, images, target):
    make_project(registry, "rep")
    for tag in ("v1", "latest"):
        code, err = push(registry, images, "busybox", "rep/app:%s" % tag)
        assert code == 0, err
    code, err = push(registry, images, "shared", "rep/other:v1")
    assert code == 0, err
    until(lambda: len(registry.api("GET", "/projects/rep/repositories/app/artifacts/v1/tags", ADMIN)[2] or []) == 2,
          "both tags indexed")

    status, headers, _body = registry.api("POST", "/registries", ADMIN, {
        "name": "replica", "url": "http://" + target.host, "insecure": True,
        "credential": {"type": "basic", "access_key": "", "access_secret": ""}})
    assert status == 201
    remote_id = int(headers["Location"].rsplit("/", 1)[1])
    status, _headers, remote = registry.api("GET", "/registries/%d" % remote_id, ADMIN)
    assert validate(remote, "/registries/{id}")["url"] == "http://" + target.host
    status, headers, _body = registry.api("POST", "/replication/policies", ADMIN, {
        "name": "apps-v", "dest_registry": {"id": remote_id}, "dest_namespace": "mirror",
        "filters": [{"type": "name", "value": "rep/app"}, {"type": "tag", "value": "v*"}],
        "trigger": {"type": "manual"}, "enabled": True, "override": True})
    assert status == 201
    policy_id = int(headers["Location"].rsplit("/", 1)[1])
    assert validate(registry.api("GET", "/replication/policies/%d" % policy_id, ADMIN)[2],
                    "/replication/policies/{id}")["filters"][1] == {"type": "tag", "value": "v*"}
    assert registry.api("POST", "/replication/policies", ADMIN, {"name": "bad", "dest_registry": {"id": remote_id},
                                                                 "trigger": {"type": "weekly"}})[0] == 400
    assert registry.api("DELETE", "/registries/%d" % remote_id, ADMIN)[0] == 412

    status, headers, _body = registry.api("POST", "/replication/executions", ADMIN, {"policy_id": policy_id})
    assert status == 201
    execution_path = headers["Location"].split("/api/v2.0", 1)[1]
    execution = finished(registry, execution_path)
    assert validate(execution, "/replication/executions/{id}")["status"] == "Succeed", execution
    assert (execution["total"], execution["succeed"], execution["failed"]) == (1, 1, 0)
    task_list = registry.api("GET", execution_path + "/tasks", ADMIN)[2]
    assert [(t["src_resource"], t["dst_resource"], t["status"]) for t in
            validate(task_list, "/replication/executions/{id}/tasks")] == [
        ("rep/app:v1", "%s/mirror/app:v1" % target.host, "Succeed")]
    assert tags(target, "mirror/app") == ["v1"]  # not latest
    assert tags(target, "mirror/other") == []  # not the other repository
    listed_ids = [e["id"] for e in registry.api("GET", "/replication/executions?policy_id=%d" % policy_id, ADMIN)[2]]
    assert listed_ids == [execution["id"]]

    # On push: an event-based policy copies what was just pushed, and only if it matches.
    assert registry.api("PUT", "/replication/policies/%d" % policy_id, ADMIN,
                        {"trigger": {"type": "event_based"}})[0] == 200
    code, err = push(registry, images, "busybox", "rep/app:v2")
    assert code == 0, err
    code, err = push(registry, images, "busybox", "rep/app:nightly")
    assert code == 0, err
    until(lambda: tags(target, "mirror/app") == ["v1", "v2"], "v2 replicated on push", timeout=120)
    executions = registry.api("GET", "/replication/executions?policy_id=%d" % policy_id, ADMIN)[2]
    assert executions[0]["trigger"] == "event_based"
    finished(registry, "/replication/executions/%d" % executions[0]["id"])
    assert tags(target, "mirror/app") == ["v1", "v2"]
    assert registry.api("GET", "/replication/policies", ("nobody", "x"))[0] == 401
