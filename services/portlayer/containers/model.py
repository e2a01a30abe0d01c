# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A container as its VM keeps it: the record in extraConfig, how its last run ended, its ids and times.

Its whole configuration is JSON in its VM's extraConfig (``guestinfo.vice./container``);
how its process ended is a second key (``guestinfo.vice..exit``, with the restart count)
so recording an exit never rewrites the configuration; what its tether boots is a
third (``protocol.BOOT_KEY``, the boot spec, which alone holds the container's private
host key).
"""

import datetime
import json
import secrets as random
import uuid

from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore
from ansible_collections.vic.containers.services.portlayer.containers import envseal
from ansible_collections.vic.containers.services.tether import protocol

RECORD_KEY = codec.PREFIX + "container"
EXIT_KEY = "guestinfo.vice..exit"
# Set in the same reconfigure that detaches a container's shared disks before its VM is destroyed: a
# Destroy that then fails leaves a container that cannot run any more (its layers are gone), which
# shows as Docker's "dead" ("removal in progress") until ``docker rm`` is tried again.
REMOVING_KEY = "guestinfo.vice..removing"


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment):
    """RFC 3339 with nanosecond-style precision as Docker prints it; the zero time for None."""
    if moment is None:
        return "0001-01-01T00:00:00Z"
    if isinstance(moment, str):
        return moment
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text):
    if not text or text.startswith("0001-"):
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


class Container:
    """One container as its VM shows it (a read-only view built from the live cache)."""

    def __init__(self, moid, props, record, exit_state, boot_text="", removing=False):
        self.moid = moid
        self.removing = removing
        # Its VM is (or is about to be) on for a maintenance boot (maintenance.py): not a run of the container.
        self.maintenance = _in_maintenance(boot_text)
        self.ref = props.get("ref")
        self.props = props
        self.record = record
        self.exit = exit_state or {}
        self.boot_text = boot_text
        self.cache = {}  # views built from this state of the VM (see persona/views.py row)

    @property
    def id(self):
        return self.record["id"]

    @property
    def name(self):
        return self.record["name"]

    @property
    def config(self):
        return self.record["config"]

    @property
    def host_config(self):
        return self.record["host_config"]

    @property
    def image_id(self):
        return self.record["image"]["id"]

    @property
    def powered_on(self):
        return self.props.get("runtime.powerState") == "poweredOn"

    @property
    def running(self):
        """Whether the container runs: its VM is on, and not for a maintenance boot."""
        return self.powered_on and not self.maintenance

    @property
    def started_at(self):
        boot = self.props.get("summary.runtime.bootTime")
        return boot if self.running and boot is not None else parse_time(self.exit.get("started_at"))

    @property
    def finished_at(self):
        return None if self.running else parse_time(self.exit.get("finished_at"))

    @property
    def exit_code(self):
        return 0 if self.running else int(self.exit.get("code", 0))

    @property
    def status(self):
        """Docker's State.Status."""
        if self.running:
            return "running"
        if self.removing:
            return "dead"
        return "exited" if self.exit.get("finished_at") else "created"

    @property
    def restart_count(self):
        """Automatic restarts since the last ``docker start`` (kept with the exit record)."""
        return int(self.exit.get("restart_count", 0))

    @property
    def restart_due(self):
        """Whether its restart policy was to power it on again when its last run ended."""
        return bool(self.exit.get("restart_due"))

    def boot_spec(self):
        """The boot spec its VM holds (a dict), or None for a container made before boot specs."""
        return json.loads(self.boot_text) if self.boot_text else None

    def volume_names(self):
        return [m["name"] for m in self.record.get("mounts", ())]


def _in_maintenance(boot_text):
    try:
        return bool(boot_text) and json.loads(boot_text).get(protocol.MAINTENANCE) is True
    except (ValueError, AttributeError):
        return False


def decode(moid, props, vch_key):
    """The Container on a VM of the pool, or None when the VM is not a container of ours; its env opened with
    ``vch_key`` (envseal.py)."""
    managed = props.get("config.managedBy")
    if managed is None or managed.type != codec.MANAGED_BY_CONTAINER:
        return None
    values = codec.as_dict(props.get("config.extraConfig"))
    text = codec.join_value(values, RECORD_KEY)
    if not text:
        return None
    try:
        record = envseal.open_env(json.loads(text), vch_key)
        exit_state = json.loads(values.get(EXIT_KEY) or "{}")
    except ValueError:      # envseal.EnvSealError too: not a container of this VCH
        return None
    return Container(moid, props, record, exit_state, codec.join_value(values, protocol.BOOT_KEY),
                     removing=values.get(REMOVING_KEY) == "true")


def new_id():
    return random.token_hex(32)


def vm_folder(datastore_name, name):
    return datastore.ds_path(datastore_name, name)


def vm_name(name, container_id):
    return "%s-%s" % (name, container_id[:12])


def bios_uuid(vch_uuid, container_id):
    """As VIC: derived from the VCH and the container, so the VM is found again by id."""
    return str(uuid.uuid5(uuid.UUID(vch_uuid), container_id))


def record_values(record, vch_key):
    """extraConfig values of a container's record, its env sealed with ``vch_key`` (envseal.py)."""
    return codec.split_value(RECORD_KEY, json.dumps(envseal.seal(record, vch_key), sort_keys=True,
                                                    separators=(",", ":")))


def boot_values(spec, before=None):
    """extraConfig values of a boot spec (``protocol.boot_spec``), split as the record is; given the spec the VM
    holds (``before``), its chunks the new one has no more of are emptied (vSphere then drops them)."""
    values = codec.split_value(protocol.BOOT_KEY, json.dumps(spec, sort_keys=True, separators=(",", ":")))
    if before is not None:
        values = dict({key: "" for key in boot_values(before)}, **values)
    return values


def exit_value(started_at, finished_at, code, restart_count=0, stopped=False, restart_due=False):
    """How a run ended; ``restart_count``: automatic restarts so far (the one about to follow included),
    ``stopped``: ended by ``docker stop`` / ``kill``, so no restart policy applies, even after an endpoint restart;
    ``restart_due``: its restart policy powers it on again (after an endpoint restart too)."""
    return json.dumps({"started_at": iso(started_at), "finished_at": iso(finished_at), "code": code,
                       "restart_count": restart_count, "stopped": stopped, "restart_due": restart_due},
                      sort_keys=True)
