# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The boot spec the endpoint writes for a container's tether (services/portlayer/containers/boot.py)."""

import pytest
from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput
from ansible_collections.vic.containers.services.portlayer.containers import boot, vm
from ansible_collections.vic.containers.services.tether import protocol

ENDPOINT_KEY = protocol.public_key_text(protocol.import_host_key(protocol.new_host_key()[0]))
ENV_KEY = bytes(range(32))


def record(layers=2, mounts=(), networks=None, **config):
    return {"id": "c" * 64, "image": {"layers": ["l%d" % i for i in range(layers)]},
            "config": dict({"Entrypoint": ["/init"], "Cmd": ["run", "x"], "Env": ["A=b"]}, **config),
            "host_config": {"ExtraHosts": ["db:10.0.0.5", "v6:fe80::1"], "DnsSearch": ["example.com"]},
            "mounts": [{"destination": d, "rw": rw} for d, rw in mounts],
            "networks": networks or {"bridge": {"ip": "172.16.0.2", "prefix": 16, "gateway": "172.16.0.1",
                                                "dns": ["10.0.0.53"]}}}


def test_units_skip_the_controllers_own_and_are_the_devices_order():
    assert vm.disk_units(2, 1) == ([0, 1], 2, [3])
    assert vm.disk_units(6, 2) == ([0, 1, 2, 3, 4, 5], 6, [8, 9])


def test_spec_of_a_record():
    spec = boot.spec(record(6, [("/data", True), ("/ro", False)], AttachStdout=True, Tty=True),
                     protocol.new_host_key()[0], ENDPOINT_KEY, ENV_KEY)
    assert (spec["layers"], spec["rw"]) == ([0, 1, 2, 3, 4, 5], 6)
    assert spec["mounts"] == [{"unit": 8, "destination": "/data", "rw": True},
                              {"unit": 9, "destination": "/ro", "rw": False}]
    process = spec["process"]
    # The env only sealed, with the key the endpoint hands the tether over the channel.
    assert process["Cmd"] == ["/init", "run", "x"] and process["Env"] == [] and "A=b" not in repr(spec)
    assert protocol.unseal(process["EnvSealed"], ENV_KEY, ("c" * 64).encode()) == b'["A=b"]'
    assert process["RunBlock"] and process["Tty"] and not process["OpenStdin"]
    assert spec["hostname"] == "c" * 12 and spec["domainname"] == ""
    assert spec["nics"] == [{"mac": "", "addresses": ["172.16.0.2/16"], "gateway": "172.16.0.1"}]
    # The default bridge has no embedded DNS server (as dockerd's): the servers go in resolv.conf as they are.
    assert spec["dns"] == {"servers": ["10.0.0.53"], "search": ["example.com"], "options": [], "embedded": False}
    assert spec["hosts"] == ["10.0.0.5\tdb", "fe80::1\tv6"]
    assert protocol.parse_boot_spec(protocol.encode(spec).decode()) == spec


def test_hostname_and_dns_given_win():
    given = record(Hostname="web", Domainname="example.org")
    given["host_config"]["Dns"] = ["1.1.1.1"]
    spec = boot.spec(given, protocol.new_host_key()[0], ENDPOINT_KEY, ENV_KEY)
    assert (spec["hostname"], spec["domainname"]) == ("web", "example.org")
    assert spec["dns"]["servers"] == ["1.1.1.1"] and spec["process"]["RunBlock"] is False


def test_a_container_on_a_user_defined_network_has_its_tether_as_dns_server_and_its_servers_as_upstream():
    given = record(networks={"bridge": {"ip": "172.16.0.2", "prefix": 16},
                             "app": {"ip": "10.1.0.2", "prefix": 24, "dns": ["10.1.0.53"]}})
    spec = boot.spec(given, protocol.new_host_key()[0], ENDPOINT_KEY, ENV_KEY)
    assert spec["dns"] == {"servers": ["10.1.0.53"], "search": ["example.com"], "options": [], "embedded": True}
    # A spec an earlier endpoint wrote (no "embedded") boots as before; a value not true or false is refused.
    older = dict(spec, dns={"servers": [], "search": [], "options": []})
    assert protocol.parse_boot_spec(protocol.encode(older).decode())["dns"]["embedded"] is False
    with pytest.raises(protocol.ProtocolError, match="dns embedded must be true or false"):
        protocol.parse_boot_spec(dict(spec, dns={"servers": [], "embedded": "yes"}))


def test_nothing_to_run_and_bad_hosts_are_refused():
    with pytest.raises(InvalidInput, match="^no command specified$"):
        boot.check_command({"Entrypoint": [], "Cmd": None})
    bad = record()
    bad["host_config"]["ExtraHosts"] = ["nocolon"]
    with pytest.raises(InvalidInput, match="add-host"):
        boot.spec(bad, protocol.new_host_key()[0], ENDPOINT_KEY, ENV_KEY)
