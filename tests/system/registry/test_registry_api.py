"""The Harbor v2.0 API subset: projects, members, users, system answers, with Harbor's status codes and
error bodies, answers checked against Harbor's API description; the service's command line."""

import sqlite3
import subprocess
import urllib.parse

import bcrypt
import jsonschema
import pytest

from ansible_collections.vic.containers.tools.harness.registry import TestCA as CA
from ansible_collections.vic.containers.tools.harness.vic_registry import (
    ADMIN, PASSWORD, VicRegistry, _spec, add_member, make_project, make_user, push, validate
)

DEV = ("adev", PASSWORD)
# Two service processes on one port: every API answer here comes from either (no state in one process).
WORKERS = 2
# Every test of the deployment runs against both stores the service supports (conftest.py).
DATABASES = ("sqlite", "postgresql")


def harbor_error(answer, status):
    got, _headers, body = answer
    assert got == status, (got, body)
    jsonschema.Draft4Validator(dict(_spec()["definitions"]["Errors"], definitions=_spec()["definitions"])).validate(body)
    assert body["errors"][0]["message"], body
    return body["errors"][0]


@pytest.fixture(scope="module")
def api(registry):
    make_user(registry, DEV[0])
    return registry


def test_health_systeminfo_and_default_project(api):
    status, _headers, health = api.api("GET", "/health")
    assert status == 200 and validate(health, "/health")["status"] == "healthy"
    assert {c["name"] for c in health["components"]} >= {"database", "registry"}
    status, _headers, info = api.api("GET", "/systeminfo", ADMIN)
    assert status == 200 and validate(info, "/systeminfo")["external_url"] == api.url
    status, _headers, projects = api.api("GET", "/projects?q=" + urllib.parse.quote("name=default-project"))
    assert status == 200 and validate(projects, "/projects")[0]["metadata"]["public"] == "true"


def test_projects(api):
    assert api.api("POST", "/projects", DEV, {"project_name": "alpha", "metadata": {"public": "false"}})[0] == 201
    error = harbor_error(api.api("POST", "/projects", ADMIN, {"project_name": "alpha"}), 409)
    assert error["code"] == "CONFLICT" and "alpha" in error["message"]
    for bad in ("Alpha", "-lead", "trail-", "a..b", "", "with space", "x" * 256, None, 12):
        harbor_error(api.api("POST", "/projects", ADMIN, {"project_name": bad}), 400)
    harbor_error(api.api("POST", "/projects", None, {"project_name": "anon"}), 401)
    harbor_error(api.api("POST", "/projects", ADMIN, {"project_name": "beta", "metadata": {"public": True}}), 400)
    harbor_error(api.api("POST", "/projects", ADMIN, {"project_name": "beta", "storage_limit": 0}), 400)
    assert api.api("HEAD", "/projects?project_name=alpha")[0] == 200
    assert api.api("HEAD", "/projects?project_name=nope")[0] == 404

    status, headers, found = api.api("GET", "/projects?q=" + urllib.parse.quote("name=alpha"), DEV)
    assert status == 200 and [p["name"] for p in validate(found, "/projects")] == ["alpha"]
    assert found[0]["current_user_role_id"] == 1 and headers["X-Total-Count"] == "1"
    assert [p["name"] for p in api.api("GET", "/projects?name=lph", DEV)[2]] == ["alpha"]
    # Private: anonymous callers neither list nor read it.
    assert "alpha" not in [p["name"] for p in api.api("GET", "/projects?page_size=100")[2]]
    harbor_error(api.api("GET", "/projects/alpha"), 401)

    # A numeric name is a name with X-Is-Resource-Name, an id without.
    assert api.api("POST", "/projects", ADMIN, {"project_name": "4242"})[0] == 201
    status, _headers, numeric = api.api("GET", "/projects/4242", ADMIN, headers={"X-Is-Resource-Name": "true"})
    assert status == 200 and validate(numeric, "/projects/{project_name_or_id}")["name"] == "4242"
    harbor_error(api.api("GET", "/projects/4242", ADMIN), 404)
    assert api.api("GET", "/projects/%d" % numeric["project_id"], ADMIN)[2]["name"] == "4242"

    assert api.api("PUT", "/projects/alpha", DEV, {"metadata": {"public": "true", "severity": "high"}})[0] == 200
    assert api.api("GET", "/projects/alpha")[2]["metadata"] == {"public": "true", "severity": "high"}
    harbor_error(api.api("PUT", "/projects/alpha", DEV, {"metadata": {"public": "yes"}}), 400)
    harbor_error(api.api("PUT", "/projects/alpha", DEV, {"storage_limit": 1024}), 403)
    assert api.api("DELETE", "/projects/4242", ADMIN, headers={"X-Is-Resource-Name": "true"})[0] == 200
    harbor_error(api.api("GET", "/projects/4242", ADMIN, headers={"X-Is-Resource-Name": "true"}), 404)
    logs = api.api("GET", "/audit-logs?q=" + urllib.parse.quote("resource_type=project"), ADMIN)[2]
    assert {("create", "alpha", "adev"), ("delete", "4242", "admin")} <= {
        (e["operation"], e["resource"], e["username"]) for e in validate(logs, "/audit-logs")}


def test_members(api):
    make_project(api, "crew")
    make_user(api, "mguest")
    make_user(api, "mdev")
    status, headers, _body = api.api("POST", "/projects/crew/members", ADMIN,
                                     {"role_id": 3, "member_user": {"username": "mguest"}})
    assert status == 201 and "/api/v2.0/projects/crew/members/" in headers["Location"]
    mid = int(headers["Location"].rsplit("/", 1)[1])
    add_member(api, "crew", "mdev", 2)
    harbor_error(api.api("POST", "/projects/crew/members", ADMIN, {"role_id": 2, "member_user": {"username": "mdev"}}),
                 409)
    harbor_error(api.api("POST", "/projects/crew/members", ADMIN, {"role_id": 2, "member_user": {"username": "ghost"}}),
                 404)
    for role in (0, 6, "2", None, True):
        harbor_error(api.api("POST", "/projects/crew/members", ADMIN,
                             {"role_id": role, "member_user": {"username": "adev"}}), 400)
    # Only the project admin (or the system admin) manages members; a guest may list them.
    harbor_error(api.api("POST", "/projects/crew/members", ("mdev", PASSWORD),
                         {"role_id": 3, "member_user": {"username": "adev"}}), 403)
    status, _headers, members = api.api("GET", "/projects/crew/members", ("mguest", PASSWORD))
    assert status == 200
    validate(members, "/projects/{project_name_or_id}/members")
    assert {(m["entity_name"], m["role_id"], m["role_name"]) for m in members} == {
        ("admin", 1, "projectAdmin"), ("mguest", 3, "guest"), ("mdev", 2, "developer")}
    assert [m["entity_name"] for m in api.api("GET", "/projects/crew/members?entityname=gue", ADMIN)[2]] == ["mguest"]
    harbor_error(api.api("GET", "/projects/crew/members", ("adev", PASSWORD)), 403)
    harbor_error(api.api("GET", "/projects/crew/members"), 401)
    assert api.api("PUT", "/projects/crew/members/%d" % mid, ADMIN, {"role_id": 4})[0] == 200
    status, _headers, member = api.api("GET", "/projects/crew/members/%d" % mid, ADMIN)
    assert validate(member, "/projects/{project_name_or_id}/members/{mid}")["role_name"] == "maintainer"
    harbor_error(api.api("PUT", "/projects/crew/members/%d" % mid, ADMIN, {"role_id": 9}), 400)
    assert api.api("DELETE", "/projects/crew/members/%d" % mid, ADMIN)[0] == 200
    harbor_error(api.api("GET", "/projects/crew/members/%d" % mid, ADMIN), 404)
    summary = api.api("GET", "/projects/crew/summary", ADMIN)[2]
    assert validate(summary, "/projects/{project_name_or_id}/summary")["developer_count"] == 1


def test_users(api):
    status, headers, _body = api.api("POST", "/users", ADMIN, {"username": "carol", "password": PASSWORD,
                                                               "email": "carol@example.com", "realname": "Carol"})
    assert status == 201
    uid = int(headers["Location"].rsplit("/", 1)[1])
    harbor_error(api.api("POST", "/users", ADMIN, {"username": "carol", "password": PASSWORD}), 409)
    for bad in ("", "a,b", "with#hash", " padded", None):
        harbor_error(api.api("POST", "/users", ADMIN, {"username": bad, "password": PASSWORD}), 400)
    for weak in ("short1A", "alllowercase1", "NOLOWER123", "NoDigitsHere", None):
        harbor_error(api.api("POST", "/users", ADMIN, {"username": "dave", "password": weak}), 400)
    harbor_error(api.api("POST", "/users", DEV, {"username": "dave", "password": PASSWORD}), 403)
    harbor_error(api.api("GET", "/users", DEV), 403)
    status, _headers, users = api.api("GET", "/users?username=carol", ADMIN)
    assert [u["username"] for u in validate(users, "/users")] == ["carol"]
    carol = ("carol", PASSWORD)
    assert validate(api.api("GET", "/users/current", carol)[2], "/users/current")["user_id"] == uid
    assert [u["username"] for u in validate(api.api("GET", "/users/search?username=caro", DEV)[2],
                                            "/users/search")] == ["carol"]
    harbor_error(api.api("GET", "/users/%d" % uid, DEV), 403)

    # Users change their own password proving the old one; the admin resets anyone's.
    harbor_error(api.api("PUT", "/users/%d/password" % uid, carol, {"old_password": "Wrong-pass1",
                                                                    "new_password": "N3w-password"}), 403)
    harbor_error(api.api("PUT", "/users/%d/password" % uid, carol, {"old_password": PASSWORD,
                                                                    "new_password": "weak"}), 400)
    assert api.api("PUT", "/users/%d/password" % uid, carol, {"old_password": PASSWORD,
                                                              "new_password": "N3w-password"})[0] == 200
    harbor_error(api.api("GET", "/users/current", carol), 401)  # the old password no longer works
    assert api.api("GET", "/users/current", ("carol", "N3w-password"))[0] == 200
    assert api.api("PUT", "/users/%d/password" % uid, ADMIN, {"new_password": "Res3t-password"})[0] == 200
    assert api.api("GET", "/users/current", ("carol", "Res3t-password"))[0] == 200
    assert api.token(("carol", "Res3t-password"))[0] == 200
    assert api.api("DELETE", "/users/%d" % uid, ADMIN)[0] == 200
    harbor_error(api.api("GET", "/users/current", ("carol", "Res3t-password")), 401)
    harbor_error(api.api("DELETE", "/users/%d" % uid, ADMIN), 404)
    harbor_error(api.api("DELETE", "/users/1", ADMIN), 403)  # not oneself


def test_command_line(tmp_path):
    """migrate and set-admin-password (from stdin, idempotent, silent) on a database of their own."""
    deployment = VicRegistry(tmp_path)
    # (Running the migrations twice is test_migrations_build_the_models_schema's, in process: cheaper.)
    result = subprocess.run(deployment.command("migrate"), capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    for expected in ("changed", "unchanged"):
        result = subprocess.run(deployment.command("set-admin-password"), input="An0ther-secret\n",
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0 and result.stdout.strip() == expected, result.stderr
        assert "An0ther-secret" not in result.stdout + result.stderr
    with sqlite3.connect(tmp_path / "registry.db") as db:
        (stored,) = db.execute("SELECT password_hash FROM users WHERE username = 'admin'").fetchone()
    assert bcrypt.checkpw(b"An0ther-secret", stored.encode())


def test_tls(tmp_path, images):
    """Served over HTTPS (the role's way): the API, tokens, and a push and pull with skopeo checking the CA."""
    deployment = VicRegistry(tmp_path / "tls", ca=CA(tmp_path / "ca")).start()
    try:
        assert deployment.url.startswith("https://")
        assert deployment.api("GET", "/health")[2]["status"] == "healthy"
        assert deployment.token(ADMIN, ["repository:default-project/tls:pull,push"])[0] == 200
        code, err = push(deployment, images, "busybox", "default-project/tls:v1")
        assert code == 0, err
        code, err = deployment.skopeo("docker://%s/default-project/tls:v1" % deployment.host,
                                      "dir:%s" % (tmp_path / "pulled"))
        assert code == 0, err  # anonymous: default-project is public
    finally:
        assert deployment.stop() == 0


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrations_build_the_models_schema(tmp_path, request, kind):
    """The shipped Alembic migrations, applied twice to an empty database, give exactly the schema the
    models declare."""
    from alembic.autogenerate import compare_metadata  # pylint: disable=import-outside-toplevel
    from alembic.migration import MigrationContext  # pylint: disable=import-outside-toplevel

    from ansible_collections.vic.containers.services.registry import store  # pylint: disable=import-outside-toplevel
    url = (request.getfixturevalue("postgres").create_database("schema") if kind == "postgresql"
           else "sqlite:///%s" % (tmp_path / "schema.db"))
    engine = store.engine_for(url)
    store.migrate(engine)
    store.migrate(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), store.Base.metadata) == []
    engine.dispose()
