"""vic_image / vic_image_info through ansible-playbook against a VCH pulling from a local registry, each
result checked with the docker CLI."""

import json

from ansible_collections.vic.containers.tools.harness.endpoint import docker_cli

from docker_play import run_tasks


def cli_inspect(vch, name):
    done = docker_cli(vch, "image", "inspect", name)
    return json.loads(done.stdout)[0] if done.returncode == 0 else None


def test_pull_re_pull_and_tag(vch, registries):
    conn = vch["connection"]
    anonymous = registries.get("anonymous")
    name = anonymous.host + "/library/shared"
    checked, _out = run_tasks([("vic.containers.vic_image", {"name": name})], conn, check=True, diff=True)
    assert checked[0]["changed"] and checked[0]["changes"] == ["pull image %s:latest" % name]
    assert checked[0]["image"] is None and checked[0]["id"] is None
    assert cli_inspect(vch, name) is None  # check mode pulled nothing

    tagged = {"name": name, "repository": ["dm-shared:v1", "dm-shared"]}
    results, _out = run_tasks([
        ("vic.containers.vic_image", {"name": name}),
        ("vic.containers.vic_image", {"name": name}),
        ("vic.containers.vic_image", {"name": name, "pull": "always"}),
        ("vic.containers.vic_image", tagged),
        ("vic.containers.vic_image", tagged),
        ("vic.containers.vic_image_info", {"name": [name, "dm-shared:v1", "dm-nothing:v9"]}),
    ], conn)
    pulled, again, always, tag, tag_again, info = results
    shown = cli_inspect(vch, name)
    assert pulled["changed"] and pulled["changes"] == checked[0]["changes"]
    assert pulled["id"] == shown["Id"] == pulled["image"]["Id"]
    assert pulled["digest"] == anonymous.manifest_digest("shared", "latest")
    assert again["changed"] is False and again["changes"] == []
    assert always["changed"] is False, always  # pulled again: the same image
    assert tag["changes"] == ["tag image %s:latest as dm-shared:v1" % name, "tag image %s:latest as dm-shared:latest" % name]
    assert cli_inspect(vch, "dm-shared:v1")["Id"] == shown["Id"] == cli_inspect(vch, "dm-shared:latest")["Id"]
    assert tag_again["changed"] is False
    assert [image["Id"] for image in info["images"]] == [shown["Id"], shown["Id"]]

    predicted, _out = run_tasks([("vic.containers.vic_image", {"name": name, "pull": "always"})], conn, check=True)
    assert predicted[0]["changes"] == ["pull image %s:latest" % name]  # check mode cannot ask the registry


def test_absent_while_in_use_and_forced(vch, registries):
    conn = vch["connection"]
    name = registries.get("anonymous").host + "/library/busybox"
    assert docker_cli(vch, "pull", name).returncode == 0
    assert docker_cli(vch, "tag", name, "dm-busy:v1").returncode == 0
    made = docker_cli(vch, "create", "--name", "dm-image-user", "dm-busy:v1")
    assert made.returncode == 0, made.stderr
    try:
        absent = {"name": "dm-busy", "tag": "v1", "state": "absent"}
        # The image has two names: removing one is an untag, allowed while a container uses it.
        results, _out = run_tasks([("vic.containers.vic_image", absent)], conn, check=True)
        assert results[0]["changes"] == ["remove image dm-busy:v1"]
        assert docker_cli(vch, "rmi", name).returncode == 0  # now dm-busy:v1 is its last name
        results, _out = run_tasks([
            ("vic.containers.vic_image", absent),
            ("vic.containers.vic_image", dict(absent, force_absent=True)),
            ("vic.containers.vic_image", dict(absent, force_absent=True)),
        ], conn, diff=True)
        refused, forced, again = results
        assert refused["failed"]
        assert refused["msg"] == ("Image dm-busy:v1 on Docker host %s is used by container dm-image-user: remove it "
                                  "or set force_absent: true to remove the name anyway." % vch["host"])
        assert forced["changed"] and forced["changes"] == ["remove image dm-busy:v1 (forced)"]
        assert forced["image"] is None and forced["diff"]["after"] == {}
        assert again["changed"] is False
        assert cli_inspect(vch, "dm-busy:v1") is None
    finally:
        assert docker_cli(vch, "rm", "-f", "dm-image-user").returncode == 0


def test_image_bad_input(vch, registries):
    conn = vch["connection"]
    host = registries.get("anonymous").host
    results, _out = run_tasks([
        ("vic.containers.vic_image", {"name": host + "/library/no-such-image"}),
        ("vic.containers.vic_image", {"name": "dm-not-here", "source": "local"}),
        ("vic.containers.vic_image", {"name": host + "/library/busybox", "pull": "sometimes"}),
        ("vic.containers.vic_image_info", {"name": ["dm-not-here"]}),
    ], conn)
    unknown, local, bad_pull, info = results
    assert unknown["failed"]
    assert unknown["msg"].startswith("Docker host %s refused pulling image %s/library/no-such-image:latest: manifest "
                                     % (vch["host"], host)), unknown["msg"]
    assert local["failed"] and local["msg"] == ("name: image dm-not-here:latest is not on Docker host %s and source "
                                                "is local; use source: pull" % vch["host"])
    assert bad_pull["failed"] and "pull" in bad_pull["msg"]
    assert info["images"] == [] and info["changed"] is False


def test_no_change_image_task_costs_one_request(vch, registries, proxy):
    name = registries.get("anonymous").host + "/library/busybox"
    assert docker_cli(vch, "pull", name).returncode == 0
    conn = dict(vch["connection"], docker_host="tcp://127.0.0.1:%d" % proxy.port)
    proxy.reset()
    results, _out = run_tasks([("vic.containers.vic_image", {"name": name})], conn)
    assert results[0]["changed"] is False, results
    assert proxy.requests == [("GET", "/images/%s:latest/json" % name)]


def test_a_moved_tag_is_pulled_again_and_its_containers_recreated(vch, registries):
    """pull: always changes when the registry's tag names another image; a container of the old image is
    recreated (image compared by id), and one of the current image is not."""
    conn = vch["connection"]
    anonymous = registries.get("anonymous")
    name = registries.images.push(anonymous, "busybox", as_name="dm-moving")
    container = {"name": "dm-mover", "image": name, "state": "present", "command": ["sleep", "600"]}
    results, _out = run_tasks([("vic.containers.vic_image", {"name": name}),
                               ("vic.containers.vic_container", container)], conn)
    first = results[0]["id"]
    assert results[1]["changed"] and results[1]["container"]["Image"] == first
    try:
        registries.images.push(anonymous, "shared", as_name="dm-moving")  # the tag now names another image
        results, _out = run_tasks([
            ("vic.containers.vic_container", container),  # nothing pulled yet: the same image, no change
            ("vic.containers.vic_image", {"name": name, "pull": "always"}),
            ("vic.containers.vic_image", {"name": name, "pull": "always"}),
        ], conn)
        unchanged, moved, same = results
        assert unchanged["changed"] is False
        assert moved["changed"] and moved["changes"] == ["pull image %s" % name]
        assert moved["id"] != first and moved["id"] == cli_inspect(vch, name)["Id"]
        assert moved["digest"] == anonymous.manifest_digest("dm-moving", "latest")
        assert same["changed"] is False
        checked, _out = run_tasks([("vic.containers.vic_container", container)], conn, check=True, diff=True)
        results, _out = run_tasks([("vic.containers.vic_container", container)], conn, diff=True)
        assert checked[0]["changes"] == results[0]["changes"] == ["recreate container dm-mover (image differs)"]
        assert results[0]["diff"]["before"]["image"] == first and results[0]["diff"]["after"]["image"] == moved["id"]
        assert json.loads(docker_cli(vch, "inspect", "dm-mover").stdout)[0]["Image"] == moved["id"]
    finally:
        assert docker_cli(vch, "rm", "-f", "dm-mover").returncode == 0
