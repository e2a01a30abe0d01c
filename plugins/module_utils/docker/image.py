# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The image engine of vic_image / vic_image_info: one inspect, a plan, apply; private.

``present`` pulls the image when it is missing (``pull: missing``) or every run
(``pull: always``: changed only when the name then points to another image), and
gives it the extra names of ``repository``. ``absent`` removes the name; an image
containers use stays unless ``force_absent``, and the plan says which containers.
"""

from __future__ import annotations


from ansible_collections.vic.containers.plugins.module_utils._errors import Conflict, SpecError
from ansible_collections.vic.containers.plugins.module_utils.docker import values
from ansible_collections.vic.containers.plugins.module_utils._plan import Plan


def argument_spec():
    return dict(
        name=dict(type="str", required=True),
        tag=dict(type="str", default="latest"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        source=dict(type="str", choices=["pull", "local"], default="pull"),
        pull=dict(type="str", choices=["missing", "not_present", "always"], default="missing"),
        force_source=dict(type="bool", default=False),
        force_absent=dict(type="bool", default=False),
        repository=dict(type="list", elements="str"),
    )


def reference_of(params):
    return values.full_reference(params["name"], params.get("tag"))


def _inspect(client, reference):
    return client.inspect("inspecting image %s" % reference, client.api.inspect_image, reference)


class ImagePlan(Plan):
    def __init__(self, reference, image):
        super().__init__({}, {})
        self.reference = reference
        self.image = image


def plan(client, params):
    reference = reference_of(params)
    image = _inspect(client, reference)
    result = ImagePlan(reference, image)
    if params["state"] == "absent":
        if image is not None:
            _plan_remove(client, params, result)
        return result
    always = params["pull"] == "always" or params["force_source"]
    if image is None and params["source"] == "local":
        raise SpecError("name", "image %s is not on Docker host %s and source is local; use source: pull"
                        % (reference, client.host))
    if image is None or (always and params["source"] == "pull"):
        result.before = {"id": image["Id"] if image else None}
        result.after = {"id": "(pulled)"}
        result.add("pull image %s" % reference, lambda: _pull(client, result))
    for name in params.get("repository") or ():
        target = values.full_reference(name, params.get("tag"))
        if target == reference:
            continue
        other = _inspect(client, target)
        if image is None or other is None or other["Id"] != image["Id"]:
            result.add("tag image %s as %s" % (reference, target), lambda target=target: _tag(client, result, target))
    return result


def _pull(client, result):
    before = result.image["Id"] if result.image else None
    client.pull(result.reference)
    result.image = _inspect(client, result.reference)
    return result.image is None or result.image["Id"] != before


def _tag(client, result, target):
    repository, tag, _sep = values.split_reference(target)
    client.call("tagging image %s as %s" % (result.reference, target), client.api.tag,
                result.image["Id"] if result.image else result.reference, repository, tag)


def _plan_remove(client, params, result):
    image = result.image
    users = client.call("listing the containers of image %s" % result.reference, client.api.containers,
                        all=True, filters={"ancestor": image["Id"]})
    last_name = len(image.get("RepoTags") or ()) <= 1
    if users and last_name and not params["force_absent"]:
        names = ", ".join(sorted(c["Names"][0].lstrip("/") for c in users if c.get("Names")))
        raise Conflict("Image %s on Docker host %s is used by container%s %s: remove %s or set force_absent: true "
                       "to remove the name anyway." % (result.reference, client.host, "" if len(users) == 1 else "s",
                                                       names, "it" if len(users) == 1 else "them"))
    result.before = {"id": image["Id"], "tags": image.get("RepoTags") or []}
    result.after = {}
    result.add("remove image %s%s" % (result.reference, " (forced)" if params["force_absent"] and users else ""),
               lambda: client.call("removing image %s" % result.reference, client.api.remove_image,
                                   result.reference, force=params["force_absent"]))


def digest_of(image, reference):
    """The repository digest of ``reference``'s repository, when the image came from a registry."""
    repository = values.split_reference(reference)[0]
    for digest in (image or {}).get("RepoDigests") or ():
        if digest.split("@", 1)[0] == repository:
            return digest.split("@", 1)[1]
    return None


def result(client, params, plan_, check_mode):
    if params["state"] == "absent":
        return plan_.image if check_mode else None
    if plan_.changed and not check_mode:
        return _inspect(client, plan_.reference)
    return plan_.image


def info(client, names):
    """The inspect of each named image that exists; every image when ``names`` is None (a list, then inspects)."""
    if names is None:
        names = [row["Id"] for row in client.call("listing images", client.api.images)]
    found = []
    for name in names:
        image = _inspect(client, name)
        if image is not None:
            found.append(image)
    return found
