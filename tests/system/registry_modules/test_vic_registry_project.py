"""vic_registry_project / vic_registry_project_info through ansible-playbook against a VIC registry on loopback
(docker-registry + the service): create, idempotent re-run, each option changed alone with check mode equal to
the real run, diff, members purge, absent while repositories remain, bad input naming the option, connection
errors; every result checked against the registry's API."""

from ansible_collections.vic.containers.plugins.module_utils.registry import project
from ansible_collections.vic.containers.plugins.module_utils.registry.client import Client
from ansible_collections.vic.containers.tools.harness import registry as harness_registry
from ansible_collections.vic.containers.tools.harness.vic_registry import ADMIN, VicRegistry, push
from ansible_collections.vic.containers.tools.harness.waiting import until

from registry_play import project_state, run_tasks

GB = 1024 ** 3
PROJECT = "vic_registry_project"


def check_then_apply_steps(connection, steps):
    """In one play, for each step in turn: check mode, the real run, a re-run, all with --diff. Each check
    predicted its run, each re-run is no change. Returns the real runs' results."""
    module = "vic.containers.%s" % PROJECT
    tasks = [(module, args, check) for args in steps for check in (True, False, False)]
    results, out = run_tasks(tasks, connection, diff=True)
    applied = []
    for index in range(len(steps)):
        checked, real, again = results[3 * index:3 * index + 3]
        assert not checked.get("failed") and not real.get("failed"), (steps[index], checked, real, out)
        assert checked["changes"] == real["changes"] and checked["diff"] == real["diff"], (checked, real)
        assert checked["changed"] == real["changed"]
        assert again["changed"] is False and again["changes"] == [], again
        applied.append(real)
    return applied


def check_then_apply(connection, args):
    return check_then_apply_steps(connection, [args])[0]


def test_project_life_cycle(registry, connection):
    desired = {"name": "team-a", "public": False, "storage_limit": "10GB",
               "members": [{"user": "alice", "role": "developer"}, {"user": "bob", "role": "guest"}]}
    created = check_then_apply(connection, desired)
    assert created["changes"] == ["create project team-a", "add member alice to project team-a as developer",
                                  "add member bob to project team-a as guest"]
    assert created["diff"]["before"] is None
    assert created["diff"]["after"] == {"metadata": {"public": "false"}, "storage_limit": 10 * GB,
                                        "members": {"admin": "projectAdmin", "alice": "developer", "bob": "guest"}}
    assert created["project"]["name"] == "team-a" and created["project"]["project_id"]
    assert project_state(registry, "team-a") == {
        "metadata": {"public": "false"}, "storage_limit": 10 * GB, "repo_count": 0,
        "members": {"admin": "projectAdmin", "alice": "developer", "bob": "guest"}}

    (info, missing), _out = run_tasks([("vic.containers.vic_registry_project_info", {"name": "team-a"}),
                                       ("vic.containers.vic_registry_project_info", {"name": "team-zz"})], connection)
    assert info["exists"] is True and missing["exists"] is False and missing["project"] is None
    assert info["project"]["storage_limit"] == 10 * GB and info["project"]["storage_used"] == 0
    assert {m["user"]: m["role"] for m in info["project"]["members"]} == {
        "admin": "projectAdmin", "alice": "developer", "bob": "guest"}

    gone = check_then_apply(connection, {"name": "team-a", "state": "absent"})
    assert gone["changes"] == ["delete project team-a"] and gone["project"] is None
    assert project_state(registry, "team-a") is None


def test_each_option_changed_alone(registry, connection):
    base = {"name": "team-b", "public": False, "storage_limit": "1GB",
            "members": [{"user": "alice", "role": "developer"}]}
    check_then_apply(connection, base)
    steps = (
        ({"public": True}, ["update project team-b metadata (public)"], {"metadata": {"public": "true"}}),
        ({"metadata": {"auto_scan": True, "severity": "high"}},
         ["update project team-b metadata (auto_scan, severity)"],
         {"metadata": {"public": "true", "auto_scan": "true", "severity": "high"}}),
        ({"storage_limit": "20GB"}, ["set the storage limit of project team-b to 20GB"], {"storage_limit": 20 * GB}),
        ({"storage_limit": -1}, ["set the storage limit of project team-b to unlimited"], {"storage_limit": -1}),
        ({"members": [{"user": "alice", "role": "maintainer"}]},
         ["change the role of member alice of project team-b from developer to maintainer"],
         {"members": {"admin": "projectAdmin", "alice": "maintainer"}}),
        ({"members": [{"user": "carol", "role": "limitedGuest"}]},
         ["add member carol to project team-b as limitedGuest"],
         {"members": {"admin": "projectAdmin", "alice": "maintainer", "carol": "limitedGuest"}}),
    )
    expected = project_state(registry, "team-b")
    # One play for the six steps (each checked, run and re-run in turn); the registry is read once after.
    results = check_then_apply_steps(connection, [dict({"name": "team-b"}, **change) for change, _c, _e in steps])
    for (change, changes, effect), applied in zip(steps, results):
        assert applied["changes"] == changes, applied
        for key in change:
            compared = "metadata" if key == "public" else key
            assert applied["diff"]["before"][compared] != applied["diff"]["after"][compared], applied["diff"]
        expected.update(effect)
    assert project_state(registry, "team-b") == expected

    # Purge: only the listed members stay, the creator included when not listed.
    purged = check_then_apply(connection, {"name": "team-b", "members": [{"user": "carol", "role": "guest"}],
                                           "purge_members": True})
    assert purged["changes"] == ["change the role of member carol of project team-b from limitedGuest to guest",
                                 "remove member admin from project team-b",
                                 "remove member alice from project team-b"]
    assert purged["diff"]["after"]["members"] == {"carol": "guest"}
    assert project_state(registry, "team-b")["members"] == {"carol": "guest"}
    check_then_apply(connection, {"name": "team-b", "state": "absent"})


def test_absent_while_repositories_remain(registry, connection, images):
    check_then_apply(connection, {"name": "team-c"})
    code, err = push(registry, images, "busybox", "team-c/app:v1", creds=ADMIN)
    assert code == 0, err
    until(lambda: project_state(registry, "team-c")["repo_count"] == 1, "the pushed repository in the index")
    task = [("vic.containers.%s" % PROJECT, {"name": "team-c", "state": "absent"})]
    for check in (True, False):
        (refused,), _out = run_tasks(task, connection, check=check)
        assert refused["failed"] and "Project team-c on registry %s still holds 1 repository: delete it first" \
            % registry.url in refused["msg"], refused
    assert project_state(registry, "team-c") is not None
    assert registry.api("DELETE", "/projects/team-c/repositories/app", ADMIN)[0] == 200
    check_then_apply(connection, {"name": "team-c", "state": "absent"})


BAD_INPUT = (
    ({"members": [{"user": "nobody", "role": "guest"}]}, "members[0].user: there is no user nobody on registry"),
    ({"members": [{"user": "alice", "role": "owner"}]}, "value of role must be one of: projectAdmin"),
    ({"members": [{"user": "alice", "role": "guest"}, {"user": "alice", "role": "developer"}]},
     "members[1].user: alice is listed twice"),
    ({"storage_limit": "10XB"}, "storage_limit: '10XB' is not a size"),
    ({"storage_limit": 0}, "storage_limit: must be -1 (unlimited) or more than 0 bytes"),
    ({"public": True, "metadata": {"public": "false"}}, "public: is also given as metadata.public"),
    ({"metadata": {"retention": {"days": 3}}}, "metadata: the value of retention must be a string or a boolean"),
)


def test_bad_input_names_the_option(registry, connection):
    tasks = [("vic.containers.%s" % PROJECT, dict({"name": "team-bad"}, **args)) for args, _message in BAD_INPUT]
    for check in (True, False):
        results, _out = run_tasks(tasks, connection, check=check)
        for (args, message), failed in zip(BAD_INPUT, results):
            assert failed["failed"] and message in failed["msg"], (args, failed)
    assert project_state(registry, "team-bad") is None


def test_harbor_refusals_and_connection_errors(registry, connection):
    https = registry.url.replace("http://", "https://")
    (bad_name, bad_password, unreachable, bad_url, not_tls, no_ca), _out = run_tasks([
        ("vic.containers.%s" % PROJECT, {"name": "Team-Upper"}),
        ("vic.containers.%s" % PROJECT, {"name": "team-d", "password": "wrong-pass"}),
        ("vic.containers.%s" % PROJECT, {"name": "team-d", "registry_url": "http://127.0.0.1:9"}),
        ("vic.containers.%s" % PROJECT, {"name": "team-d", "registry_url": "registry.example"}),
        ("vic.containers.%s" % PROJECT, {"name": "team-d", "registry_url": https, "validate_certs": False}),
        ("vic.containers.%s" % PROJECT, {"name": "team-d", "registry_url": https, "ca_path": "/nonexistent/ca.pem"}),
    ], connection)
    assert bad_name["failed"] and bad_name["msg"].startswith(
        "Registry %s refused creating project Team-Upper: project name 'Team-Upper' is not valid" % registry.url)
    assert bad_name["msg"].endswith("(HTTP 400).")
    assert bad_password["msg"].startswith("Registry %s refused the credentials of user admin while looking up "
                                          "project team-d:" % registry.url) and "(HTTP 401)" in bad_password["msg"]
    assert "wrong-pass" not in str(bad_password)
    assert unreachable["msg"] == ("Registry http://127.0.0.1:9 cannot be reached while looking up project team-d: "
                                  "Connection refused.")
    assert bad_url["msg"] == "registry_url: 'registry.example' is not an http:// or https:// URL"
    # The service speaks plain HTTP on loopback: an https:// URL meets no TLS server.
    assert not_tls["msg"].startswith("Registry %s did not complete the TLS handshake while looking up project "
                                     "team-d:" % https) and not_tls["msg"].endswith("(check ca_path and validate_certs).")
    assert no_ca["msg"].startswith("ca_path: /nonexistent/ca.pem is not a readable PEM file of CA certificates")


def test_connection_from_the_environment(registry):
    env = {"VIC_REGISTRY_URL": registry.url, "VIC_REGISTRY_USER": ADMIN[0], "VIC_REGISTRY_PASSWORD": ADMIN[1]}
    (made, info, gone), out = run_tasks([("vic.containers.%s" % PROJECT, {"name": "team-env", "public": True}),
                                         ("vic.containers.vic_registry_project_info", {"name": "team-env"}),
                                         ("vic.containers.%s" % PROJECT, {"name": "team-env", "state": "absent"})],
                                        {}, extra_env=env)
    assert made["changed"] and info["project"]["metadata"]["public"] == "true" and gone["changed"], out
    assert ADMIN[1] not in out


def test_requests_of_a_no_change_run(registry):
    """The engine's cost, counted by its client: a project look-up, and the members / quota only when compared."""
    params = {"name": "team-count", "state": "present", "public": False, "metadata": None, "purge_members": False,
              "members": [{"user": "alice", "role": "developer"}], "storage_limit": "1GB"}
    made = Client(registry.url, *ADMIN)
    try:
        project.plan(made, params).apply()
    finally:
        made.close()
    for given, expected in ((params, 3), (dict(params, members=None, storage_limit=None), 1)):
        client = Client(registry.url, *ADMIN)
        try:
            planned = project.plan(client, given)
            assert not planned.changed and client.requests == expected, (planned.changes, client.requests)
        finally:
            client.close()
    gone = Client(registry.url, *ADMIN)
    try:
        project.plan(gone, dict(params, state="absent")).apply()
    finally:
        gone.close()


def test_https_with_ca_path(tmp_path_factory):
    """The service behind TLS with a test CA: ca_path verifies it; without it the system's CAs refuse it, in
    one sentence; validate_certs false takes it unverified."""
    folder = tmp_path_factory.mktemp("vic-registry-tls")
    secure = VicRegistry(folder / "registry", ca=harness_registry.TestCA(folder / "ca")).start()
    try:
        verified = {"registry_url": secure.url, "username": ADMIN[0], "password": ADMIN[1],
                    "ca_path": str(secure.ca.ca_path)}
        module = "vic.containers.%s" % PROJECT
        (made, again, refused, unverified, gone), _out = run_tasks([
            (module, {"name": "team-tls", "public": True}),
            (module, {"name": "team-tls", "public": True}),
            (module, {"name": "team-tls", "ca_path": None}),
            (module, {"name": "team-tls", "ca_path": None, "validate_certs": False}),
            (module, {"name": "team-tls", "state": "absent"}),
        ], verified)
        assert made["changed"] and not again["changed"] and unverified["changed"] is False and gone["changed"]
        assert refused["msg"].startswith("Registry %s did not complete the TLS handshake while looking up project "
                                         "team-tls: CERTIFICATE_VERIFY_FAILED" % secure.url), refused["msg"]
        assert project_state(secure, "team-tls") is None
    finally:
        assert secure.stop() == 0
