"""Volumes as VMDKs in the VCH's labelled volume stores, with the docker CLI and SDK, checked in vcsim."""

import json
import os
from pathlib import Path

import pytest

from endpoint_harness import Endpoint, deploy, docker_cli, sdk, spec_validator
from test_containers import container_vms, run


@pytest.fixture(scope="module")
def vol(vcsim, tmp_path_factory, registries):
    certs = tmp_path_factory.mktemp("certs") / "vol"
    summary = deploy(vcsim, "vol", certs, volume_stores={"default": "LocalDS_0/vols-x", "backup": "nfs0/backup-x"},
                     registry={"ca_certs": [str(registries.ca.ca_path)], "insecure": [], "whitelist": []})
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
    assert shown["Driver"] == "vsphere" and shown["Mountpoint"] == "[nfs0] backup-x/volumes/logs/logs.vmdk"
    assert shown["Status"]["vsphere"]["VolumeStore"] == "backup" and shown["Status"]["vsphere"]["Capacity"] == "2048MB"
    run(vol, "volume", "create", "plain")
    assert (store_dir(vol, "LocalDS_0", "vols-x") / "plain" / "plain.vmdk").exists()
    names = run(vol, "volume", "ls", "--format", "{{.Name}} {{.Driver}}").splitlines()
    assert names == ["logs vsphere", "plain vsphere"]
    assert run(vol, "volume", "ls", "-q", "--filter", "label=app=db") == "logs"
    client = sdk(vol)
    try:
        listed = client.api.volumes()
        for item in listed["Volumes"]:
            spec_validator("Volume").validate(item)
        again = client.volumes.create("plain")  # idempotent, as Docker
        assert again.name == "plain"
    finally:
        client.close()


def test_bad_volume_requests_are_refused_and_change_nothing(vol):
    before = listing(vol)
    for args, message in (
            (("volume", "create", "--opt", "Size=1G", "x1"), "unknown volume option Size"),
            (("volume", "create", "--opt", "VolumeStore=nope", "x2"), "no volume store 'nope'"),
            (("volume", "create", "--opt", "Capacity=lots", "x3"), "invalid Capacity"),
            (("volume", "create", "-d", "nfs", "x4"), "volume driver 'nfs' is not supported"),
            (("volume", "create", "bad name"), "volume name is invalid"),
            (("volume", "create", "--opt", "Capacity=4GB", "plain"), "already exists with other options"),
            (("volume", "inspect", "nosuch"), "no such volume"),
            (("volume", "rm", "nosuch"), "no such volume")):
        result = docker_cli(vol, *args)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
    assert listing(vol) == before


def test_containers_mount_named_and_anonymous_volumes_and_rm_refuses_one_in_use(vol):
    cid = run(vol, "create", "--name", "user", "-v", "logs:/logs:ro", "-v", "/scratch", vol["image"], "true")
    record = container_vms(vol["sim"])[cid]["record"]
    mounts = {m["destination"]: m for m in record["mounts"]}
    assert mounts["/logs"]["name"] == "logs" and mounts["/logs"]["rw"] is False
    anonymous = mounts["/scratch"]["name"]
    assert len(anonymous) == 64 and mounts["/scratch"]["anonymous"] is True
    assert (store_dir(vol, "LocalDS_0", "vols-x") / anonymous / (anonymous + ".vmdk")).exists()
    refused = docker_cli(vol, "volume", "rm", "logs")
    assert refused.returncode != 0 and "volume is in use - [%s]" % cid in refused.stderr
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
    old = vol["endpoint"]
    old.kill()
    vol["endpoint"] = Endpoint(vcsim, "vol", port=old.port, tether_port=old.tether_port)
    assert run(vol, "volume", "inspect", "kept", "plain") == before
    assert "orphan" in run(vol, "volume", "ls", "-q").split()


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
