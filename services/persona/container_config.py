# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``POST /containers/create`` bodies: checked, merged with the image's defaults, refused clearly.

What VIC could not do is refused naming the option the user knows (``-v
/host:/path``, ``--privileged``, ``-p 53:53/udp``) instead of being
silently dropped; fields the API description does not have are refused too,
so a typo never passes for a setting.
"""

import math
import random
import re
import shlex

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput
from ansible_collections.vic.containers.services.persona import validation
from ansible_collections.vic.containers.services.portlayer.containers import boot, health, restart
from ansible_collections.vic.containers.services.portlayer.network import ports

# From the Docker Engine API description (v1.43): ContainerConfig and HostConfig (with Resources).
CONFIG_FIELDS = frozenset((
    "ArgsEscaped", "AttachStderr", "AttachStdin", "AttachStdout", "Cmd", "Domainname", "Entrypoint", "Env",
    "ExposedPorts", "Healthcheck", "Hostname", "Image", "Labels", "MacAddress", "NetworkDisabled", "OnBuild",
    "OpenStdin", "Shell", "StdinOnce", "StopSignal", "StopTimeout", "Tty", "User", "Volumes", "WorkingDir"))
HOST_CONFIG_FIELDS = frozenset((
    "Annotations", "AutoRemove", "Binds", "BlkioDeviceReadBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteBps",
    "BlkioDeviceWriteIOps", "BlkioWeight", "BlkioWeightDevice", "CapAdd", "CapDrop", "Cgroup", "CgroupParent",
    "CgroupnsMode", "ConsoleSize", "ContainerIDFile", "CpuCount", "CpuPercent", "CpuPeriod", "CpuQuota",
    "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpuShares", "CpusetCpus", "CpusetMems", "DeviceCgroupRules",
    "DeviceRequests", "Devices", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd", "IOMaximumBandwidth",
    "IOMaximumIOps", "Init", "IpcMode", "Isolation", "KernelMemoryTCP", "Links", "LogConfig", "MaskedPaths",
    "Memory", "MemoryReservation", "MemorySwap", "MemorySwappiness", "Mounts", "NanoCpus", "NetworkMode",
    "OomKillDisable", "OomScoreAdj", "PidMode", "PidsLimit", "PortBindings", "Privileged", "PublishAllPorts",
    "ReadonlyPaths", "ReadonlyRootfs", "RestartPolicy", "Runtime", "SecurityOpt", "ShmSize", "StorageOpt",
    "Sysctls", "Tmpfs", "UTSMode", "Ulimits", "UsernsMode", "VolumeDriver", "VolumesFrom"))
BODY_FIELDS = CONFIG_FIELDS | {"HostConfig", "NetworkingConfig"}
# Older clients still send these; Docker ignores them too.
_IGNORED_LEGACY = frozenset(("KernelMemory", "Runtime"))  # dockerd ignores a Runtime outside HostConfig

NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
DEFAULT_MEMORY_MB = 2048  # VIC's default container VM memory
MIN_MEMORY_MB = 512
MAX_MEMORY_MB = 24 * 1024 * 1024  # ESXi's limit per VM (hardware version 17 and later): 24 TB
# The VM is named NAME-<12 hex digits of the id> and vSphere names have at most 80 characters.
MAX_NAME = 80 - 13
_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

_ADJECTIVES = ("brave", "calm", "eager", "fervent", "gallant", "happy", "jolly", "keen", "lucid", "modest",
               "nifty", "quirky", "serene", "sharp", "stoic", "tender", "vibrant", "wizardly", "zealous", "bold")
_NAMES = ("babbage", "curie", "dijkstra", "euler", "fermat", "galois", "hopper", "hypatia", "kepler", "lamport",
          "lovelace", "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wirth", "yonath", "zuse")

# HostConfig settings with no meaning for a container VM, by the flag users know.
_REFUSED = (
    ("Privileged", "--privileged"), ("CapAdd", "--cap-add"), ("Devices", "--device"),
    ("VolumesFrom", "--volumes-from"),
)


def check_name(name):
    if name is None or name == "":
        return None
    if not NAME.match(name):
        raise InvalidInput("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" % name)
    if len(name.lstrip("/")) > MAX_NAME:
        raise InvalidInput("Invalid container name (%s...): at most %d characters, as the container VM's name "
                           "(the name and 13 characters of its id) must fit vSphere's 80" % (name[:20], MAX_NAME))
    return name.lstrip("/")


def generate_name(taken):
    """A name as Docker makes one up (adjective_scientist) for which ``taken(name)`` is false."""
    for _attempt in range(100):
        name = "%s_%s" % (random.choice(_ADJECTIVES), random.choice(_NAMES))
        if not taken(name):
            return name
    return "%s_%d" % (random.choice(_NAMES), random.randrange(10 ** 6))


def check_fields(body):
    validation.check_create(body)
    unknown = sorted(set(body) - BODY_FIELDS - _IGNORED_LEGACY)
    if unknown:
        raise InvalidInput("unknown field%s in the container configuration: %s"
                           % ("s" if len(unknown) > 1 else "", ", ".join(unknown)))
    host = body.get("HostConfig") or {}
    unknown = sorted(set(host) - HOST_CONFIG_FIELDS - _IGNORED_LEGACY)
    if unknown:
        raise InvalidInput("unknown field%s in HostConfig: %s" % ("s" if len(unknown) > 1 else "", ", ".join(unknown)))
    _check_types(body)


def _check_types(body):
    """What the decoder does not check (validation.CREATE_REQUEST typed the rest)."""
    if not isinstance(body.get("Image"), str) or not body["Image"]:
        raise InvalidInput("Image is required: the image to create the container from")


def refuse_unsupported(host):
    for key, flag in _REFUSED:
        if host.get(key):
            raise InvalidInput("%s is not supported by vSphere Integrated Containers: a container is a VM" % flag)
    restart.validate(host)
    boot.check_host(host)
    ports.check_bindings(host)
    mode = host.get("NetworkMode") or "default"
    if mode == "host" or mode.startswith("container:"):
        raise InvalidInput("--network %s is not supported by vSphere Integrated Containers: each container VM "
                           "has its own network stack" % mode)
    for key in ("PidMode", "IpcMode", "UTSMode"):
        if host.get(key) in ("host",) or str(host.get(key) or "").startswith("container:"):
            raise InvalidInput("%s %s is not supported by vSphere Integrated Containers" % (key, host[key]))


def _list(value):
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def merge(body, image_config):
    """The container's Config: the request over the image's defaults, as ``docker create`` does."""
    image_config = image_config or {}
    entrypoint = _list(body.get("Entrypoint"))
    if entrypoint == [""]:
        entrypoint = []  # --entrypoint "": the image's is reset, and its Cmd with it, as dockerd does
    cmd = _list(body.get("Cmd"))
    if not entrypoint and body.get("Entrypoint") not in ([""], ""):
        # dockerd's merge: no entrypoint (absent or []) and no command take the image's command, and
        # an absent entrypoint the image's entrypoint
        if not cmd:
            cmd = image_config.get("Cmd")
        if entrypoint is None:
            entrypoint = image_config.get("Entrypoint")
    env = _merge_env(image_config.get("Env") or [], body.get("Env") or [])
    labels = dict(image_config.get("Labels") or {}, **(body.get("Labels") or {}))
    volumes = dict(image_config.get("Volumes") or {}, **(body.get("Volumes") or {}))
    exposed = dict(image_config.get("ExposedPorts") or {}, **(body.get("ExposedPorts") or {}))
    config = {key: body.get(key) for key in CONFIG_FIELDS if key in body}
    config.update(
        Entrypoint=entrypoint or [], Cmd=cmd, Env=env, Labels=labels, Volumes=volumes,
        ExposedPorts=exposed or None,
        WorkingDir=body.get("WorkingDir") or image_config.get("WorkingDir") or "",
        User=body.get("User") or image_config.get("User") or "",
        StopSignal=body.get("StopSignal") or image_config.get("StopSignal") or "SIGTERM",
        Hostname=body.get("Hostname") or "", Domainname=body.get("Domainname") or "",
        Tty=bool(body.get("Tty")), OpenStdin=bool(body.get("OpenStdin")), StdinOnce=bool(body.get("StdinOnce")),
        AttachStdin=bool(body.get("AttachStdin")), AttachStdout=bool(body.get("AttachStdout")),
        AttachStderr=bool(body.get("AttachStderr")), Image=body["Image"])
    config.pop("Healthcheck", None)
    check = health.merged(body.get("Healthcheck"), image_config.get("Healthcheck"))
    if check:  # as dockerd's omitempty: no health check, no field
        config["Healthcheck"] = check
    boot.check_command(config)
    return config


def _merge_env(image_env, env):
    merged = {}
    for item in list(image_env) + list(env):
        if not isinstance(item, str):
            raise InvalidInput("Env entries must be strings of the form NAME=value")
        name = item.split("=", 1)[0]
        if not name:
            raise InvalidInput("invalid environment variable: %r" % item)
        merged[name] = item
    return list(merged.values())


def sizing(host):
    """(vCPUs, memory MB) of the container VM from --cpus / --cpuset-cpus (as VIC: a vCPU count) / -m."""
    cpus = 1
    if host.get("NanoCpus"):
        cpus = max(1, math.ceil(host["NanoCpus"] / 1e9))
    elif host.get("CpuCount"):
        cpus = int(host["CpuCount"])
        if not 1 <= cpus <= validation.MAX_VCPUS:
            raise InvalidInput("invalid CpuCount %d: a container VM has 1 to %d vCPUs" % (cpus, validation.MAX_VCPUS))
    elif host.get("CpusetCpus"):
        cpus = len(_cpuset(host["CpusetCpus"]))
    memory = DEFAULT_MEMORY_MB
    if host.get("Memory"):
        memory = int(host["Memory"]) // (1024 * 1024)
        if memory < MIN_MEMORY_MB:
            raise InvalidInput("Minimum memory limit allowed is %dMB for a container VM" % MIN_MEMORY_MB)
        if memory > MAX_MEMORY_MB:
            raise InvalidInput("Maximum memory limit allowed is %dTB for a container VM" % (MAX_MEMORY_MB >> 20))
    return cpus, memory


def _cpuset(text):
    cpus = set()
    try:
        for part in str(text).split(","):
            first, _sep, last = part.partition("-")
            first, last = int(first), int(last or first)
            if not 0 <= first <= last < validation.MAX_VCPUS:  # checked before a range is expanded
                raise InvalidInput("Requested CPUs are not available - requested %s, available: 0-%d"
                                   % (text, validation.MAX_VCPUS - 1))
            cpus.update(range(first, last + 1))
    except ValueError:
        raise InvalidInput("invalid value for --cpuset-cpus: %r" % text)
    return cpus


def volume_requests(body, host):
    """[(volume name or None for anonymous, destination, read-only)] from -v, --mount and VOLUME."""
    wanted, seen = [], set()
    for bind in host.get("Binds") or ():
        parts = str(bind).split(":")
        if len(parts) < 2 or len(parts) > 3 or not parts[1].startswith("/"):
            raise InvalidInput("invalid volume specification: '%s'" % bind)
        source, target = parts[0], parts[1]
        if source.startswith("/") or source.startswith("."):
            raise InvalidInput("bind mounts of host paths (-v %s) are not supported by vSphere Integrated "
                               "Containers: a container VM cannot see the endpoint's files; use a volume" % bind)
        if not _VOLUME_NAME.match(source):
            raise InvalidInput("invalid volume name %r in -v %s" % (source, bind))
        modes = parts[2].split(",") if len(parts) == 3 else []
        wanted.append((source, target, "ro" in modes))
    for mount in host.get("Mounts") or ():
        kind = mount.get("Type", "volume")
        if kind != "volume":
            raise InvalidInput("--mount type=%s is not supported by vSphere Integrated Containers; use type=volume"
                               % kind)
        if not str(mount.get("Target", "")).startswith("/"):
            raise InvalidInput("--mount needs an absolute target path")
        wanted.append((mount.get("Source") or None, mount["Target"], bool(mount.get("ReadOnly"))))
    for target, _value in sorted((body.get("Volumes") or {}).items()):
        wanted.append((None, target, False))
    unique = []
    for name, target, readonly in wanted:
        if target in seen:
            continue  # an explicit volume wins over the image's anonymous one at the same path
        seen.add(target)
        unique.append((name, target, readonly))
    return unique


def endpoint_request(settings):
    """(IPv4 address or None, the EndpointSettings object) of a network a container joins: its aliases,
    links, driver options and link-local addresses are kept as given (``networks.Networks.endpoint``)."""
    settings = settings or {}
    return (settings.get("IPAMConfig") or {}).get("IPv4Address"), settings


def network_requests(host, networking):
    """{network name or id: (IPv4 address or None, EndpointSettings)} of a create body; {} for ``--network none``."""
    mode = host.get("NetworkMode") or "default"
    if mode == "none":
        return {}
    # The CLI names the default network "default" in EndpointsConfig too.
    wanted = {("bridge" if name == "default" else name): endpoint
              for name, endpoint in (networking.get("EndpointsConfig") or {}).items()}
    wanted.setdefault("bridge" if mode == "default" else mode, {})
    return {ref: endpoint_request(endpoint) for ref, endpoint in wanted.items()}
