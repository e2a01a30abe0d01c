#!/usr/bin/python
# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vic_vch
short_description: Deploy, reconfigure and delete a virtual container host (VCH)
version_added: 0.1.0
description:
  - Creates a virtual container host in vSphere, what C(vic-machine create) did, changes it in place
    (C(vic-machine configure)) and deletes it (C(vic-machine delete)).
  - A VCH is a vApp (on vCenter) or a resource pool (on a standalone ESXi host) holding one endpoint VM,
    the image store and volume store folders on datastores, a bridge port group and TLS material.
  - The whole VCH configuration is kept on the endpoint VM (its extraConfig); secrets in it (the TLS server
    key, the ops password) are sealed with a key kept in the image store, never beside them.
  - Options left out keep what an existing VCH has; on a new VCH they take the C(vic-machine create)
    defaults.
  - Options C(vic-machine configure) could not change (the image store, the bridge, public, client and
    management networks, the endpoint VM size, insecure and whitelisted registries, existing volume stores
    and container networks) make the module fail, naming them, rather than rebuild the VCH.
author:
  - vic.containers contributors (@vic-containers)
extends_documentation_fragment:
  - vic.containers.vsphere
  - vic.containers.attributes
  - vic.containers.attributes.actiongroup_vsphere
attributes:
  check_mode:
    support: full
    details:
      - Predicts exactly the changes a real run makes (returned in RV(changes)).
  diff_mode:
    support: full
    details:
      - Shows the VCH configuration before and after (certificates as fingerprints, no secrets).
  idempotent:
    support: full
requirements:
  - pyvmomi
  - cryptography
options:
  name:
    description: Name of the VCH, its vApp or resource pool and its endpoint VM (C(--name)).
    type: str
    required: true
  state:
    description:
      - V(present) creates the VCH or changes it in place; V(absent) deletes it.
      - V(absent) removes the VCH's container VMs, the endpoint VM, the vApp or pool, the image store
        and the endpoint VM's folder. Volume stores are kept unless O(delete_volume_stores=true).
      - V(absent) also removes what the VCH made and recorded at create, the bridge port group and the
        folders above its stores, unless another VCH has that port group as its bridge or a folder holds
        anything not the VCH's; a port group or folder that existed before the VCH is kept.
    type: str
    choices: [present, absent]
    default: present
  datacenter:
    description: Datacenter of the VCH. May be left out when vSphere has only one datacenter.
    type: str
  compute:
    description:
      - Where the VCH pool goes (C(--compute-resource)), required to create a VCH.
      - An inventory path (V(/DC0/host/DC0_C0), V(/DC0/host/DC0_C0/Resources/pool)), a cluster or host
        name, or a path relative to the host folder with or without C(Resources) (V(DC0_C0/pool)).
    type: str
  image_store:
    description:
      - Datastore and folder for container images (C(--image-store)), required to create a VCH.
      - V(datastore/path), V([datastore] path) or V(ds://datastore/path); the path defaults to the VCH name.
      - Images go in C(<path>/VIC/<vch uuid>/images), as VIC laid them out.
    type: str
  volume_stores:
    description:
      - Labelled volume stores (C(--volume-store datastore/path:label)), label to V(datastore/path).
      - Volumes go in C(<path>/volumes). Stores can be added to an existing VCH, not removed or moved.
      - Label V(default) is the one C(docker volume create) uses when no store is named.
    type: dict
  bridge_network:
    description:
      - Port group for the private network between containers (C(--bridge-network)).
      - Created when it does not exist, on the datacenter's distributed switch (vCenter) or on C(vSwitch0)
        of the host (ESXi). Defaults to the VCH name.
    type: str
  bridge_network_range:
    description: Address range of bridge networks (C(--bridge-network-range)); default V(172.16.0.0/12).
    type: str
  public_network:
    description: Port group of the endpoint's public network (C(--public-network)); default V(VM Network).
    type: str
  public_network_ip:
    description:
      - Static address of the endpoint on the public network, V(address/prefix) (C(--public-network-ip)).
      - Without it the endpoint uses DHCP and RV(vch.docker_host) is the address its guest reports.
    type: str
  public_network_gateway:
    description: Gateway of the public network for a static address (C(--public-network-gateway)).
    type: str
  client_network:
    description: Port group Docker clients reach the endpoint on (C(--client-network)); default the public one.
    type: str
  client_network_ip:
    description: Static address on the client network, V(address/prefix) (C(--client-network-ip)).
    type: str
  client_network_gateway:
    description: Gateway of the client network (C(--client-network-gateway)).
    type: str
  management_network:
    description: Port group the endpoint reaches vSphere on (C(--management-network)); default the public one.
    type: str
  management_network_ip:
    description: Static address on the management network, V(address/prefix) (C(--management-network-ip)).
    type: str
  management_network_gateway:
    description: Gateway of the management network (C(--management-network-gateway)).
    type: str
  container_networks:
    description:
      - Existing port groups containers may attach to directly (C(--container-network)).
      - Networks can be added to an existing VCH; existing ones cannot be changed or removed.
    type: list
    elements: dict
    suboptions:
      port_group:
        description: The vSphere port group.
        type: str
        required: true
      name:
        description: The network's name in Docker (C(docker network ls)); defaults to the port group name.
        type: str
      gateway:
        description: Gateway and prefix, V(10.0.0.1/24) (C(--container-network-gateway)).
        type: str
      ip_range:
        description: Addresses given to containers, V(10.0.0.10-10.0.0.99) or a CIDR (C(--container-network-ip-range)).
        type: str
      dns:
        description: DNS servers for containers on this network (C(--container-network-dns)).
        type: list
        elements: str
  dns_servers:
    description: DNS servers of the endpoint VM (C(--dns-server)).
    type: list
    elements: str
  cpu:
    description: CPU allocation of the VCH pool (C(--cpu), C(--cpu-reservation), C(--cpu-shares)).
    type: dict
    suboptions:
      limit_mhz:
        description: Limit in MHz; V(-1) (the default of a new VCH) or V(0), as in vic-machine, for no limit.
        type: int
      reservation_mhz:
        description: Reservation in MHz.
        type: int
      shares:
        description: V(low), V(normal), V(high) or a number of shares.
        type: str
  memory:
    description: Memory allocation of the VCH pool (C(--memory), C(--memory-reservation), C(--memory-shares)).
    type: dict
    suboptions:
      limit_mb:
        description: Limit in MB; V(-1) (the default of a new VCH) or V(0), as in vic-machine, for no limit.
        type: int
      reservation_mb:
        description: Reservation in MB.
        type: int
      shares:
        description: V(low), V(normal), V(high) or a number of shares.
        type: str
  endpoint:
    description: Size of the endpoint VM (C(--endpoint-cpu), C(--endpoint-memory)); fixed at create.
    type: dict
    suboptions:
      cpus:
        description: vCPUs; default 1.
        type: int
      memory_mb:
        description: Memory in MB; default 2048.
        type: int
  base_image_size_gb:
    description: Size of a container's base disk in GB (C(--base-image-size)); default 8.
    type: int
  registry:
    description: Registry settings of the endpoint.
    type: dict
    suboptions:
      ca_certs:
        description: Files with CA certificates to trust for registries (C(--registry-ca)).
        type: list
        elements: path
      insecure:
        description: Registries to reach over plain HTTP or unverified TLS (C(--insecure-registry)).
        type: list
        elements: str
      whitelist:
        description: The only registries the VCH may pull from (C(--whitelist-registry)).
        type: list
        elements: str
  syslog_address:
    description:
      - Where the endpoint sends its logs, V(tcp://host:port) or V(udp://host:port) (C(--syslog-address)).
      - An empty string removes it from an existing VCH.
    type: str
  proxy:
    description: Proxies the endpoint uses to reach registries (C(--http-proxy), C(--https-proxy), C(--no-proxy)).
    type: dict
    suboptions:
      http:
        description: HTTP proxy URL; an empty string removes it.
        type: str
      https:
        description: HTTPS proxy URL; an empty string removes it.
        type: str
      no_proxy:
        description: Hosts and domains reached directly.
        type: list
        elements: str
  ops_user:
    description: vSphere user the endpoint works as (C(--ops-user)); defaults to O(username).
    type: str
  ops_password:
    description: Password of O(ops_user) (C(--ops-password)); defaults to O(password). Kept sealed.
    type: str
  appliance_iso:
    description: Datastore path of the endpoint VM's boot ISO, V([datastore] path/appliance.iso) (C(--appliance-iso)).
    type: str
  bootstrap_iso:
    description:
      - Datastore path of a tether ISO already on a datastore that container VMs boot from.
      - Mutually exclusive with O(tether_iso).
    type: str
  tether_iso:
    description:
      - Local path of the tether ISO to upload to the image store as C(bootstrap.iso), as
        C(vic-machine create --bootstrap-iso) did; container VMs boot from it.
      - Build it with C(python -m ansible_collections.vic.containers.services.tether.iso --output FILE).
      - Its version, read from the ISO, is kept in the VCH record; the upload happens only when
        the image store does not have that version yet, so a re-run uploads nothing.
    type: path
  tls:
    description:
      - TLS of the Docker API. By default a CA, a server certificate (the O(tls.cname) and static address in
        its names) and a client certificate are generated into O(tls.cert_path), keys mode 0600, and
        clients must present a certificate of that CA. O(tls.cert_path) holds only the client's C(ca.pem),
        C(cert.pem) and C(key.pem) (a C(DOCKER_CERT_PATH)); the CA key and the server's certificate and key
        go into its C(admin) folder.
      - Files already in O(tls.cert_path) are reused; an incomplete or mismatched set is an error, never
        overwritten.
    type: dict
    suboptions:
      enabled:
        description: Serve the Docker API over TLS (V(false) is C(--no-tls)); default V(true).
        type: bool
      verify:
        description: Require client certificates (V(false) is C(--no-tlsverify)); default V(true).
        type: bool
      cname:
        description: Name in the server certificate (C(--tls-cname)); default the static public address, else O(name).
        type: str
      cert_path:
        description: Folder of the generated certificates (C(--tls-cert-path)); default V(./<name>).
        type: path
      ca_cert:
        description: CA bundle that signs client certificates, with O(tls.server_cert) (C(--tls-ca)).
        type: path
      server_cert:
        description: Server certificate to use instead of generating one (C(--tls-server-cert)).
        type: path
      server_key:
        description: Key of O(tls.server_cert) (C(--tls-server-key)).
        type: path
      organization:
        description: Organization of generated certificates (C(--organization)); default V(vic.containers).
        type: list
        elements: str
      key_size:
        description: RSA key size of generated certificates (C(--certificate-key-size)); default 2048.
        type: int
  debug:
    description: Debug level of the endpoint (C(--debug)).
    type: int
    choices: [0, 1, 2, 3]
  delete_volume_stores:
    description: With O(state=absent), delete the volume stores and every volume in them (C(delete --force)).
    type: bool
    default: false
  timeout:
    description: Seconds to wait for each vSphere task (C(--timeout)).
    type: int
    default: 180
notes:
  - Every look-up reads the inventory in one PropertyCollector call; an unchanged VCH costs four SOAP calls
    (service content, login, one read, logout).
seealso:
  - module: vic.containers.vic_vch_info
"""

EXAMPLES = r"""
- name: Deploy a VCH for the dev team
  vic.containers.vic_vch:
    hostname: vc.example
    username: administrator@vsphere.local
    password: "{{ vc_password }}"
    name: dev-team-vch
    datacenter: DC0
    compute: /DC0/host/DC0_C0
    image_store: LocalDS_0/dev-team-vch
    volume_stores:
      default: LocalDS_0/volumes
      backup: nfs0/vols
    bridge_network: vch-bridge
    public_network: VM Network
    container_networks:
      - port_group: DC0_DVPG0
        name: services
    cpu:
      limit_mhz: 8000
    memory:
      limit_mb: 16384
    tls:
      cname: vch.example
      cert_path: ./certs/dev-team-vch
  register: vch

- name: Use it
  ansible.builtin.command: docker info
  environment: "{{ vch.vch.docker_env }}"
  changed_when: false

- name: Raise its memory limit in place
  vic.containers.vic_vch:
    name: dev-team-vch
    datacenter: DC0
    memory:
      limit_mb: 32768

- name: Delete it, volume stores included
  vic.containers.vic_vch:
    name: dev-team-vch
    datacenter: DC0
    state: absent
    delete_volume_stores: true
"""

RETURN = r"""
changes:
  description: The changes made, or with check mode the changes a real run would make, in order.
  returned: always
  type: list
  elements: str
  sample: ["create vApp /DC0/host/DC0_C0/Resources/dev-team-vch", "power on endpoint VM dev-team-vch"]
vch:
  description: The VCH after the run; null when it does not exist (after V(absent), or a check-mode create).
  returned: always
  type: dict
  contains:
    id:
      description: Managed object id of the endpoint VM, the VCH id.
      type: str
      sample: vm-42
    name:
      description: VCH name.
      type: str
    uuid:
      description: VCH UUID, also the image store folder name.
      type: str
    pool:
      description: Inventory path of the VCH vApp or resource pool.
      type: str
      sample: /DC0/host/DC0_C0/Resources/dev-team-vch
    endpoint_vm:
      description: Inventory path of the endpoint VM.
      type: str
    docker_host:
      description: Docker API address, C(tcp://address:2376) (2375 without TLS); null until the address is known.
      type: str
    docker_env:
      description: C(DOCKER_HOST), C(DOCKER_TLS_VERIFY) and C(DOCKER_CERT_PATH) for a client.
      type: dict
    docker_connection:
      description:
        - The connection options of the Docker modules for this VCH, for C(module_defaults) of
          C(group/vic.containers.docker) (or community.docker's C(group/community.docker.docker)).
        - Its C(ca_path), C(client_cert) and C(client_key) are set only when the files are in O(tls.cert_path).
        - Null until the endpoint address is known.
      type: dict
      sample:
        docker_host: tcp://10.0.0.5:2376
        tls: true
        validate_certs: true
        ca_path: ./certs/dev-team-vch/ca.pem
        client_cert: ./certs/dev-team-vch/cert.pem
        client_key: ./certs/dev-team-vch/key.pem
    cert_paths:
      description: Paths of the CA, client and server certificates and keys in the certificate folder.
      type: dict
    image_store:
      description: Datastore path of the image store.
      type: str
    volume_stores:
      description: Label to datastore path of each volume store.
      type: dict
    config:
      description: The VCH configuration as recorded on the endpoint VM (no secrets; certificates as fingerprints).
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.vic.containers.plugins.module_utils import _certs as certs
from ansible_collections.vic.containers.plugins.module_utils.vch import engine
from ansible_collections.vic.containers.plugins.module_utils._module import run_vsphere
from ansible_collections.vic.containers.plugins.module_utils.vch.spec import ARGUMENT_SPEC
from ansible_collections.vic.containers.plugins.module_utils.vsphere_args import vsphere_argument_spec


def main():
    module = AnsibleModule(argument_spec=dict(vsphere_argument_spec(), **ARGUMENT_SPEC), supports_check_mode=True)
    if not certs.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=str(certs.CRYPTOGRAPHY_IMPORT_ERROR))
    result = run_vsphere(module, lambda session: _run(module, session))
    module.exit_json(**result)


def _run(module, session):
    params = module.params
    planner = engine.plan_present if params["state"] == "present" else engine.plan_absent
    ctx, plan = planner(session, params)
    if not module.check_mode:
        plan.apply()
    for warning in plan.warnings:
        module.warn(warning)
    vch = engine.result(ctx, params, module.check_mode, plan) if params["state"] == "present" else None
    result = {"changed": plan.changed, "changes": plan.changes, "vch": vch}
    if module._diff:
        # After a real run the record itself is the "after": generated values are known by then.
        after = vch["config"] if vch and not module.check_mode else plan.after
        result["diff"] = {"before": plan.before or {}, "after": after or {}}
    return result


if __name__ == "__main__":
    main()
