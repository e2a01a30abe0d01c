# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``GET /events``: past events since a time, then live ones until ``until`` or the client leaves."""

import asyncio
import json
import time

from aiohttp import web

from ansible_collections.vic.containers.services.portlayer.events import matches
from ansible_collections.vic.containers.services.persona.query import portlayer, query_filters, query_unix_time


def _time_ns(request, name):
    seconds = query_unix_time(request, name)
    return None if seconds is None else int(seconds * 1_000_000_000)


async def events(request):
    state = portlayer(request)
    filters = query_filters(request)
    since = _time_ns(request, "since")
    until = _time_ns(request, "until")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    queue = state.events.subscribe()
    try:
        if since is not None:
            for event in state.events.since(since):
                if (until is None or event["timeNano"] <= until) and matches(event, filters):
                    await response.write(json.dumps(event).encode() + b"\n")
        while True:
            timeout = None if until is None else (until - time.time_ns()) / 1e9
            if timeout is not None and timeout <= 0:
                break
            try:
                event = await asyncio.wait_for(queue.get(), timeout)
            except asyncio.TimeoutError:
                break
            if matches(event, filters):
                await response.write(json.dumps(event).encode() + b"\n")
    finally:
        state.events.unsubscribe(queue)
    await response.write_eof()
    return response


ROUTES = (("GET", "/events", events),)
