# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``docker events``: what happened to containers, images, volumes and networks, as Docker reports it.

Events are kept in memory (the last ``KEEP``), as the Docker daemon does: they
describe what this endpoint did and saw, they are not state.
"""

import asyncio
import collections
import time

from ansible_collections.vic.containers.services.portlayer.filters import label_matches

KEEP = 1024


class Events:
    def __init__(self):
        self._recent = collections.deque(maxlen=KEEP)
        self._queues = set()

    def publish(self, kind, action, actor_id, attributes=None):
        stamp = time.time_ns()
        event = {"Type": kind, "Action": action, "Actor": {"ID": actor_id, "Attributes": attributes or {}},
                 "scope": "local", "time": stamp // 1_000_000_000, "timeNano": stamp}
        if kind == "container":
            # The fields clients before API 1.22 read, which the docker CLI still prints.
            event.update(status=action, id=actor_id, **{"from": (attributes or {}).get("image", "")})
        self._recent.append(event)
        for queue in list(self._queues):
            queue.put_nowait(event)

    def since(self, start_ns):
        return [e for e in self._recent if e["timeNano"] >= start_ns]

    def subscribe(self):
        queue = asyncio.Queue()
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue):
        self._queues.discard(queue)


def matches(event, filters):
    """Docker's event filters: type, event (action), container, image, volume, network, label."""
    if filters.get("type") and event["Type"] not in filters["type"]:
        return False
    if filters.get("event") and event["Action"].split(":")[0] not in filters["event"]:
        return False
    actor = event["Actor"]
    for kind in ("container", "image", "volume", "network"):
        wanted = filters.get(kind)
        if wanted:
            if event["Type"] != kind:
                return False
            names = {actor["ID"], actor["ID"][:12], actor["Attributes"].get("name", "")}
            if not names & set(wanted):
                return False
    return all(label_matches(actor["Attributes"], label) for label in filters.get("label") or ())


def container_attributes(container):
    """The attributes a container's events carry: its labels, name and image."""
    return dict(container.config.get("Labels") or {}, name=container.name, image=container.config.get("Image"))
