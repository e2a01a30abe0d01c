"""docker create bodies: merged with the image as Docker does, refused clearly where VIC cannot follow."""

import pytest
import yaml

from ansible_collections.vic.containers.tools.harness.endpoint import SPEC
from ansible_collections.vic.containers.services.persona import container_config as spec
from ansible_collections.vic.containers.services.portlayer.containers import vm
from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput

IMAGE = {"Env": ["PATH=/bin", "MODE=dev"], "Cmd": ["sh"], "WorkingDir": "/srv", "Labels": {"a": "1"},
         "Volumes": {"/data": {}}}


def test_the_known_fields_are_those_of_the_api_description():
    definitions = yaml.safe_load(SPEC.read_text())["definitions"]
    assert spec.CONFIG_FIELDS == set(definitions["ContainerConfig"]["properties"])
    host = set()
    for part in definitions["HostConfig"]["allOf"]:
        ref = part.get("$ref")
        host.update((definitions[ref.split("/")[-1]] if ref else part)["properties"])
    assert spec.HOST_CONFIG_FIELDS == host


def test_the_request_overrides_the_image_as_docker_create_does():
    config = spec.merge({"Image": "busybox", "Env": ["MODE=prod"], "Labels": {"b": "2"}}, IMAGE)
    assert config["Env"] == ["PATH=/bin", "MODE=prod"]
    assert config["Cmd"] == ["sh"] and config["WorkingDir"] == "/srv"
    assert config["Labels"] == {"a": "1", "b": "2"}
    # An entrypoint of the request drops the image's command.
    config = spec.merge({"Image": "busybox", "Entrypoint": ["/bin/true"]}, IMAGE)
    assert config["Entrypoint"] == ["/bin/true"] and config["Cmd"] is None
    with pytest.raises(InvalidInput, match="no command specified"):
        spec.merge({"Image": "scratch"}, {})


@pytest.mark.parametrize("body, message", [
    ({"Image": "busybox", "Imgae": "x"}, "unknown field in the container configuration: Imgae"),
    ({"Image": "busybox", "HostConfig": {"Privileeged": True}}, "unknown field in HostConfig: Privileeged"),
    ({"Image": ""}, "Image is required"),
    ({"Image": "busybox", "Env": 5},
     r"cannot unmarshal number into Go struct field CreateRequest.Env of type \[\]string"),
])
def test_unknown_and_malformed_fields_are_refused_by_name(body, message):
    with pytest.raises(InvalidInput, match=message):
        spec.check_fields(body)


@pytest.mark.parametrize("host, flag", [
    ({"Privileged": True}, "--privileged"),
    ({"NetworkMode": "host"}, "--network host"),
    ({"PortBindings": {"53/udp": [{"HostPort": "53"}]}}, "-p 53/udp"),
])
def test_what_a_container_vm_cannot_do_is_refused_naming_the_flag(host, flag):
    with pytest.raises(InvalidInput, match=flag.replace("-", r"\-")):
        spec.refuse_unsupported(host)


def test_volumes_named_anonymous_and_host_paths():
    wanted = spec.volume_requests({"Volumes": {"/data": {}, "/cache": {}}},
                                  {"Binds": ["logs:/data:ro"], "Mounts": [{"Type": "volume", "Target": "/m"}]})
    assert wanted == [("logs", "/data", True), (None, "/m", False), (None, "/cache", False)]
    with pytest.raises(InvalidInput, match="bind mounts of host paths"):
        spec.volume_requests({}, {"Binds": ["/etc:/etc"]})
    with pytest.raises(InvalidInput, match="invalid volume specification"):
        spec.volume_requests({}, {"Binds": ["nocolon"]})


def test_sizing_as_vic_mapped_cpus_and_memory():
    assert spec.sizing({}) == (1, 2048)
    assert spec.sizing({"NanoCpus": 1500000000, "Memory": 1024 * 1024 * 1024}) == (2, 1024)
    assert spec.sizing({"CpusetCpus": "0-2,5"}) == (4, 2048)
    with pytest.raises(InvalidInput, match="Minimum memory"):
        spec.sizing({"Memory": 64 * 1024 * 1024})


def test_container_names():
    assert spec.check_name("/web") == "web"
    assert spec.check_name("") is None
    with pytest.raises(InvalidInput, match="Invalid container name"):
        spec.check_name("bad name!")


def test_a_container_whose_disks_do_not_fit_its_controller_is_refused_up_front():
    vm.check_disks(10, 4)
    with pytest.raises(InvalidInput, match="at most 15 disks.*would need 16 \\(12 image layers, its own disk, 3 volumes"):
        vm.check_disks(12, 3)
