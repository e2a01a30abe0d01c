# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The container engine of vic_container / vic_container_info: options, plan, apply; private.

Desired state (the options a task gives) -> observed state (one inspect of the
container, one of its image) -> plan (create, recreate naming the options that
differ, start, stop, remove) -> apply. An option left out is not compared; a
difference in any compared option recreates the container, as community.docker
does for options ``docker update`` cannot change (a VCH has no ``docker update``).
"""

from __future__ import annotations

import re

from ansible_collections.vic.containers.plugins.module_utils._errors import SpecError
from ansible_collections.vic.containers.plugins.module_utils.docker import options as model
from ansible_collections.vic.containers.plugins.module_utils.docker import values
from ansible_collections.vic.containers.plugins.module_utils.docker.options import Option
from ansible_collections.vic.containers.plugins.module_utils._plan import Plan

_ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")


def _config(key, default=None):
    return lambda obj, _extra: (obj.get("Config") or {}).get(key, default)


def _host(key, default=None):
    return lambda obj, _extra: (obj.get("HostConfig") or {}).get(key, default)


def _set_config(key):
    def put(body, value):
        body[key] = value
    return put


def _set_host(key):
    def put(body, value):
        body["HostConfig"][key] = value
    return put


def _env_list(value):
    return ["%s=%s" % item for item in sorted(value.items())]


def _env_dict(items):
    return dict(item.split("=", 1) if "=" in item else (item, "") for item in items or ())


def _observed_env(obj, image):
    # The container has the image's variables too: they are expected unless the task overrides them.
    return _env_dict((obj.get("Config") or {}).get("Env"))


def _expected_env(want, image):
    return dict(_env_dict(((image or {}).get("Config") or {}).get("Env")), **want)


def _expected_labels(want, image):
    return dict(((image or {}).get("Config") or {}).get("Labels") or {}, **want)


def _volume_spec(value, option):
    """``name:/path[:ro|rw]`` or ``/path`` (an anonymous volume) as a canonical string; host paths are refused."""
    specs = []
    for index, text in enumerate(value):
        where = "%s[%d]" % (option, index)
        parts = str(text).split(":")
        if len(parts) == 1:
            if not parts[0].startswith("/"):
                raise SpecError(where, "%r: an anonymous volume needs an absolute path" % text)
            specs.append(parts[0])
            continue
        if len(parts) > 3 or not parts[1].startswith("/") or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise SpecError(where, "%r is not a volume spec: use name:/path[:ro|rw] or /path" % text)
        if parts[0].startswith(("/", ".", "~")):
            raise SpecError(where, "%r mounts a host path: a VCH cannot (a container VM does not see the "
                                   "endpoint's files); use a named volume (vic.containers.vic_volume)" % text)
        specs.append("%s:%s%s" % (parts[0], parts[1], ":ro" if len(parts) == 3 and parts[2] == "ro" else ""))
    return specs


def _observed_volumes(obj, _image):
    # Anonymous volumes (named with 64 hex digits, as Docker names them) compare by path alone.
    specs = []
    for mount in obj.get("Mounts") or ():
        name, path = mount.get("Name") or "", mount.get("Destination")
        if not name or _ANONYMOUS.match(name):
            specs.append(path)
        else:
            specs.append("%s:%s%s" % (name, path, "" if mount.get("RW", True) else ":ro"))
    return specs


def _expected_volumes(want, image):
    # The image's own VOLUMEs are mounted (anonymously) unless the task mounts something at their path.
    taken = {spec.split(":")[1] if ":" in spec else spec for spec in want}
    image_volumes = ((image or {}).get("Config") or {}).get("Volumes") or {}
    return sorted(set(want) | {path for path in image_volumes if path not in taken})


def _volumes_to_api(body, specs):
    binds = [spec if spec.endswith(":ro") else spec + ":rw" for spec in specs if ":" in spec]
    if binds:
        body["HostConfig"]["Binds"] = binds
    anonymous = {spec: {} for spec in specs if ":" not in spec}
    if anonymous:
        body["Volumes"] = anonymous


def _networks(value, option):
    result = []
    for index, network in enumerate(value):
        if not network.get("name"):
            raise SpecError("%s[%d].name" % (option, index), "is required")
        result.append(network)
    return result


def _network_names(value, _image):
    return sorted({network["name"] for network in value})


def _observed_networks(obj, _image):
    return sorted(((obj.get("NetworkSettings") or {}).get("Networks") or {}).keys())


def _network_mode(value, option):
    if value == "host" or value.startswith("container:"):
        raise SpecError(option, "%r is not possible on a VCH: each container VM has its own network stack" % value)
    return value


def _observed_ports(obj, _image):
    bindings = (obj.get("HostConfig") or {}).get("PortBindings") or {}
    return values.binding_strings({port: [(b.get("HostIp"), b.get("HostPort")) for b in pairs or ()]
                                   for port, pairs in bindings.items()})


def _ports(value, option):
    return values.binding_strings(values.port_bindings(value, option))


def _ports_to_api(body, strings):
    bindings = {}
    for text in strings:
        address, host, port = text.split(":", 2)
        bindings.setdefault(port, []).append({"HostIp": address, "HostPort": host})
    body["HostConfig"]["PortBindings"] = bindings
    body["ExposedPorts"] = {port: {} for port in bindings}


def _restart_name(obj, _image):
    return ((obj.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no"


def _restart_to_api(body, value):
    policy = body["HostConfig"].setdefault("RestartPolicy", {})
    policy["Name"] = value


def _retries_to_api(body, value):
    policy = body["HostConfig"].setdefault("RestartPolicy", {"Name": "on-failure"})
    policy["MaximumRetryCount"] = value


def _image_id(obj, _image):
    return obj.get("Image")


def _memory(value, option):
    return values.size_bytes(value, option)


def _cpus(value, option):
    if value <= 0:
        raise SpecError(option, "must be more than 0, not %s" % value)
    return int(round(value * 1e9))


class _Expected(Option):
    """An option whose comparable value is not the task's as it is: it takes the image's (env, labels,
    volumes) or a part of it (network names)."""

    def __init__(self, name, kind, expect, **kwargs):
        super().__init__(name, kind, **kwargs)
        self.expect = expect


# community.docker's names; every option is compared ``strict`` but networks (allow_more_present).
OPTIONS = (
    Option("command", "raw", normalize=values.argv, observe=_config("Cmd"), to_api=_set_config("Cmd")),
    Option("entrypoint", "list", elements="str", normalize=values.argv, observe=_config("Entrypoint"),
           to_api=_set_config("Entrypoint")),
    _Expected("env", "dict", _expected_env, shape="dict", normalize=values.string_map, observe=_observed_env,
              to_api=lambda body, value: body.update(Env=_env_list(value))),
    _Expected("labels", "dict", _expected_labels, shape="dict", normalize=values.string_map,
              observe=_config("Labels", {}), to_api=_set_config("Labels")),
    _Expected("volumes", "list", _expected_volumes, shape="set", elements="str", normalize=_volume_spec,
              observe=_observed_volumes, to_api=_volumes_to_api),
    # Compared by name: the addresses and aliases are asked for at create, not compared.
    _Expected("networks", "list", _network_names, shape="set", comparison="allow_more_present", elements="dict",
              suboptions={"name": {"type": "str", "required": True}, "ipv4_address": {"type": "str"},
                          "aliases": {"type": "list", "elements": "str"}},
              normalize=_networks, observe=_observed_networks),
    Option("network_mode", "str", normalize=_network_mode, observe=_host("NetworkMode"),
           to_api=_set_host("NetworkMode")),
    Option("published_ports", "list", shape="set", elements="str", aliases=["ports"], normalize=_ports,
           observe=_observed_ports, to_api=_ports_to_api),
    Option("publish_all_ports", "bool", observe=_host("PublishAllPorts", False), to_api=_set_host("PublishAllPorts")),
    Option("memory", "str", normalize=_memory, observe=_host("Memory", 0), to_api=_set_host("Memory")),
    Option("cpus", "float", normalize=_cpus, observe=_host("NanoCpus", 0), to_api=_set_host("NanoCpus")),
    Option("restart_policy", "str", choices=["no", "on-failure", "always", "unless-stopped"],
           observe=_restart_name, to_api=_restart_to_api),
    Option("restart_retries", "int",
           observe=lambda obj, _i: ((obj.get("HostConfig") or {}).get("RestartPolicy") or {}).get("MaximumRetryCount", 0),
           to_api=_retries_to_api),
    Option("hostname", "str", observe=_config("Hostname"), to_api=_set_config("Hostname")),
    Option("domainname", "str", observe=_config("Domainname"), to_api=_set_config("Domainname")),
    Option("user", "str", observe=_config("User"), to_api=_set_config("User")),
    Option("working_dir", "str", observe=_config("WorkingDir"), to_api=_set_config("WorkingDir")),
    Option("tty", "bool", observe=_config("Tty", False), to_api=_set_config("Tty")),
    Option("interactive", "bool", observe=_config("OpenStdin", False), to_api=_set_config("OpenStdin")),
    Option("auto_remove", "bool", observe=_host("AutoRemove", False), to_api=_set_host("AutoRemove")),
    Option("stop_timeout", "int", observe=_config("StopTimeout"), to_api=_set_config("StopTimeout")),
    Option("stop_signal", "str", observe=_config("StopSignal"), to_api=_set_config("StopSignal")),
    Option("dns_servers", "list", elements="str", observe=_host("Dns", []), to_api=_set_host("Dns")),
)
# The image is compared by id: the container's against the one its name has now (community.docker's
# image_comparison=desired-image).
IMAGE = _Expected("image", "str", lambda want, image: (image or {}).get("Id", want), observe=_image_id)
COMPARED = (IMAGE,) + OPTIONS

# docker_container options a container VM cannot honour, and why; given, the module fails naming them.
REFUSED = {
    "privileged": "a container VM has no host to be privileged on",
    "capabilities": "a container VM has no host capabilities to add",
    "cap_add": "a container VM has no host capabilities to add",
    "cap_drop": "a container VM has no host capabilities to drop",
    "devices": "a container VM cannot see the endpoint's devices",
    "links": "legacy links are not supported; put the containers on one network",
    "volumes_from": "volumes are VMDKs attached to one VM; mount the named volume instead",
    "pid_mode": "each container VM has its own kernel and processes",
    "ipc_mode": "each container VM has its own kernel and IPC namespace",
}

STATES = ("present", "started", "stopped", "absent")


def argument_spec():
    spec = model.argument_spec(OPTIONS)
    spec.update(
        name=dict(type="str", required=True),
        image=dict(type="str"),
        state=dict(type="str", choices=list(STATES), default="started"),
        recreate=dict(type="bool", default=False),
        keep_volumes=dict(type="bool", default=True),
        force_kill=dict(type="bool", default=False, aliases=["forcekill"]),
        comparisons=dict(type="dict"),
    )
    spec.update({name: dict(type="raw") for name in REFUSED})
    return spec


def _refuse(params):
    given = sorted(name for name in REFUSED if params.get(name) not in (None, False, [], {}, ""))
    if given:
        raise SpecError(given[0], "not supported on a VCH: %s%s" % (
            REFUSED[given[0]], "" if len(given) == 1 else " (also refused: %s)" % ", ".join(given[1:])))


def _desired(params):
    _refuse(params)
    model.check_comparisons(COMPARED, params.get("comparisons"))
    want = model.desired(OPTIONS, params)
    if want.get("network_mode") == "none" and want.get("networks"):
        raise SpecError("network_mode", "none conflicts with networks: a container without networking joins none")
    if "networks" in want and "network_mode" not in want and want["networks"]:
        # The first network is the container's network mode, as the docker CLI (and community.docker) make it.
        want["network_mode"] = want["networks"][0]["name"]
    return want


def _comparable(want, image):
    """``want`` as the container should show it (network names, the image's env, labels and volumes merged in)."""
    result = {}
    for option in COMPARED:
        if option.name not in want:
            continue
        value = want[option.name]
        if isinstance(option, _Expected):
            value = option.expect(value, image)
        result[option.name] = value
    return result


def _create_body(want, reference):
    body = {"Image": reference, "HostConfig": {}}
    for option in OPTIONS:
        if option.name in want:
            option.to_api(body, want[option.name])
    if want.get("networks"):
        body["NetworkingConfig"] = {"EndpointsConfig": {
            network["name"]: {"IPAMConfig": {"IPv4Address": network["ipv4_address"]} if network.get("ipv4_address")
                              else None, "Aliases": network.get("aliases")}
            for network in want["networks"]}}
    return body


class ContainerPlan(Plan):
    def __init__(self, want):
        super().__init__({}, {})
        self.want = want
        self.container = None


def plan(client, params):
    """The plan for one container: one inspect of it, one of its image (a pull when the image is missing)."""
    name = params["name"]
    want = _desired(params) if params["state"] != "absent" else {}
    container = client.inspect("inspecting container %s" % name, client.api.inspect_container, name)
    result = ContainerPlan(want)
    result.container = container
    if params["state"] == "absent":
        if container is not None:
            result.before = {"exists": True, "running": _running(container)}
            result.after = {"exists": False}
            result.add("remove container %s" % name, lambda: _remove(client, params, container["Id"]))
        return result
    reference = params.get("image")
    if container is None and not reference:
        raise SpecError("image", "is required to create container %s" % name)
    image = None
    if reference:
        want["image"] = reference
        image = client.inspect("inspecting image %s" % reference, client.api.inspect_image, reference)
        if image is None:
            result.add("pull image %s" % reference, lambda: client.pull(reference))
    expected = _comparable(want, image)
    running_wanted = {"started": True, "stopped": False}.get(params["state"])
    if container is None:
        _check_networks(client, want)
        result.after = dict(expected, running=bool(running_wanted))
        result.add("create container %s" % name, lambda: _create(client, params, want, reference, result))
        if running_wanted:
            result.add("start container %s" % name, lambda: client.call(
                "starting container %s" % name, client.api.start, result.container["Id"]))
        return result
    differ, before, after = model.differences(COMPARED, expected, container, image, params.get("comparisons"))
    running = _running(container)
    result.before, result.after = dict(before, running=running), dict(after, running=running)
    if differ or params["recreate"]:
        if not reference:
            raise SpecError("image", "is required to recreate container %s" % name)
        _check_networks(client, want)
        why = model.differ_phrase(differ) if differ else "recreate: true"
        result.add("recreate container %s (%s)" % (name, why),
                   lambda: _recreate(client, params, want, reference, container, result))
        # A recreated container runs again if it ran (state present) or if asked to (started).
        if running_wanted or (running_wanted is None and running):
            result.after["running"] = True
            result.add("start container %s" % name, lambda: client.call(
                "starting container %s" % name, client.api.start, result.container["Id"]))
        elif running_wanted is False:
            result.after["running"] = False
        return result
    if running_wanted is not None and running_wanted != running:
        result.after["running"] = running_wanted
        if running_wanted:
            result.add("start container %s" % name,
                       lambda: client.call("starting container %s" % name, client.api.start, container["Id"]))
        else:
            result.add("stop container %s" % name, lambda: _stop(client, params, container))
    return result


def _running(container):
    return bool((container.get("State") or {}).get("Running"))


def _check_networks(client, want):
    """A network a new container joins must exist: a bad name fails naming the option, check mode too."""
    for index, network in enumerate(want.get("networks") or ()):
        if client.inspect("inspecting network %s" % network["name"], client.api.inspect_network,
                          network["name"]) is None:
            raise SpecError("networks[%d].name" % index, "there is no network %r on Docker host %s"
                            % (network["name"], client.host))


def _create(client, params, want, reference, result):
    created = client.call("creating container %s" % params["name"], client.api.create_container_from_config,
                          _create_body(want, reference), params["name"])
    result.container = {"Id": created["Id"]}


def _stop(client, params, container):
    what = "stopping container %s" % params["name"]
    if params["force_kill"]:
        return client.call(what, client.api.kill, container["Id"])
    timeout = params.get("stop_timeout")
    return client.call(what, client.api.stop, container["Id"], **({"timeout": timeout} if timeout else {}))


def _remove(client, params, container_id):
    client.call("removing container %s" % params["name"], client.api.remove_container, container_id,
                v=not params["keep_volumes"], force=True)


def _recreate(client, params, want, reference, container, result):
    _remove(client, params, container["Id"])
    _create(client, params, want, reference, result)


def result(client, params, plan_, check_mode):
    """The container's inspect after the run: read again after a change, else the one already read."""
    if params["state"] == "absent":
        return None if not check_mode else plan_.container
    found = plan_.container
    if plan_.changed and not check_mode:
        found = client.inspect("inspecting container %s" % params["name"], client.api.inspect_container, params["name"])
    plan_.warnings.extend(_vch_notes(plan_.want, found))
    return found


def _vch_notes(want, container):
    """What a VCH does otherwise than asked, from its inspect: a container VM has whole vCPUs."""
    graph = (container or {}).get("GraphDriver") or {}
    vcpus = (graph.get("Data") or {}).get("vCPUs")
    if graph.get("Name") != "vsphere" or not want.get("cpus") or not vcpus or int(vcpus) * 10 ** 9 == want["cpus"]:
        return []
    return ["cpus: container VM %s has %s vCPUs for cpus %g (a VCH sizes a container VM in whole vCPUs)"
            % (graph["Data"].get("VM") or container.get("Name", "").lstrip("/"), vcpus, want["cpus"] / 1e9)]


def info(client, name):
    return client.inspect("inspecting container %s" % name, client.api.inspect_container, name)
