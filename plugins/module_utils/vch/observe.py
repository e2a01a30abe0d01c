# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Observed state of VCHs, from one inventory read; private to the collection."""

from __future__ import annotations

import uuid

from ansible_collections.vic.containers.plugins.module_utils._errors import VicError
from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.plugins.module_utils._certs import fingerprint, set_paths
from ansible_collections.vic.containers.plugins.module_utils.vsphere.datastore import ds_path, parse_ds_path
from ansible_collections.vic.containers.plugins.module_utils.vsphere.inventory import same

# The files of the set in tls.cert_path shown by role (the CA key is not: only certs' own code reads it).
CERT_ROLES = ("ca", "cert", "key", "server_cert", "server_key")
_UUID_NAMESPACE = uuid.UUID("6f1d3c36-2f4e-5b1e-9a55-8e2d0f6b7a10")


class Vch:
    """One VCH as vSphere shows it: its pool, endpoint VM and decoded record."""

    def __init__(self, inventory, pool, vm=None, config=None, sealed=None, key_id=None):
        self.inventory = inventory
        self.pool = pool
        self.vm = vm
        self.config = config
        self.sealed = sealed
        self.key_id = key_id

    @property
    def name(self):
        return self.config["name"] if self.config else self.pool.get("name")

    @property
    def complete(self):
        return self.vm is not None and self.config is not None

    @property
    def extra_config(self):
        return codec.as_dict(self.vm.get("config.extraConfig")) if self.vm else {}

    def vms(self):
        """(ours, foreign): the VMs in the VCH pool made by this VCH, and any others."""
        ours, foreign = [], []
        for vm in self.inventory.vms_in(self.pool):
            (ours if _ours(vm) else foreign).append(vm)
        return ours, foreign

    def containers(self):
        return [vm for vm in self.vms()[0] if vm is not self.vm]


def vch_uuid(session, pool_moid):
    """The VCH UUID, derived from its pool so a half-made VCH finds its folders again."""
    return str(uuid.uuid5(_UUID_NAMESPACE, "%s/%s" % (session.instance_uuid, pool_moid)))


def endpoints(inventory):
    """Every VCH with an endpoint VM, decoded; unreadable records raise naming the VM."""
    found = []
    for vm in inventory.of_type("VirtualMachine"):
        managed = vm.get("config.managedBy")
        if managed is None or managed.extensionKey != codec.MANAGED_BY_EXTENSION \
                or managed.type != codec.MANAGED_BY_ENDPOINT:
            continue
        try:
            decoded = codec.decode(codec.as_dict(vm.get("config.extraConfig")))
        except codec.ConfigError as exc:
            raise VicError("%s (endpoint VM %s)" % (exc, inventory.path(vm)))
        if decoded is None:
            continue
        config, sealed, key_id = decoded
        pool = inventory.get(vm.get("resourcePool"))
        found.append(Vch(inventory, pool, vm, config, sealed, key_id))
    return found


def find(inventory, name, datacenter, parent_pool=None):
    """The VCH called ``name`` in ``datacenter``: complete, half-made (a pool only), or None."""
    matches = [v for v in endpoints(inventory)
               if v.name == name and v.pool is not None and inventory.within(v.pool, datacenter)]
    if len(matches) > 1 and parent_pool is not None:
        matches = [v for v in matches if same(inventory.parent(v.pool), parent_pool)]
    if len(matches) > 1:
        raise VicError("More than one VCH is named %r in datacenter %s (%s); set compute to choose."
                       % (name, datacenter.get("name"), ", ".join(inventory.path(v.pool) for v in matches)))
    if matches:
        return matches[0]
    if parent_pool is not None:
        pool = inventory.child_pool(parent_pool, name)
        if pool is not None and _made_by_us(inventory, pool, name):
            return Vch(inventory, pool)
        return None
    # No compute given: a half-made VCH is still found by its vApp's annotation, wherever it is (a
    # resource pool says nothing of who made it, so on ESXi compute is needed to find one).
    vapps = [p for p in inventory.of_type("VirtualApp")
             if p.get("name") == name and inventory.within(p, datacenter) and _made_by_us(inventory, p, name)]
    if len(vapps) > 1:
        raise VicError("More than one half-made VCH is named %r in datacenter %s (%s); set compute to choose."
                       % (name, datacenter.get("name"), ", ".join(inventory.path(p) for p in vapps)))
    return Vch(inventory, vapps[0]) if vapps else None


def bridge_port_groups(inventory, name, datacenter):
    """The distributed port groups VCH ``name`` made as its bridge network (its description says so)."""
    return [pg for pg in inventory.of_type("DistributedVirtualPortgroup")
            if pg.get("config.description") == codec.BRIDGE_DESCRIPTION % name and inventory.within(pg, datacenter)]


def _made_by_us(inventory, pool, name):
    """Whether a pool without an endpoint VM is a VCH an earlier run left half-made.

    A vApp says so in its annotation; a resource pool (ESXi) cannot, so it
    counts only while it holds no VM that is not ours.
    """
    if pool.type == "VirtualApp":
        return pool.get("vAppConfig.annotation") == codec.POOL_ANNOTATION % name
    return all(_ours(vm) for vm in inventory.vms_in(pool))


def _ours(vm):
    managed = vm.get("config.managedBy")
    return managed is not None and managed.extensionKey == codec.MANAGED_BY_EXTENSION


def display(config):
    """The configuration as a diff and a result show it: certificates as fingerprints."""
    if config is None:
        return {}
    shown = {k: v for k, v in config.items() if k != "created"}
    tls = dict(shown.get("tls") or {})
    for key in ("server_cert", "client_ca"):
        if tls.get(key):
            tls[key] = "sha256:" + fingerprint(tls[key])[:16]
    shown["tls"] = tls
    registry = dict(shown.get("registry") or {})
    registry["ca_certs"] = ["sha256:" + fingerprint(pem)[:16] for pem in registry.get("ca_certs") or ()]
    shown["registry"] = registry
    return shown


def docker_host(config, vm=None):
    """tcp://address:port of the endpoint: its static public IP, else the address the guest reports."""
    address = (config.get("public_network") or {}).get("ip")
    address = address.split("/")[0] if address else (vm.get("guest.ipAddress") if vm else None)
    if not address:
        return None
    port = 2376 if (config.get("tls") or {}).get("enabled") else 2375
    if ":" in address:
        address = "[%s]" % address
    return "tcp://%s:%d" % (address, port)


def summary(vch, cert_path=None):
    """The result a module returns for one VCH (no secrets)."""
    inventory, config = vch.inventory, vch.config or {}
    host = docker_host(config, vch.vm) if config else None
    env = {}
    if host:
        env["DOCKER_HOST"] = host
        tls = config.get("tls") or {}
        if tls.get("verify"):
            env["DOCKER_TLS_VERIFY"] = "1"
        if cert_path and tls.get("enabled"):
            env["DOCKER_CERT_PATH"] = cert_path
    return {
        "id": vch.vm.moid if vch.vm else None,
        "name": vch.name,
        "uuid": config.get("uuid"),
        "complete": vch.complete,
        "datacenter": config.get("datacenter"),
        "compute": config.get("compute"),
        "pool": inventory.path(vch.pool) if vch.pool is not None else None,
        "pool_type": vch.pool.type if vch.pool is not None else None,
        "endpoint_vm": inventory.path(vch.vm) if vch.vm else None,
        "power_state": vch.vm.get("runtime.powerState") if vch.vm else None,
        "endpoint_address": host.split("//")[1].rsplit(":", 1)[0].strip("[]") if host else None,
        "docker_host": host,
        "docker_env": env,
        "image_store": image_store_path(config) if config else None,
        "volume_stores": {label: volume_store_path(p) for label, p in (config.get("volume_stores") or {}).items()},
        "version": config.get("product_version"),
        "config": display(vch.config),
        "cert_paths": _cert_paths(cert_path),
        "containers": [{"id": vm.moid, "name": vm.get("name"), "power_state": vm.get("runtime.powerState")}
                       for vm in vch.containers()] if vch.pool is not None else [],
    }


def _cert_paths(cert_path):
    if not cert_path:
        return {}
    paths = set_paths(cert_path)
    return {role: paths[role] for role in CERT_ROLES}


def split_store(store):
    datastore, path = store.split("/", 1) if "/" in store else (store, "")
    return datastore, path


def image_store_folder(config):
    """(datastore, folder) of the VCH's images: ``<path>/VIC/<uuid>`` as VIC laid it out."""
    datastore, path = split_store(config["image_store"])
    return datastore, "/".join(p for p in (path, "VIC", config["uuid"]) if p)


def image_store_path(config):
    datastore, folder = image_store_folder(config)
    return ds_path(datastore, folder + "/images")


def volume_store_folder(store):
    datastore, path = split_store(store)
    return datastore, "/".join(p for p in (path, "volumes") if p)


def volume_store_path(store):
    return ds_path(*volume_store_folder(store))


def trace_file(config):
    """(datastore, path) of the file that lists what a VCH made until its endpoint VM records it."""
    datastore, folder = image_store_folder(config)
    return datastore, folder + "/" + codec.CREATED_FILE


def made_folders(created):
    """(datastore, path) of the folders a VCH recorded as made."""
    return [parse_ds_path(text) for text in (created or {}).get("folders") or ()]


def removable(made, leaves, trees):
    """The outermost folders of ``made`` (or below one, on the way to a leaf) that hold nothing but the way
    to ``leaves`` (the folders being deleted) and what is in them; ``trees`` lists the folders under each of
    ``made`` and their entries. A folder holding anything else is kept, and so are the ones above it."""
    def ours(ds, path):
        return any(lds == ds and (_within(path, leaf) or _within(leaf, path)) for lds, leaf in leaves)

    found = []
    for ds, top in made:
        tree = trees.get((ds, top)) or {}
        # Folders of the tree above a leaf, outer ones first (the leaves themselves go anyway).
        for folder in sorted(f for f in tree if _within(f, top) and
                             any(lds == ds and _within(leaf, f) and leaf != f for lds, leaf in leaves)):
            if any(f_ds == ds and _within(folder, f) for f_ds, f in found):
                continue
            paths = [path for name, entries in tree.items() if _within(name, folder)
                     for path in [name] + [name + "/" + entry for entry in entries]]
            if all(ours(ds, path) for path in paths):
                found.append((ds, folder))
    return found


def beyond(folders, leaves):
    """``folders`` that are not inside one of ``leaves`` (those go with the leaf)."""
    return [(ds, path) for ds, path in folders if not any(lds == ds and _within(path, leaf) for lds, leaf in leaves)]


def outermost(folders):
    """``folders`` without those inside another of them (deleting a folder deletes what it holds)."""
    unique = list(dict.fromkeys(folders))
    return [(ds, path) for ds, path in unique
            if not any(o_ds == ds and o_path != path and _within(path, o_path) for o_ds, o_path in unique)]


def last_with(folders, ds, path):
    """(``folders`` not holding ``[ds] path``, the ones that do): the former are deleted first."""
    holding = [f for f in folders if f[0] == ds and _within(path, f[1])]
    return [f for f in folders if f not in holding], holding


def _within(path, folder):
    return path == folder or path.startswith(folder + "/")
