# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a container VM's tether boots: the boot spec (``protocol.boot_spec``) made from the container's record.

The endpoint writes it at ``docker create`` under ``protocol.BOOT_KEY`` and again
whenever something it holds changes (a network joined or left). It is the only
place the container's private SSH host key is kept; the record keeps the public half.
Its env is sealed (``EnvSealed``): the tether opens it with the key the endpoint hands
it over the channel before the process starts (docs/security.md).
"""

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput
from ansible_collections.vic.containers.services.portlayer.containers import envseal
from ansible_collections.vic.containers.services.portlayer.containers.vm import disk_units
from ansible_collections.vic.containers.services.portlayer.network import ports
from ansible_collections.vic.containers.services.portlayer.network.peers import DEFAULT_NETWORK
from ansible_collections.vic.containers.services.tether import protocol


def command(config):
    """The argv the container runs: Entrypoint + Cmd, as dockerd resolves them."""
    return list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])


def check_command(config):
    """Refuse, before anything is made, a container with nothing to run (dockerd's wording)."""
    if not command(config):
        raise InvalidInput("no command specified")


def process(config, host=None):
    """The boot spec's process: VIC's RunBlock is "a client attaches to this run" (``docker run`` without -d)."""
    host = host or {}
    return {"Cmd": command(config), "Env": list(config.get("Env") or []), "User": config.get("User") or "",
            "WorkingDir": config.get("WorkingDir") or "", "Tty": bool(config.get("Tty")),
            "OpenStdin": bool(config.get("OpenStdin")), "StdinOnce": bool(config.get("StdinOnce")),
            "RunBlock": bool(config.get("AttachStdin") or config.get("AttachStdout") or config.get("AttachStderr")),
            "Ulimits": ulimits(host), "GroupAdd": [str(group) for group in host.get("GroupAdd") or ()]}


def ulimits(host):
    """``--ulimit``: [{"Name", "Soft", "Hard"}] as the tether applies them to every process of the container."""
    found = []
    for limit in host.get("Ulimits") or ():
        name = limit.get("Name") if isinstance(limit, dict) else None
        if name not in protocol.ULIMITS:
            raise InvalidInput("invalid ulimit type: %s" % name)
        soft, hard = limit.get("Soft", 0), limit.get("Hard", 0)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= -1 for v in (soft, hard)):
            raise InvalidInput("invalid ulimit %s: Soft and Hard must be integers (-1 for unlimited)" % name)
        if hard != -1 and (soft == -1 or soft > hard):
            raise InvalidInput("ulimit soft limit must be less than or equal to hard limit: %d > %d" % (soft, hard))
        found.append({"Name": name, "Soft": soft, "Hard": hard})
    return found


def rootfs(host):
    """``--read-only``, ``--tmpfs`` and ``--shm-size`` as the tether mounts them."""
    tmpfs = {}
    for destination, options in (host.get("Tmpfs") or {}).items():
        if not destination.startswith("/") or destination.rstrip("/") in ("", "/proc", "/sys", "/dev"):
            raise InvalidInput("invalid tmpfs destination %r: an absolute path other than /, /proc, /sys, /dev"
                               % destination)
        for option in filter(None, str(options).split(",")):
            if not protocol.tmpfs_option(option):
                raise InvalidInput("Invalid tmpfs option [%s] of %s" % (option, destination))
        tmpfs[destination] = options
    if (host.get("ShmSize") or 0) < 0:
        raise InvalidInput("SHM size can not be less than 0")
    return {"read_only": bool(host.get("ReadonlyRootfs")), "tmpfs": tmpfs,
            "shm_size": host.get("ShmSize") or protocol.DEFAULT_SHM_SIZE}


def sysctls(host):
    """``--sysctl``: only those a container's own namespaces hold, as runc allows (the Docker CLI's words)."""
    found = {}
    for name, value in (host.get("Sysctls") or {}).items():
        if not protocol.namespaced_sysctl(name):
            raise InvalidInput("sysctl '%s=%s' is not allowed: only kernel.msg*, kernel.sem, kernel.shm*, "
                               "fs.mqueue.* and net.* (the container's own namespaces) can be set" % (name, value))
        found[name] = str(value)
    return found


def check_host(host):
    """Refuse, before anything is made, what the tether could not apply."""
    ulimits(host)
    rootfs(host)
    sysctls(host)


def nics(record, macs=()):
    """One entry per network endpoint, in the order the VM's NICs were added; ``macs`` in that order when known."""
    found = []
    for i, endpoint in enumerate(record.get("networks", {}).values()):
        addresses = ["%s/%d" % (endpoint["ip"], endpoint.get("prefix") or 32)] if endpoint.get("ip") else []
        found.append({"mac": macs[i] if i < len(macs) else "", "addresses": addresses,
                      "gateway": endpoint.get("gateway") or ""})
    return found


def dns(record):
    """``--dns`` / ``--dns-search`` / ``--dns-option`` if given, else the DNS servers the VCH's config gives
    the container networks the container is on (``container_networks[].dns``), else none. On a user-defined
    network (any but the default ``bridge``) the tether is the container's DNS server, as dockerd's embedded
    one is, and these servers are where it forwards the names it does not hold (docs/containers.md)."""
    host = record.get("host_config") or {}
    networks = record.get("networks", {})
    servers = list(host.get("Dns") or [])
    if not servers:
        for endpoint in networks.values():
            servers.extend(s for s in endpoint.get("dns") or () if s not in servers)
    return {"servers": servers, "search": list(host.get("DnsSearch") or []),
            "options": list(host.get("DnsOptions") or []),
            "embedded": any(network != DEFAULT_NETWORK for network in networks)}


def hosts(record):
    """``--add-host name:ip`` as /etc/hosts lines ("ip\tname"); as dockerd, the first ``:`` ends the name
    (an IPv6 address keeps its own)."""
    lines = []
    for entry in (record.get("host_config") or {}).get("ExtraHosts") or ():
        name, sep, address = str(entry).partition(":")
        if not (name and sep and address) or "\n" in entry:
            raise InvalidInput("invalid IP address in add-host: %r" % address)
        lines.append("%s\t%s" % (address, name))
    return lines


def spec(record, host_key, endpoint_key, env_key, macs=()):
    """The boot spec of the container ``record`` describes, with the container's private ``host_key``; its env
    sealed with ``env_key`` (envseal.container_key), which the endpoint hands the tether over the channel."""
    config, host = record["config"], record.get("host_config") or {}
    run = process(config, host)
    if run["Env"]:
        run["EnvSealed"], run["Env"] = envseal.seal_list(run["Env"], env_key, record["id"]), []
    layer_units, rw_unit, volume_units = disk_units(len(record["image"]["layers"]), len(record.get("mounts", ())))
    mounts = [{"unit": unit, "destination": mount["destination"], "rw": mount["rw"]}
              for mount, unit in zip(record.get("mounts", ()), volume_units)]
    try:
        return protocol.boot_spec(
            record["id"], host_key, endpoint_key, run,
            hostname=config.get("Hostname") or record["id"][:12], domainname=config.get("Domainname") or "",
            layers=layer_units, rw=rw_unit, mounts=mounts, nics=nics(record, macs), dns=dns(record),
            hosts=hosts(record), rootfs=rootfs(host), sysctls=sysctls(host), rw_format=record.get("rw_format", True),
            ports=ports.container_ports(record))
    except protocol.ProtocolError as exc:
        raise InvalidInput(str(exc)) from None  # a value of the user's the tether could not take
