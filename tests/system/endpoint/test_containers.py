"""Containers as VMs: the docker CLI and SDK against the endpoint, each result checked in vSphere (vcsim)."""

import json
import time

import docker
import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, docker_cli, response_validator, running_vch, sdk, spec_validator
from ansible_collections.vic.containers.services.portlayer.containers import model as port
from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc
from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks
from ansible_collections.vic.containers.plugins.module_utils.vsphere.session import Session
from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.tools.harness.waiting import until

try:
    from pyVmomi import vim
except ImportError:  # pragma: no cover
    vim = None

VM_PATHS = ("name", "config.extraConfig", "config.hardware.device", "runtime.powerState", "resourcePool",
            "config.uuid", "config.managedBy")


@pytest.fixture(scope="module")
def ctr(vcsim, tmp_path_factory, registries):
    vch = running_vch(vcsim, "ctr", tmp_path_factory.mktemp("certs") / "ctr", registries,
                      container_networks=[{"port_group": "DC0_DVPG0", "name": "public", "gateway": "10.9.0.1/24",
                                           "ip_range": "10.9.0.10-10.9.0.12", "dns": None}])
    yield vch
    vch["endpoint"].stop()


def session_of(sim):
    return Session(sim.host, sim.username, sim.password, sim.port, validate_certs=False)


def container_vms(sim):
    """Every container VM in vSphere, by container id, with its decoded record."""
    with session_of(sim) as session:
        view = session.content.viewManager.CreateContainerView(session.content.rootFolder,
                                                               [vim.VirtualMachine], True)
        try:
            found = pc.retrieve(session, [pc.object_spec(view, [pc.traversal("v", "ContainerView", "view")],
                                                         skip=True)], {"VirtualMachine": VM_PATHS})
        finally:
            view.Destroy()
    vms = {}
    for vm in found:
        managed = vm.get("config.managedBy")
        if managed is None or managed.type != codec.MANAGED_BY_CONTAINER:
            continue
        values = codec.as_dict(vm.get("config.extraConfig"))
        record = json.loads(codec.join_value(values, port.RECORD_KEY))
        boot = codec.join_value(values, protocol.BOOT_KEY)
        vms[record["id"]] = {"vm": vm, "record": record, "exit": json.loads(values.get(port.EXIT_KEY) or "{}"),
                             "boot": json.loads(boot) if boot else None}
    return vms


def run(vch, *args):
    result = docker_cli(vch, *args)
    assert result.returncode == 0, result.stderr + vch["endpoint"].log()[-3000:]
    return result.stdout.strip()


def test_docker_create_makes_a_container_vm_in_the_vch(ctr):
    cid = run(ctr, "create", "--name", "web", "-v", "data:/data", "-e", "MODE=prod", "--label", "tier=front",
              ctr["image"], "sleep", "600")
    vm = container_vms(ctr["sim"])[cid]
    props, record = vm["vm"], vm["record"]
    assert props.get("name") == "web-" + cid[:12]
    assert props.get("runtime.powerState") == "poweredOff"
    assert props.get("config.uuid") == port.bios_uuid(ctr["summary"]["uuid"], cid)
    # The env is sealed in the record (test_fid_sec_env.py): not in clear, and inspect shows it.
    assert record["config"]["Cmd"] == ["sleep", "600"] and "MODE=prod" not in json.dumps(record)
    assert "MODE=prod" in json.loads(run(ctr, "inspect", cid))[0]["Config"]["Env"]
    devices = props.get("config.hardware.device")
    disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
    layers = [d for d in disks if d.backing.diskMode == "independent_nonpersistent"]
    assert layers and all("/VIC/%s/images/" % ctr["summary"]["uuid"] in d.backing.fileName for d in layers)
    assert [d.backing.fileName for d in disks if d.backing.diskMode == "persistent"] == [
        "[LocalDS_0] web-%s/web-%s.vmdk" % (cid[:12], cid[:12])]
    volume = [d for d in disks if d.backing.diskMode == "independent_persistent"]
    assert len(volume) == 1 and volume[0].backing.fileName.endswith("/data/data.vmdk")
    cdrom = [d for d in devices if isinstance(d, vim.vm.device.VirtualCdrom)]
    assert cdrom and cdrom[0].backing.fileName.endswith("/bootstrap.iso")
    serial = [d for d in devices if isinstance(d, vim.vm.device.VirtualSerialPort)]
    uri_backing = vim.vm.device.VirtualSerialPort.URIBackingInfo
    uris = [d.backing.serviceURI for d in serial if isinstance(d.backing, uri_backing)]
    assert uris == ["tcp://127.0.0.1:%d" % ctr["endpoint"].tether_port]
    # COM1 (ttyS0) is the log, COM2 (ttyS1) the tether channel: the guest names them in device order.
    assert [type(d.backing).__name__.rsplit(".", 1)[-1] for d in serial] == ["FileBackingInfo", "URIBackingInfo"]
    assert serial[0].backing.fileName == "[LocalDS_0] web-%s/output.log" % cid[:12]
    nics = [d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    assert len(nics) == 1
    assert record["networks"]["bridge"]["ip"] == "172.16.0.2"

    boot = vm["boot"]
    assert "host_key" not in record["tether"] and record["tether"]["host_key_pub"].startswith("ssh-ed25519 ")
    assert protocol.public_key_text(protocol.import_host_key(boot["host_key"])) == record["tether"]["host_key_pub"]
    unit = {d.backing.fileName: d.unitNumber for d in disks}
    assert boot["layers"] == [unit[d.backing.fileName] for d in layers] and boot["rw"] == unit[
        "[LocalDS_0] web-%s/web-%s.vmdk" % (cid[:12], cid[:12])]
    assert boot["mounts"] == [{"unit": unit[volume[0].backing.fileName], "destination": "/data", "rw": True}]
    assert boot["process"]["Cmd"] == ["sleep", "600"] and boot["process"]["EnvSealed"] and not boot["process"]["Env"]
    assert boot["process"]["RunBlock"] is True  # docker create attaches stdout and stderr unless run -d
    assert boot["hostname"] == cid[:12] and boot["id"] == cid
    assert [n["addresses"] for n in boot["nics"]] == [["172.16.0.2/%d" % record["networks"]["bridge"]["prefix"]]]

    shown = json.loads(run(ctr, "inspect", "web"))[0]
    assert shown["Id"] == cid and shown["Name"] == "/web" and shown["State"]["Status"] == "created"
    assert shown["Config"]["Labels"]["tier"] == "front"
    assert shown["Mounts"][0]["Name"] == "data" and shown["Mounts"][0]["Destination"] == "/data"
    assert shown["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == "172.16.0.2"


def test_start_stop_and_ps_follow_the_vm_power_state(ctr):
    cid = run(ctr, "create", "--name", "cycle", ctr["image"], "sleep", "600")
    run(ctr, "start", "cycle")
    assert container_vms(ctr["sim"])[cid]["vm"].get("runtime.powerState") == "poweredOn"
    rows = [json.loads(line) for line in run(ctr, "ps", "--format", "{{json .}}", "--no-trunc").splitlines()]
    row = next(r for r in rows if r["ID"] == cid)
    assert row["Names"] == "cycle" and row["Status"].startswith("Up")
    run(ctr, "stop", "-t", "1", "cycle")
    vm = container_vms(ctr["sim"])[cid]
    assert vm["vm"].get("runtime.powerState") == "poweredOff"
    assert vm["exit"]["code"] == 137  # no tether answered: the VM was powered off, as a kill
    assert cid not in run(ctr, "ps", "-q", "--no-trunc").split()
    assert run(ctr, "ps", "-a", "--filter", "status=exited", "--filter", "name=cycle", "--format",
               "{{.Status}}").startswith("Exited (137)")
    run(ctr, "restart", "cycle")
    assert container_vms(ctr["sim"])[cid]["vm"].get("runtime.powerState") == "poweredOn"
    run(ctr, "kill", "cycle")
    assert container_vms(ctr["sim"])[cid]["vm"].get("runtime.powerState") == "poweredOff"


def test_rename_and_remove(ctr):
    cid = run(ctr, "create", "--name", "old", ctr["image"], "true")
    run(ctr, "rename", "old", "new")
    vm = container_vms(ctr["sim"])[cid]
    assert vm["vm"].get("name") == "new-" + cid[:12] and vm["record"]["name"] == "new"
    assert json.loads(run(ctr, "inspect", "new"))[0]["Name"] == "/new"
    run(ctr, "start", "new")
    refused = docker_cli(ctr, "rm", "new")
    assert refused.returncode != 0 and "You cannot remove a running container" in refused.stderr
    run(ctr, "rm", "-f", "new")
    assert cid not in container_vms(ctr["sim"])
    missing = docker_cli(ctr, "inspect", "new")
    assert missing.returncode != 0 and "No such object: new" in missing.stderr


def test_bad_input_is_a_docker_style_error_and_changes_nothing(ctr):
    before = set(container_vms(ctr["sim"]))
    run(ctr, "create", "--name", "taken", ctr["image"], "true")
    cases = [
        (("create", "--name", "taken", ctr["image"], "true"), 'The container name "/taken" is already in use'),
        (("create", "--name", "bad name", ctr["image"], "true"), "Invalid container name"),
        (("create", "--privileged", ctr["image"], "true"), "--privileged is not supported"),
        (("create", "-v", "/etc:/etc", ctr["image"], "true"), "bind mounts of host paths"),
        (("create", "-p", "53:53/udp", ctr["image"], "true"), "-p 53/udp: only TCP ports can be published"),
        (("create", "--network", "nosuch", ctr["image"], "true"), "network nosuch not found"),
        (("start", "nosuch"), "No such container: nosuch"),
        (("kill", "taken"), "is not running"),
    ]
    for args, message in cases:
        result = docker_cli(ctr, *args)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    client = sdk(ctr)
    try:
        api = client.api
        bad_json = api._post(api.base_url + "/v1.43/containers/create", data="{not json",
                             headers={"Content-Type": "application/json"})
        assert bad_json.status_code == 400 and "invalid JSON" in bad_json.json()["message"]
        unknown = api._post_json(api.base_url + "/v1.43/containers/create", data={"Image": ctr["image"],
                                                                                  "Cmd": ["true"], "Colour": 1})
        assert unknown.status_code == 400 and "Colour" in unknown.json()["message"]
    finally:
        client.close()
    assert set(container_vms(ctr["sim"])) - before == {c for c in container_vms(ctr["sim"])
                                                       if container_vms(ctr["sim"])[c]["record"]["name"] == "taken"}


def test_the_sdk_sees_the_same_and_answers_match_the_api_description(ctr):
    client = sdk(ctr)
    try:
        made = client.containers.create(ctr["image"], ["sleep", "60"], name="sdk", labels={"k": "v"},
                                        environment={"A": "1"})
        assert made.name == "sdk" and made.status == "created"
        rows = client.api.containers(all=True, filters={"label": "k=v"})
        assert [r["Id"] for r in rows] == [made.id]
        spec_validator("ContainerSummary").validate(rows[0])
        response_validator("/containers/{id}/json").validate(client.api.inspect_container(made.id))
        made.start()
        made.reload()
        assert made.status == "running"
        response_validator("/containers/{id}/json").validate(made.attrs)
        for net in client.api.networks():
            spec_validator("Network").validate(client.api.inspect_network(net["Id"]))
        made.remove(force=True)
        with pytest.raises(docker.errors.NotFound):
            client.containers.get("sdk")
    finally:
        client.close()


def test_networks_are_port_groups_with_addresses_kept_in_vsphere(ctr):
    nets = {n["Name"]: n for n in map(json.loads, run(ctr, "network", "ls", "--format", "{{json .}}").splitlines())}
    assert {"bridge", "public"} <= set(nets) and nets["public"]["Driver"] == "external"
    run(ctr, "network", "create", "backend")
    inspect = json.loads(run(ctr, "network", "inspect", "backend"))[0]
    assert inspect["IPAM"]["Config"][0]["Subnet"] == "172.17.0.0/16"
    cid = run(ctr, "create", "--name", "netted", "--network", "public", ctr["image"], "true")
    record = container_vms(ctr["sim"])[cid]["record"]
    assert record["networks"]["public"]["ip"] == "10.9.0.10"
    run(ctr, "network", "connect", "backend", "netted")
    vm = container_vms(ctr["sim"])[cid]
    nics = [d for d in vm["vm"].get("config.hardware.device") if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    assert len(nics) == 2 and vm["record"]["networks"]["backend"]["ip"] == "172.17.0.2"
    refused = docker_cli(ctr, "network", "rm", "backend")
    assert refused.returncode != 0 and "has active endpoints" in refused.stderr
    run(ctr, "network", "disconnect", "backend", "netted")
    vm = container_vms(ctr["sim"])[cid]
    nics = [d for d in vm["vm"].get("config.hardware.device") if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    assert len(nics) == 1 and "backend" not in vm["record"]["networks"]
    run(ctr, "network", "rm", "backend")
    run(ctr, "rm", "netted")


def test_a_vm_powered_off_in_vcenter_shows_as_exited_through_the_live_cache(ctr):
    cid = run(ctr, "run", "-d", "--name", "outside", ctr["image"], "sleep", "600")
    moid = container_vms(ctr["sim"])[cid]["vm"].moid
    with session_of(ctr["sim"]) as session:
        # What an administrator does in vCenter, with a session of their own.
        task = vim.VirtualMachine(moid, session.stub).PowerOffVM_Task()
        tasks.wait(session, {task: "power off"})

    def exited():
        shown = run(ctr, "ps", "-a", "--filter", "name=outside", "--format", "{{.Status}}")
        return shown if shown.startswith("Exited") else None
    # The live cache learns of it through its WaitForUpdatesEx long poll, in its own time.
    status = until(exited, lambda: "docker ps to show the VM powered off in vCenter as exited; the endpoint's log:\n"
                   + ctr["endpoint"].log()[-3000:], interval=0.2)
    assert status.startswith("Exited (137)")


def _quiet_mark(sim):
    """A mark of the call log once the live cache has read its last batch's VMs again (background work of the
    feed, like its long poll): one second with nothing but WaitForUpdatesEx."""
    def quiet():
        mark = sim.mark()
        time.sleep(1)
        return mark if all(c.get("method") in (None, "WaitForUpdatesEx") for c in sim.calls_since(mark)) else None
    return until(quiet, "the endpoint to be quiet", timeout=60)


def test_docker_ps_costs_no_vsphere_call(ctr):
    mark = _quiet_mark(ctr["sim"])
    for _round in range(3):
        run(ctr, "ps", "-a")
        run(ctr, "inspect", "taken")
    # The live cache's own long poll goes on in the background whatever clients do; nothing else may.
    calls = [c["method"] for c in ctr["sim"].calls_since(mark) if "method" in c]
    assert [c for c in calls if c != "WaitForUpdatesEx"] == []


def test_a_killed_endpoint_restarts_with_the_same_view(ctr, vcsim):
    views = ("ps -a --no-trunc --format {{.ID}}|{{.Names}}|{{.Image}}|{{.Command}}|{{.CreatedAt}}|{{.State}}",
             "network ls --no-trunc", "inspect taken")
    before = [run(ctr, *v.split()) for v in views]
    old = ctr["endpoint"]
    old.kill()
    ctr["endpoint"] = Endpoint(vcsim, "ctr", port=old.port, tether_port=old.tether_port)
    after = [run(ctr, *v.split()) for v in views]
    assert after == before


def test_events_report_what_happened_and_info_counts_from_the_live_cache(ctr):
    start = time.time()
    cid = run(ctr, "create", "--name", "eventful", ctr["image"], "true")
    run(ctr, "start", "eventful")
    run(ctr, "rm", "-f", "eventful")
    seen = run(ctr, "events", "--since", "%.3f" % (start - 1), "--until", "%.3f" % (time.time() + 1),
               "--filter", "container=%s" % cid, "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    assert seen.splitlines() == ["container create eventful", "container start eventful",
                                 "container destroy eventful"]
    info = json.loads(run(ctr, "info", "--format", "{{json .}}"))
    listed = run(ctr, "ps", "-a", "-q").split()
    assert info["Containers"] == len(listed) and info["Images"] >= 1
    assert info["ContainersRunning"] == len(run(ctr, "ps", "-q").split())


def test_stats_read_the_vm_quick_stats(ctr):
    cid = run(ctr, "run", "-d", "--name", "measured", "-m", "1g", "--cpus", "2", ctr["image"], "sleep", "600")
    client = sdk(ctr)
    try:
        sample = client.api.stats(cid, stream=False)
        assert sample["id"] == cid and sample["name"] == "/measured"
        assert sample["memory_stats"]["limit"] == 1024 * 1024 * 1024 and sample["cpu_stats"]["online_cpus"] == 2
        assert sample["precpu_stats"]["cpu_usage"]["total_usage"] <= sample["cpu_stats"]["cpu_usage"]["total_usage"]
    finally:
        client.close()
    shown = run(ctr, "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", "measured")
    assert shown.startswith("measured ") and shown.endswith("/ 1GiB")
    run(ctr, "rm", "-f", "measured")


def test_create_without_a_command_is_refused_and_makes_nothing(ctr):
    before = set(container_vms(ctr["sim"]))
    refused = docker_cli(ctr, "create", "--name", "nocmd", "--entrypoint", "", ctr["image"])
    assert refused.returncode != 0 and "no command specified" in refused.stderr, refused.stderr
    assert set(container_vms(ctr["sim"])) == before


def test_network_connect_rewrites_the_boot_spec_and_rename_keeps_the_hostname(ctr):
    cid = run(ctr, "create", "--name", "wired", "--add-host", "db:10.1.2.3", ctr["image"], "sleep", "600")
    first = container_vms(ctr["sim"])[cid]["boot"]
    assert first["hosts"] == ["10.1.2.3\tdb"] and len(first["nics"]) == 1
    run(ctr, "network", "connect", "public", "wired")
    second = container_vms(ctr["sim"])[cid]["boot"]
    assert len(second["nics"]) == 2 and second["nics"][1]["addresses"][0].startswith("10.9.0.")
    assert second["nics"][1]["gateway"] == "10.9.0.1" and second["host_key"] == first["host_key"]
    run(ctr, "rename", "wired", "rewired")
    assert container_vms(ctr["sim"])[cid]["boot"]["hostname"] == cid[:12]
    run(ctr, "rm", "rewired")
