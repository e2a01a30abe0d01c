# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The vic_vch option model: argument spec, validation and normalized desired config; private.

One model feeds the module's argument spec, the validation of values the
argument spec cannot express, the defaults of a new VCH, and which options
``vic-machine configure`` could change in place.

An option left out means "keep what the VCH has" on an existing VCH and
"use the vic-machine default" on a new one.
"""

from __future__ import annotations

import ipaddress
import os
import re

from ansible_collections.vic.containers.plugins.module_utils._errors import SpecError
from ansible_collections.vic.containers.plugins.module_utils.vch import tether_iso
from ansible_collections.vic.containers.plugins.module_utils.vsphere.datastore import ds_path, parse_ds_path

_NETWORK_OPTIONS = dict(
    port_group=dict(type="str"),
    ip=dict(type="str"),
    gateway=dict(type="str"),
)

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    datacenter=dict(type="str"),
    compute=dict(type="str"),
    image_store=dict(type="str"),
    volume_stores=dict(type="dict"),
    bridge_network=dict(type="str"),
    bridge_network_range=dict(type="str"),
    public_network=dict(type="str"),
    public_network_ip=dict(type="str"),
    public_network_gateway=dict(type="str"),
    client_network=dict(type="str"),
    client_network_ip=dict(type="str"),
    client_network_gateway=dict(type="str"),
    management_network=dict(type="str"),
    management_network_ip=dict(type="str"),
    management_network_gateway=dict(type="str"),
    container_networks=dict(type="list", elements="dict", options=dict(
        port_group=dict(type="str", required=True),
        name=dict(type="str"),
        gateway=dict(type="str"),
        ip_range=dict(type="str"),
        dns=dict(type="list", elements="str"),
    )),
    dns_servers=dict(type="list", elements="str"),
    cpu=dict(type="dict", options=dict(
        limit_mhz=dict(type="int"),
        reservation_mhz=dict(type="int"),
        shares=dict(type="str"),
    )),
    memory=dict(type="dict", options=dict(
        limit_mb=dict(type="int"),
        reservation_mb=dict(type="int"),
        shares=dict(type="str"),
    )),
    endpoint=dict(type="dict", options=dict(
        cpus=dict(type="int"),
        memory_mb=dict(type="int"),
    )),
    base_image_size_gb=dict(type="int"),
    registry=dict(type="dict", options=dict(
        ca_certs=dict(type="list", elements="path"),
        insecure=dict(type="list", elements="str"),
        whitelist=dict(type="list", elements="str"),
    )),
    syslog_address=dict(type="str"),
    proxy=dict(type="dict", options=dict(
        http=dict(type="str"),
        https=dict(type="str"),
        no_proxy=dict(type="list", elements="str"),
    )),
    ops_user=dict(type="str"),
    ops_password=dict(type="str", no_log=True),
    appliance_iso=dict(type="str"),
    bootstrap_iso=dict(type="str"),
    tether_iso=dict(type="path"),
    tls=dict(type="dict", options=dict(
        enabled=dict(type="bool"),
        verify=dict(type="bool"),
        cname=dict(type="str"),
        cert_path=dict(type="path"),
        ca_cert=dict(type="path"),
        server_cert=dict(type="path"),
        server_key=dict(type="path", no_log=False),
        organization=dict(type="list", elements="str"),
        key_size=dict(type="int"),
    )),
    debug=dict(type="int", choices=[0, 1, 2, 3]),
    delete_volume_stores=dict(type="bool", default=False),
    timeout=dict(type="int", default=180),
)

# vSphere's "no limit"; given as a limit it removes one set before.
UNLIMITED = -1

# vic-machine create's defaults, for a new VCH.
DEFAULTS = {
    "volume_stores": {},
    "bridge_network_range": "172.16.0.0/12",
    "public_network": {"port_group": "VM Network", "ip": None, "gateway": None},
    "container_networks": [],
    "dns_servers": [],
    "cpu": {"limit_mhz": UNLIMITED, "reservation_mhz": 0, "shares": "normal"},
    "memory": {"limit_mb": UNLIMITED, "reservation_mb": 0, "shares": "normal"},
    "endpoint": {"cpus": 1, "memory_mb": 2048},
    "base_image_size_gb": 8,
    "registry": {"ca_certs": [], "insecure": [], "whitelist": []},
    "syslog_address": None,
    "proxy": {"http": None, "https": None, "no_proxy": []},
    "appliance_iso": None,
    "bootstrap_iso": None,
    "tether_iso_version": None,
    "debug": 0,
}

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_SHARES = ("low", "normal", "high")


def desired(params):
    """The configuration the user asked for; None where an option was left out."""
    name = params["name"]
    if not _NAME.match(name or ""):
        raise SpecError("name", "%r is not a valid VCH name (letters, digits, '.', '_', '-', up to 80)." % name)
    spec = {
        "name": name,
        "image_store": _store(params["image_store"], "image_store", default_path=name),
        "volume_stores": _volume_stores(params["volume_stores"]),
        "bridge_network": params["bridge_network"],
        "bridge_network_range": _cidr(params["bridge_network_range"], "bridge_network_range"),
        "public_network": _network(params, "public_network"),
        "client_network": _network(params, "client_network"),
        "management_network": _network(params, "management_network"),
        "container_networks": _container_networks(params["container_networks"]),
        "dns_servers": _ips(params["dns_servers"], "dns_servers"),
        "cpu": _allocation(params["cpu"], "cpu", "limit_mhz", "reservation_mhz"),
        "memory": _allocation(params["memory"], "memory", "limit_mb", "reservation_mb"),
        "endpoint": _endpoint(params["endpoint"]),
        "base_image_size_gb": _positive(params["base_image_size_gb"], "base_image_size_gb"),
        "registry": _registry(params["registry"]),
        "syslog_address": _syslog(params["syslog_address"]),
        "proxy": _proxy(params["proxy"]),
        "ops_user": params["ops_user"],
        "appliance_iso": _iso(params["appliance_iso"], "appliance_iso"),
        "bootstrap_iso": _iso(params["bootstrap_iso"], "bootstrap_iso"),
        "tether_iso_version": _tether_iso(params["tether_iso"], params["bootstrap_iso"]),
        "debug": params["debug"],
    }
    if params["timeout"] <= 0:
        raise SpecError("timeout", "must be a positive number of seconds, not %s." % params["timeout"])
    return spec


def tls_options(params):
    """The tls suboptions with their defaults, validated for conflicts."""
    tls = dict(params.get("tls") or {})
    for key, default in (("enabled", True), ("verify", True), ("key_size", 2048)):
        if tls.get(key) is None:
            tls[key] = default
    if tls.get("organization") is None:
        tls["organization"] = ["vic.containers"]
    if not tls["enabled"]:
        given = [k for k in ("cname", "ca_cert", "server_cert", "server_key") if tls.get(k)]
        if given:
            raise SpecError("tls", "%s cannot be set with tls.enabled: false." % ", ".join("tls." + k for k in given))
        if tls["verify"] and params.get("tls") and params["tls"].get("verify"):
            raise SpecError("tls", "tls.verify: true needs tls.enabled: true.")
        tls["verify"] = False
    if bool(tls.get("server_cert")) != bool(tls.get("server_key")):
        raise SpecError("tls", "tls.server_cert and tls.server_key go together; give both or neither.")
    if tls.get("server_cert") and tls["verify"] and not tls.get("ca_cert"):
        raise SpecError("tls", "tls.verify needs tls.ca_cert (the CA of the client certificates) "
                               "when tls.server_cert is given.")
    # vic-machine wrote to ./<name>; an absolute path keeps results and re-runs unambiguous.
    tls["cert_path"] = os.path.abspath(tls.get("cert_path") or params["name"])
    return tls


def parse_store(value, option):
    """(datastore, path) from ``ds/path``, ``ds://ds/path`` or ``[ds] path``."""
    text = value.strip()
    if text.startswith("ds://"):
        text = text[len("ds://"):]
    try:
        datastore, path = parse_ds_path(text)
    except ValueError:
        datastore, path = text.split("/", 1) if "/" in text else (text, "")
    path = path.strip("/")
    if not datastore or ".." in path.split("/"):
        raise SpecError(option, "%r is not a datastore path; use 'datastore/path'." % value)
    return datastore, path


def _store(value, option, default_path=""):
    if value is None:
        return None
    datastore, path = parse_store(value, option)
    return "%s/%s" % (datastore, path or default_path)


def _volume_stores(value):
    if value is None:
        return None
    stores = {}
    for label, path in value.items():
        if not _LABEL.match(str(label)):
            raise SpecError("volume_stores", "label %r is not valid: letters, digits, '_' and '-', "
                                             "starting with a letter or digit." % label)
        if not isinstance(path, str):
            raise SpecError("volume_stores", "the path of %r must be a string 'datastore/path'." % label)
        stores[str(label)] = _store(path, "volume_stores.%s" % label).rstrip("/")
    return stores


def _network(params, option):
    port_group = params[option]
    address = _ip_interface(params[option + "_ip"], option + "_ip")
    gateway = _ip(params[option + "_gateway"], option + "_gateway")
    if port_group is None and address is None and gateway is None:
        return None
    if gateway and not address:
        raise SpecError(option + "_gateway", "needs %s_ip (a static address) as well." % option)
    return {"port_group": port_group, "ip": address, "gateway": gateway}


def _container_networks(value):
    if value is None:
        return None
    networks, names = [], set()
    for i, item in enumerate(value):
        option = "container_networks[%d]" % i
        name = item["name"] or item["port_group"]
        if not _LABEL.match(name):
            raise SpecError(option + ".name", "%r is not a valid network name." % name)
        if name in names:
            raise SpecError(option + ".name", "%r is used by two container networks." % name)
        names.add(name)
        gateway = _ip_interface(item["gateway"], option + ".gateway")
        networks.append({
            "name": name,
            "port_group": item["port_group"],
            "gateway": gateway,
            "ip_range": _ip_range(item["ip_range"], option + ".ip_range"),
            "dns": _ips(item["dns"], option + ".dns") or [],
        })
    return sorted(networks, key=lambda n: n["name"])


def _allocation(value, option, limit_key, reservation_key):
    if value is None:
        return None
    limit, reservation = value.get(limit_key), value.get(reservation_key)
    if limit == 0:
        limit = UNLIMITED  # vic-machine's --cpu 0 / --memory 0 meant no limit
    if limit is not None and limit != UNLIMITED and limit < 0:
        raise SpecError("%s.%s" % (option, limit_key), "must be more than 0, or -1 or 0 for no limit, not %s." % limit)
    result = {limit_key: limit, reservation_key: reservation}
    if reservation is not None and reservation < 0:
        raise SpecError("%s.%s" % (option, reservation_key), "must be 0 or more, not %s." % reservation)
    if limit not in (None, UNLIMITED) and reservation is not None and reservation > limit:
        raise SpecError("%s.%s" % (option, reservation_key), "%s is above %s.%s (%s)."
                        % (result[reservation_key], option, limit_key, result[limit_key]))
    shares = value.get("shares")
    if shares is not None:
        shares = str(shares).strip().lower()
        if shares not in _SHARES and not (shares.isdigit() and int(shares) > 0):
            raise SpecError(option + ".shares", "%r is not low, normal, high or a positive number." % value["shares"])
    result["shares"] = shares
    return result


def _endpoint(value):
    if value is None:
        return None
    cpus = _positive(value.get("cpus"), "endpoint.cpus")
    memory = _positive(value.get("memory_mb"), "endpoint.memory_mb")
    if memory is not None and memory < 512:
        raise SpecError("endpoint.memory_mb", "the endpoint VM needs at least 512 MB, not %s." % memory)
    return {"cpus": cpus, "memory_mb": memory}


def _registry(value):
    if value is None:
        return None
    cas = []
    for path in value.get("ca_certs") or []:
        try:
            with open(path) as handle:
                pem = handle.read()
        except OSError as exc:
            raise SpecError("registry.ca_certs", "cannot read %s: %s." % (path, exc.strerror))
        if "-----BEGIN CERTIFICATE-----" not in pem:
            raise SpecError("registry.ca_certs", "%s holds no PEM certificate." % path)
        cas.append(pem)
    return {
        "ca_certs": cas if value.get("ca_certs") is not None else None,
        "insecure": _registries(value.get("insecure"), "registry.insecure"),
        "whitelist": _registries(value.get("whitelist"), "registry.whitelist"),
    }


def _registries(values, option):
    if values is None:
        return None
    for value in values:
        if not re.match(r"^[A-Za-z0-9*][A-Za-z0-9.*-]*(:\d+)?(/.*)?$", value) and not _is_cidr(value):
            raise SpecError(option, "%r is not a registry host[:port] or CIDR." % value)
    return sorted(set(values))


def _syslog(value):
    if not value:
        return value  # None keeps what the VCH has; "" removes it
    match = re.match(r"^(tcp|udp)://([^/:]+):(\d+)$", value)
    if not match or not 0 < int(match.group(3)) < 65536:
        raise SpecError("syslog_address", "%r is not tcp://host:port or udp://host:port." % value)
    return value


def _proxy(value):
    if value is None:
        return None
    for key in ("http", "https"):
        url = value.get(key)
        if url and not re.match(r"^https?://[^/\s]+", url):
            raise SpecError("proxy." + key, "%r is not an http:// or https:// URL." % url)
    return {"http": value.get("http"), "https": value.get("https"), "no_proxy": value.get("no_proxy")}


def _iso(value, option):
    if value is None:
        return None
    datastore, path = parse_store(value, option)
    if not path.lower().endswith(".iso"):
        raise SpecError(option, "%r is not a datastore path to an .iso file." % value)
    return ds_path(datastore, path)


def _tether_iso(path, bootstrap_iso):
    """The version of the local tether ISO to upload, read from its stamp; None when none is given."""
    if path is None:
        return None
    if bootstrap_iso is not None:
        raise SpecError("tether_iso", "is mutually exclusive with bootstrap_iso: upload a local ISO, or boot "
                                      "container VMs from one already on a datastore, not both.")
    try:
        return tether_iso.read_version(path)
    except OSError as exc:
        raise SpecError("tether_iso", "cannot read %s: %s." % (path, exc.strerror or exc))
    except ValueError as exc:
        raise SpecError("tether_iso", "%s; build one with python -m "
                                      "ansible_collections.vic.containers.services.tether.iso --output FILE." % exc)


def _positive(value, option):
    if value is not None and value <= 0:
        raise SpecError(option, "must be a positive number, not %s." % value)
    return value


def _ip(value, option):
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise SpecError(option, "%r is not an IP address." % value)


def _ips(values, option):
    if values is None:
        return None
    return [_ip(v, option) for v in values]


def _ip_interface(value, option):
    if value is None:
        return None
    try:
        return str(ipaddress.ip_interface(value))
    except ValueError:
        raise SpecError(option, "%r is not an IP address or address/prefix." % value)


def _cidr(value, option):
    if value is None:
        return None
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        raise SpecError(option, "%r is not a network in CIDR form (e.g. 172.16.0.0/12)." % value)


def _is_cidr(value):
    try:
        ipaddress.ip_network(value, strict=False)
        return "/" in value
    except ValueError:
        return False


def _ip_range(value, option):
    """``a.b.c.d-e.f.g.h`` or a CIDR, as vic-machine's --container-network-ip-range."""
    if value is None:
        return None
    if "-" in value:
        first, last = value.split("-", 1)
        start, end = _ip(first.strip(), option), _ip(last.strip(), option)
        if ipaddress.ip_address(start) > ipaddress.ip_address(end):
            raise SpecError(option, "%r starts after it ends." % value)
        return "%s-%s" % (start, end)
    return _cidr(value, option)
