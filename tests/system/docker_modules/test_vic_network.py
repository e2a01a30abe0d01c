# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""vic_network / vic_network_info through ansible-playbook against a VCH endpoint on vcsim, each result
checked with the real docker CLI: create (check mode first), idempotence, connected / appends, a
recreate refused while containers are on the network and done with force (they come back), absent."""

import json

from ansible_collections.vic.containers.tools.harness.endpoint import docker_cli

from docker_play import run_tasks

SUBNET = {"subnet": "172.31.40.0/24", "iprange": "172.31.40.128/25"}


def inspect(vch, name):
    done = docker_cli(vch, "network", "inspect", name)
    return json.loads(done.stdout)[0] if done.returncode == 0 else None


def on_network(vch, name):
    return sorted(entry["Name"] for entry in (inspect(vch, name)["Containers"] or {}).values())


def created(vch, *names):
    image = vch["registry"] + "/library/busybox"
    assert docker_cli(vch, "pull", image).returncode == 0
    for name in names:
        done = docker_cli(vch, "create", "--name", name, image, "sleep", "1000")
        assert done.returncode == 0, done.stderr


def test_network_life_cycle_with_its_containers(vch):
    conn = vch["connection"]
    created(vch, "net-a", "net-b", "net-c")
    args = {"name": "dm-net", "ipam_config": [SUBNET], "labels": {"tier": "web"}}
    checked, _out = run_tasks([("vic.containers.vic_network", dict(args, connected=["net-a"]))], conn,
                              check=True, diff=True)
    assert checked[0]["changed"] and checked[0]["changes"] == ["create network dm-net",
                                                               "connect container net-a to network dm-net"]
    assert checked[0]["network"] is None and inspect(vch, "dm-net") is None   # check mode made nothing
    results, _out = run_tasks([
        ("vic.containers.vic_network", dict(args, connected=["net-a"])),
        ("vic.containers.vic_network", dict(args, connected=["net-a"])),
        ("vic.containers.vic_network", args),                                    # no list: left as they are
        ("vic.containers.vic_network", dict(args, connected=["net-b"], appends=True)),
        ("vic.containers.vic_network", dict(args, connected=["net-b", "net-c"])),
        ("vic.containers.vic_network_info", {"name": "dm-net"}),
        ("vic.containers.vic_network_info", {"name": "dm-none"}),
    ], conn, diff=True)
    made, again, unlisted, appended, canonical, info, missing = results
    assert made["changes"] == checked[0]["changes"] and made["diff"] == checked[0]["diff"]
    shown = inspect(vch, "dm-net")
    assert shown["IPAM"]["Config"][0]["Subnet"] == SUBNET["subnet"]
    assert shown["IPAM"]["Config"][0]["IPRange"] == SUBNET["iprange"]
    assert shown["Labels"] == {"tier": "web"} and made["network"]["Id"] == shown["Id"]
    assert not again["changed"] and not unlisted["changed"], (again, unlisted)
    assert appended["changes"] == ["connect container net-b to network dm-net"]
    assert canonical["changes"] == ["disconnect container net-a from network dm-net",
                                    "connect container net-c to network dm-net"]
    assert canonical["diff"]["before"]["connected"] == ["net-a", "net-b"]
    assert canonical["diff"]["after"]["connected"] == ["net-b", "net-c"]
    assert on_network(vch, "dm-net") == ["net-b", "net-c"]
    assert info["exists"] and info["network"]["Id"] == shown["Id"] and not info["changed"]
    assert missing == dict(missing, exists=False, network=None, changed=False)

    # Options differ: the network would be recreated, but two containers are on it.
    relabelled = dict(args, labels={"tier": "api"})
    refused, _out = run_tasks([("vic.containers.vic_network", relabelled)], conn)
    assert refused[0]["failed"]
    assert refused[0]["msg"] == ("Network dm-net on Docker host %s has 2 containers on it (net-b, net-c): set force: "
                                 "true to disconnect them and recreate it (labels differs)." % vch["host"])
    assert inspect(vch, "dm-net")["Id"] == shown["Id"] and on_network(vch, "dm-net") == ["net-b", "net-c"]
    predicted, _out = run_tasks([("vic.containers.vic_network", dict(relabelled, force=True))], conn, check=True)
    recreated, _out = run_tasks([("vic.containers.vic_network", dict(relabelled, force=True))], conn)
    assert recreated[0]["changes"] == predicted[0]["changes"] == [
        "disconnect container net-b from network dm-net", "disconnect container net-c from network dm-net",
        "recreate network dm-net (labels differs)",
        "connect container net-b to network dm-net", "connect container net-c to network dm-net"]
    renewed = inspect(vch, "dm-net")
    assert renewed["Labels"] == {"tier": "api"} and renewed["Created"] >= shown["Created"]
    assert on_network(vch, "dm-net") == ["net-b", "net-c"]      # nothing lost: its containers are back

    refused, _out = run_tasks([("vic.containers.vic_network", {"name": "dm-net", "state": "absent"})], conn)
    assert refused[0]["failed"] and "set force: true to disconnect them and remove it" in refused[0]["msg"]
    results, _out = run_tasks([
        ("vic.containers.vic_network", {"name": "dm-net", "state": "absent", "force": True}),
        ("vic.containers.vic_network", {"name": "dm-net", "state": "absent", "force": True}),
    ], conn)
    assert results[0]["changes"] == ["disconnect container net-b from network dm-net",
                                     "disconnect container net-c from network dm-net", "remove network dm-net"]
    assert not results[1]["changed"] and inspect(vch, "dm-net") is None
    # The containers are still there, on no network of the task's.
    assert docker_cli(vch, "inspect", "net-b").returncode == 0
    assert docker_cli(vch, "rm", "net-a", "net-b", "net-c").returncode == 0


def test_bad_network_input_is_one_sentence_naming_it_and_makes_nothing(vch):
    conn = vch["connection"]
    results, _out = run_tasks([
        ("vic.containers.vic_network", {"name": "dm-bad", "driver": "overlay"}),
        ("vic.containers.vic_network", {"name": "dm-bad", "enable_ipv6": True}),
        ("vic.containers.vic_network", {"name": "dm-bad", "ipam_config": [{"gateway": "10.9.0.1"}]}),
        ("vic.containers.vic_network", {"name": "dm-bad", "ipam_config": [{"subnet": "10.9.0.0/24",
                                                                          "gateway": "10.8.0.1"}]}),
        ("vic.containers.vic_network", {"name": "dm-bad", "connected": ["no-such-container"]}),
    ], conn)
    overlay, ipv6, no_subnet, outside, missing = results
    assert all(result["failed"] for result in results), results
    assert "network driver 'overlay' is not supported" in overlay["msg"] and vch["host"] in overlay["msg"]
    assert ipv6["msg"] == "enable_ipv6: a VCH's networks are IPv4 only (vSphere Integrated Containers has no IPv6)"
    assert no_subnet["msg"] == "ipam_config: entry 1 gives gateway without a subnet"
    assert "gateway 10.8.0.1 is not in subnet 10.9.0.0/24" in outside["msg"]
    # The network was made before the container was found missing: the error names the container.
    assert "connecting container no-such-container to network dm-bad" in missing["msg"], missing["msg"]
    assert docker_cli(vch, "network", "rm", "dm-bad").returncode == 0


def test_no_change_network_task_costs_one_request(vch, proxy):
    conn = dict(vch["connection"], docker_host="tcp://127.0.0.1:%d" % proxy.port)
    assert docker_cli(vch, "network", "create", "--subnet", "172.31.41.0/24", "dm-count-net").returncode == 0
    try:
        proxy.reset()
        results, _out = run_tasks([("vic.containers.vic_network", {
            "name": "dm-count-net", "ipam_config": [{"subnet": "172.31.41.0/24"}], "connected": []})], conn)
        assert results[0]["changed"] is False, results
        assert proxy.requests == [("GET", "/networks/dm-count-net")]
    finally:
        assert docker_cli(vch, "network", "rm", "dm-count-net").returncode == 0
