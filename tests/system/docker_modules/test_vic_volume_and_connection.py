"""vic_vch's docker_connection as module_defaults, connection errors in one sentence, and vic_volume /
vic_volume_info through ansible-playbook, each result checked with the docker CLI."""

import json

from ansible_collections.vic.containers.tools.harness.endpoint import docker_cli

from docker_play import run_tasks


def cli_json(vch, *args):
    done = docker_cli(vch, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_vic_vch_returns_the_connection_of_its_endpoint(vch):
    connection = vch["summary"]["docker_connection"]
    certs = vch["certs"]
    assert connection == {"docker_host": "tcp://127.0.0.1:2376", "tls": True, "validate_certs": True,
                          "ca_path": str(certs / "ca.pem"), "client_cert": str(certs / "cert.pem"),
                          "client_key": str(certs / "key.pem")}


def test_connection_errors_are_one_sentence_naming_the_host(vch, tmp_path):
    # A CA that did not sign the endpoint's certificate: the handshake fails.
    (tmp_path / "other").mkdir()
    from ansible_collections.vic.containers.tools.harness.registry import TestCA
    other = TestCA(tmp_path / "other")
    wrong_ca = dict(vch["connection"], ca_path=str(other.ca_path))
    # No client certificate: the endpoint requires one.
    no_client = {k: v for k, v in vch["connection"].items() if k not in ("client_cert", "client_key")}
    closed = dict(vch["connection"], docker_host="tcp://127.0.0.1:9")
    results, _out = run_tasks([
        ("vic.containers.vic_volume_info", dict(wrong_ca, name="x")),
        ("vic.containers.vic_volume_info", dict(no_client, name="x")),
        ("vic.containers.vic_volume_info", dict(closed, name="x")),
    ], defaults={})
    for result in results:
        assert result["failed"], result
    host = vch["host"]
    assert results[0]["msg"].startswith("Docker host %s did not complete the TLS handshake while inspecting volume x: "
                                        % host), results[0]["msg"]
    assert "CERTIFICATE_VERIFY_FAILED" in results[0]["msg"] or "certificate verify failed" in results[0]["msg"]
    assert host in results[1]["msg"], results[1]["msg"]
    assert results[2]["msg"].startswith("Docker host tcp://127.0.0.1:9 cannot be reached while inspecting volume x: ")
    for result in results:
        assert result["msg"].count(". ") == 0 and result["msg"].endswith("."), result["msg"]


def test_docker_environment_variables_stand_for_the_options(vch, registries):
    # REQUESTS_CA_BUNDLE names another CA: the VCH's (from DOCKER_CERT_PATH) must still be the one trusted.
    env = {"DOCKER_HOST": vch["host"], "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(vch["certs"]),
           "REQUESTS_CA_BUNDLE": str(registries.ca.ca_path)}
    results, _out = run_tasks([("vic.containers.vic_volume_info", {"name": "nothing-here"})], defaults={},
                              extra_env=env)
    assert results[0]["failed"] is False and results[0]["exists"] is False and results[0]["volume"] is None


def test_volume_life_cycle(vch):
    conn = vch["connection"]
    args = {"name": "dm-vol", "driver_options": {"Capacity": "2GB", "VolumeStore": "backup"},
            "labels": {"team": "dev"}}
    checked, _out = run_tasks([("vic.containers.vic_volume", args)], conn, check=True, diff=True)
    assert checked[0]["changed"] and checked[0]["changes"] == ["create volume dm-vol"]
    assert checked[0]["volume"] is None
    assert docker_cli(vch, "volume", "inspect", "dm-vol").returncode != 0  # check mode made nothing
    results, _out = run_tasks([
        ("vic.containers.vic_volume", args),
        ("vic.containers.vic_volume", args),
        ("vic.containers.vic_volume", dict(args, driver="vsphere")),
        ("vic.containers.vic_volume", dict(args, labels={"team": "ops"})),
        ("vic.containers.vic_volume_info", {"name": "dm-vol"}),
    ], conn, diff=True)
    created, again, vsphere_driver, relabelled, info = results
    assert created["changed"] and created["changes"] == checked[0]["changes"]
    assert created["diff"] == checked[0]["diff"]
    shown = cli_json(vch, "volume", "inspect", "dm-vol")[0]
    assert shown["Labels"] == {"team": "dev"}
    assert shown["Options"] == {"Capacity": "2GB", "VolumeStore": "backup"}
    assert shown["Status"]["vsphere"]["VolumeStore"] == "backup"
    # The driver as asked (the module's default, local): the endpoint shows what a volume was created with.
    assert created["volume"]["Name"] == "dm-vol" and created["volume"]["Driver"] == "local"
    assert again["changed"] is False and again["changes"] == []
    assert vsphere_driver["changed"] is False  # local is the VCH driver's alias
    # recreate: never keeps the volume and says why it is not changed.
    assert relabelled["changed"] is False
    assert any("labels" in w and "recreate: never" in w for w in relabelled["warnings"]), relabelled
    assert info["exists"] and info["volume"]["Labels"] == {"team": "dev"}

    recreate = dict(args, labels={"team": "ops"}, recreate="options-changed")
    predicted, _out = run_tasks([("vic.containers.vic_volume", recreate)], conn, check=True, diff=True)
    assert predicted[0]["changes"] == ["recreate volume dm-vol (labels differs)"]
    assert predicted[0]["diff"]["before"]["labels"] == {"team": "dev"}
    assert predicted[0]["diff"]["after"]["labels"] == {"team": "ops"}
    results, _out = run_tasks([("vic.containers.vic_volume", recreate), ("vic.containers.vic_volume", recreate)],
                              conn, diff=True)
    assert results[0]["changes"] == predicted[0]["changes"] and results[0]["diff"] == predicted[0]["diff"]
    assert results[1]["changed"] is False
    assert cli_json(vch, "volume", "inspect", "dm-vol")[0]["Labels"] == {"team": "ops"}

    absent = {"name": "dm-vol", "state": "absent"}
    results, _out = run_tasks([("vic.containers.vic_volume", absent)], conn, check=True)
    assert results[0]["changes"] == ["remove volume dm-vol"]
    assert docker_cli(vch, "volume", "inspect", "dm-vol").returncode == 0
    results, _out = run_tasks([("vic.containers.vic_volume", absent), ("vic.containers.vic_volume", absent),
                               ("vic.containers.vic_volume_info", {"name": "dm-vol"})], conn)
    assert results[0]["changed"] and not results[1]["changed"]
    assert results[2]["exists"] is False and results[2]["volume"] is None
    assert docker_cli(vch, "volume", "inspect", "dm-vol").returncode != 0


def test_volume_bad_input_names_the_option(vch):
    conn = vch["connection"]
    results, _out = run_tasks([
        ("vic.containers.vic_volume", {"name": "dm-bad", "driver_options": {"Capacity": "lots"}}),
        ("vic.containers.vic_volume", {"name": "dm-bad", "driver_options": {"VolumeStore": "nowhere"}}),
        ("vic.containers.vic_volume", {"name": "dm-bad", "labels": {"on": True}}),
        ("vic.containers.vic_volume", {"name": "dm-bad", "recreate": "sometimes"}),
    ], conn)
    assert all(r["failed"] for r in results), results
    assert "Capacity" in results[0]["msg"] and vch["host"] in results[0]["msg"]
    assert "nowhere" in results[1]["msg"]
    assert results[2]["msg"].startswith("labels: ")
    assert "recreate" in results[3]["msg"]
    assert docker_cli(vch, "volume", "inspect", "dm-bad").returncode != 0


def test_a_volume_in_use_is_not_removed(vch):
    conn = vch["connection"]
    image = vch["registry"] + "/library/busybox"
    assert docker_cli(vch, "pull", image).returncode == 0
    assert docker_cli(vch, "volume", "create", "dm-used").returncode == 0
    made = docker_cli(vch, "create", "--name", "dm-user", "-v", "dm-used:/data", image)
    assert made.returncode == 0, made.stderr
    try:
        results, _out = run_tasks([
            ("vic.containers.vic_volume", {"name": "dm-used", "state": "absent"}),
            ("vic.containers.vic_volume", {"name": "dm-used", "recreate": "always"}),
        ], conn, check=False)
        for result in results:
            assert result["failed"], result
            assert "Volume dm-used on Docker host %s is in use by 1 container" % vch["host"] in result["msg"]
        assert docker_cli(vch, "volume", "inspect", "dm-used").returncode == 0
    finally:
        assert docker_cli(vch, "rm", "-f", "dm-user").returncode == 0
        assert docker_cli(vch, "volume", "rm", "dm-used").returncode == 0


def test_no_change_volume_task_costs_one_request(vch, proxy):
    conn = dict(vch["connection"], docker_host="tcp://127.0.0.1:%d" % proxy.port)
    assert docker_cli(vch, "volume", "create", "dm-count").returncode == 0
    try:
        proxy.reset()
        results, _out = run_tasks([("vic.containers.vic_volume", {"name": "dm-count"})], conn)
        assert results[0]["changed"] is False, results
        assert proxy.requests == [("GET", "/volumes/dm-count")]
        # A pinned API version (here from DOCKER_API_VERSION) is used from the first request on.
        proxy.reset()
        results, _out = run_tasks([("vic.containers.vic_volume", {"name": "dm-count"})], conn,
                                  extra_env={"DOCKER_API_VERSION": "1.40", "DOCKER_TIMEOUT": "30"})
        assert results[0]["changed"] is False, results
        assert proxy.requests == [("GET", "/v1.40/volumes/dm-count")]
    finally:
        assert docker_cli(vch, "volume", "rm", "dm-count").returncode == 0
