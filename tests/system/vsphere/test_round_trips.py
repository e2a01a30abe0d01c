"""vSphere round trips of the modules, counted by the simulator's call log.

An unchanged re-run and info read the inventory once, whatever its size; absent
lists the folders the VCH made above its stores once, and removes them. The
benchmark (benchmarks/bench_vch.py) prints the same figures with wall times.
"""

from pathlib import Path

import pytest

from ansible_collections.vic.containers.tools.harness.playbook import run
from ansible_collections.vic.containers.tools.harness import vcsim as vcsim_lib

VCH = "vic.containers.vic_vch"
ONE_READ = ["RetrieveServiceContent", "Login", "RetrievePropertiesEx", "Logout"]


@pytest.fixture(scope="module")
def big_vcsim(vcsim_binary):
    sim = vcsim_lib.Simulator(vcsim_binary).start(extra_vms=500)
    try:
        yield sim
    finally:
        sim.stop()


def counted(sim, module, args):
    mark = sim.mark()
    result = run(sim, module, args)
    assert not result.get("failed"), result.get("msg")
    return result, sim.soap_methods(mark)


@pytest.mark.parametrize("size", ["small", "big"])
def test_round_trips_do_not_grow_with_the_inventory(request, tmp_path, size):
    sim = request.getfixturevalue("vcsim" if size == "small" else "big_vcsim")
    args = {"name": "rt-" + size, "compute": "DC0_C0", "image_store": "LocalDS_0",
            "volume_stores": {"default": "nfs0/rt-" + size}, "tls": {"cert_path": str(tmp_path / "certs")}}

    created, calls = counted(sim, VCH, args)
    assert created["changed"]
    assert len(calls) <= 40, calls
    assert calls.count("RetrievePropertiesEx") <= 6, calls

    again, calls = counted(sim, VCH, args)
    assert again["changed"] is False
    assert calls == ONE_READ

    reconfigured, calls = counted(sim, VCH, dict(args, memory={"limit_mb": 4096}))
    assert reconfigured["changed"]
    # The inventory, the record update's task state, and the result after the change.
    assert calls == ["RetrieveServiceContent", "Login", "RetrievePropertiesEx", "UpdateConfig", "ReconfigVM_Task",
                     "RetrievePropertiesEx", "RetrievePropertiesEx", "Logout"]

    info, calls = counted(sim, "vic.containers.vic_vch_info", {"name": args["name"]})
    assert [v["name"] for v in info["vchs"]] == [args["name"]]
    assert calls == ONE_READ

    gone, calls = counted(sim, VCH, dict(args, state="absent", delete_volume_stores=True))
    assert gone["changed"]
    # One listing of the folder it made above its volume store (a search task) on top of the deletes.
    assert len(calls) <= 30, calls
    assert calls.count("SearchDatastoreSubFolders_Task") == 1, calls
    # That folder goes with it: nothing it made is left on the datastores (issue 12).
    assert not (Path(sim.datastores["nfs0"]) / args["volume_stores"]["default"].split("/", 1)[1]).exists()
    assert not (Path(sim.datastores["LocalDS_0"]) / args["name"]).exists()
