# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Docker's JSON of the port layer's objects: containers (ps, inspect, stats), networks and volumes."""

import json

from ansible_collections.vic.containers.services.persona import container_config as spec
from ansible_collections.vic.containers.services.portlayer.containers.model import iso, now, parse_time
from ansible_collections.vic.containers.services.portlayer.network import ports
from ansible_collections.vic.containers.services.portlayer.storage.volumes import DRIVER

# -- containers ---------------------------------------------------------------------------------


def _command(config):
    return " ".join((config.get("Entrypoint") or []) + (config.get("Cmd") or []))


def _status_text(container, restarting=False, health=None):
    if restarting:
        return "Restarting (%d) %s ago" % (container.exit_code, _ago(container.finished_at))
    if container.running:
        up = "Up %s" % _ago(container.started_at)
        if health in (None, "none"):
            return up
        return "%s (%s)" % (up, "health: starting" if health == "starting" else health)
    if container.status == "created":
        return "Created"
    if container.status == "dead":
        return "Dead"
    return "Exited (%d) %s ago" % (container.exit_code, _ago(container.finished_at))


def _ago(moment):
    if moment is None:
        return "less than a second"
    seconds = max(0, int((now() - moment).total_seconds()))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds // size
            return "%d %s%s" % (count, unit, "s" if count > 1 else "")
    return "%d seconds" % seconds if seconds > 1 else "Less than a second"


def _network_settings(container):
    networks = {}
    macs = _macs(container)
    for name, ep in container.record.get("networks", {}).items():
        networks[name] = {"IPAMConfig": {"IPv4Address": ep.get("ip") or "",
                                         "LinkLocalIPs": ep.get("link_local_ips") or []},
                          "Links": ep.get("links") or [], "Aliases": ep.get("aliases") or [],
                          "NetworkID": ep["network_id"], "EndpointID": container.id if container.running else "",
                          "Gateway": ep.get("gateway") or "", "IPAddress": ep.get("ip") or "",
                          "IPPrefixLen": ep.get("prefix") or 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                          "GlobalIPv6PrefixLen": 0, "MacAddress": macs.get(name, ""),
                          "DriverOpts": ep.get("driver_opts") or {}}
    return networks


def _macs(container):
    """{network name: the MAC address of its NIC}. A container VM has one NIC per network, added in the
    order of its record's networks (create, then each connect), and vSphere lists devices in that order."""
    nics = [d for d in container.props.get("config.hardware.device") or () if getattr(d, "macAddress", None)]
    return {name: nic.macAddress for name, nic in zip(container.record.get("networks", {}), nics)}


def _mounts(container):
    return [{"Type": "volume", "Name": m["name"], "Source": m["disk"], "Destination": m["destination"],
             "Driver": "vsphere", "Mode": "" if m["rw"] else "ro", "RW": m["rw"], "Propagation": ""}
            for m in container.record.get("mounts", ())]


def _ports_row(container, address):
    """``Ports`` of a ``docker ps`` row (the CLI's PORTS column), as dockerd lists them."""
    return [{"IP": ip, "PrivatePort": port, "PublicPort": host_port, "Type": proto} if ip is not None
            else {"PrivatePort": port, "Type": proto} for port, proto, ip, host_port in ports.shown(container, address)]


def _ports_inspect(container, address):
    """``NetworkSettings.Ports`` (what ``docker port`` reads): {"80/tcp": [{"HostIp", "HostPort"}] or null}."""
    found = {}
    for port, proto, ip, host_port in ports.shown(container, address):
        key = "%d/%s" % (port, proto)
        if ip is None:
            found.setdefault(key, None)
        else:
            found[key] = (found.get(key) or []) + [{"HostIp": ip, "HostPort": str(host_port)}]
    return found


def row(container, restarting=False, health=None, address=""):
    """One ``docker ps`` row as JSON bytes; ``health``: the status of its health check, if it has one;
    ``address``: where published ports without a host IP listen.

    All but ``State`` and ``Status`` ("Up 5 minutes") is kept with the decoded container,
    which is rebuilt whenever its VM changes, so listing 1,000 containers
    serializes 1,000 short status strings, not 1,000 rows.
    """
    cached = container.cache.get("row")
    if cached is None:
        created = parse_time(container.record["created"])
        fixed = {
            "Id": container.id, "Names": ["/" + container.name], "Image": container.config.get("Image"),
            "ImageID": container.image_id, "Command": _command(container.config),
            "Created": int(created.timestamp()), "Ports": _ports_row(container, address), "Labels": container.config.get("Labels") or {},
            "HostConfig": {"NetworkMode": container.host_config.get("NetworkMode") or "default"},
            "NetworkSettings": {"Networks": _network_settings(container)}, "Mounts": _mounts(container),
        }
        cached = container.cache["row"] = json.dumps(fixed).encode()[:-1] + b', "State": '
    # State and Status are not kept: a restart policy's back-off (``restarting``) is no change of the VM.
    state = "restarting" if restarting else container.status
    return cached + json.dumps(state).encode() + b', "Status": ' + json.dumps(_status_text(container, restarting, health)).encode() + b"}"


# What dockerd's inspect always holds in HostConfig, defaults filled in (those of ``docker create busybox``
# on dockerd 24): clients read these without checking (the Docker SDK's containers.run reads LogConfig.Type
# to know whether it may read logs) and tools compare them with what they would send. Lists dockerd shows as
# null are [] (the API description has them non-null); MemorySwappiness (null there) is left out.
HOST_CONFIG_DEFAULTS = {
    "Binds": [], "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}}, "NetworkMode": "default",
    "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
    "VolumeDriver": "", "VolumesFrom": [], "ConsoleSize": [0, 0], "CapAdd": [], "CapDrop": [],
    "CgroupnsMode": "private", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": [], "GroupAdd": [],
    "IpcMode": "private", "Cgroup": "", "Links": [], "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
    "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": [], "UTSMode": "", "UsernsMode": "",
    "ShmSize": 0, "Runtime": "runc", "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
    "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [],
    "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0,
    "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
    "Devices": [], "DeviceCgroupRules": [], "DeviceRequests": [], "MemoryReservation": 0, "MemorySwap": 0,
    "OomKillDisable": False, "PidsLimit": None, "Ulimits": [], "CpuCount": 0,
    "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "MaskedPaths": [], "ReadonlyPaths": []}


def inspect(container, vch_name, exec_ids, process=(0, None), restarting=False, restart_count=0, health=None,
            address=""):
    """``docker inspect`` of a container of the VCH ``vch_name``; ``exec_ids``: its running execs; ``process``:
    (pid, started_at) as the tether reported them; ``restarting``: a restart policy will power it on again;
    ``health``: its ``State.Health`` when it has a health check; ``address``: where published ports without a
    host IP listen."""
    config = dict(container.config)
    config["Hostname"] = config.get("Hostname") or container.id[:12]  # the guest's hostname, as dockerd shows it
    argv = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    host = dict(HOST_CONFIG_DEFAULTS, **container.host_config)
    for key, value in HOST_CONFIG_DEFAULTS.items():
        if host[key] is None:  # the API's null (the CLI sends many) is dockerd's default too
            host[key] = value
    cpus, memory_mb = spec.sizing(container.host_config)
    networks = _network_settings(container)
    # dockerd shows the default bridge network's endpoint at the top level too (clients still read it there).
    bridge = networks.get("bridge") or {}
    # As dockerd, the limits asked for: 0 is "none" (the VM's default size, in GraphDriver.Data), so a tool
    # that compares what it sent with inspect sees no change.
    host.update(NanoCpus=host.get("NanoCpus") or 0, Memory=host.get("Memory") or 0)
    return {
        "Id": container.id, "Created": container.record["created"], "Path": argv[0] if argv else "",
        "Args": argv[1:], "Name": "/" + container.name, "Image": container.image_id,
        # As dockerd: a container waiting out its restart back-off is "restarting" and counts as running.
        "State": {"Status": "restarting" if restarting else container.status,
                  "Running": container.running or restarting, "Paused": False, "Restarting": restarting,
                  "OOMKilled": False, "Dead": container.status == "dead", "Pid": process[0],
                  "ExitCode": container.exit_code, "Error": "",
                  "StartedAt": iso(process[1] or container.started_at), "FinishedAt": iso(container.finished_at),
                  **({"Health": health} if health is not None else {})},
        "ResolvConfPath": "", "HostnamePath": "", "HostsPath": "", "LogPath": "", "RestartCount": restart_count,
        "Driver": "vsphere", "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "ExecIDs": exec_ids,
        "HostConfig": host,
        "GraphDriver": {"Name": "vsphere", "Data": {
            "VM": container.props.get("name"), "VCH": vch_name, "vCPUs": str(cpus), "MemoryMB": str(memory_mb),
            "Layers": ",".join(container.record["image"].get("layers", ()))}},
        "Mounts": _mounts(container), "Config": config,
        "NetworkSettings": {"Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
                            "LinkLocalIPv6PrefixLen": 0, "Ports": _ports_inspect(container, address),
                            "SandboxKey": "",
                            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
                            "EndpointID": bridge.get("EndpointID", ""), "Gateway": bridge.get("Gateway", ""),
                            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                            "IPAddress": bridge.get("IPAddress", ""), "IPPrefixLen": bridge.get("IPPrefixLen", 0),
                            "IPv6Gateway": "", "MacAddress": bridge.get("MacAddress", ""), "Networks": networks},
    }


def no_stats():
    """What a first ``docker stats`` sample counts from."""
    return {"cpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": 0},
            "read": iso(None)}


def stats(container, usage, previous):
    """A ``docker stats`` sample from the VM's quick stats (``usage``) one second after ``previous``."""
    # Docker computes CPU % from counter deltas: advance them by one second of this VM's share.
    system = previous["cpu_stats"]["system_cpu_usage"] + usage.cpus * 1_000_000_000
    total = previous["cpu_stats"]["cpu_usage"]["total_usage"] + int(
        usage.cpus * 1_000_000_000 * (usage.cpu_mhz / usage.max_cpu_mhz if usage.max_cpu_mhz else 0))
    return {
        "id": container.id, "name": "/" + container.name, "read": iso(now()), "preread": previous["read"],
        "num_procs": 0, "pids_stats": {}, "networks": {}, "blkio_stats": {}, "storage_stats": {},
        "cpu_stats": {"cpu_usage": {"total_usage": total, "usage_in_kernelmode": 0, "usage_in_usermode": total},
                      "system_cpu_usage": system, "online_cpus": usage.cpus, "throttling_data": {}},
        "precpu_stats": previous["cpu_stats"],
        "memory_stats": {"usage": usage.memory_used_mb * 1048576, "limit": usage.memory_mb * 1048576, "stats": {}},
    }


def guest_stats(container, figures, previous):
    """A ``docker stats`` sample from the tether's figures (``protocol.parse_stats``): the guest's own counters."""
    cpu = {"cpu_usage": {"total_usage": figures["cpu_total_ns"], "usage_in_kernelmode": 0,
                         "usage_in_usermode": figures["cpu_total_ns"]},
           "system_cpu_usage": figures["cpu_system_ns"], "online_cpus": figures["online_cpus"], "throttling_data": {}}
    return {
        "id": container.id, "name": "/" + container.name, "read": iso(now()), "preread": previous["read"],
        "num_procs": 0, "pids_stats": {"current": figures["pids"]}, "networks": {}, "blkio_stats": {},
        "storage_stats": {}, "cpu_stats": cpu, "precpu_stats": previous["cpu_stats"],
        "memory_stats": {"usage": figures["memory_usage"], "limit": figures["memory_limit"], "stats": {}},
    }


# -- networks and volumes -----------------------------------------------------------------------


def network(net, users=None):
    """A network as ``docker network inspect`` shows it, with its containers when ``users`` are given."""
    config = []
    if net.subnet is not None:
        entry = {"Subnet": str(net.subnet)}
        if net.gateway is not None:
            entry["Gateway"] = str(net.gateway)
        if net.ip_range is not None:
            entry["IPRange"] = str(net.ip_range)
        elif net.pool is not None and net.driver == "external":
            entry["IPRange"] = "%s-%s" % net.pool
        if net.aux:
            entry["AuxiliaryAddresses"] = dict(net.aux)
        config.append(entry)
    shown = {
        "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local", "Driver": net.driver,
        "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Internal": net.internal, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
        "ConfigOnly": False, "Options": dict(net.options, **{"vic.port_group": net.port_group}),
        "Labels": net.labels,
    }
    if users is not None:
        shown["Containers"] = {
            c.id: {"Name": c.name, "EndpointID": c.id if c.running else "", "MacAddress": _macs(c).get(net.name, ""),
                   "IPv4Address": _cidr(c.record["networks"][net.name]), "IPv6Address": ""}
            for c in users}
    return shown


def _cidr(endpoint):
    return "%s/%d" % (endpoint["ip"], endpoint["prefix"]) if endpoint.get("ip") else ""


def volume(vol, users):
    """A volume as ``docker volume inspect`` shows it; ``users``: the ids of the containers that mount it."""
    return {
        "Name": vol.name, "Driver": vol.driver, "Mountpoint": vol.disk, "CreatedAt": vol.created or "",
        "Labels": vol.labels, "Scope": "local", "Options": vol.options,
        # The API description wants each Status value an object: the driver's details under its name.
        "Status": {DRIVER: {"VolumeStore": vol.store, "Capacity": "%dMB" % (vol.capacity_kb // 1024),
                            "Disk": vol.disk}},
        "UsageData": {"Size": -1, "RefCount": len(users)},
    }
