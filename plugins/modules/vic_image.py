#!/usr/bin/python
# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vic_image
short_description: Pull, tag and remove Docker images on a VCH
version_added: 0.2.0
description:
  - Pulls an image from a registry when it is missing (or every run with O(pull=always)), gives it more names
    (O(repository)) and removes a name (O(state=absent)).
  - On a VCH the image's layers go to the image store, shared by every container made from it.
  - Option names are those of community.docker's C(docker_image) and C(docker_image_pull); C(build),
    C(load), C(push) and C(archive_path) are left out, as a VCH never did them.
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
      - Predicts the changes a real run makes, but with O(pull=always) it cannot know whether the registry has a
        newer image, so it predicts a pull that a real run may find unchanged.
  diff_mode:
    support: full
    details:
      - Shows the image id before and after.
  idempotent:
    support: partial
    details:
      - With O(pull=always) a run changes the image whenever the registry has a newer one.
options:
  name:
    description:
      - Image name, V(registry/repository), with an optional V(:tag) or V(@digest) which wins over O(tag).
    type: str
    required: true
  tag:
    description: Tag of the image when O(name) has none.
    type: str
    default: latest
  state:
    description:
      - V(present) makes sure the image is there (pulled when missing) with the names of O(repository).
      - V(absent) removes the name O(name); the image goes with its last name.
    type: str
    choices: [present, absent]
    default: present
  source:
    description:
      - Where a missing image comes from. V(pull) pulls it from its registry; V(local) only checks that it is
        there and fails naming O(name) when it is not.
    type: str
    choices: [pull, local]
    default: pull
  pull:
    description:
      - V(missing) (C(docker_image_pull)'s V(not_present), also accepted) pulls only when the image is not there;
        V(always) pulls every run and reports a change only when O(name) then names another image.
    type: str
    choices: [missing, not_present, always]
    default: missing
  force_source:
    description: Pull even when the image is there, as O(pull=always) (community.docker's C(docker_image) option).
    type: bool
    default: false
  force_absent:
    description:
      - With O(state=absent), remove the name even when containers use the image (C(docker rmi -f)).
      - Without it the module fails naming those containers.
    type: bool
    default: false
  repository:
    description:
      - More names for the image, V(repository) or V(repository:tag) (C(docker tag)); O(tag) is the tag of a
        name without one.
    type: list
    elements: str
seealso:
  - module: vic.containers.vic_image_info
  - module: vic.containers.vic_container
"""

EXAMPLES = r"""
- name: Pull nginx 1.25 from the team registry
  vic.containers.vic_image:
    name: registry.example/library/nginx
    tag: "1.25"
  register: nginx

- name: Give it a second name
  vic.containers.vic_image:
    name: registry.example/library/nginx:1.25
    repository:
      - web:stable

- name: Remove a name even while containers use the image
  vic.containers.vic_image:
    name: web:stable
    state: absent
    force_absent: true
"""

RETURN = r"""
changes:
  description: The changes made, or with check mode the changes a real run would make, in order.
  returned: always
  type: list
  elements: str
  sample: ["pull image registry.example/library/nginx:1.25"]
image:
  description: The image as C(docker image inspect) shows it; null when it is not there.
  returned: always
  type: dict
id:
  description: The image id, V(sha256:...); null when the image is not there.
  returned: always
  type: str
  sample: sha256:4a1bc05e1cbb3e0c7e2e2d6b1ff01e1f4ac9a8b8f3c5ad2f0df8c53bba9c23a0
digest:
  description: The manifest digest the image was pulled by, from its repository digests; null when not known.
  returned: always
  type: str
  sample: sha256:8c1e2f6e3a0c7d52c5b4f1b8a0c6e6a1f6c2a6e8e7d1b1d5e0e9e5c3e6b3a2d1
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vic.containers.plugins.module_utils.docker import image
from ansible_collections.vic.containers.plugins.module_utils.docker_args import docker_argument_spec, run_engine


def main():
    module = AnsibleModule(argument_spec=dict(docker_argument_spec(), **image.argument_spec()),
                           supports_check_mode=True)
    result, plan = run_engine(module, image, "image")
    found = result["image"]
    module.exit_json(id=found["Id"] if found else None, digest=image.digest_of(found, plan.reference), **result)


if __name__ == "__main__":
    main()
