"""Volumes as VMDKs in the VCH's labelled volume stores, with the docker CLI and SDK, checked in vcsim."""

import json
import os
import re
from pathlib import Path

import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, docker_cli, sdk, spec_validator
from test_containers import container_vms, run


@pytest.fixture(scope="module")
def vol(vcsim, tmp_path_factory, registries):
    certs = tmp_path_factory.mktemp("certs") / "vol"
    summary = deploy(vcsim, "vol", certs, volume_stores={"default": "LocalDS_0/vols-x", "backup": "nfs0/backup-x"},
                     registry=registries.trusted())
    vch = {"summary": summary, "certs": certs, "sim": vcsim, "endpoint": Endpoint(vcsim, "vol")}
    vch["host"] = "tcp://127.0.0.1:%d" % vch["endpoint"].port
    vch["image"] = registries.get("anonymous").host + "/library/busybox"
    yield vch
    vch["endpoint"].stop()


def store_dir(vch, datastore, folder):
    return Path(vch["sim"].datastores[datastore]) / folder / "volumes"


def listing(vch):
    found = []
    for datastore, folder in (("LocalDS_0", "vols-x"), ("nfs0", "backup-x")):
        root = store_dir(vch, datastore, folder)
        found += sorted(str(p.relative_to(root.parent.parent)) for p in root.rglob("*")) if root.exists() else []
    return found


def test_volume_create_makes_a_disk_in_the_labelled_store(vol):
    assert run(vol, "volume", "create", "--opt", "Capacity=2GB", "--opt", "VolumeStore=backup", "--label", "app=db",
               "logs") == "logs"
    folder = store_dir(vol, "nfs0", "backup-x") / "logs"
    assert sorted(os.listdir(folder)) == ["logs-flat.vmdk", "logs.json", "logs.vmdk"]
    meta = json.loads((folder / "logs.json").read_text())
    assert meta["capacity_kb"] == 2 * 1024 * 1024 and meta["store"] == "backup" and meta["labels"] == {"app": "db"}
    shown = json.loads(run(vol, "volume", "inspect", "logs"))[0]
    # The CLI sends driver "local" unless told otherwise: shown as asked, as dockerd does (a vsphere disk either way).
    assert shown["Driver"] == "local" and shown["Mountpoint"] == "[nfs0] backup-x/volumes/logs/logs.vmdk"
    assert shown["Status"]["vsphere"]["VolumeStore"] == "backup" and shown["Status"]["vsphere"]["Capacity"] == "2048MB"
    run(vol, "volume", "create", "-d", "vsphere", "plain")
    assert (store_dir(vol, "LocalDS_0", "vols-x") / "plain" / "plain.vmdk").exists()
    names = run(vol, "volume", "ls", "--format", "{{.Name}} {{.Driver}}").splitlines()
    assert names == ["logs local", "plain vsphere"]
    assert run(vol, "volume", "ls", "-q", "--filter", "label=app=db") == "logs"
    assert run(vol, "volume", "ls", "-q", "--filter", "label=app") == "logs"
    assert run(vol, "volume", "ls", "-q", "--filter", "name=lai") == "plain"
    assert run(vol, "volume", "ls", "-q", "--filter", "driver=vsphere").split() == ["plain"]
    assert run(vol, "volume", "ls", "-q", "--filter", "driver=nfs") == ""


def test_capacity_in_megabytes_the_local_alias_and_anonymous_volumes(vol):
    # A plain number is MB, as VIC read it; "local" is taken (and shown: tools recreate a volume whose driver
    # changed) so compose files written for a Docker host work.
    assert run(vol, "volume", "create", "-d", "local", "--opt", "Capacity=512", "small") == "small"
    meta = json.loads((store_dir(vol, "LocalDS_0", "vols-x") / "small" / "small.json").read_text())
    assert meta["capacity_kb"] == 512 * 1024 and meta["driver"] == "local"
    shown = json.loads(run(vol, "volume", "inspect", "small"))[0]
    assert shown["Driver"] == "local" and shown["Status"]["vsphere"]["Capacity"] == "512MB"
    assert shown["Options"] == {"Capacity": "512"}
    anonymous = run(vol, "volume", "create")
    assert re.fullmatch("[0-9a-f]{64}", anonymous)
    assert sorted(os.listdir(store_dir(vol, "LocalDS_0", "vols-x") / anonymous)) == [
        anonymous + "-flat.vmdk", anonymous + ".json", anonymous + ".vmdk"]
    run(vol, "volume", "rm", "small", anonymous)
    assert not (store_dir(vol, "LocalDS_0", "vols-x") / "small").exists()
    assert not (store_dir(vol, "LocalDS_0", "vols-x") / anonymous).exists()
    # docker volume rm -f: a volume already gone is not an error, as Docker answers.
    assert docker_cli(vol, "volume", "rm", "-f", "small").returncode == 0
    client = sdk(vol)
    try:
        listed = client.api.volumes()
        for item in listed["Volumes"]:
            spec_validator("Volume").validate(item)
        again = client.volumes.create("plain")  # idempotent, as Docker
        assert again.name == "plain"
        # force is read as dockerd reads booleans: "yes" is true, "0" is false.
        url = "%s/v%s/volumes/small" % (client.api.base_url, client.api.api_version)
        assert client.api.delete(url, params={"force": "yes"}).status_code == 204
        assert client.api.delete(url, params={"force": "0"}).status_code == 404
    finally:
        client.close()


def test_bad_volume_requests_are_refused_and_change_nothing(vol):
    before = listing(vol)
    for args, message in (
            (("volume", "create", "--opt", "Size=1G", "x1"), "unknown volume option Size"),
            (("volume", "create", "--opt", "VolumeStore=nope", "x2"), "no volume store 'nope'"),
            (("volume", "create", "--opt", "Capacity=lots", "x3"), "invalid Capacity"),
            (("volume", "create", "--opt", "Capacity=512KB", "x3"), "a volume needs at least 1MB"),
            (("volume", "create", "-d", "nfs", "x4"), "volume driver 'nfs' is not supported"),
            (("volume", "create", "-d", "nfs"), "volume driver 'nfs' is not supported"),
            (("volume", "create", "bad name"), "volume name is invalid"),
            (("volume", "create", "x"), "volume name is invalid"),
            (("volume", "ls", "--filter", "size=1"), "invalid filter 'size'"),
            (("volume", "create", "--opt", "Capacity=4GB", "plain"), "already exists with other options"),
            (("volume", "inspect", "nosuch"), "no such volume"),
            (("volume", "rm", "nosuch"), "no such volume")):
        result = docker_cli(vol, *args)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
    assert listing(vol) == before


@pytest.mark.parametrize("body, status, message", [
    (b'{"Name": "x5", ', 400, "invalid JSON in request body"),
    (b'["x5"]', 400, "the request body must be a JSON object"),
    (b'{"Name": "x5", "Labels": {"n": 1}}', 400, "Go struct field CreateOptions.Labels of type string"),
    (b'{"Name": "x5", "DriverOpts": ["Capacity=1GB"]}', 400, "Go struct field CreateOptions.DriverOpts of type map[string]string"),
    (b'{"Name": 5}', 400, "Go struct field CreateOptions.Name of type string"),
    (b'{"Name": "x5", "Size": "1GB"}', 400, "unknown field in the volume configuration: Size"),
    (b'{"Name": "x5", "DriverOpts": {"VolumeStore": "nope"}}', 404, "it has backup, default"),
])
def test_bad_create_bodies_get_docker_style_errors_and_change_nothing(vol, body, status, message):
    before = listing(vol)
    client = sdk(vol)
    try:
        # The SDK's low-level client is a requests session: it sends bodies the CLI never would.
        answer = client.api.post("%s/v%s/volumes/create" % (client.api.base_url, client.api.api_version), data=body,
                                 headers={"Content-Type": "application/json"})
    finally:
        client.close()
    assert answer.status_code == status and answer.headers["Content-Type"] == "application/json"
    assert message in answer.json()["message"]
    assert listing(vol) == before


def test_containers_mount_named_and_anonymous_volumes_and_rm_refuses_one_in_use(vol):
    cid = run(vol, "create", "--name", "user", "-v", "logs:/logs:ro", "-v", "/scratch", vol["image"], "true")
    record = container_vms(vol["sim"])[cid]["record"]
    mounts = {m["destination"]: m for m in record["mounts"]}
    assert mounts["/logs"]["name"] == "logs" and mounts["/logs"]["rw"] is False
    anonymous = mounts["/scratch"]["name"]
    assert len(anonymous) == 64 and mounts["/scratch"]["anonymous"] is True
    assert (store_dir(vol, "LocalDS_0", "vols-x") / anonymous / (anonymous + ".vmdk")).exists()
    assert sorted(run(vol, "volume", "ls", "-q", "--filter", "dangling=false").split()) == sorted(["logs", anonymous])
    assert "logs" not in run(vol, "volume", "ls", "-q", "--filter", "dangling=true").split()
    for force in ((), ("-f",)):  # as Docker: -f never removes a volume a container uses
        refused = docker_cli(vol, "volume", "rm", *force, "logs")
        assert refused.returncode != 0 and "remove logs: volume is in use - [%s]" % cid in refused.stderr
        assert (store_dir(vol, "nfs0", "backup-x") / "logs" / "logs.vmdk").exists()
    run(vol, "rm", "-v", "user")
    # rm -v removes the anonymous volume; the named one stays, with its disk.
    assert not (store_dir(vol, "LocalDS_0", "vols-x") / anonymous).exists()
    assert (store_dir(vol, "nfs0", "backup-x") / "logs" / "logs-flat.vmdk").exists()
    run(vol, "volume", "rm", "logs")
    assert not (store_dir(vol, "nfs0", "backup-x") / "logs").exists()


def test_a_killed_endpoint_rebuilds_the_volume_list_from_the_datastores(vol, vcsim):
    run(vol, "volume", "create", "--label", "keep=1", "kept")
    # A disk without its metadata (written by hand, or an interrupted create) still lists: nothing is lost.
    orphan = store_dir(vol, "LocalDS_0", "vols-x") / "orphan"
    orphan.mkdir()
    (orphan / "orphan.vmdk").write_text("# Disk DescriptorFile\n")
    before = run(vol, "volume", "inspect", "kept", "plain")
    listed = run(vol, "volume", "ls", "--format", "{{json .}}").splitlines()
    old = vol["endpoint"]
    old.kill()
    mark = vcsim.mark()
    vol["endpoint"] = Endpoint(vcsim, "vol", port=old.port, tether_port=old.tether_port)
    calls = vcsim.calls_since(mark)
    assert run(vol, "volume", "inspect", "kept", "plain") == before
    after = run(vol, "volume", "ls", "--format", "{{json .}}").splitlines()
    assert [line for line in after if '"Name":"orphan"' not in line] == listed
    orphan_shown = json.loads(run(vol, "volume", "inspect", "orphan"))[0]
    assert orphan_shown["Status"]["vsphere"]["Capacity"] == "1024MB" and orphan_shown["Labels"] == {}
    # Round trips: one search per store (and one of the image store), one GET per volume's metadata.
    assert sum(1 for c in calls if c.get("method") == "SearchDatastoreSubFolders_Task") == 2 + 1
    metadata_reads = sorted(c["path"].rsplit("/", 1)[-1] for c in calls
                            if c.get("http") == "GET" and c["path"].endswith(".json") and "/volumes/" in c["path"])
    assert metadata_reads == ["kept.json", "plain.json"]


def test_a_vsphere_fault_making_the_disk_is_one_docker_error_and_no_volume(vol):
    vol["sim"].inject_fault("CreateVirtualDisk_Task")
    try:
        failed = docker_cli(vol, "volume", "create", "faulty")
    finally:
        vol["sim"].clear_faults()
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert "vSphere refused creating volume disk [LocalDS_0] vols-x/volumes/faulty/faulty.vmdk" in failed.stderr
    assert "faulty" not in run(vol, "volume", "ls", "-q").split()
    assert not (store_dir(vol, "LocalDS_0", "vols-x") / "faulty" / "faulty.vmdk").exists()
    # The same create again, once vSphere takes it, makes the volume.
    assert run(vol, "volume", "create", "faulty") == "faulty"
    assert (store_dir(vol, "LocalDS_0", "vols-x") / "faulty" / "faulty.json").exists()
    run(vol, "volume", "rm", "faulty")


def test_a_vsphere_fault_at_create_leaves_no_anonymous_volume_behind(vol):
    run(vol, "pull", vol["image"])
    before, vms = listing(vol), set(container_vms(vol["sim"]))
    vol["sim"].inject_fault("CreateChildVM_Task")
    try:
        failed = docker_cli(vol, "create", "-v", "/data", vol["image"], "true")
    finally:
        vol["sim"].clear_faults()
    assert failed.returncode != 0
    assert "vSphere refused creating container VM" in failed.stderr and "injected fault" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert listing(vol) == before and set(container_vms(vol["sim"])) == vms
