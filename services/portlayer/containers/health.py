# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Health checks as dockerd runs them (``HEALTHCHECK``, ``docker run --health-cmd``): the probe runs in the
container through its tether, like ``docker exec``; its results make ``State.Health``, the ``(healthy)`` of
``docker ps``, ``health_status`` events and the ``health=`` filter.

The probe loop is dockerd's (daemon/health.go): the first probe one interval after the start, the start
interval while the container is starting within its start period, failures in the start period not
counted until one probe has passed, ``Retries`` failures in a row make it unhealthy, the last five results
kept. As dockerd keeps ``State.Health`` with the container's state, the endpoint keeps it in memory: after
an endpoint restart a running container's health is ``starting`` again until its next probe (the tether
reports the running process again, which starts the loop anew).
"""

import asyncio
import collections
import logging
import time

from ansible_collections.vic.containers.plugins.module_utils._errors import VicError
from ansible_collections.vic.containers.services.portlayer import events

NONE, STARTING, HEALTHY, UNHEALTHY = "none", "starting", "healthy", "unhealthy"
SECOND = 1_000_000_000  # the API's durations are nanoseconds
DEFAULTS = {"Interval": 30 * SECOND, "Timeout": 30 * SECOND, "StartPeriod": 0, "StartInterval": 5 * SECOND}
DEFAULT_RETRIES = 3
KEEP_RESULTS = 5
MAX_OUTPUT = 4096         # bytes of a probe's output kept, as dockerd
LOG = logging.getLogger("vic.endpoint")


def merged(own, image):
    """The container's Healthcheck over the image's, field by field, as ``docker create`` does: no test of
    its own takes the image's test; a zero duration or retry count takes the image's."""
    if not own:
        return image or None
    if not image:
        return own
    result = dict(own)
    if not result.get("Test"):
        result["Test"] = image.get("Test")
    for field in (*DEFAULTS, "Retries"):
        if not result.get(field) and image.get(field):
            result[field] = image[field]
    return result


def probe_command(healthcheck):
    """The probe's argv, or None when the container has no health check (none given, or ``NONE``)."""
    test = (healthcheck or {}).get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    if test[0] == "CMD":
        return list(test[1:]) or None
    return None  # dockerd runs no probe of a type it does not know


def _duration(healthcheck, field):
    return (healthcheck.get(field) or DEFAULTS[field]) / SECOND


def _stamp(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + (".%09dZ" % int(seconds % 1 * 1e9))


class Health:
    """One container's ``State.Health``."""

    def __init__(self):
        self.status = STARTING
        self.failing_streak = 0
        self.log = collections.deque(maxlen=KEEP_RESULTS)

    def view(self):
        return {"Status": self.status, "FailingStreak": self.failing_streak, "Log": list(self.log)}

    def record(self, result, retries, in_start_period):
        """Take one probe's result; the status after it."""
        self.log.append(result)
        if result["ExitCode"] == 0:
            self.failing_streak = 0
            self.status = HEALTHY
        elif not (self.status == STARTING and in_start_period):
            self.failing_streak += 1
            if self.failing_streak >= retries:
                self.status = UNHEALTHY
        return self.status


class Monitors:
    """The health checks of the running containers of one port layer."""

    def __init__(self, portlayer):
        self.portlayer = portlayer
        self.health = {}   # container id -> Health
        self._tasks = {}   # container id -> (started_at, task)

    def status(self, container):
        """``none`` for a container without a health check, else its status (``starting`` until a probe says)."""
        if probe_command(container.config.get("Healthcheck")) is None:
            return NONE
        found = self.health.get(container.id)
        return found.status if found is not None else STARTING

    def view(self, container):
        """``State.Health`` of a container with a health check that ran since this endpoint started."""
        found = self.health.get(container.id)
        return found.view() if found is not None else None

    def started(self, container_id, started_at):
        """The tether reports a run of the container (again after each redial): start its probe loop for that run."""
        known = self._tasks.get(container_id)
        if known is not None and known[0] == started_at:
            return
        self.stop(container_id)
        try:
            container = self.portlayer.containers.find(container_id)
        except VicError:
            return
        if probe_command(container.config.get("Healthcheck")) is None:
            return
        health = self.health.setdefault(container_id, Health())
        health.status, health.failing_streak = STARTING, 0
        self._tasks[container_id] = (started_at, self.portlayer.spawn(self._loop(container_id)))

    def stop(self, container_id):
        known = self._tasks.pop(container_id, None)
        if known is not None and known[1] is not asyncio.current_task():
            known[1].cancel()

    def forget(self, container_id):
        """The container is gone."""
        self.stop(container_id)
        self.health.pop(container_id, None)

    async def _loop(self, container_id):
        began = time.monotonic()
        health = self.health[container_id]
        while True:
            container = self.portlayer.containers.find(container_id)
            check = container.config["Healthcheck"]
            start_period = _duration(check, "StartPeriod")
            starting = health.status == STARTING and time.monotonic() - began < start_period
            await asyncio.sleep(_duration(check, "StartInterval" if starting else "Interval"))
            container = self.portlayer.containers.find(container_id)
            if not container.running:
                self._tasks.pop(container_id, None)
                return
            result = await self._probe(container, check)
            before = health.status
            retries = check.get("Retries") or DEFAULT_RETRIES
            after = health.record(result, retries, time.monotonic() - began < start_period)
            if after != before:
                LOG.info("container %s: %s (health check)", container_id[:12], after)
                self.portlayer.events.publish("container", "health_status: " + after, container_id,
                                              events.container_attributes(container))

    async def _probe(self, container, check):
        """One run of the probe in the container: dockerd's result entry."""
        start = time.time()
        timeout = _duration(check, "Timeout")
        spec = {"Cmd": probe_command(check), "Tty": False, "User": container.config.get("User") or "",
                "WorkingDir": container.config.get("WorkingDir") or ""}
        try:
            code, output = await asyncio.wait_for(self._run(container.id, spec), timeout)
        except asyncio.TimeoutError:
            code, output = -1, "Health check exceeded timeout (%gs)" % timeout
        except VicError as exc:
            code, output = -1, str(exc)
        return {"Start": _stamp(start), "End": _stamp(time.time()), "ExitCode": code, "Output": output}

    async def _run(self, container_id, spec):
        attachment = await self.portlayer.tether.exec(container_id, spec)
        chunks, size = [], 0
        try:
            async for _stream, data in attachment:
                if size < MAX_OUTPUT:
                    chunks.append(data[:MAX_OUTPUT - size])
                    size += len(chunks[-1])
            code = await attachment.exit_code()
        finally:
            attachment.close()
        return (-1 if code is None else code), b"".join(chunks).decode(errors="replace")
