"""The engine's pure parts: task values as the API has them, and how the option model compares them.
(No endpoint: these run in milliseconds; the modules' behaviour is tested end to end beside them.)"""

import pytest

from ansible_collections.vic.containers.plugins.module_utils._errors import SpecError
from ansible_collections.vic.containers.plugins.module_utils.docker import container, options, values
from ansible_collections.vic.containers.plugins.module_utils.docker import connection


@pytest.mark.parametrize("text, size", [("512M", 512 * 2 ** 20), ("1.5g", 3 * 2 ** 29), ("2GB", 2 * 2 ** 30),
                                        ("1048576", 2 ** 20), ("64k", 65536), ("3b", 3)])
def test_sizes_read_as_docker_run_m_reads_them(text, size):
    assert values.size_bytes(text, "memory") == size


@pytest.mark.parametrize("text", ["lots", "12X", "-1G", "1.2.3M", ""])
def test_a_bad_size_names_the_option(text):
    with pytest.raises(SpecError, match=r"^memory: .* is not a size"):
        values.size_bytes(text, "memory")


def test_port_specs():
    assert values.port_bindings(["80", "8080:80", "127.0.0.1:8443:443/tcp", "53:53/udp"], "published_ports") == {
        "80/tcp": [("", ""), ("", "8080")], "443/tcp": [("127.0.0.1", "8443")], "53/udp": [("", "53")]}
    for spec, fragment in (("80:abc", "container port 'abc'"), ("99999:80", "host port '99999'"),
                           ("80/icmp", "protocol"), ("a:b:c:d", "not a port spec"), ("x.y:80:80", "not an IPv4")):
        with pytest.raises(SpecError, match=r"^published_ports\[0\]: .*%s" % fragment):
            values.port_bindings([spec], "published_ports")


def test_references():
    assert values.full_reference("busybox") == "busybox:latest"
    assert values.full_reference("busybox", "1.36") == "busybox:1.36"
    assert values.full_reference("reg:5000/lib/busybox", "1.36") == "reg:5000/lib/busybox:1.36"
    assert values.full_reference("reg:5000/lib/busybox:2", "1.36") == "reg:5000/lib/busybox:2"
    assert values.full_reference("busybox@sha256:abc", "1.36") == "busybox@sha256:abc"
    assert values.split_reference("reg:5000/lib/busybox") == ("reg:5000/lib/busybox", "latest", ":")


def test_comparisons_follow_community_docker():
    env = [o for o in container.OPTIONS if o.name == "env"][0]
    networks = [o for o in container.OPTIONS if o.name == "networks"][0]
    assert options.same(env, {"A": "1"}, {"A": "1"}, "strict")
    assert not options.same(env, {"A": "1"}, {"A": "1", "B": "2"}, "strict")
    assert options.same(env, {"A": "1"}, {"A": "1", "B": "2"}, "allow_more_present")
    assert not options.same(env, {"A": "2"}, {"A": "1", "B": "2"}, "allow_more_present")
    assert options.same(env, {"A": "2"}, {}, "ignore")
    assert options.same(networks, ["a"], ["b", "a"], options.comparison_of(networks, None))
    assert not options.same(networks, ["a"], ["b", "a"], options.comparison_of(networks, {"networks": "strict"}))
    assert options.comparison_of(env, {"*": "ignore"}) == "ignore"


def test_the_argument_spec_comes_from_the_declarations():
    spec = container.argument_spec()
    assert spec["memory"] == {"type": "str"}
    assert spec["published_ports"] == {"type": "list", "elements": "str", "aliases": ["ports"]}
    assert spec["networks"]["options"]["name"] == {"type": "str", "required": True}
    assert set(container.REFUSED) <= set(spec)


def test_docker_cert_path_names_the_certificate_files(tmp_path):
    params = {option: None for option in connection.OPTIONS}
    params.update(docker_host="tcp://h:2376", validate_certs=True, tls=False)
    resolved = connection.resolve(params, {"DOCKER_CERT_PATH": str(tmp_path)})
    assert resolved["ca_path"] == str(tmp_path / "ca.pem") and resolved["client_key"] == str(tmp_path / "key.pem")
    assert resolved["tls"] is True and resolved["api_version"] == "auto" and resolved["timeout"] == 60
    given = connection.resolve(dict(params, ca_path="/x/ca.pem"), {"DOCKER_CERT_PATH": str(tmp_path)})
    assert given["ca_path"] == "/x/ca.pem"
