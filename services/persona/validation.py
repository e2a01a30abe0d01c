# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Request bodies checked as dockerd's JSON decoding checks them, before anything is made in vSphere.

dockerd decodes a body into Go structs: a value of the wrong JSON type (a number
where a string goes, a float where an int64 goes) is refused with a 400 naming the
field, so nothing a client stored can break what others read back (a label that
is a number would break ``docker ps`` for every user). The shapes below are the
API's (v1.43) structs, reduced to what a decoder checks; fields they do not list
are left to the routes' own checks (unknown fields, VIC's refusals).
"""

import json

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput, NotFound

INT64 = (-(2 ** 63), 2 ** 63 - 1)
MIN_DURATION_NS = 1000000  # dockerd's containertypes.MinimumDuration: 1ms
# A container VM's vCPUs: ESXi's limit per VM (hardware version 14 and later); --cpus rounds up to vCPUs.
MAX_VCPUS = 128
MIN_NANO_CPUS = 10 ** 7  # 0.01 CPU, the least dockerd takes


class _Kind:
    go = "interface {}"

    def check(self, value, path, struct):
        """Raise InvalidInput as dockerd's decoder would when ``value`` cannot be this kind; null always can."""


class _Scalar(_Kind):
    def __init__(self, go, types):
        self.go, self.types = go, types

    def check(self, value, path, struct):
        if value is not None and (isinstance(value, bool) != (bool in self.types) or not isinstance(value, self.types)):
            _refuse(_json_kind(value), path, struct, self.go)


class _Int(_Kind):
    def __init__(self, go, low, high):
        self.go, self.low, self.high = go, low, high

    def check(self, value, path, struct):
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _refuse(_json_kind(value), path, struct, self.go)
        if isinstance(value, float) or not self.low <= value <= self.high:
            # Go names the number it could not fit: a float, or an integer out of range.
            _refuse("number %s" % json.dumps(value), path, struct, self.go)


class _Slice(_Kind):
    def __init__(self, item):
        self.item, self.go = item, "[]" + item.go

    def check(self, value, path, struct):
        if value is None:
            return
        if not isinstance(value, list):
            _refuse(_json_kind(value), path, struct, self.go)
        for item in value:
            self.item.check(item, path, struct)


class _StrSlice(_Kind):
    """Cmd, Entrypoint, Shell: a string or a list of strings (Go's strslice.StrSlice)."""
    go = "strslice.StrSlice"

    def check(self, value, path, struct):
        if isinstance(value, str):
            return
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            _refuse(_json_kind(value), path, struct, self.go)


class _Map(_Kind):
    def __init__(self, item):
        self.item, self.go = item, "map[string]" + item.go

    def check(self, value, path, struct):
        if value is None:
            return
        if not isinstance(value, dict):
            _refuse(_json_kind(value), path, struct, self.go)
        for item in value.values():
            self.item.check(item, path, struct)


class Struct(_Kind):
    def __init__(self, go, fields):
        self.go, self.fields = go, fields

    def check(self, value, path, struct):
        if value is None:
            return
        if not isinstance(value, dict):
            _refuse(_json_kind(value), path, struct, self.go)
        name = self.go.rsplit(".", 1)[-1]
        for key, kind in self.fields.items():
            if key in value:
                kind.check(value[key], "%s.%s" % (path, key) if path else key, name)


def _json_kind(value):
    for types, name in ((bool, "bool"), ((int, float), "number"), (str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, types):
            return name
    return "value"


def _refuse(what, path, struct, go):
    raise InvalidInput("json: cannot unmarshal %s into Go struct field %s.%s of type %s" % (what, struct, path, go))


STRING = _Scalar("string", (str,))
BOOL = _Scalar("bool", (bool,))
INT = _Int("int", *INT64)
I64 = _Int("int64", *INT64)
U16 = _Int("uint16", 0, 2 ** 16 - 1)
U64 = _Int("uint64", 0, 2 ** 64 - 1)
DURATION = _Int("time.Duration", *INT64)
STRINGS = _Slice(STRING)
STRING_MAP = _Map(STRING)
ANY = _Kind()
OBJECTS = _Slice(_Map(ANY))


def _struct(go, kind, *names):
    return Struct(go, dict.fromkeys(names, kind))


HEALTHCHECK = Struct("container.HealthConfig", {
    "Test": STRINGS, "Interval": DURATION, "Timeout": DURATION, "StartPeriod": DURATION,
    "StartInterval": DURATION, "Retries": INT})
ENDPOINT_SETTINGS = Struct("network.EndpointSettings", {
    "IPAMConfig": Struct("network.EndpointIPAMConfig", {"IPv4Address": STRING, "IPv6Address": STRING,
                                                        "LinkLocalIPs": STRINGS}),
    "Links": STRINGS, "Aliases": STRINGS, "DriverOpts": STRING_MAP, "MacAddress": STRING, "NetworkID": STRING,
    "EndpointID": STRING, "Gateway": STRING, "IPAddress": STRING})
_HOST_FIELDS = dict(
    _struct("", I64, "Memory", "MemoryReservation", "MemorySwap", "NanoCpus", "CpuShares", "CpuPeriod", "CpuQuota",
            "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpuCount", "CpuPercent", "KernelMemoryTCP", "ShmSize",
            "PidsLimit", "MemorySwappiness").fields,
    **_struct("", U64, "IOMaximumIOps", "IOMaximumBandwidth").fields,
    **_struct("", STRING, "CpusetCpus", "CpusetMems", "NetworkMode", "IpcMode", "PidMode", "UTSMode", "UsernsMode",
              "CgroupParent", "Cgroup", "VolumeDriver", "Runtime", "Isolation", "ContainerIDFile",
              "CgroupnsMode").fields,
    **_struct("", BOOL, "AutoRemove", "Privileged", "PublishAllPorts", "ReadonlyRootfs", "OomKillDisable",
              "Init").fields,
    **_struct("", STRINGS, "Binds", "CapAdd", "CapDrop", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd",
              "Links", "SecurityOpt", "VolumesFrom", "DeviceCgroupRules", "MaskedPaths", "ReadonlyPaths").fields,
    **_struct("", STRING_MAP, "Sysctls", "StorageOpt", "Tmpfs", "Annotations").fields,
    **_struct("", OBJECTS, "Mounts", "Devices", "Ulimits", "DeviceRequests", "BlkioWeightDevice",
              "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps").fields,
    BlkioWeight=U16, OomScoreAdj=INT, ConsoleSize=_Slice(_Int("uint", 0, 2 ** 64 - 1)),
    PortBindings=_Map(_Slice(Struct("nat.PortBinding", {"HostIp": STRING, "HostPort": STRING}))),
    LogConfig=Struct("container.LogConfig", {"Type": STRING, "Config": STRING_MAP}),
    RestartPolicy=Struct("container.RestartPolicy", {"Name": STRING, "MaximumRetryCount": INT}))
HOST_CONFIG = Struct("container.HostConfig", _HOST_FIELDS)
CREATE_REQUEST = Struct("container.CreateRequest", dict(
    _struct("", STRING, "Hostname", "Domainname", "User", "Image", "WorkingDir", "MacAddress", "StopSignal").fields,
    **_struct("", BOOL, "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce",
              "NetworkDisabled", "ArgsEscaped").fields,
    **_struct("", _StrSlice(), "Cmd", "Entrypoint", "Shell").fields,
    Env=STRINGS, OnBuild=STRINGS, Labels=STRING_MAP, ExposedPorts=_Map(ANY), Volumes=_Map(ANY), StopTimeout=INT,
    Healthcheck=HEALTHCHECK, HostConfig=HOST_CONFIG,
    NetworkingConfig=Struct("network.NetworkingConfig", {"EndpointsConfig": _Map(ENDPOINT_SETTINGS)})))
UPDATE_REQUEST = Struct("container.UpdateConfig", dict(_HOST_FIELDS))
NETWORK_CONNECT = Struct("types.NetworkConnect", {"Container": STRING, "EndpointConfig": ENDPOINT_SETTINGS,
                                                  "Force": BOOL})
NETWORK_CREATE = Struct("types.NetworkCreateRequest", dict(
    _struct("", STRING, "Name", "Driver", "Scope").fields,
    **_struct("", BOOL, "CheckDuplicate", "Internal", "Attachable", "Ingress", "EnableIPv6", "ConfigOnly").fields,
    Options=STRING_MAP, Labels=STRING_MAP, ConfigFrom=Struct("network.ConfigReference", {"Network": STRING}),
    IPAM=Struct("network.IPAM", {"Driver": STRING, "Options": STRING_MAP, "Config": _Slice(Struct(
        "network.IPAMConfig", {"Subnet": STRING, "IPRange": STRING, "Gateway": STRING,
                               "AuxiliaryAddresses": STRING_MAP}))})))
VOLUME_CREATE = Struct("volume.CreateOptions", {"Name": STRING, "Driver": STRING, "DriverOpts": STRING_MAP,
                                                "Labels": STRING_MAP})
EXEC_CREATE = Struct("types.ExecConfig", dict(
    _struct("", BOOL, "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "Privileged").fields,
    **_struct("", STRING, "User", "WorkingDir", "DetachKeys").fields, Cmd=STRINGS, Env=STRINGS,
    ConsoleSize=_Slice(_Int("uint", 0, 2 ** 64 - 1))))
AUTH_CONFIG = _struct("registry.AuthConfig", STRING, "username", "password", "auth", "email", "serveraddress",
                      "identitytoken", "registrytoken")


def check(body, shape):
    """Refuse ``body`` as dockerd's decoder would if it does not fit ``shape`` (one of the structs above)."""
    shape.check(body, "", shape.go.rsplit(".", 1)[-1])
    return body


def check_auth(body):
    """``POST /auth``: typed as dockerd decodes it; an empty body (dockerd's decoder: EOF) is refused too, so
    nothing but a client's credentials ever makes the endpoint ask a registry (Docker Hub by default)."""
    if not body:
        raise InvalidInput("EOF: POST /auth needs the credentials to check (an AuthConfig object)")
    return check(body, AUTH_CONFIG)


def check_create(body):
    """A container create body: its types, then the values dockerd refuses before it makes anything."""
    check(body, CREATE_REQUEST)
    _check_healthcheck(body.get("Healthcheck") or {})
    _check_cpus((body.get("HostConfig") or {}).get("NanoCpus"))


def _check_healthcheck(health):
    """dockerd's validateHealthCheck: durations of at least 1ms (0 is the image's), retries not negative."""
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        value = health.get(key) or 0
        if value and value < MIN_DURATION_NS:
            raise InvalidInput("%s in Healthcheck cannot be less than 1ms" % key)
    if (health.get("Retries") or 0) < 0:
        raise InvalidInput("Retries in Healthcheck cannot be negative")


def _check_cpus(nano_cpus):
    """--cpus as dockerd bounds it; a container VM has at most MAX_VCPUS."""
    if nano_cpus and not MIN_NANO_CPUS <= nano_cpus <= MAX_VCPUS * 10 ** 9:
        raise InvalidInput("Range of CPUs is from 0.01 to %d.00, as a container VM has at most %d vCPUs"
                           % (MAX_VCPUS, MAX_VCPUS))


def check_address(net, address):
    """dockerd's refusals of ``--ip`` (``address`` None: nothing asked) on network ``net``, before anything is made."""
    if not address:
        return
    if net.builtin and net.driver == "bridge":
        raise InvalidInput("user specified IP address is supported on user defined networks only")
    if net.subnet is None:
        raise InvalidInput("user specified IP address is supported only when connecting to networks with user "
                           "configured subnets")


def check_addresses(networks, wanted):
    """``check_address`` for each network of a create body (``wanted``: container_config.network_requests)."""
    for ref, (address, _aliases) in wanted.items():
        try:
            net = networks.find(ref)
        except NotFound:
            continue  # the port layer answers an unknown network as Docker does
        check_address(net, address)
