"""Pushes and pulls through the service with skopeo: the repository index and the audit log from
Distribution's notifications, quotas enforced as Harbor answers, deletion of artifacts and projects."""

import json
import os
import sqlite3
import urllib.error
import urllib.request

import pytest

from ansible_collections.vic.containers.tools.harness.registry import OciLayout, busybox_layer, tar_bytes
from ansible_collections.vic.containers.tools.harness.waiting import until

from ansible_collections.vic.containers.tools.harness.vic_registry import (
    ADMIN, PASSWORD, add_member, make_project, make_user, push, validate
)

DEV = ("idev", PASSWORD)
GUEST = ("iguest", PASSWORD)


def _setup(registry):
    if registry.api("HEAD", "/projects?project_name=team")[0] == 200:
        return
    make_project(registry, "team")
    for user, role in ((DEV[0], 2), (GUEST[0], 3)):
        make_user(registry, user)
        add_member(registry, "team", user, role)


def _logs(registry, project, query=""):
    status, _headers, body = registry.api("GET", "/projects/%s/logs?page_size=100%s" % (project, query), ADMIN)
    assert status == 200
    return validate(body, "/projects/{project_name}/logs")


def test_push_pull_index_and_audit(registry, images):
    _setup(registry)
    code, err = push(registry, images, "busybox", "team/app:v1", creds=DEV)
    assert code == 0, err

    def indexed():
        status, _headers, body = registry.api("GET", "/projects/team/repositories", DEV)
        return status == 200 and body
    repos = until(indexed, "the pushed repository in the index")
    validate(repos, "/projects/{project_name}/repositories")
    assert [r["name"] for r in repos] == ["team/app"]
    status, _headers, artifacts = registry.api("GET", "/projects/team/repositories/app/artifacts", DEV)
    validate(artifacts, "/projects/{project_name}/repositories/{repository_name}/artifacts")
    assert [t["name"] for t in artifacts[0]["tags"]] == ["v1"]
    digest = artifacts[0]["digest"]
    status, _headers, tags = registry.api("GET", "/projects/team/repositories/app/artifacts/v1/tags", GUEST)
    assert status == 200 and tags[0]["artifact_id"] == artifacts[0]["id"]

    # The guest pulls; the developer's push and the guest's pull are in the audit log with their names.
    code, err = registry.skopeo("docker://%s/team/app:v1" % registry.host, "dir:%s" % (registry.folder / "pulled"),
                                src_creds=GUEST)
    assert code == 0, err
    entries = until(lambda: [e for e in _logs(registry, "team") if e["operation"] == "pull"] and _logs(registry, "team"),
                    "the pull in the audit log")
    push_entry = next(e for e in entries if e["operation"] == "create" and e["resource_type"] == "artifact")
    assert {"username": "idev", "operation": "create", "resource": "team/app:v1",
            "resource_type": "artifact"}.items() <= push_entry.items()
    assert any(e["username"] == "iguest" and e["resource"] == "team/app:v1" for e in entries if e["operation"] == "pull")
    status, _headers, logs = registry.api("GET", "/audit-logs?q=username%3Didev", ADMIN)
    assert status == 200 and validate(logs, "/audit-logs") and all(e["username"] == "idev" for e in logs)

    # A project with repositories is not deleted (412); a guest cannot delete the artifact, the admin can.
    status, _headers, body = registry.api("DELETE", "/projects/team", ADMIN)
    assert status == 412 and body["errors"][0]["code"] == "PRECONDITION"
    assert registry.api("DELETE", "/projects/team/repositories/app/artifacts/" + digest, GUEST)[0] == 403
    assert registry.api("DELETE", "/projects/team/repositories/app/artifacts/" + digest, ADMIN)[0] == 200
    assert registry.api("GET", "/projects/team/repositories", ADMIN)[2] == []
    # Gone from Distribution too, not only from the index.
    token = registry.token(ADMIN, ["repository:team/app:pull"])[1]["token"]
    request = urllib.request.Request("%s/v2/team/app/manifests/%s" % (registry.url, digest), method="HEAD",
                                     headers={"Authorization": "Bearer " + token})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 404
    assert any(e["operation"] == "delete" and e["username"] == "admin" for e in _logs(registry, "team"))


def test_quota_refuses_push_as_harbor(registry, images):
    make_project(registry, "tiny", storage_limit=2048)
    code, err = push(registry, images, "busybox", "tiny/app:v1")
    assert code != 0 and "Quota exceeded when processing the request of adding" in err, err
    assert registry.api("GET", "/projects/tiny/repositories", ADMIN)[2] == []
    status, _headers, summary = registry.api("GET", "/projects/tiny/summary", ADMIN)
    assert summary["quota"]["hard"]["storage"] == 2048
    # Raised: the same push goes through and the usage counts each blob once.
    status, _headers, quotas = registry.api("GET", "/quotas?reference=project&reference_id=%d" %
                                            registry.api("GET", "/projects/tiny", ADMIN)[2]["project_id"], ADMIN)
    assert status == 200 and validate(quotas, "/quotas")
    assert registry.api("PUT", "/quotas/%d" % quotas[0]["id"], ADMIN, {"hard": {"storage": 50 << 20}})[0] == 200
    code, err = push(registry, images, "busybox", "tiny/app:v1")
    assert code == 0, err
    used = registry.api("GET", "/projects/tiny/summary", ADMIN)[2]["quota"]["used"]["storage"]
    layout = images["busybox"]
    expected = sum(layer["size"] for layer in layout.layers) + layout.config_descriptor["size"]
    assert expected < used < expected + 4096  # + the manifest
    code, err = push(registry, images, "shared", "tiny/other:v1")
    assert code == 0, err
    again = registry.api("GET", "/projects/tiny/summary", ADMIN)[2]["quota"]["used"]["storage"]
    shared = images["shared"]
    assert again - used < shared.layers[1]["size"] + shared.config_descriptor["size"] + 4096  # base layer not twice


def test_manifest_put_over_quota_answers_403_denied(registry, images):
    make_project(registry, "small", storage_limit=100)
    status, token = registry.token(ADMIN, ["repository:small/x:pull,push"])
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": images["busybox"].config_descriptor, "layers": images["busybox"].layers})
    request = urllib.request.Request(registry.url + "/v2/small/x/manifests/v1", data=manifest.encode(), method="PUT",
                                     headers={"Authorization": "Bearer " + token["token"],
                                              "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    body = json.loads(refused.value.read())
    assert body["errors"][0]["code"] == "DENIED"
    assert "will exceed the configured upper limit of 100 B" in body["errors"][0]["message"]


def test_garbage_collection_frees_deleted_blobs(registry, images, tmp_path):
    make_project(registry, "gcp")
    # An image of its own (nothing else here holds its top layer) over the busybox layer others keep.
    noise = tar_bytes([("noise", "file", os.urandom(300000), 0o644)])
    unique = OciLayout(tmp_path / "unique", "v1", [busybox_layer(), noise])
    images.add("unique", unique)
    for name in ("busybox", "unique"):
        code, err = push(registry, images, name, "gcp/%s:v1" % name)
        assert code == 0, err
    until(lambda: len(registry.api("GET", "/projects/gcp/repositories", ADMIN)[2]) == 2, "both repositories indexed")
    assert registry.api("DELETE", "/projects/gcp/repositories/unique/artifacts/v1", ADMIN)[0] == 200
    busybox = images["busybox"]
    own = [unique.layers[1], unique.config_descriptor]  # what only the deleted image holds
    blobs = registry.folder / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256"

    def blob(descriptor):
        digest = descriptor["digest"].split(":", 1)[1]
        return blobs / digest[:2] / digest / "data"
    assert all(blob(d).exists() for d in own)

    status, headers, _body = registry.api("POST", "/system/gc/schedule", ADMIN,
                                          {"schedule": {"type": "Manual"}, "parameters": {"delete_untagged": False}})
    assert status == 201
    path = headers["Location"].split("/api/v2.0", 1)[1]

    def ended():
        answer = registry.api("GET", path, ADMIN)[2]
        return answer if answer["job_status"] != "Running" else None
    run = until(ended, "the garbage collection to end", timeout=120)
    validate(run, "/system/gc/{gc_id}")
    assert run["job_status"] == "Success", registry.api("GET", path + "/log", ADMIN)
    freed = json.loads(run["job_parameters"])["freed_bytes"]
    assert freed >= sum(d["size"] for d in own)
    assert not any(blob(d).exists() for d in own)
    assert blob(busybox.layers[0]).exists()  # shared with the image that stays
    code, err = registry.skopeo("docker://%s/gcp/busybox:v1" % registry.host, "dir:%s" % (registry.folder / "gc-pull"),
                                src_creds=ADMIN)
    assert code == 0, err
    assert [r["id"] for r in validate(registry.api("GET", "/system/gc", ADMIN)[2], "/system/gc")][0] == run["id"]
    assert registry.api("POST", "/system/gc/schedule", ("idev", PASSWORD), {"schedule": {"type": "Manual"}})[0] == 403
    assert registry.api("POST", "/system/gc/schedule", ADMIN, {"schedule": {"type": "Daily"}})[0] == 400


def test_writes_wait_while_a_collection_runs(registry):
    """The read-only gate every worker checks: a run marked Running in the database refuses pushes."""
    token = registry.token(ADMIN, ["repository:default-project/ro:pull,push"])[1]["token"]

    def upload():
        request = urllib.request.Request(registry.url + "/v2/default-project/ro/blobs/uploads/", method="POST",
                                         headers={"Authorization": "Bearer " + token})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
    assert upload() == 202
    with sqlite3.connect(registry.folder / "registry.db") as db:
        db.execute("INSERT INTO gc_runs (kind, parameters, status, freed_bytes, log, created, updated) "
                   "VALUES ('MANUAL', '{}', 'Running', 0, '', '2026-01-01', '2026-01-01')")
    try:
        assert upload() == 503
        status, token_answer = registry.token(ADMIN, ["repository:default-project/ro:pull"])
        assert status == 200 and token_answer["token"]  # reads go on
    finally:
        with sqlite3.connect(registry.folder / "registry.db") as db:
            db.execute("DELETE FROM gc_runs WHERE status = 'Running'")
    assert upload() == 202
