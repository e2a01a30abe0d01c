# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The volume engine of vic_volume / vic_volume_info: one inspect, a plan, apply; private.

Options as community.docker's docker_volume has them. A VCH's volume driver is
``vsphere``; ``local`` (the default of docker_volume) is its alias there, so the
two compare equal. ``recreate`` decides what a difference does; a volume in use
is never removed: the plan fails with the containers that use it.
"""

from __future__ import annotations

from ansible_collections.vic.containers.plugins.module_utils._errors import Conflict
from ansible_collections.vic.containers.plugins.module_utils.docker import options as model
from ansible_collections.vic.containers.plugins.module_utils.docker import values
from ansible_collections.vic.containers.plugins.module_utils.docker.options import Option
from ansible_collections.vic.containers.plugins.module_utils._plan import Plan

VCH_DRIVER = "vsphere"
_ALIASES = {"local": VCH_DRIVER}


def _driver(obj, _extra):
    return obj.get("Driver")


def _same_driver(want, have):
    return want == have or _ALIASES.get(want, want) == _ALIASES.get(have, have)


OPTIONS = (
    Option("driver", "str", default="local", observe=_driver),
    Option("driver_options", "dict", shape="dict", aliases=["driver_opts"], normalize=values.string_map,
           observe=lambda obj, _extra: obj.get("Options") or {}),
    Option("labels", "dict", shape="dict", normalize=values.string_map,
           observe=lambda obj, _extra: obj.get("Labels") or {}),
)


def argument_spec():
    spec = model.argument_spec(OPTIONS)
    spec.update(
        name=dict(type="str", required=True, aliases=["volume_name"]),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        recreate=dict(type="str", choices=["never", "options-changed", "always"], default="never"),
    )
    return spec


def _differences(want, volume):
    differ, before, after = model.differences(OPTIONS, want, volume)
    if "driver" in differ and _same_driver(want["driver"], volume.get("Driver")):
        differ.remove("driver")
        after["driver"] = before["driver"]
    return differ, before, after


def _users(volume):
    """How many containers use the volume, when the server says (a VCH does, in UsageData)."""
    return ((volume.get("UsageData") or {}).get("RefCount") or 0) if volume else 0


def plan(client, params):
    name = params["name"]
    volume = client.inspect("inspecting volume %s" % name, client.api.inspect_volume, name)
    result = Plan({}, {})
    result.volume = volume
    if params["state"] == "absent":
        if volume is not None:
            _refuse_in_use(client, volume, "remove it")
            result.before, result.after = _shown(volume), {}
            result.add("remove volume %s" % name, lambda: _remove(client, name))
        return result
    want = model.desired(OPTIONS, params)
    if volume is None:
        result.after = dict(want)
        result.add("create volume %s" % name, lambda: _create(client, name, want))
        return result
    differ, before, after = _differences(want, volume)
    result.before, result.after = before, after
    recreate = params["recreate"]
    if recreate == "always" or (differ and recreate == "options-changed"):
        _refuse_in_use(client, volume, "recreate it (%s)" % (", ".join(differ) if differ else "recreate: always"))
        why = model.differ_phrase(differ) if differ else "recreate: always"
        result.add("recreate volume %s (%s)" % (name, why),
                   lambda: (_remove(client, name), _create(client, name, want)))
    elif differ:
        result.after = dict(before)
        result.warnings.append("volume %s differs in %s; it is kept as it is (recreate: never); set recreate: "
                               "options-changed to recreate it" % (name, ", ".join(differ)))
    return result


def _shown(volume):
    return {"driver": volume.get("Driver"), "driver_options": volume.get("Options") or {},
            "labels": volume.get("Labels") or {}}


def _refuse_in_use(client, volume, doing):
    users = _users(volume)
    if users:
        raise Conflict("Volume %s on Docker host %s is in use by %d container%s: remove %s first to %s."
                       % (volume["Name"], client.host, users, "" if users == 1 else "s",
                          "it" if users == 1 else "them", doing))


def _create(client, name, want):
    # Another driver than local / vsphere: the server says whether it has it.
    driver = want.get("driver") or "local"
    client.call("creating volume %s" % name, client.api.create_volume, name, driver=driver,
                driver_opts=want.get("driver_options") or None, labels=want.get("labels") or None)


def _remove(client, name):
    try:
        client.call("removing volume %s" % name, client.api.remove_volume, name)
    except Conflict as exc:
        raise Conflict("%s Remove the containers that use it first." % str(exc).rstrip("."))


def result(client, params, plan_, check_mode):
    if params["state"] == "absent":
        return plan_.volume if check_mode else None
    if plan_.changed and not check_mode:
        return client.inspect("inspecting volume %s" % params["name"], client.api.inspect_volume, params["name"])
    return plan_.volume


def info(client, name):
    return client.inspect("inspecting volume %s" % name, client.api.inspect_volume, name)
