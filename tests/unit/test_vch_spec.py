"""The option model: validation messages name the option, normalization is stable."""

import pytest

from ansible_collections.vic.containers.plugins.module_utils._errors import SpecError
from ansible_collections.vic.containers.plugins.module_utils.vch.spec import (
    ARGUMENT_SPEC, desired, parse_store, tls_options)


def params(**kw):
    p = {k: v.get("default") for k, v in ARGUMENT_SPEC.items()}
    p.update(name="vch1")
    p.update(kw)
    return p


@pytest.mark.parametrize("value, expected", [
    ("LocalDS_0/a/b", ("LocalDS_0", "a/b")),
    ("[LocalDS_0] a/b", ("LocalDS_0", "a/b")),
    ("ds://LocalDS_0/a", ("LocalDS_0", "a")),
    ("LocalDS_0", ("LocalDS_0", "")),
])
def test_datastore_paths_in_every_vic_machine_form(value, expected):
    assert parse_store(value, "image_store") == expected


def test_image_store_path_defaults_to_the_vch_name():
    assert desired(params(image_store="LocalDS_0"))["image_store"] == "LocalDS_0/vch1"


def test_left_out_options_are_none_so_an_existing_vch_keeps_them():
    spec = desired(params())
    assert spec["cpu"] is None and spec["dns_servers"] is None and spec["volume_stores"] is None


@pytest.mark.parametrize("kw, option", [
    ({"name": "has space"}, "name"),
    ({"image_store": "/path-only"}, "image_store"),
    ({"image_store": "ds/../escape"}, "image_store"),
    ({"volume_stores": {"-bad": "ds/x"}}, "volume_stores"),
    ({"volume_stores": {"ok": 5}}, "volume_stores"),
    ({"cpu": {"limit_mhz": -2}}, "cpu.limit_mhz"),
    ({"memory": {"reservation_mb": -1}}, "memory.reservation_mb"),
    ({"memory": {"shares": "0"}}, "memory.shares"),
    ({"endpoint": {"cpus": 0}}, "endpoint.cpus"),
    ({"endpoint": {"memory_mb": 256}}, "endpoint.memory_mb"),
    ({"dns_servers": ["dns.example"]}, "dns_servers"),
    ({"public_network_gateway": "10.0.0.1"}, "public_network_gateway"),
    ({"container_networks": [{"port_group": "a", "name": None, "gateway": None, "ip_range": "10.0.0.9-10.0.0.1",
                              "dns": None}]}, "container_networks[0].ip_range"),
    ({"container_networks": [{"port_group": "a", "name": "n", "gateway": None, "ip_range": None, "dns": None},
                             {"port_group": "b", "name": "n", "gateway": None, "ip_range": None, "dns": None}]},
     "container_networks[1].name"),
    ({"registry": {"ca_certs": ["/no/such/file"], "insecure": None, "whitelist": None}}, "registry.ca_certs"),
    ({"registry": {"ca_certs": None, "insecure": ["bad host!"], "whitelist": None}}, "registry.insecure"),
    ({"proxy": {"http": "proxy:3128", "https": None, "no_proxy": None}}, "proxy.http"),
    ({"appliance_iso": "LocalDS_0/appliance.img"}, "appliance_iso"),
    ({"timeout": 0}, "timeout"),
])
def test_bad_values_name_the_option(kw, option):
    with pytest.raises(SpecError) as err:
        desired(params(**kw))
    assert str(err.value).startswith(option), str(err.value)


@pytest.mark.parametrize("tls, message", [
    ({"enabled": False, "server_cert": "/a"}, "tls.server_cert"),
    ({"server_cert": "/a"}, "tls.server_key"),
    ({"server_cert": "/a", "server_key": "/b"}, "tls.ca_cert"),
    ({"enabled": False, "verify": True}, "tls.verify"),
])
def test_conflicting_tls_options(tls, message):
    with pytest.raises(SpecError) as err:
        tls_options(params(tls=tls))
    assert message in str(err.value)


def test_tls_defaults_follow_vic_machine(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tls = tls_options(params())
    assert tls["enabled"] and tls["verify"] and tls["key_size"] == 2048
    assert tls["cert_path"] == str(tmp_path / "vch1")
    assert tls_options(params(tls={"enabled": False}))["verify"] is False


def test_normalized_values():
    spec = desired(params(dns_servers=["8.8.8.8"], cpu={"limit_mhz": 100, "reservation_mhz": None, "shares": "HIGH"},
                          public_network_ip="10.0.0.5/24", bridge_network_range="172.16.0.0/12",
                          registry={"ca_certs": None, "insecure": ["b.example:5000", "a.example"], "whitelist": None}))
    assert spec["cpu"] == {"limit_mhz": 100, "reservation_mhz": None, "shares": "high"}
    assert spec["public_network"] == {"port_group": None, "ip": "10.0.0.5/24", "gateway": None}
    assert spec["registry"]["insecure"] == ["a.example", "b.example:5000"]


def test_a_zero_limit_means_no_limit_as_in_vic_machine():
    spec = desired(params(cpu={"limit_mhz": 0, "reservation_mhz": None, "shares": None}))
    assert spec["cpu"]["limit_mhz"] == -1
