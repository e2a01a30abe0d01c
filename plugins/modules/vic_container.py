#!/usr/bin/python
# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vic_container
short_description: Create, start, stop, recreate and remove Docker containers on a VCH
version_added: 0.2.0
description:
  - Manages one container by name, as community.docker's C(docker_container) does, with its option names for the
    subset a VCH supports; a playbook moves between the two by changing the module name.
  - On a VCH each container is a VM (a container VM) in the VCH's pool, its image's layers attached as disks.
  - Only the options a task gives are compared with the container; when one differs (see O(comparisons)) the
    container is removed and created again, and RV(changes) says which options differ. A VCH has no
    C(docker update), so no option is changed in place.
  - The image is compared by id, so a container made from an older image of the same name is recreated.
  - An existing container costs one inspect of it and one of its image when nothing changes.
  - Options a container VM cannot honour (O(privileged), O(cap_add), host bind mounts in O(volumes), ...) make
    the module fail, naming them, rather than being ignored.
author:
  - vic.containers contributors (@vic-containers)
extends_documentation_fragment:
  - vic.containers.docker
  - vic.containers.attributes
  - vic.containers.docker.actiongroup_docker
attributes:
  check_mode:
    support: full
    details:
      - Predicts exactly the changes a real run makes (returned in RV(changes)).
  diff_mode:
    support: full
    details:
      - Shows the compared options and whether the container runs, before and after.
  idempotent:
    support: full
options:
  name:
    description: Name of the container.
    type: str
    required: true
  image:
    description:
      - Image of the container, V(repository:tag) or V(repository@digest); pulled when it is not there.
      - Required to create (or recreate) the container.
    type: str
  state:
    description:
      - V(started) makes sure the container exists as configured and runs; V(stopped) that it exists and does not
        run; V(present) that it exists, leaving it as it is (a recreated container runs again if it ran);
        V(absent) removes it.
      - On a VCH a container VM that powers on is running as far as the Docker API says (C(State.Status)).
    type: str
    choices: [present, started, stopped, absent]
    default: started
  command:
    description: Command (C(Cmd)), a list or a string split as a shell would.
    type: raw
  entrypoint:
    description: Entrypoint, a list; given, the image's command is not used unless O(command) gives one.
    type: list
    elements: str
  env:
    description:
      - Environment variables. Values must be strings; quote V(yes), V(true) and numbers meant as text.
      - Compared with the container's after the image's own variables are added.
    type: dict
  labels:
    description: Labels; compared with the container's after the image's own labels are added.
    type: dict
  volumes:
    description:
      - Volumes to mount, V(name:/path), V(name:/path:ro) or V(/path) (an anonymous volume).
      - Host bind mounts (V(/host/path:/path)) are refused on a VCH; use a named volume (M(vic.containers.vic_volume)).
    type: list
    elements: str
  networks:
    description:
      - Networks to connect the container to; the first one is its network mode unless O(network_mode) is given.
      - Compared by name, V(allow_more_present) by default (a container on more networks is kept), as
        community.docker compares them.
    type: list
    elements: dict
    suboptions:
      name:
        description: Network name.
        type: str
        required: true
      ipv4_address:
        description: IPv4 address of the container on the network.
        type: str
      aliases:
        description: Names of the container on the network.
        type: list
        elements: str
  network_mode:
    description: Network mode, V(bridge), V(none) or a network name; V(host) and V(container:name) are refused on a VCH.
    type: str
  published_ports:
    description:
      - Ports to publish, V([ip:][host_port:]container_port[/protocol]) as in C(docker run -p).
      - The VCH endpoint listens on them (by default on its own address, the VCH's public address) and carries
        each connection to the container through its tether channel; TCP only, a V(/udp) or V(/sctp) port is refused.
      - A malformed spec fails naming the entry.
    type: list
    elements: str
    aliases: [ports]
  memory:
    description: Memory of the container (its VM on a VCH), a size such as V(512M) or V(2G).
    type: str
  cpus:
    description: CPUs (on a VCH, vCPUs of the container VM, rounded up).
    type: float
  restart_policy:
    description: Restart policy; the VCH endpoint decides whether it supports it.
    type: str
    choices: ["no", on-failure, always, unless-stopped]
  restart_retries:
    description: Retries of the V(on-failure) restart policy.
    type: int
  hostname:
    description: Host name of the container.
    type: str
  domainname:
    description: Domain name of the container.
    type: str
  user:
    description: User the command runs as, V(user), V(uid) or V(uid:gid).
    type: str
  working_dir:
    description: Working directory of the command.
    type: str
  tty:
    description: Allocate a pseudo-TTY.
    type: bool
  interactive:
    description: Keep stdin open (C(OpenStdin)).
    type: bool
  auto_remove:
    description: Remove the container when its command ends.
    type: bool
  stop_timeout:
    description: Seconds to wait for the container to stop before it is killed; also used by this module to stop it.
    type: int
  stop_signal:
    description: Signal that stops the container.
    type: str
  dns_servers:
    description: DNS servers of the container.
    type: list
    elements: str
  recreate:
    description: Recreate the container even when nothing differs.
    type: bool
    default: false
  keep_volumes:
    description: When removing (or recreating) the container, keep its anonymous volumes.
    type: bool
    default: true
  force_kill:
    description: Kill the container instead of stopping it.
    type: bool
    default: false
    aliases: [forcekill]
  comparisons:
    description:
      - How options are compared with the container's, option name to V(strict), V(ignore) or
        V(allow_more_present) (lists and dicts only); V(*) sets all the others.
      - Every option is V(strict) but O(networks) (V(allow_more_present)); O(image) compares image ids.
    type: dict
  privileged:
    description: Refused on a VCH (a container VM has no host to be privileged on); given, the module fails.
    type: raw
  capabilities:
    description:
      - Refused on a VCH (no host capabilities); given, the module fails. community.docker's name for
        C(docker run --cap-add).
    type: raw
  cap_add:
    description: Refused on a VCH (no host capabilities); given, the module fails. The docker CLI's name.
    type: raw
  cap_drop:
    description: Refused on a VCH (no host capabilities); given, the module fails.
    type: raw
  devices:
    description: Refused on a VCH (a container VM cannot see the endpoint's devices); given, the module fails.
    type: raw
  links:
    description: Refused on a VCH (put the containers on one network instead); given, the module fails.
    type: raw
  volumes_from:
    description: Refused on a VCH (a volume is a disk of one VM; mount the named volume); given, the module fails.
    type: raw
  publish_all_ports:
    description: Publish every port the image exposes on a random host port (C(docker run -P)).
    type: bool
  pid_mode:
    description: Refused on a VCH (each container VM has its own kernel); given, the module fails.
    type: raw
  ipc_mode:
    description: Refused on a VCH (each container VM has its own kernel); given, the module fails.
    type: raw
notes:
  - A container whose options differ is recreated, never changed in place; its anonymous volumes go with it unless
    O(keep_volumes=true) (the default), its named volumes stay.
seealso:
  - module: vic.containers.vic_container_info
  - module: vic.containers.vic_image
  - module: vic.containers.vic_volume
"""

EXAMPLES = r"""
- name: A web container on the services network, with a volume
  vic.containers.vic_container:
    name: web
    image: registry.example/library/nginx:1.25
    state: started
    command: [nginx, -g, daemon off;]
    env:
      MODE: prod
    labels:
      app: web
    volumes:
      - pgdata:/var/lib/data
    networks:
      - name: services
    memory: 512M
    cpus: 1
  register: web

- name: Stop it
  vic.containers.vic_container:
    name: web
    state: stopped

- name: Remove it
  vic.containers.vic_container:
    name: web
    state: absent
"""

RETURN = r"""
changes:
  description:
    - The changes made, or with check mode the changes a real run would make, in order.
    - A recreation names the options that differ.
  returned: always
  type: list
  elements: str
  sample: ["recreate container web (env differs)", "start container web"]
container:
  description: The container as C(docker container inspect) shows it; null when it does not exist.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vic.containers.plugins.module_utils.docker import container
from ansible_collections.vic.containers.plugins.module_utils.docker_args import docker_argument_spec, run_engine


def main():
    module = AnsibleModule(argument_spec=dict(docker_argument_spec(), **container.argument_spec()),
                           supports_check_mode=True)
    result, _plan = run_engine(module, container, "container")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
