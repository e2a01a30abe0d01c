# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``POST /service/notifications``: Distribution's webhook (authenticated by the shared secret) feeds
the repository index and the audit log; the user is the token's ``sub`` Distribution reports as
the event's actor."""

import hmac
import json
import logging

from aiohttp import web

from ansible_collections.vic.containers.services.registry import errors, index, replication
from ansible_collections.vic.containers.services.registry.views import state_of

LOG = logging.getLogger(__name__)
MANIFEST_TYPES = ("manifest", "image.index", "manifest.list")


def _is_manifest(target):
    media = target.get("mediaType", "")
    return any(kind in media for kind in MANIFEST_TYPES)


def apply(session, event):
    """Index and audit one event; (repository, tag) when it pushed a tag."""
    action, target = event.get("action"), event.get("target") or {}
    actor = (event.get("actor") or {}).get("name", "")
    repository, digest, tag = target.get("repository"), target.get("digest"), target.get("tag")
    if not repository:
        return None
    if action == "delete":
        index.deleted(session, actor, repository, digest, tag)
    elif _is_manifest(target):  # blob events: the manifest's event covers the artifact
        if action == "push":
            index.pushed(session, actor, repository, digest, target.get("mediaType"), target.get("size"), tag)
            return (repository, tag) if tag else None
        if action == "pull":
            index.pulled(session, actor, repository, digest, tag)
    return None


async def notifications(request):
    state = state_of(request)
    scheme, _sep, secret = request.headers.get("Authorization", "").partition(" ")
    if not state.notify_secret or scheme.lower() != "bearer" or \
            not hmac.compare_digest(secret.strip().encode(), state.notify_secret.encode()):
        raise errors.error(401, "notifications need the shared secret")
    try:
        envelope = json.loads(await request.read())
    except ValueError as error:
        raise errors.bad_request("not a notification envelope: %s" % error) from error
    with state.sessions.begin() as session:
        pushes = [pushed for pushed in (apply(session, event) for event in envelope.get("events", [])) if pushed]
    if pushes:
        replication.on_push(state, pushes)
    return web.Response(status=200)
