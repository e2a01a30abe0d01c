"""vic_vch and vic_vch_info end to end through ansible-playbook, against vcsim."""

import os
import stat
import uuid
from pathlib import Path

import pytest
from pyVmomi import vim

from ansible_collections.vic.containers.tools.harness.playbook import run, run_tasks
from ansible_collections.vic.containers.tools.harness.vsphere_probe import connect, find, one

VCH = "vic.containers.vic_vch"
INFO = "vic.containers.vic_vch_info"


def vch_args(tmp_path, name, **extra):
    args = {
        "name": name,
        "datacenter": "DC0",
        "compute": "/DC0/host/DC0_C0",
        "image_store": "LocalDS_0/%s" % name,
        "volume_stores": {"default": "LocalDS_0/volumes-%s" % name, "backup": "nfs0/vols-%s" % name},
        "bridge_network": "%s-bridge" % name,
        "public_network": "VM Network",
        "public_network_ip": "127.0.0.7/8",
        "container_networks": [{"port_group": "DC0_DVPG0", "name": "services"}],
        "cpu": {"limit_mhz": 8000},
        "memory": {"limit_mb": 16384},
        "tls": {"cname": "vch.example", "cert_path": str(tmp_path / "certs" / name)},
    }
    args.update(extra)
    return args


def unique(prefix="vch"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:6])


def folder(sim, datastore, path):
    return Path(sim.datastores[datastore]) / path


def test_create_on_cluster_check_run_rerun_diff(vcsim, tmp_path):
    name = unique()
    args = vch_args(tmp_path, name)

    predicted = run(vcsim, VCH, args, check=True, diff=True)
    assert predicted["changed"] is True, predicted
    assert find(vcsim, vim.VirtualApp, name) == []
    assert not (tmp_path / "certs" / name).exists(), "check mode wrote certificates"
    assert predicted["diff"]["before"] == {}
    assert predicted["diff"]["after"]["image_store"] == "LocalDS_0/%s" % name

    created = run(vcsim, VCH, args, diff=True)
    assert created["changed"] is True, created.get("msg")
    assert created["changes"] == predicted["changes"]
    vch = created["vch"]

    vapp = one(vcsim, vim.VirtualApp, name)
    assert vapp["parent"] == "Resources"
    assert vapp["cpu"] == (8000, 0, "normal") and vapp["memory"] == (16384, 0, "normal")
    endpoint = one(vcsim, vim.VirtualMachine, name)
    assert endpoint["moid"] == vch["id"]
    assert endpoint["pool"] == name
    assert endpoint["power"] == "poweredOn"
    assert endpoint["managed_by"] == ("vic.containers", "VicEndpoint")
    assert (endpoint["cpus"], endpoint["memory_mb"]) == (1, 2048)
    assert endpoint["networks"] == sorted([name + "-bridge", "VM Network"])
    assert one(vcsim, vim.dvs.DistributedVirtualPortgroup, name + "-bridge")

    # The record: versioned, secrets sealed (no password or key in clear).
    extra = endpoint["extra"]
    assert extra["guestinfo.vice./version"] == "1"
    assert '"image_store":"LocalDS_0/%s"' % name in extra["guestinfo.vice./config"]
    assert vcsim.password not in "".join(extra.values())
    assert "PRIVATE KEY" not in "".join(extra.values())

    vch_uuid = vch["uuid"]
    assert folder(vcsim, "LocalDS_0", "%s/VIC/%s/images" % (name, vch_uuid)).is_dir()
    assert folder(vcsim, "LocalDS_0", "%s/VIC/%s/vch.key" % (name, vch_uuid)).is_file()
    assert folder(vcsim, "LocalDS_0", "volumes-%s/volumes" % name).is_dir()
    assert folder(vcsim, "nfs0", "vols-%s/volumes" % name).is_dir()

    certs = tmp_path / "certs" / name
    for key in ("ca-key.pem", "server-key.pem", "key.pem"):
        assert stat.S_IMODE(os.stat(certs / key).st_mode) == 0o600, key
    assert vch["docker_host"] == "tcp://127.0.0.7:2376"
    assert vch["docker_env"] == {"DOCKER_HOST": "tcp://127.0.0.7:2376", "DOCKER_TLS_VERIFY": "1",
                                 "DOCKER_CERT_PATH": str(certs)}
    assert vch["cert_paths"]["ca"] == str(certs / "ca.pem")
    assert vch["pool"] == "/DC0/host/DC0_C0/Resources/" + name
    assert vch["image_store"] == "[LocalDS_0] %s/VIC/%s/images" % (name, vch_uuid)
    assert vch["volume_stores"]["backup"] == "[nfs0] vols-%s/volumes" % name
    assert vch["config"]["container_networks"][0]["name"] == "services"
    assert created["diff"]["after"]["tls"]["server_cert"].startswith("sha256:")

    again = run(vcsim, VCH, args, check=True)
    assert again["changed"] is False and again["changes"] == []
    again = run(vcsim, VCH, args, diff=True)
    assert again["changed"] is False, again["changes"]
    assert again["diff"]["before"] == again["diff"]["after"]
    assert again["vch"]["id"] == vch["id"]

    gone = run(vcsim, VCH, dict(args, state="absent", delete_volume_stores=True))
    assert gone["changed"] is True


def test_create_on_standalone_esxi_makes_a_resource_pool(vcsim_esx, tmp_path):
    name = unique("esx")
    args = {"name": name, "compute": "localhost.localdomain", "image_store": "LocalDS_0",
            "tls": {"enabled": False}}
    created = run(vcsim_esx, VCH, args)
    assert created["changed"] is True, created.get("msg")
    pool = one(vcsim_esx, vim.ResourcePool, name)
    assert pool["type"] == "ResourcePool"
    assert find(vcsim_esx, vim.VirtualApp, name) == []
    assert one(vcsim_esx, vim.Network, name)  # the bridge, a standard port group
    vm = one(vcsim_esx, vim.VirtualMachine, name)
    assert vm["pool"] == name and vm["power"] == "poweredOn"
    assert created["vch"]["datacenter"] == "ha-datacenter"
    assert created["vch"]["config"]["tls"] == {"enabled": False, "verify": False}
    assert folder(vcsim_esx, "LocalDS_0", "%s/VIC/%s/images" % (name, created["vch"]["uuid"])).is_dir()

    again = run(vcsim_esx, VCH, args)
    assert again["changed"] is False, again["changes"]

    gone = run(vcsim_esx, VCH, {"name": name, "state": "absent"})
    assert gone["changed"] is True
    assert find(vcsim_esx, vim.ResourcePool, name) == []
    assert not folder(vcsim_esx, "LocalDS_0", name).exists()


def test_reconfigure_in_place_keeps_the_endpoint(vcsim, tmp_path):
    name = unique()
    args = vch_args(tmp_path, name)
    created = run(vcsim, VCH, args)
    assert created["changed"], created.get("msg")

    changed = dict(args, memory={"limit_mb": 32768, "shares": "high"}, dns_servers=["127.0.0.53"],
                   volume_stores=dict(args["volume_stores"], logs="LocalDS_0/logs-%s" % name),
                   container_networks=args["container_networks"] + [{"port_group": "VM Network", "name": "lan"}],
                   syslog_address="udp://127.0.0.1:514", ops_password="another-secret")
    predicted = run(vcsim, VCH, changed, check=True, diff=True)
    assert predicted["changed"] is True
    assert one(vcsim, vim.VirtualApp, name)["memory"] == (16384, 0, "normal")

    done = run(vcsim, VCH, changed, diff=True)
    assert done["changed"] is True, done.get("msg")
    assert done["changes"] == predicted["changes"]
    assert done["vch"]["id"] == created["vch"]["id"], "the endpoint VM was replaced"
    assert one(vcsim, vim.VirtualApp, name)["memory"] == (32768, 0, "high")
    assert folder(vcsim, "LocalDS_0", "logs-%s/volumes" % name).is_dir()
    assert done["diff"]["before"]["dns_servers"] == [] and done["diff"]["after"]["dns_servers"] == ["127.0.0.53"]
    assert "another-secret" not in done["_output"]
    config = done["vch"]["config"]
    assert config["syslog_address"] == "udp://127.0.0.1:514"
    assert [n["name"] for n in config["container_networks"]] == ["lan", "services"]

    again = run(vcsim, VCH, changed)
    assert again["changed"] is False, again["changes"]
    # Leaving options out keeps what the VCH has.
    minimal = run(vcsim, VCH, {"name": name, "datacenter": "DC0", "tls": args["tls"]})
    assert minimal["changed"] is False, minimal["changes"]

    # -1 removes a limit, "" a syslog address; no_proxy left out is kept.
    with_proxy = run(vcsim, VCH, {"name": name, "proxy": {"https": "http://127.0.0.1:3128", "no_proxy": ["a.example"]}})
    assert with_proxy["changed"], with_proxy.get("msg")
    cleared = run(vcsim, VCH, {"name": name, "cpu": {"limit_mhz": -1}, "syslog_address": "",
                               "proxy": {"https": ""}})
    assert cleared["changed"], cleared.get("msg")
    assert one(vcsim, vim.VirtualApp, name)["cpu"] == (-1, 0, "normal")
    config = cleared["vch"]["config"]
    assert config["syslog_address"] == "" and config["proxy"] == {"http": None, "https": "", "no_proxy": ["a.example"]}
    assert run(vcsim, VCH, {"name": name, "cpu": {"limit_mhz": -1}})["changed"] is False

    run(vcsim, VCH, dict(args, state="absent", delete_volume_stores=True))


def test_changes_vic_machine_configure_could_not_make_are_refused(vcsim, tmp_path):
    name = unique()
    args = vch_args(tmp_path, name)
    assert run(vcsim, VCH, args)["changed"]
    for change, option in (({"image_store": "nfs0/elsewhere"}, "image_store"),
                           ({"endpoint": {"cpus": 4}}, "endpoint"),
                           ({"public_network": "DC0_DVPG0"}, "public_network"),
                           ({"volume_stores": {"default": args["volume_stores"]["default"]}}, "volume_stores.backup"),
                           ({"container_networks": [{"port_group": "VM Network", "name": "services"}]},
                            "container_networks.services"),
                           ({"compute": "/DC0/host/DC0_H0"}, "compute")):
        refused = run(vcsim, VCH, dict(args, **change))
        assert refused.get("failed"), (change, refused)
        assert option in refused["msg"] and "cannot change" in refused["msg"], refused["msg"]
    assert one(vcsim, vim.VirtualMachine, name)["cpus"] == 1
    assert len(find(vcsim, vim.VirtualMachine, name)) == 1
    elsewhere = run(vcsim, VCH, {"name": name, "compute": "DC0_H0", "state": "absent"})
    assert elsewhere.get("failed") and "nothing was deleted" in elsewhere["msg"], elsewhere
    assert run(vcsim, VCH, args)["changed"] is False
    run(vcsim, VCH, dict(args, state="absent", delete_volume_stores=True))


def test_delete_leaves_nothing(vcsim, tmp_path):
    name = unique()
    args = vch_args(tmp_path, name)
    vch = run(vcsim, VCH, args)["vch"]

    predicted = run(vcsim, VCH, dict(args, state="absent"), check=True)
    assert predicted["changed"] and one(vcsim, vim.VirtualApp, name)
    gone = run(vcsim, VCH, dict(args, state="absent"))
    assert gone["changed"] and gone["changes"] == predicted["changes"]
    assert find(vcsim, vim.VirtualApp, name) == [] and find(vcsim, vim.VirtualMachine, name) == []
    assert not folder(vcsim, "LocalDS_0", name).exists()
    # Volume stores are kept unless asked, as vic-machine delete without --force.
    assert folder(vcsim, "nfs0", "vols-%s/volumes" % name).is_dir()
    assert any("delete_volume_stores" in w for w in gone.get("warnings", []))
    assert run(vcsim, VCH, dict(args, state="absent"))["changed"] is False
    assert vch["uuid"] not in str(list(Path(vcsim.datastores["LocalDS_0"]).rglob("*")))

    # With delete_volume_stores, a new VCH on the same stores leaves no folder behind.
    run(vcsim, VCH, args)
    run(vcsim, VCH, dict(args, state="absent", delete_volume_stores=True))
    assert not folder(vcsim, "nfs0", "vols-%s/volumes" % name).exists()
    assert not folder(vcsim, "LocalDS_0", "volumes-%s/volumes" % name).exists()


@pytest.mark.parametrize("method", ["MakeDirectory", "CreateChildVM_Task", "PowerOnVM_Task"])
def test_fault_midway_then_rerun_completes_or_absent_cleans(vcsim, tmp_path, method):
    name = unique("fault")
    args = vch_args(tmp_path, name)
    vcsim.inject_fault(method)
    try:
        failed = run(vcsim, VCH, args)
    finally:
        vcsim.clear_faults()
    assert failed.get("failed"), failed
    assert "injected fault" in failed["msg"] and "Traceback" not in failed["msg"], failed["msg"]
    assert name in failed["msg"], "the message names the object: " + failed["msg"]

    completed = run(vcsim, VCH, args)
    assert completed["changed"] is True, completed.get("msg")
    assert one(vcsim, vim.VirtualMachine, name)["power"] == "poweredOn"
    assert run(vcsim, VCH, args)["changed"] is False

    # A half-made VCH is removed by absent as well.
    run(vcsim, VCH, dict(args, state="absent", delete_volume_stores=True))
    vcsim.inject_fault(method)
    try:
        assert run(vcsim, VCH, args).get("failed")
    finally:
        vcsim.clear_faults()
    gone = run(vcsim, VCH, dict(args, state="absent", delete_volume_stores=True))
    assert gone["changed"] is True, gone.get("msg")
    assert find(vcsim, vim.VirtualApp, name) == [] and find(vcsim, vim.VirtualMachine, name) == []
    assert not folder(vcsim, "LocalDS_0", name).exists()
    assert not folder(vcsim, "nfs0", "vols-%s/volumes" % name).exists()


def test_info_lists_and_inspects(vcsim, tmp_path):
    names = [unique("info"), unique("info")]
    results = run_tasks(vcsim, [(VCH, vch_args(tmp_path, n, public_network_ip=None)) for n in names])[0]
    assert all(r["changed"] for r in results), results
    listed = run(vcsim, INFO, {})
    found = {v["name"]: v for v in listed["vchs"]}
    assert set(names) <= set(found)
    assert listed["changed"] is False
    one_vch = run(vcsim, INFO, {"name": names[0], "datacenter": "DC0", "compute": "DC0_C0"})["vchs"]
    assert [v["name"] for v in one_vch] == [names[0]]
    vch = one_vch[0]
    assert vch["endpoint_vm"] == "/DC0/host/DC0_C0/Resources/%s/%s" % (names[0], names[0])
    assert vch["power_state"] == "poweredOn" and vch["containers"] == []
    assert vch["version"] == "0.1.0"
    assert "ops_password" not in str(vch) and vcsim.password not in str(vch)
    assert run(vcsim, INFO, {"name": "no-such-vch"})["vchs"] == []
    for n in names:
        run(vcsim, VCH, dict(vch_args(tmp_path, n), state="absent", delete_volume_stores=True))


BAD_INPUT = [
    ({"datacenter": "DC9"}, "datacenter"),
    ({"compute": "/DC0/host/NoSuchCluster"}, "compute"),
    ({"image_store": "NoSuchDS/x"}, "image_store"),
    ({"volume_stores": {"default": "NoSuchDS/v"}}, "volume_stores.default"),
    ({"volume_stores": {"bad label!": "LocalDS_0/v"}}, "volume_stores"),
    ({"public_network": "No Such Net"}, "public_network"),
    ({"container_networks": [{"port_group": "nope"}]}, "container_networks[0].port_group"),
    ({"bridge_network": "VM Network"}, "bridge_network"),
    ({"cpu": {"limit_mhz": -5}}, "cpu.limit_mhz"),
    ({"memory": {"limit_mb": "lots"}}, "limit_mb"),
    ({"memory": {"limit_mb": 100, "reservation_mb": 200}}, "memory.reservation_mb"),
    ({"cpu": {"shares": "plenty"}}, "cpu.shares"),
    ({"tls": {"enabled": False, "cname": "x"}}, "tls.cname"),
    ({"tls": {"server_cert": "/etc/hostname"}}, "tls.server_cert"),
    ({"public_network_ip": "300.1.1.1"}, "public_network_ip"),
    ({"bridge_network_range": "172.16.0.1/12"}, "bridge_network_range"),
    ({"syslog_address": "localhost:514"}, "syslog_address"),
    ({"name": "bad name!"}, "name"),
    ({"compute": None}, "compute"),
]


def test_bad_input_gets_a_clear_error_and_changes_nothing(vcsim, tmp_path):
    name = unique("bad")
    tasks = [(VCH, dict(vch_args(tmp_path, name), **change)) for change, unused in BAD_INPUT]
    results, output = run_tasks(vcsim, tasks)
    for (change, option), result in zip(BAD_INPUT, results):
        assert result.get("failed"), (change, result)
        assert option in result["msg"], (option, result["msg"])
        assert "Traceback" not in result["msg"]
    assert "Traceback" not in output
    assert find(vcsim, vim.VirtualApp, name) == []
    assert not folder(vcsim, "LocalDS_0", name).exists()
    assert not (tmp_path / "certs" / name).exists()


def test_wrong_credentials_are_one_clear_sentence(vcsim, tmp_path):
    result = run(vcsim, VCH, dict(vch_args(tmp_path, unique()), password="not-the-password-42"))
    assert result["failed"] and "wrong user name or password" in result["msg"], result["msg"]
    assert "not-the-password-42" not in result["_output"]


def test_a_vapp_of_the_same_name_is_not_taken_for_a_half_made_vch(vcsim, tmp_path):
    name = unique("theirs")
    with connect(vcsim) as content:
        dc = content.rootFolder.childEntity[0]
        cluster = next(c for c in dc.hostFolder.childEntity if c.name == "DC0_C0")
        spec = vim.ResourceConfigSpec(
            cpuAllocation=vim.ResourceAllocationInfo(limit=-1, reservation=0, expandableReservation=True,
                                                     shares=vim.SharesInfo(level="normal", shares=0)),
            memoryAllocation=vim.ResourceAllocationInfo(limit=-1, reservation=0, expandableReservation=True,
                                                        shares=vim.SharesInfo(level="normal", shares=0)))
        cluster.resourcePool.CreateVApp(name, spec, vim.vApp.VAppConfigSpec(annotation="someone else's"),
                                        dc.vmFolder)
    args = vch_args(tmp_path, name)
    assert run(vcsim, VCH, dict(args, state="absent"))["changed"] is False
    assert one(vcsim, vim.VirtualApp, name)
    taken = run(vcsim, VCH, args)
    assert taken.get("failed") and "already exists and is not a VCH" in taken["msg"], taken
    assert find(vcsim, vim.dvs.DistributedVirtualPortgroup, name + "-bridge") == []  # refused before any change
    assert not (tmp_path / "certs" / name).exists()
    assert one(vcsim, vim.VirtualApp, name)  # still theirs, still there
