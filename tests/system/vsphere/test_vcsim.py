"""Tests for the vCenter simulator harness (tools/vcsim) itself."""

import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl
from ansible_collections.vic.containers.tools.harness.vcsim import Simulator
from ansible_collections.vic.containers.tools.harness.waiting import until

REPO_ROOT = Path(__file__).resolve().parents[3]
PC = vmodl.query.PropertyCollector


@contextlib.contextmanager
def session(sim, **overrides):
    si = SmartConnect(**dict(sim.connect_kwargs(), **overrides))
    try:
        yield si
    finally:
        Disconnect(si)


def retrieve(si, vimtype, props=("name",)):
    """{moid: {prop: value}} for every object of vimtype, in one collector pass."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vimtype], True)
    try:
        spec = PC.FilterSpec(
            objectSet=[
                PC.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[
                        PC.TraversalSpec(
                            name="view",
                            path="view",
                            skip=False,
                            type=vim.view.ContainerView,
                        )
                    ],
                )
            ],
            propSet=[PC.PropertySpec(type=vimtype, pathSet=list(props))],
        )
        pc = content.propertyCollector
        result = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions())
        out = {}
        while result:
            for obj in result.objects:
                out[obj.obj._moId] = {p.name: p.val for p in obj.propSet}
            result = (
                pc.ContinueRetrievePropertiesEx(result.token) if result.token else None
            )
        return out
    finally:
        view.Destroy()


def names(si, vimtype):
    return sorted(p["name"] for p in retrieve(si, vimtype).values())


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- startup and login ---------------------------------------------------


def test_vpx_answers_login(vcsim):
    assert vcsim.url == f"https://127.0.0.1:{vcsim.port}/sdk"
    assert vcsim.host == "127.0.0.1"
    assert len(vcsim.thumbprint.split(":")) == 20
    with session(vcsim) as si:
        about = si.RetrieveContent().about
        assert about.apiType == "VirtualCenter"
        assert names(si, vim.Datacenter) == ["DC0"]
        assert names(si, vim.ClusterComputeResource) == ["DC0_C0"]
        assert len(names(si, vim.HostSystem)) == 4  # 3 in the cluster + 1 standalone
        assert "DC0_DVPG0" in names(si, vim.dvs.DistributedVirtualPortgroup)


def test_wrong_password_is_refused(vcsim):
    with pytest.raises(vim.fault.InvalidLogin):
        SmartConnect(**dict(vcsim.connect_kwargs(), pwd="not-" + vcsim.password))


def test_esx_answers_login(vcsim_esx):
    with session(vcsim_esx) as si:
        assert si.RetrieveContent().about.apiType == "HostAgent"
        assert names(si, vim.Datacenter) == ["ha-datacenter"]
        assert names(si, vim.ComputeResource) == ["localhost.localdomain"]


def test_custom_credentials_and_topology(vcsim_binary):
    with Simulator(vcsim_binary).start(
        username="admin@vsphere.local",
        password="s3cr3t!",
        datacenters=2,
        clusters=2,
        cluster_hosts=1,
        standalone_hosts=0,
        vms=1,
        pools=1,
        extra_datastores=(),
    ) as sim:
        with session(sim) as si:
            assert names(si, vim.Datacenter) == ["DC0", "DC1"]
            assert len(names(si, vim.ClusterComputeResource)) == 4
            assert len(names(si, vim.HostSystem)) == 4
            # vcsim 0.24 fills only each cluster's root pool (and each standalone
            # host) with -vms machines; the -pools child pools stay empty.
            assert len(names(si, vim.VirtualMachine)) == 4
            assert [n for n in names(si, vim.ResourcePool) if n != "Resources"] == [
                "DC0_C0_RP1",
                "DC0_C1_RP1",
                "DC1_C0_RP1",
                "DC1_C1_RP1",
            ]
        with pytest.raises(vim.fault.InvalidLogin):
            SmartConnect(**dict(sim.connect_kwargs(), user="user", pwd="pass"))


def test_plain_http(vcsim_binary):
    with Simulator(vcsim_binary).start(tls=False, extra_datastores=()) as sim:
        assert sim.url == f"http://127.0.0.1:{sim.port}/sdk"
        assert sim.thumbprint == "" and sim.info["cert_pem"] == ""
        assert sim.counters() == {"soap": 0, "http": 0}
        assert set(sim.datastores) == {"LocalDS_0"}
        assert Path(sim.datastores["LocalDS_0"]).parent == Path(sim.tmpdir)


def test_non_loopback_listen_is_refused(vcsim_binary):
    proc = subprocess.run(
        [str(vcsim_binary), "-listen", "0.0.0.0:0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "loopback" in proc.stderr
    assert proc.stdout == ""


# -- call log ------------------------------------------------------------


def test_call_log_counts_exact_soap_calls(vcsim, soap_counter):
    counter = soap_counter(vcsim)
    before = vcsim.counters()
    mark = vcsim.mark()

    si = SmartConnect(**vcsim.connect_kwargs())
    content = si.RetrieveContent()
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=content.rootFolder)],
        propSet=[PC.PropertySpec(type=vim.Folder, pathSet=["name"])],
    )
    result = content.propertyCollector.RetrievePropertiesEx(
        [spec], PC.RetrieveOptions()
    )
    assert result.objects[0].propSet[0].val == "Datacenters"

    assert counter.methods == [
        "RetrieveServiceContent",
        "Login",
        "RetrieveServiceContent",
        "RetrievePropertiesEx",
    ]
    assert [c["this"] for c in counter.calls] == [
        "ServiceInstance:ServiceInstance",
        "SessionManager:SessionManager",
        "ServiceInstance:ServiceInstance",
        "PropertyCollector:propertyCollector",
    ]
    assert all(isinstance(c["time"], float) for c in counter.calls)
    # SmartConnect's version probe is plain HTTP, logged but not a SOAP call.
    assert [e for e in vcsim.calls_since(mark) if "http" in e] == [
        {
            "time": pytest.approx(time.time(), abs=60),
            "http": "GET",
            "path": "/sdk/vimServiceVersions.xml",
        }
    ]
    after = vcsim.counters()
    assert after["soap"] - before["soap"] == 4
    assert after["http"] - before["http"] == 1
    assert vcsim.soap_calls(mark) == 4

    counter.reset()
    Disconnect(si)
    assert counter.methods == ["RetrieveServiceContent", "Logout"]
    assert counter.count == len(counter) == 2


def test_datastore_transfers_are_logged_as_http(vcsim):
    mark = vcsim.mark()
    url = vcsim.url.replace("/sdk", "/folder/hello.txt?dcPath=DC0&dsName=nfs0")
    req = urllib.request.Request(url, data=b"hi\n", method="PUT")
    ctx = ssl._create_unverified_context()
    with urllib.request.urlopen(req, context=ctx) as resp:
        assert resp.status == 200
    assert (Path(vcsim.datastores["nfs0"]) / "hello.txt").read_bytes() == b"hi\n"
    entries = vcsim.calls_since(mark)
    assert [(e.get("http"), e.get("path")) for e in entries] == [
        ("PUT", "/folder/hello.txt")
    ]
    assert vcsim.soap_calls(mark) == 0


# -- extra inventory -----------------------------------------------------


@pytest.mark.parametrize("fixture", ["vcsim", "vcsim_esx"])
def test_extra_datastore_nfs0(request, fixture):
    sim = request.getfixturevalue(fixture)
    assert set(sim.datastores) == {"LocalDS_0", "nfs0"}
    for path in sim.datastores.values():
        assert Path(path).is_dir()
    with session(sim) as si:
        assert names(si, vim.Datastore) == ["LocalDS_0", "nfs0"]
        datastores = retrieve(si, vim.Datastore, ("name", "summary.url"))
        for ds in datastores.values():
            assert ds["summary.url"] == sim.datastores[ds["name"]]
        hosts = retrieve(si, vim.HostSystem, ("datastore",))
        nfs0 = [moid for moid, ds in datastores.items() if ds["name"] == "nfs0"]
        for host in hosts.values():
            assert nfs0[0] in [d._moId for d in host["datastore"]]


def test_extra_vms(vcsim_binary):
    with Simulator(vcsim_binary).start(extra_vms=200) as sim:
        with session(sim) as si:
            vms = retrieve(
                si, vim.VirtualMachine, ("name", "resourcePool", "runtime.powerState")
            )
            pools = retrieve(si, vim.ResourcePool, ("name", "parent"))
        bench = {
            v["name"]: v for v in vms.values() if v["name"].startswith("bench-vm-")
        }
        assert len(vms) == 4 + 200  # 2 per pool (cluster root pool, standalone host)
        assert sorted(bench) == [f"bench-vm-{i:04d}" for i in range(200)]
        assert {v["runtime.powerState"] for v in bench.values()} == {"poweredOff"}
        pool_ids = {v["resourcePool"]._moId for v in bench.values()}
        assert len(pool_ids) == 1
        pool = pools[pool_ids.pop()]
        assert pool["name"] == "Resources"
        assert isinstance(pool["parent"], vim.ClusterComputeResource)


def test_extra_vms_esx(vcsim_binary):
    with (
        Simulator(vcsim_binary).start(mode="esx", extra_vms=20) as sim,
        session(sim) as si,
    ):
        assert (
            len([n for n in names(si, vim.VirtualMachine) if n.startswith("bench-vm-")])
            == 20
        )


def test_startup_time_with_2000_extra_vms(vcsim_binary):
    started = time.monotonic()
    with Simulator(vcsim_binary).start(extra_vms=2000) as sim:
        elapsed = time.monotonic() - started
        print(f"\nvcsim startup with 2000 extra VMs: {elapsed:.2f}s")
        assert elapsed < 60
        with session(sim) as si:
            assert len(names(si, vim.VirtualMachine)) == 2004


# -- fault injection -----------------------------------------------------


def _root_name(si):
    content = si.RetrieveContent()
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=content.rootFolder)],
        propSet=[PC.PropertySpec(type=vim.Folder, pathSet=["name"])],
    )
    return (
        content.propertyCollector.RetrievePropertiesEx([spec], PC.RetrieveOptions())
        .objects[0]
        .propSet[0]
        .val
    )


def test_injected_fault_raises_once(vcsim, soap_counter):
    with session(vcsim) as si:
        armed = vcsim.inject_fault("RetrievePropertiesEx")
        assert armed == {"method": "RetrievePropertiesEx", "count": 1, "skip": 0}
        counter = soap_counter()  # defaults to the vcsim fixture
        with pytest.raises(vmodl.MethodFault) as err:
            _root_name(si)
        assert isinstance(err.value, vmodl.fault.SystemError)
        assert err.value.msg == "vcsim: injected fault in RetrievePropertiesEx"
        assert _root_name(si) == "Datacenters"
        faulted = [c for c in counter.calls if c.get("fault")]
        assert [c["method"] for c in faulted] == ["RetrievePropertiesEx"]
        assert counter.methods.count("RetrievePropertiesEx") == 2


def test_injected_fault_skip_and_count(vcsim):
    with session(vcsim) as si:
        vcsim.inject_fault("RetrievePropertiesEx", count=2, skip=1)
        assert _root_name(si) == "Datacenters"
        for attempt in range(2):
            with pytest.raises(vmodl.fault.SystemError):
                _root_name(si)
        assert _root_name(si) == "Datacenters"


def test_injected_fault_on_create_vm(vcsim):
    with session(vcsim) as si:
        content = si.RetrieveContent()
        dc = content.rootFolder.childEntity[0]
        pool = content.searchIndex.FindByInventoryPath("DC0/host/DC0_C0/Resources")
        spec = vim.vm.ConfigSpec(
            name="faulty",
            guestId="otherGuest",
            files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"),
        )
        vcsim.inject_fault("CreateVM_Task")
        with pytest.raises(
            vmodl.fault.SystemError, match="injected fault in CreateVM_Task"
        ):
            dc.vmFolder.CreateVM_Task(config=spec, pool=pool)
        task = dc.vmFolder.CreateVM_Task(config=spec, pool=pool)
        assert task.info.state == "success"  # the simulator runs tasks synchronously
        task.info.result.Destroy_Task()


def test_clear_faults(vcsim):
    with session(vcsim) as si:
        vcsim.inject_fault("RetrievePropertiesEx", count=5)
        vcsim.clear_faults()
        assert _root_name(si) == "Datacenters"


# -- methods vcsim 0.24 lacks --------------------------------------------


def _read(si, obj, paths):
    """Fresh PropertyCollector read of paths on obj: {path: value}."""
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=obj)],
        propSet=[PC.PropertySpec(type=type(obj), pathSet=list(paths))],
    )
    pc = si.RetrieveContent().propertyCollector
    result = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions())
    return {p.name: p.val for p in result.objects[0].propSet}


def _allocation():
    # CreateVApp, like CreateResourcePool, wants every field set.
    return vim.ResourceAllocationInfo(
        reservation=0,
        expandableReservation=True,
        limit=-1,
        shares=vim.SharesInfo(level="normal", shares=0),
    )


def test_update_config_on_vapp(vcsim, soap_counter):
    with session(vcsim) as si:
        content = si.RetrieveContent()
        dc = content.rootFolder.childEntity[0]
        pool = content.searchIndex.FindByInventoryPath("DC0/host/DC0_C0/Resources")
        vapp = pool.CreateVApp(
            "harness-vapp",
            vim.ResourceConfigSpec(
                cpuAllocation=_allocation(), memoryAllocation=_allocation()
            ),
            vim.vApp.VAppConfigSpec(),
            dc.vmFolder,
        )
        try:
            counter = soap_counter()
            vapp.UpdateConfig(
                name=None,
                config=vim.ResourceConfigSpec(
                    cpuAllocation=vim.ResourceAllocationInfo(limit=4000),
                    memoryAllocation=vim.ResourceAllocationInfo(
                        limit=8192, shares=vim.SharesInfo(level="high", shares=0)
                    ),
                ),
            )
            assert [(c["method"], c["this"]) for c in counter.calls] == [
                ("UpdateConfig", f"VirtualApp:{vapp._moId}")
            ]
            assert not counter.calls[0].get("fault")

            got = _read(
                si, vapp, ["name", "config.cpuAllocation", "config.memoryAllocation"]
            )
            cpu, mem = got["config.cpuAllocation"], got["config.memoryAllocation"]
            assert got["name"] == "harness-vapp"
            assert cpu.limit == 4000
            assert (cpu.reservation, cpu.shares.level) == (0, "normal")  # untouched
            assert mem.limit == 8192
            assert mem.shares.level == "high"
            assert vapp.config.cpuAllocation.limit == 4000

            # The checks of ResourcePool.UpdateConfig apply, with its faults.
            with pytest.raises(vmodl.fault.InvalidArgument) as err:
                vapp.UpdateConfig(
                    config=vim.ResourceConfigSpec(
                        cpuAllocation=vim.ResourceAllocationInfo(reservation=-5),
                        memoryAllocation=vim.ResourceAllocationInfo(),
                    )
                )
            assert err.value.invalidProperty == "spec.cpuAllocation"
            cpu = _read(si, vapp, ["config.cpuAllocation"])["config.cpuAllocation"]
            assert (cpu.reservation, cpu.limit) == (0, 4000)

            vapp.UpdateConfig(name="harness-vapp-renamed")
            assert _read(si, vapp, ["name"]) == {"name": "harness-vapp-renamed"}

            # Without a live session the simulator itself refuses the call.
            other = SmartConnect(**vcsim.connect_kwargs())
            stale = vim.VirtualApp(vapp._moId, other._stub)
            Disconnect(other)
            with pytest.raises(vim.fault.NotAuthenticated):
                stale.UpdateConfig(name="harness-vapp-stale")
            assert _read(si, vapp, ["name"]) == {"name": "harness-vapp-renamed"}
        finally:
            vapp.Destroy_Task()


# -- shutdown ------------------------------------------------------------


def test_stop_leaves_nothing_behind(vcsim_binary):
    sim = Simulator(vcsim_binary).start(mode="esx", extra_datastores=("nfs0", "nfs1"))
    pid, dirs, workdir = sim.pid, list(sim.datastores.values()), sim.workdir
    assert len(dirs) == 3 and all(Path(d).is_dir() for d in dirs)
    assert alive(pid)
    sim.stop()
    assert not alive(pid)
    assert [d for d in dirs if Path(d).exists()] == []
    assert not Path(workdir).exists()
    sim.stop()  # idempotent


def test_cli_start_stop(vcsim_binary, tmp_path):
    state = tmp_path / "vcsim.json"
    script = REPO_ROOT / "tools" / "harness" / "vcsim.py"
    out = subprocess.run(
        [
            sys.executable,
            str(script),
            "start",
            "--state",
            str(state),
            "--mode",
            "esx",
            "--extra-vms",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    info = json.loads(state.read_text())
    assert json.loads(out.stdout)["pid"] == info["pid"]
    assert info["mode"] == "esx" and "nfs0" in info["datastores"]
    try:
        si = SmartConnect(
            host=info["host"],
            port=info["port"],
            user=info["username"],
            pwd=info["password"],
            disableSslCertValidation=True,
        )
        Disconnect(si)
        assert alive(info["pid"])
    finally:
        subprocess.run(
            [sys.executable, str(script), "stop", "--state", str(state)],
            timeout=60,
            check=True,
        )
    # Reaped by init, not by us: nothing to wait on but the pid's end.
    until(lambda: not alive(info["pid"]), "the stopped simulator's pid %d to be reaped" % info["pid"])
    assert not state.exists()
    assert not any(Path(d).exists() for d in info["datastores"].values())
