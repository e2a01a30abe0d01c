# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Container names on Docker networks: which names each running container resolves to which address.

dockerd answers them with its embedded DNS server (127.0.0.11), VIC with a DNS server on the
endpoint's bridge address; here the endpoint is not on the containers' networks, so it hands each
container's tether its *peers* and the tether writes them in the container's /etc/hosts
(docs/containers.md, "Names on networks"). As dockerd:

* on a user-defined network (every one but the default ``bridge``), a container resolves each other
  running container on it by its name, its ``--network-alias`` aliases, its short id and its
  ``--hostname``, and the aliases of its own ``--link NAME:ALIAS`` to containers on that network;
* on the default ``bridge``, only its ``--link NAME[:ALIAS]`` entries (the alias, the linked
  container's hostname, and its name when the alias is another).

Everything is read from the live cache: no vSphere call. ``Publisher`` sends each connected tether its
peers again whenever they change, batched, in the background.
"""

import asyncio
import logging

from ansible_collections.vic.containers.services.tether import protocol

LOG = logging.getLogger("vic.endpoint.peers")
DEFAULT_NETWORK = "bridge"
# Changes that come within this many seconds (a start storm, a compose file's containers) are sent together.
BATCH_SECONDS = 0.2


def parse_link(text):
    """``(name, alias)`` of a ``--link`` entry: ``NAME[:ALIAS]``, as the CLI sends it, or dockerd's stored
    ``/NAME:/CONTAINER/ALIAS``; the alias is the name when none is given."""
    name, _sep, alias = str(text).partition(":")
    name = name.strip("/")
    return name, alias.rstrip("/").rsplit("/", 1)[-1] or name


def hostname(container):
    """The container's hostname: ``--hostname``, else its short id (boot.py gives the tether the same)."""
    return container.config.get("Hostname") or container.id[:12]


def dns_names(container, endpoint):
    """dockerd's DNSNames of a container on a user-defined network: its name, its aliases on that network
    (``endpoint``, of its record), its short id and its hostname."""
    return [container.name] + list(endpoint.get("aliases") or ()) + [container.id[:12], hostname(container)]


class PeerIndex:
    """The running containers by network, from one reading of the cache; ``entries`` of each.

    Each running container's line on each network (its address and names) is made once here and shared
    by the entries of every container that resolves it: a batch costs the endpoint one pass over the
    lines, not a new list of names per container and peer (benchmarks/bench_peers.py)."""

    def __init__(self, containers):
        self.running = [c for c in containers if c.running and not c.removing]
        self._by_name = {c.name: c for c in containers}
        self._by_id = {c.id: c for c in containers}
        self._on = {}       # network name -> [(container id, ip, names)] of running containers with an address
        for container in sorted(self.running, key=lambda c: c.name):
            for network, endpoint in container.record.get("networks", {}).items():
                if endpoint.get("ip"):
                    self._on.setdefault(network, []).append(
                        (container.id, endpoint["ip"], _names(dns_names(container, endpoint))))

    def find(self, ref):
        """A container by name, full id or unique id prefix, as a link names it; None if none."""
        found = self._by_name.get(ref) or self._by_id.get(ref)
        if found is None and ref:
            matches = [c for c in self._by_id.values() if c.id.startswith(ref)]
            found = matches[0] if len(matches) == 1 else None
        return found

    def entries(self, container):
        """``[(ip, [name, ...])]`` the container resolves: its peers, in its networks' order, each peer's
        names deduplicated; names a hosts file cannot hold (``protocol.host_name``) are left out. Whether the
        container runs is the caller's to judge: one whose tether connects runs, whatever the cache says yet."""
        found = []
        networks = container.record.get("networks", {})
        for network, endpoint in networks.items():
            if network == DEFAULT_NETWORK:
                continue
            linked = self._linked(endpoint.get("links") or ())
            found.extend((ip, _names(names + linked[peer_id]) if peer_id in linked else names)
                         for peer_id, ip, names in self._on.get(network, ()) if peer_id != container.id)
        if DEFAULT_NETWORK in networks:
            found.extend(self._legacy_links(container))
        return found

    def _linked(self, links):
        """{container id: [alias, ...]} of a network endpoint's ``--link`` entries."""
        linked = {}
        for link in links:
            name, alias = parse_link(link)
            target = self.find(name)
            if target is not None:
                linked.setdefault(target.id, []).append(alias)
        return linked

    def _legacy_links(self, container):
        lines = {}
        for link in container.host_config.get("Links") or ():
            name, alias = parse_link(link)
            target = self.find(name)
            theirs = (target.record.get("networks", {}).get(DEFAULT_NETWORK) or {}) if target is not None else {}
            if target is None or not target.running or not theirs.get("ip"):
                continue
            names = [alias, hostname(target)] + ([target.name] if alias != target.name else [])
            lines[theirs["ip"]] = _names(lines.get(theirs["ip"], []) + names)
        return [(ip, names) for ip, names in lines.items() if names]


def _names(names):
    """``names`` in order, each once, without those a hosts file cannot hold."""
    return [name for name in dict.fromkeys(names) if protocol.host_name(name)]


class Publisher:
    """Keeps each connected tether's peers current: sent on each connection (``entries_for``, the
    Concentrator's ``hosts_of``) and, after the cache changed, again to each tether whose peers changed.

    Changes are batched (``BATCH_SECONDS``) and each tether has at most one request in flight, which sends
    the latest peers when it is done: a storm of starts costs each tether a few messages, not one per start,
    and no Docker request waits for a tether.
    """

    def __init__(self, state, batch_seconds=BATCH_SECONDS):
        self._state = state
        self._batch = batch_seconds
        self._flush = None
        self._sent = {}         # container id -> the peers its tether took last
        self._wanted = {}       # container id -> its peers now, while a request for them is due
        self._sending = {}      # container id -> its request task
        state.cache.listen(self._changed)

    def entries_for(self, container_id):
        """The container's peers now, remembered as sent (the Concentrator sends them on a new connection,
        which may come before the cache shows the VM on: its tether runs, so it is given its peers)."""
        index = PeerIndex(self._state.containers.known())
        container = index.find(container_id)
        entries = index.entries(container) if container is not None else []
        self._sent[container_id] = entries
        return entries

    def _changed(self, _moid, _before, _after):
        if self._flush is None:
            self._flush = self._state.spawn(self._flush_later())

    async def _flush_later(self):
        await asyncio.sleep(self._batch)
        self._flush = None
        index = PeerIndex(self._state.containers.known())
        connected = [c for c in index.running if self._state.tether.connected(c.id)]
        for gone in set(self._sent) - {c.id for c in connected}:
            del self._sent[gone]    # a new connection is sent its peers anyway
        for container in connected:
            entries = index.entries(container)
            if self._sent.get(container.id) != entries:
                self._wanted[container.id] = entries
                if container.id not in self._sending:
                    self._sending[container.id] = self._state.spawn(self._send(container.id))

    async def _send(self, container_id):
        try:
            while (entries := self._wanted.pop(container_id, None)) is not None:
                # Refused or not, not sent again until they change: a tether that cannot take them (an old one,
                # a dead link) is not asked at every batch; its next connection is sent them anyway.
                await self._state.tether.send_hosts(container_id, entries)
                self._sent[container_id] = entries
        finally:
            self._sending.pop(container_id, None)
