"""The image store through the endpoint: pulls from local registries (tools/harness/registry.py) with
the real docker CLI and Docker SDK, layers checked as SquashFS disks where vSphere (vcsim) keeps them.

One VCH ("img") trusts the registries' CA and lists the plain-HTTP registry as insecure; a second
("wl") has a whitelist and no CA. Tests in this module build on each other's pulls, in order.
"""

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli, sdk, spec_validator
from ansible_collections.vic.containers.tools.harness.registry import PASSWORD, USER, OciLayout, app_layer, busybox_layer, tar_bytes
from ansible_collections.vic.containers.tools.harness.squashfs import cat, listing, stat, xattrs
from ansible_collections.vic.containers.tools.harness.waiting import until


@pytest.fixture(scope="module")
def img(vcsim, registries, tmp_path_factory):
    certs = tmp_path_factory.mktemp("certs") / "img"
    summary = deploy(vcsim, "img", certs, registry={"ca_certs": [str(registries.ca.ca_path)],
                                                    "insecure": [registries.host("plain")], "whitelist": []})
    vch = {"summary": summary, "certs": certs, "sim": vcsim, "endpoint": Endpoint(vcsim, "img")}
    vch["host"] = "tcp://127.0.0.1:%d" % vch["endpoint"].port
    yield vch
    vch["endpoint"].stop()


def store_dir(vch):
    """The image store's images folder (as the VCH reports it) in vcsim's local directory of the datastore."""
    datastore, path = vch["summary"]["image_store"].split("] ", 1)
    return Path(vch["sim"].datastores[datastore.lstrip("[")]) / path


def image_json(vch):
    result = docker_cli(vch, "images", "--no-trunc", "--format", "{{json .}}")
    assert result.returncode == 0, result.stderr
    return sorted(result.stdout.splitlines())


def test_docker_pull_streams_progress_and_stores_layers_as_squashfs_disks(img, registries):
    anonymous = registries.get("anonymous")
    layout = registries.images["busybox"]
    result = docker_cli(img, "pull", anonymous.host + "/library/busybox")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "latest: Pulling from library/busybox" in out
    assert "Pull complete" in out
    assert "Digest: %s" % anonymous.manifest_digest("busybox", "latest") in out
    assert "Status: Downloaded newer image for %s/library/busybox:latest" % anonymous.host in out

    layers = [d.split(":")[1] for d in layout.diff_ids]
    for layer in layers:
        folder = store_dir(img) / layer
        assert sorted(os.listdir(folder)) == sorted([layer + ".vmdk", layer + "-flat.vmdk"])
        descriptor = (folder / (layer + ".vmdk")).read_text()
        sectors = (folder / (layer + "-flat.vmdk")).stat().st_size // 512
        assert 'createType="vmfs"' in descriptor
        assert 'RW %d VMFS "%s-flat.vmdk"' % (sectors, layer) in descriptor
    lower = store_dir(img) / layers[0] / (layers[0] + "-flat.vmdk")
    names = listing(lower, "/bin")
    assert "busybox" in names and "sh" in names
    assert stat(lower, "/tmp")["Access"] == "01777"
    upper = store_dir(img) / layers[1] / (layers[1] + "-flat.vmdk")
    assert cat(upper, "/etc/motd") == "hello from layer 2\n"
    # The whiteout of /etc/removed is overlayfs's: a character device 0/0; /data is opaque.
    removed = stat(upper, "/etc/removed")
    assert removed["Inode type"] == "character device" and removed["Device number"].startswith("0:0")
    assert xattrs(upper, "/data") == {"trusted.overlay.opaque": "y"}
    assert not [name for name in list(listing(upper, "/etc")) + list(listing(upper, "/data"))
                if name.startswith(".wh.")]

    again = sdk(img)
    try:
        messages = list(again.api.pull(anonymous.host + "/library/busybox", tag="latest", stream=True, decode=True))
    finally:
        again.close()
    assert messages[-1]["status"] == "Status: Image is up to date for %s/library/busybox:latest" % anonymous.host
    assert {m["status"] for m in messages if "id" in m and m["status"] != "Pulling from library/busybox"} \
        == {"Already exists"}


def test_images_and_inspect_answer_as_the_api_describes(img, registries):
    host = registries.host("anonymous")
    layout = registries.images["busybox"]
    client = sdk(img)
    try:
        listed = client.api.images()
        assert len(listed) == 1
        spec_validator("ImageSummary").validate(listed[0])
        assert listed[0]["Id"] == layout.image_id
        assert listed[0]["RepoTags"] == ["%s/library/busybox:latest" % host]
        digest = registries.get("anonymous").manifest_digest("busybox", "latest")
        assert listed[0]["RepoDigests"] == ["%s/library/busybox@%s" % (host, digest)]
        assert listed[0]["Labels"] == {"org.example.kind": "busybox"}
        inspected = client.api.inspect_image("%s/library/busybox" % host)
        spec_validator("ImageInspect").validate(inspected)
        assert inspected["Id"] == layout.image_id
        assert inspected["Config"]["Cmd"] == ["sh"]
        assert inspected["RootFS"]["Layers"] == layout.diff_ids
        assert inspected["Created"] == "2024-01-02T03:04:05.123456789Z"
        short = layout.image_id.split(":")[1][:12]
        assert client.api.inspect_image(short)["Id"] == layout.image_id
        assert client.api.inspect_image(layout.image_id)["Id"] == layout.image_id
        with pytest.raises(docker.errors.ImageNotFound, match="No such image"):
            client.api.inspect_image("%s/library/nothere:1" % host)
        history = client.api.history("%s/library/busybox" % host)
        # dockerd's Tags of the older steps is null (a nil slice), which the description's schema leaves out.
        for step in history:
            spec_validator("ImageHistoryResponseItem").validate(dict(step, Tags=step["Tags"] or []))
        assert [(s["Id"], s["Tags"], s["CreatedBy"], s["Created"]) for s in history] == [
            (layout.image_id, ["%s/library/busybox:latest" % host], "vic test", 1704164645)] + [
            ("<missing>", None, "vic test", 1704164645)] * (len(layout.diff_ids) - 1)
        assert all(step["Size"] > 0 for step in history)
    finally:
        client.close()
    shown = docker_cli(img, "history", "--format", "{{.ID}} {{.CreatedBy}}", "%s/library/busybox" % host)
    assert shown.stdout.splitlines()[0] == layout.image_id.split(":")[1][:12] + " vic test", shown.stderr
    shown = docker_cli(img, "images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}")
    assert shown.stdout.split() == ["%s/library/busybox" % host, "latest", short]
    assert docker_cli(img, "images", "-q", "--filter", "label=org.example.kind=busybox").stdout.split() == [short]
    assert docker_cli(img, "images", "-q", "--filter", "label=org.example.kind=other").stdout.split() == []
    assert docker_cli(img, "images", "-q", "--filter", "reference=*/library/busy*").stdout.split() == [short]
    assert docker_cli(img, "images", "-q", "--filter", "dangling=true").stdout.split() == []


def test_a_second_image_sharing_a_layer_uploads_only_its_own(img, registries):
    anonymous = registries.get("anonymous")
    base, top = [d.split(":")[1] for d in registries.images["shared"].diff_ids]
    before = (store_dir(img) / base / (base + "-flat.vmdk")).stat()
    base_blob = registries.images["shared"].layers[0]["digest"]
    fetched = anonymous.blob_gets(base_blob)
    mark = img["sim"].mark()
    result = docker_cli(img, "pull", anonymous.host + "/library/shared")
    assert result.returncode == 0, result.stderr
    assert "Already exists" in result.stdout
    calls = img["sim"].calls_since(mark)
    puts = [c["path"].split("?")[0] for c in calls if c.get("http") == "PUT"]
    # The shared lower layer is not sent again; only the new top layer (its extent, then its descriptor)
    # and the new image's file, in place; the only SOAP call makes the layer's folder.
    assert not any(base in path for path in puts)
    assert [path.rsplit("/", 1)[-1] for path in puts] == [
        top + "-flat.vmdk", top + ".vmdk", registries.images["shared"].image_id.split(":")[1] + ".json"]
    assert [c["method"] for c in calls if "method" in c] == ["MakeDirectory"]
    after = (store_dir(img) / base / (base + "-flat.vmdk")).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # Known from the first pull to hold a stored layer, the shared blob was not even downloaded.
    assert fetched and anonymous.blob_gets(base_blob) == fetched


def test_tag_and_rmi_keep_layers_other_images_use(img, registries):
    host = registries.host("anonymous")
    busybox = registries.images["busybox"]
    base, top = [d.split(":")[1] for d in busybox.diff_ids]
    assert docker_cli(img, "tag", host + "/library/busybox", "mine/bb:v1").returncode == 0
    tags = docker_cli(img, "image", "inspect", "--format", "{{json .RepoTags}}", "mine/bb:v1")
    assert sorted(json.loads(tags.stdout)) == sorted(["%s/library/busybox:latest" % host, "mine/bb:v1"])
    untag = docker_cli(img, "rmi", "mine/bb:v1")
    assert untag.returncode == 0, untag.stderr
    assert untag.stdout.strip() == "Untagged: mine/bb:v1"
    metadata = store_dir(img) / "imageMetadata" / (busybox.image_id.split(":")[1] + ".json")
    assert metadata.exists()

    removed = docker_cli(img, "rmi", host + "/library/busybox")
    assert removed.returncode == 0, removed.stderr
    assert "Untagged: %s/library/busybox:latest" % host in removed.stdout
    assert "Deleted: %s" % busybox.image_id in removed.stdout
    assert not metadata.exists()
    assert not (store_dir(img) / top).exists()
    assert (store_dir(img) / base / (base + ".vmdk")).exists()  # the shared image still uses it
    missing = docker_cli(img, "rmi", host + "/library/busybox")
    assert missing.returncode != 0 and "No such image" in missing.stderr
    assert docker_cli(img, "pull", host + "/library/busybox").returncode == 0


def test_rmi_refuses_an_image_a_container_uses(img, registries):
    host = registries.host("anonymous")
    image = registries.images["shared"].image_id
    created = docker_cli(img, "create", "--network", "none", "--name", "user-of-shared", host + "/library/shared")
    assert created.returncode == 0, created.stderr
    container = created.stdout.strip()
    refused = docker_cli(img, "rmi", host + "/library/shared")
    assert refused.returncode != 0
    assert ('conflict: unable to remove repository reference "%s/library/shared" (must force) - container %s '
            "is using its referenced image %s" % (host, container[:12], image.split(":")[1][:12])) in refused.stderr
    by_id = docker_cli(img, "rmi", image)
    assert by_id.returncode != 0
    assert "conflict: unable to delete %s (must be forced) - image is being used by container %s" \
        % (image.split(":")[1][:12], container[:12]) in by_id.stderr
    assert docker_cli(img, "image", "inspect", image).returncode == 0
    # Removing the container leaves the layer disks it ran on to the images that own them.
    assert docker_cli(img, "rm", "-f", container).returncode == 0
    for diff_id in registries.images["shared"].diff_ids:
        layer = diff_id.split(":")[1]
        assert sorted(os.listdir(store_dir(img) / layer)) == sorted([layer + ".vmdk", layer + "-flat.vmdk"])


def test_a_killed_endpoint_restarts_with_the_same_images_and_drops_incomplete_layers(img, registries, tmp_path):
    before = image_json(img)
    assert len(before) == 2
    leftover = store_dir(img) / ("ab" * 32)
    leftover.mkdir()
    (leftover / ("ab" * 32 + "-flat.vmdk")).write_bytes(b"\0" * 4096)  # an upload cut short: no descriptor
    cut = store_dir(img) / ("cd" * 32)
    cut.mkdir()
    (cut / ("cd" * 32 + "-flat.vmdk")).write_bytes(b"\0" * 1048576)
    (cut / ("cd" * 32 + ".vmdk")).write_text("# Disk DescriptorFile\nversion=1\n")  # its descriptor cut short
    unreadable = store_dir(img) / "imageMetadata" / ("ef" * 32 + ".json")
    unreadable.write_text('{"id": "sha256:' + "ef" * 32 + '", "config"')  # a new image's file cut short
    old = img["endpoint"]
    log = old.log()
    old.kill()
    img["endpoint"] = Endpoint(img["sim"], "img", port=old.port, tether_port=old.tether_port)
    assert image_json(img) == before
    assert not leftover.exists() and not cut.exists()
    assert "removing unreadable image file %s.json" % ("ef" * 32) in img["endpoint"].log()
    assert not unreadable.exists()
    assert PASSWORD not in log
    # Which blob holds which stored layer comes back from the image files: a known blob is not fetched again.
    anonymous = registries.get("anonymous")
    third = OciLayout(tmp_path / "third", "latest", [busybox_layer(), app_layer("third\n")])
    anonymous.push(third.folder, "latest", "third")
    base_blob = third.layers[0]["digest"]
    fetched = anonymous.blob_gets(base_blob)
    pulled = docker_cli(img, "pull", anonymous.host + "/library/third")
    assert pulled.returncode == 0, pulled.stderr
    assert "Already exists" in pulled.stdout
    assert fetched and anonymous.blob_gets(base_blob) == fetched
    assert docker_cli(img, "rmi", anonymous.host + "/library/third").returncode == 0


def test_pull_errors_are_docker_style(img, registries):
    # get(), not host(): the registry must be running (and hold busybox) for the errors to be its answers.
    host = registries.get("anonymous").host
    missing = docker_cli(img, "pull", host + "/library/busybox:nope")
    assert missing.returncode != 0
    assert "manifest for %s/library/busybox:nope not found" % host in missing.stderr
    client = sdk(img)
    try:
        for params, status, message in (
                ({"fromImage": "Bad//Name", "tag": "latest"}, 400, "invalid reference format"),
                ({"fromSrc": "-", "repo": "x"}, 501, "docker import is not supported"),
                ({"fromImage": host + "/library/busybox", "tag": "latest", "platform": "linux/arm64"}, 400,
                 "linux/amd64")):
            response = client.api._post(client.api._url("/images/create"), params=params)
            assert response.status_code == status, response.text
            assert message in response.json()["message"]
        pushed = client.api._post(client.api._url("/images/{0}/push", host + "/library/busybox"))
        assert pushed.status_code == 501
    finally:
        client.close()


def test_a_layer_that_escapes_is_refused_in_the_stream_and_nothing_of_it_is_kept(img, registries, tmp_path):
    anonymous = registries.get("anonymous")
    evil = OciLayout(tmp_path / "evil", "latest", [busybox_layer(), tar_bytes([("../escape", "file", b"x", 0o644)])])
    anonymous.push(evil.folder, "latest", "evil")
    before = image_json(img)
    pulled = docker_cli(img, "pull", anonymous.host + "/library/evil")
    assert pulled.returncode != 0
    assert "entry ../escape points outside the layer" in pulled.stderr
    assert image_json(img) == before
    top = evil.diff_ids[1].split(":")[1]
    # The folder made while the blob downloaded is left empty: not a layer (no disk, no descriptor).
    assert not (store_dir(img) / top).exists() or not os.listdir(store_dir(img) / top)


def test_a_layer_that_replaces_its_own_entries_is_packed_again_from_the_blob(img, registries, tmp_path):
    anonymous = registries.get("anonymous")
    twice = OciLayout(tmp_path / "twice", "latest", [busybox_layer(), tar_bytes(
        [("etc", "dir", None, 0o755), ("etc/motd", "file", b"first\n", 0o644), ("etc/motd", "file", b"second\n", 0o644)])])
    anonymous.push(twice.folder, "latest", "twice")
    pulled = docker_cli(img, "pull", anonymous.host + "/library/twice")
    assert pulled.returncode == 0, pulled.stderr
    top = twice.diff_ids[1].split(":")[1]
    disk = store_dir(img) / top / (top + "-flat.vmdk")
    assert cat(disk, "/etc/motd") == "second\n"
    assert "replaces entries it packed already" in img["endpoint"].log()


def test_a_zstd_compressed_image_pulls_into_the_disks_its_gzip_twin_makes(img, registries, tmp_path):
    """OCI tar+zstd layers, as Docker 23 and later pull them: the same disks as the gzip-compressed image."""
    anonymous = registries.get("anonymous")
    layout = OciLayout(tmp_path / "zstd", "latest", [busybox_layer(), app_layer("zstd layer\n")], compression="zstd")
    assert {d["mediaType"] for d in layout.layers} == {"application/vnd.oci.image.layer.v1.tar+zstd"}
    anonymous.push(layout.folder, "latest", "zstd")
    pulled = docker_cli(img, "pull", anonymous.host + "/library/zstd")
    assert pulled.returncode == 0, pulled.stderr
    assert "Pull complete" in pulled.stdout
    top = layout.diff_ids[1].split(":")[1]
    assert cat(store_dir(img) / top / (top + "-flat.vmdk"), "/etc/motd") == "zstd layer\n"
    inspect = docker_cli(img, "image", "inspect", "--format", "{{json .RootFS.Layers}}", anonymous.host + "/library/zstd")
    assert json.loads(inspect.stdout) == layout.diff_ids


def test_a_config_that_names_other_content_is_refused_and_nothing_of_it_is_kept(img, registries, tmp_path):
    """Layers download while the config is fetched; each is checked against the config before it is stored."""
    anonymous = registries.get("anonymous")
    base, top = busybox_layer(), app_layer("not what the config says\n")
    claimed = "sha256:" + "0" * 64
    liar = OciLayout(tmp_path / "liar", "latest", [base, top], diff_ids=[OciLayout.digest_of(base), claimed])
    anonymous.push(liar.folder, "latest", "liar")
    before = image_json(img)
    pulled = docker_cli(img, "pull", anonymous.host + "/library/liar")
    assert pulled.returncode != 0
    assert "layer %s: the uncompressed content has digest %s, not the one the image config names" \
        % (claimed, liar.diff_ids[1]) in pulled.stderr
    assert image_json(img) == before
    assert not (store_dir(img) / liar.diff_ids[1].split(":")[1]).exists()
    assert not (store_dir(img) / claimed.split(":")[1]).exists() or not os.listdir(store_dir(img) / claimed[7:])


def test_an_image_for_another_platform_is_refused_before_any_progress_and_its_downloads_stop(img, registries,
                                                                                             tmp_path):
    anonymous = registries.get("anonymous")
    arm = OciLayout(tmp_path / "arm", "latest", [tar_bytes([("big", "file", os.urandom(32 << 20), 0o644)])],
                    architecture="arm64", level=1)
    anonymous.push(arm.folder, "latest", "arm-only")
    scratch = set(Path(tempfile.gettempdir()).glob("vic-layer-*"))
    client = sdk(img)
    try:
        response = client.api._post(client.api._url("/images/create"),
                                    params={"fromImage": anonymous.host + "/library/arm-only", "tag": "latest"})
    finally:
        client.close()
    assert response.status_code == 400, response.text
    assert "is for linux/arm64; a VCH runs linux/amd64 containers" in response.json()["message"]
    blob = arm.layers[0]["digest"]
    # It started downloading while the config was fetched (the registry logs a request once it ends).
    assert until(lambda: anonymous.blob_gets(blob), "the registry to log a GET of %s" % blob) == 1
    until(lambda: "layer blob %s: no pull needs it any more; its download stops" % blob in img["endpoint"].log(),
          lambda: "the endpoint to log that it stops the download; its log:\n" + img["endpoint"].log()[-3000:])
    # The scratch folder the layer was being packed in goes too.
    until(lambda: not set(Path(tempfile.gettempdir()).glob("vic-layer-*")) - scratch,
          "the layer's scratch folder to be removed")
    assert not (store_dir(img) / arm.diff_ids[0].split(":")[1]).exists()


def test_two_pulls_needing_the_same_new_blob_share_its_download_and_its_store(img, registries, tmp_path):
    anonymous = registries.get("anonymous")
    base = tar_bytes([("opt", "dir", None, 0o755), ("opt/shared.bin", "file", os.urandom(16 << 20), 0o644)])
    for name in ("pair-a", "pair-b"):
        layout = OciLayout(tmp_path / name, "latest", [base, app_layer(name + "\n")], level=1)
        anonymous.push(layout.folder, "latest", name)
    blob, layer = layout.layers[0]["digest"], layout.diff_ids[0].split(":")[1]
    with ThreadPoolExecutor(2) as pool:
        pulls = list(pool.map(lambda name: docker_cli(img, "pull", "%s/library/%s" % (anonymous.host, name)),
                              ("pair-a", "pair-b")))
    assert all(p.returncode == 0 for p in pulls), [p.stderr for p in pulls]
    # Pulled at once: the later of the two waits for the layer the other is storing.
    assert sum(1 for p in pulls if "Waiting" in p.stdout) == 1, [p.stdout for p in pulls]
    assert until(lambda: anonymous.blob_gets(blob), "the registry to log a GET of %s" % blob) == 1
    assert sorted(os.listdir(store_dir(img) / layer)) == sorted([layer + ".vmdk", layer + "-flat.vmdk"])
    assert stat(store_dir(img) / layer / (layer + "-flat.vmdk"), "/opt/shared.bin")["Inode type"] == "file"
    for name in ("pair-a", "pair-b"):
        assert docker_cli(img, "rmi", "%s/library/%s" % (anonymous.host, name)).returncode == 0
    assert not (store_dir(img) / layer).exists()


def test_a_manifest_list_resolves_to_linux_amd64(img, registries, tmp_path):
    anonymous = registries.get("anonymous")
    amd64 = registries.images["busybox"]
    arm64 = OciLayout(tmp_path / "arm64", "latest", [busybox_layer(), app_layer("arm\n")], architecture="arm64")
    anonymous.push(amd64.folder, "latest", "multi", "v2s2")
    anonymous.push(arm64.folder, "latest", "multi-arm", "v2s2")
    entries = []
    for name in ("multi", "multi-arm"):
        body, media = anonymous.fetch_manifest(name, "latest")
        entries.append((anonymous.manifest_digest(name, "latest"), len(body), media,
                        "amd64" if name == "multi" else "arm64"))
    # Distribution wants every entry of a list in the list's repository.
    anonymous.push(arm64.folder, "latest", "multi", "v2s2")
    anonymous.push(amd64.folder, "latest", "multi", "v2s2")
    list_digest = anonymous.put_manifest_list("multi", "list", entries[::-1])
    pulled = docker_cli(img, "pull", anonymous.host + "/library/multi:list")
    assert pulled.returncode == 0, pulled.stderr
    assert "Digest: " + list_digest in pulled.stdout
    inspected = json.loads(docker_cli(img, "image", "inspect", anonymous.host + "/library/multi:list").stdout)[0]
    assert inspected["Id"] == amd64.image_id
    assert "%s/library/multi@%s" % (anonymous.host, list_digest) in inspected["RepoDigests"]


def test_login_and_pull_with_basic_auth(img, registries, tmp_path):
    # The layers stored from the anonymous registry, whichever tests ran before.
    assert docker_cli(img, "pull", registries.get("anonymous").host + "/library/busybox").returncode == 0
    basic = registries.get("basic")
    denied = docker_cli(img, "pull", basic.host + "/library/busybox", tmp_path=tmp_path)
    assert denied.returncode != 0 and "docker login" in denied.stderr
    wrong = docker_cli(img, "login", basic.host, "-u", "wrong", "--password-stdin", tmp_path=tmp_path, stdin="wrong")
    assert wrong.returncode != 0 and "401 Unauthorized" in wrong.stderr
    ok = docker_cli(img, "login", basic.host, "-u", USER, "--password-stdin", tmp_path=tmp_path, stdin=PASSWORD)
    assert ok.returncode == 0 and "Login Succeeded" in ok.stdout, ok.stderr
    pulled = docker_cli(img, "pull", basic.host + "/library/busybox", tmp_path=tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    assert "Already exists" in pulled.stdout  # the same layers as from the anonymous registry


def test_login_and_pull_with_token_auth(img, registries, tmp_path):
    token = registries.get("token")
    denied = docker_cli(img, "pull", token.host + "/library/shared", tmp_path=tmp_path)
    assert denied.returncode != 0 and "pull access denied" in denied.stderr
    ok = docker_cli(img, "login", token.host, "-u", USER, "--password-stdin", tmp_path=tmp_path, stdin=PASSWORD)
    assert ok.returncode == 0 and "Login Succeeded" in ok.stdout, ok.stderr
    pulled = docker_cli(img, "pull", token.host + "/library/shared", tmp_path=tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    assert {"account": USER, "scope": ["repository:library/shared:pull"]} in token.issuer.requests


def test_an_insecure_registry_is_reached_over_http(img, registries):
    plain = registries.get("plain")
    pulled = docker_cli(img, "pull", plain.host + "/library/busybox")
    assert pulled.returncode == 0, pulled.stderr
    assert "Status: Downloaded newer image for %s/library/busybox:latest" % plain.host in pulled.stdout


def test_a_whitelist_refuses_other_registries_and_an_unknown_ca_is_not_trusted(vcsim, registries,
                                                                               tmp_path_factory):
    plain, anonymous, basic = (registries.get(kind) for kind in ("plain", "anonymous", "basic"))
    certs = tmp_path_factory.mktemp("certs") / "wl"
    summary = deploy(vcsim, "wl", certs, registry={"ca_certs": [], "insecure": [plain.host],
                                                   "whitelist": [plain.host, anonymous.host]})
    endpoint = Endpoint(vcsim, "wl")
    vch = {"summary": summary, "certs": certs, "host": "tcp://127.0.0.1:%d" % endpoint.port}
    try:
        refused = docker_cli(vch, "pull", basic.host + "/library/busybox")
        assert refused.returncode != 0
        assert "Access denied to unauthorized registry (%s) while the VCH is in whitelist mode" % basic.host \
            in refused.stderr
        untrusted = docker_cli(vch, "pull", anonymous.host + "/library/busybox")
        assert untrusted.returncode != 0 and "not trusted by the VCH" in untrusted.stderr
        assert docker_cli(vch, "pull", plain.host + "/library/busybox").returncode == 0
    finally:
        endpoint.stop()
