"""Answers a Docker client relies on (issue 12): the docker CLI, the Docker SDK and raw HTTPS against a VCH on
vcsim, each answer compared with what dockerd gives and, where it changes vSphere, with what vSphere holds."""

import json
import subprocess

import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import (
    Endpoint, _spec, deploy, docker_cli, docker_command, response_validator, sdk)
from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc
from ansible_collections.vic.containers.tests.system.endpoint.test_containers import container_vms, session_of
from ansible_collections.vic.containers.tools.harness.waiting import until

INSECURE = "insecure.invalid:5000"


@pytest.fixture(scope="module")
def fa(vcsim, tmp_path_factory, registries):
    certs = tmp_path_factory.mktemp("certs") / "fa"
    anonymous = registries.get("anonymous")
    registry = {"ca_certs": [str(registries.ca.ca_path)], "insecure": [INSECURE],
                "whitelist": [anonymous.host, INSECURE]}
    summary = deploy(vcsim, "fa", certs, registry=registry,
                     memory={"limit_mb": 6144, "reservation_mb": None, "shares": None})
    endpoint = Endpoint(vcsim, "fa")
    vch = {"summary": summary, "certs": certs, "endpoint": endpoint, "host": "tcp://127.0.0.1:%d" % endpoint.port,
           "sim": vcsim, "registry": anonymous.host}
    vch["image"] = anonymous.host + "/library/busybox"
    run(vch, "pull", vch["image"])
    with pytest.MonkeyPatch.context() as env:  # as conftest's _own_ca_only, for the version="auto" call
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            env.delenv(name, raising=False)
        client = sdk(vch)
    vch["sdk"], vch["api"] = client, client.api
    yield vch
    client.close()
    endpoint.stop()


def run(vch, *args):
    result = docker_cli(vch, *args)
    assert result.returncode == 0, result.stderr + vch["endpoint"].log()[-3000:]
    return result.stdout.strip()


def fails(vch, *args):
    result = docker_cli(vch, *args)
    assert result.returncode != 0, result.stdout
    return result.stderr


def call(vch, method, path, body=None, params=None):
    """(status, decoded answer) of one raw API call."""
    api = vch["api"]
    kwargs = {"params": params}
    if body is not None:
        kwargs.update(data=json.dumps(body), headers={"Content-Type": "application/json"})
    response = getattr(api, "_" + method)(api._url(path), **kwargs)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def inspect(vch, ref):
    return json.loads(run(vch, "inspect", ref))[0]


# -- /info, swarm, distribution --------------------------------------------------------------------


def test_info_has_the_pool_size_swarm_and_registries_as_dockerd_shows_them(fa):
    mark = fa["sim"].mark()
    info = fa["sdk"].info()
    # The pool's limits and its compute resource's size: two reads (the live feed's long polls aside).
    calls = [c["method"] for c in fa["sim"].calls_since(mark) if c.get("method", "WaitForUpdatesEx") != "WaitForUpdatesEx"]
    assert calls == ["RetrievePropertiesEx", "RetrievePropertiesEx"], calls
    assert info["NCPU"] >= 1
    assert 0 < info["MemTotal"] <= 6144 * 1024 * 1024
    assert info["Swarm"]["LocalNodeState"] == "inactive" and info["Swarm"]["NodeID"] == ""
    assert info["ExperimentalBuild"] is False
    indexes = info["RegistryConfig"]["IndexConfigs"]
    assert indexes[INSECURE]["Secure"] is False and indexes["docker.io"]["Official"] is True
    assert "127.0.0.0/8" in info["RegistryConfig"]["InsecureRegistryCIDRs"]
    assert ["Registry Whitelist Mode", "enabled"] in info["SystemStatus"]
    text = run(fa, "info")
    assert "Insecure Registries:\n  " + INSECURE in text
    assert "Swarm: inactive" in text


def test_swarm_leave_answers_not_part_of_a_swarm(fa):
    status, answer = call(fa, "post", "/swarm/leave")
    assert status == 503 and answer["message"] == "This node is not part of a swarm"
    status, answer = call(fa, "get", "/swarm")
    assert status == 503 and "not a swarm manager" in answer["message"]
    assert "This node is not part of a swarm" in fails(fa, "swarm", "leave")


def test_distribution_inspect_reads_the_registry(fa, registries):
    info = fa["api"].inspect_distribution(fa["image"] + ":latest")
    digest = registries.get("anonymous").manifest_digest("busybox", "latest")
    assert info["Descriptor"]["digest"] == digest
    assert info["Descriptor"]["size"] > 0 and info["Descriptor"]["mediaType"]
    assert {"architecture": "amd64", "os": "linux"}.items() <= info["Platforms"][0].items()
    status, answer = call(fa, "get", "/distribution/%s/library/nothing:latest/json" % fa["registry"])
    assert status in (401, 403, 404) and answer["message"]


# -- filters ---------------------------------------------------------------------------------------


def test_ps_filters_as_dockerd(fa):
    c1 = run(fa, "create", "--name", "c1", "--label", "a=1", "--label", "b=2", fa["image"], "true")
    c12 = run(fa, "create", "--name", "c12", "--label", "a=1", fa["image"], "true")
    run(fa, "tag", fa["image"], "alias/bb:v1")
    try:
        names = run(fa, "ps", "-a", "--format", "{{.Names}}", "--filter", "name=^/c1$").split()
        assert names == ["c1"]
        both = set(run(fa, "ps", "-a", "-q", "--no-trunc", "--filter", "name=c1").split())
        assert {c1, c12} <= both
        image_id = inspect(fa, fa["image"])["Id"]
        for ancestor in ("alias/bb:v1", fa["image"], image_id, image_id[7:19]):
            found = set(run(fa, "ps", "-a", "-q", "--no-trunc", "--filter", "ancestor=" + ancestor).split())
            assert {c1, c12} <= found, ancestor
        anded = run(fa, "ps", "-a", "-q", "--no-trunc", "--filter", "label=a=1", "--filter", "label=b=2").split()
        assert anded == [c1]
        assert not run(fa, "ps", "-a", "-q", "--filter", "ancestor=alias/bb")  # alias/bb:latest: no such image
        assert "invalid filter 'status=bogus'" in fails(fa, "ps", "--filter", "status=bogus")
    finally:
        run(fa, "rm", c1, c12)
        run(fa, "rmi", "alias/bb:v1")


def test_images_reference_filter_matches_references_not_images(fa):
    run(fa, "tag", fa["image"], "bbref:one")
    try:
        rows = run(fa, "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=bbref*").split()
        assert rows == ["bbref:one"]
    finally:
        run(fa, "rmi", "bbref:one")


# -- inspect -----------------------------------------------------------------------------------------


def with_mac(shown):
    return shown if shown["NetworkSettings"]["MacAddress"] else None


def test_inspect_network_settings_mac_size_and_memory(fa):
    cid = run(fa, "create", "--name", "netset", fa["image"], "true")
    sized = run(fa, "create", "--name", "sized", "-m", "1g", fa["image"], "true")
    try:
        # The NIC's address is vSphere's, read by the live cache from the VM's devices.
        shown = until(lambda: with_mac(inspect(fa, cid)), "the container's MAC address")
        bridge = shown["NetworkSettings"]["Networks"]["bridge"]
        nic = [d for d in container_vms(fa["sim"])[cid]["vm"].get("config.hardware.device")
               if hasattr(d, "macAddress")][0]
        assert bridge["MacAddress"] == nic.macAddress != ""
        settings = shown["NetworkSettings"]
        assert (settings["IPAddress"], settings["Gateway"], settings["MacAddress"], settings["IPPrefixLen"]) == \
            (bridge["IPAddress"], bridge["Gateway"], nic.macAddress, bridge["IPPrefixLen"])
        assert settings["IPAddress"].startswith("172.16.")
        assert shown["HostConfig"]["Memory"] == 0  # as created: dockerd shows 0, no limit
        assert inspect(fa, sized)["HostConfig"]["Memory"] == 1024 ** 3
        with_size = json.loads(run(fa, "inspect", "--size", cid))[0]
        vm = container_vms(fa["sim"])[cid]["vm"]
        with session_of(fa["sim"]) as session:
            unshared = pc.retrieve_objects(session, [vm.ref], ("summary.storage.unshared",))[0]
        assert with_size["SizeRw"] == (unshared.get("summary.storage.unshared") or 0)
        assert with_size["SizeRootFs"] == with_size["SizeRw"] + inspect(fa, fa["image"])["Size"] > 0
        assert "SizeRw" not in shown
    finally:
        run(fa, "rm", cid, sized)


# -- create --------------------------------------------------------------------------------------------


def test_empty_cmd_or_entrypoint_falls_back_to_the_image(fa):
    made = []
    try:
        for body in ({"Image": fa["image"], "Cmd": []}, {"Image": fa["image"], "Entrypoint": [], "Cmd": []},
                     {"Image": fa["image"], "Entrypoint": []}):
            status, answer = call(fa, "post", "/containers/create", body)
            assert status == 201, (body, answer)
            made.append(answer["Id"])
            assert inspect(fa, answer["Id"])["Config"]["Cmd"] == ["sh"]
    finally:
        for cid in made:
            run(fa, "rm", cid)


def test_runtime_and_detach_keys_are_accepted(fa):
    container = fa["sdk"].containers.create(fa["image"], "true", runtime="runc")
    try:
        assert container.attrs["HostConfig"]["Runtime"] == "runc"
        status, answer = call(fa, "post", "/containers/create", {"Image": fa["image"], "Runtime": "runc"})
        assert status == 201, answer
        run(fa, "rm", answer["Id"])
    finally:
        container.remove()


def test_log_config_is_json_file_and_another_driver_is_refused(fa):
    log_config = {"Type": "json-file", "Config": {"max-size": "10m"}}
    made = fa["sdk"].containers.create(fa["image"], "true", log_config=log_config)
    try:
        assert made.attrs["HostConfig"]["LogConfig"] == log_config
    finally:
        made.remove()
    assert "no log driver named 'syslog'" in fails(fa, "create", "--log-driver", "syslog", fa["image"], "true")
    assert "unknown log opt 'bogus'" in fails(fa, "create", "--log-opt", "bogus=1", fa["image"], "true")


def test_run_on_a_missing_network_fails_before_pulling(fa, registries):
    image = registries.get("anonymous").host + "/library/shared"
    err = fails(fa, "run", "--network", "nonexistent", image, "true")
    assert "network nonexistent not found" in err
    assert "Pulling" not in err + "" and not fa["sdk"].images.list(name=image)


def test_pull_platform_without_os_is_normalised(fa):
    run(fa, "pull", "--platform", "amd64", fa["image"])
    assert "not supported" in fails(fa, "pull", "--platform", "arm64", fa["image"])


def test_a_removal_while_a_maintenance_boot_comes_up_ends_it_at_once(fa):
    # No host emulator here: a diff of a stopped container boots its VM (test_cp_stopped.py has that working),
    # and no tether ever connects. A removal meanwhile must not wait for the boot's time-out (120 s).
    cid = run(fa, "create", fa["image"], "true")
    mark = fa["sim"].mark()
    command, env = docker_command(fa, "diff", cid)
    diff = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        until(lambda: "PowerOnVM_Task" in fa["sim"].soap_methods(mark), "the maintenance boot's power-on")
        removed = docker_cli(fa, "rm", cid, timeout=30)
        assert removed.returncode == 0, removed.stderr
        _out, err = diff.communicate(timeout=30)
        assert diff.returncode != 0 and "was started or removed before its files could be reached" in err, err
    finally:
        if diff.poll() is None:
            diff.kill()
            diff.communicate()
    assert fails(fa, "inspect", cid)


# -- networks ------------------------------------------------------------------------------------------


def test_network_ipam_options_and_names_with_spaces_are_kept(fa):
    ipam = {"Driver": "default", "Config": [{"Subnet": "10.50.0.0/16", "IPRange": "10.50.1.0/24",
                                             "Gateway": "10.50.0.1", "AuxiliaryAddresses": {"h1": "10.50.1.0"}}]}
    status, answer = call(fa, "post", "/networks/create", {"Name": "ipam net", "IPAM": ipam,
                                                           "Options": {"com.example.opt": "x"}})
    assert status == 201, answer
    try:
        shown = fa["api"].inspect_network("ipam net")
        assert shown["IPAM"]["Config"] == ipam["Config"]
        assert shown["Options"]["com.example.opt"] == "x"
        cid = run(fa, "create", "--network", "ipam net", fa["image"], "true")
        try:
            address = inspect(fa, cid)["NetworkSettings"]["Networks"]["ipam net"]["IPAddress"]
            assert address == "10.50.1.1"  # in the range; .0 is an auxiliary address
        finally:
            run(fa, "rm", cid)
    finally:
        run(fa, "network", "rm", "ipam net")


def test_endpoint_settings_are_kept(fa):
    run(fa, "network", "create", "eps")
    endpoint = {"Aliases": ["a1"], "Links": ["other:o"], "DriverOpts": {"k": "v"},
                "IPAMConfig": {"LinkLocalIPs": ["169.254.1.1"]}}
    try:
        status, answer = call(fa, "post", "/containers/create", {
            "Image": fa["image"], "Cmd": ["true"], "HostConfig": {"NetworkMode": "eps"},
            "NetworkingConfig": {"EndpointsConfig": {"eps": endpoint}}})
        assert status == 201, answer
        try:
            shown = inspect(fa, answer["Id"])["NetworkSettings"]["Networks"]["eps"]
            assert shown["Aliases"][0] == "a1" and shown["Links"] == ["other:o"]
            assert shown["DriverOpts"] == {"k": "v"} and shown["IPAMConfig"]["LinkLocalIPs"] == ["169.254.1.1"]
        finally:
            run(fa, "rm", answer["Id"])
    finally:
        run(fa, "network", "rm", "eps")


# -- volumes --------------------------------------------------------------------------------------------


def test_a_local_volume_stays_local_and_mount_options_are_honoured(fa):
    run(fa, "volume", "create", "-d", "local", "locvol")
    try:
        assert fa["sdk"].volumes.get("locvol").attrs["Driver"] == "local"
        listed = json.loads(run(fa, "volume", "ls", "--format", "{{json .}}", "--filter", "name=locvol"))
        assert listed["Driver"] == "local"
    finally:
        run(fa, "volume", "rm", "locvol")
    cid = run(fa, "create", "--mount", "type=volume,source=sized3,target=/data,volume-opt=Capacity=3GB",
              fa["image"], "true")
    try:
        assert fa["sdk"].volumes.get("sized3").attrs["Status"]["vsphere"]["Capacity"] == "3072MB"
    finally:
        run(fa, "rm", cid)
        run(fa, "volume", "rm", "sized3")


# -- prune and df -----------------------------------------------------------------------------------------


def test_prune_routes_and_system_df(fa):
    stopped = run(fa, "create", "--name", "prunable", "-v", "/anon", fa["image"], "true")
    run(fa, "network", "create", "prunenet")
    run(fa, "volume", "create", "keptnamed")
    anonymous = inspect(fa, stopped)["Mounts"][0]["Name"]
    try:
        df = fa["api"].df()
        row = [c for c in df["Containers"] if c["Id"] == stopped][0]
        image_size = fa["sdk"].images.get(fa["image"]).attrs["Size"]
        assert row["SizeRootFs"] == row["SizeRw"] + image_size and row["SizeRw"] >= 0
        assert [i["Containers"] for i in df["Images"] if i["Id"] == row["ImageID"]][0] >= 1 and df["Volumes"]
        assert "Images" in run(fa, "system", "df")
        pruned = fa["api"].prune_containers()
        assert stopped in pruned["ContainersDeleted"]
        assert stopped not in run(fa, "ps", "-a", "-q", "--no-trunc")
        volumes = fa["api"].prune_volumes()
        assert anonymous in volumes["VolumesDeleted"] and "keptnamed" not in volumes["VolumesDeleted"], volumes
        assert fa["sdk"].volumes.get("keptnamed")
        assert "prunenet" in fa["api"].prune_networks()["NetworksDeleted"]
        images = fa["api"].prune_images()
        assert not images["ImagesDeleted"] and images["SpaceReclaimed"] == 0  # nothing dangling
        assert fa["sdk"].images.get(fa["image"])
    finally:
        run(fa, "volume", "rm", "-f", "keptnamed")
        docker_cli(fa, "rm", "-f", stopped)
        docker_cli(fa, "network", "rm", "prunenet")


# -- update ----------------------------------------------------------------------------------------------


def vm_size(vch, cid):
    vm = container_vms(vch["sim"])[cid]["vm"]
    with session_of(vch["sim"]) as session:
        found = pc.retrieve_objects(session, [vm.ref], ("config.hardware.memoryMB", "config.hardware.numCPU"))[0]
    return found.get("config.hardware.numCPU"), found.get("config.hardware.memoryMB")


def test_update_resizes_a_stopped_container_vm_and_keeps_the_limits_asked(fa):
    cid = run(fa, "create", "--name", "upd", fa["image"], "true")
    try:
        assert vm_size(fa, cid) == (1, 2048)
        moid = container_vms(fa["sim"])[cid]["vm"].moid
        mark = fa["sim"].mark()
        run(fa, "update", "-m", "1g", "--cpus", "2", "--restart", "on-failure:3", cid)
        # Size and policy in one reconfigure of the VM (the rest: reads that wait for its task, the live feed).
        calls = fa["sim"].calls_since(mark)
        assert [c["method"] for c in calls if c.get("this") == "VirtualMachine:" + moid] == ["ReconfigVM_Task"], calls
        assert vm_size(fa, cid) == (2, 1024)
        host = inspect(fa, cid)["HostConfig"]
        assert (host["Memory"], host["NanoCpus"]) == (1024 ** 3, 2 * 10 ** 9)
        assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
        run(fa, "update", "--restart", "no", cid)  # 0 is "unchanged" for the sizes, as dockerd reads it
        assert vm_size(fa, cid) == (2, 1024) and inspect(fa, cid)["HostConfig"]["Memory"] == 1024 ** 3
        assert "Minimum memory limit" in fails(fa, "update", "-m", "100m", cid)
        run(fa, "start", cid)
        assert "stop it, update it" in fails(fa, "update", "-m", "3g", cid)
        assert vm_size(fa, cid) == (2, 1024)
    finally:
        run(fa, "rm", "-f", cid)


def test_inspect_has_dockerds_whole_host_config_and_config_shape(fa):
    status, made = call(fa, "post", "/containers/create", {"Image": fa["image"], "Cmd": ["true"]})
    assert status == 201, made
    try:
        shown = fa["api"].inspect_container(made["Id"])
        response_validator("/containers/{id}/json").validate(shown)
        definitions = _spec()["definitions"]
        wanted = set(definitions["Resources"]["properties"])
        for part in definitions["HostConfig"]["allOf"]:
            wanted |= set(part.get("properties") or ())
        # Left out by dockerd's JSON when empty (omitempty); and MemorySwappiness, null in dockerd's answer
        # but an integer in the API description.
        assert wanted - set(shown["HostConfig"]) <= {"Annotations", "KernelMemoryTCP", "Init", "Mounts", "Sysctls",
                                                     "StorageOpt", "Tmpfs", "MemorySwappiness"}
        host = shown["HostConfig"]
        assert (host["LogConfig"], host["RestartPolicy"], host["Memory"], host["Binds"], host["Dns"]) == (
            {"Type": "json-file", "Config": {}}, {"Name": "no", "MaximumRetryCount": 0}, 0, [], [])
        assert shown["Config"]["Hostname"] == made["Id"][:12]
    finally:
        run(fa, "rm", made["Id"])
