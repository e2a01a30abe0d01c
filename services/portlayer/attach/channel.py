# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The endpoint's end of the tether channel, as the rest of the endpoint uses it.

Every container VM has a network-backed serial port that dials the endpoint
(VIC's serial concentrator). The tether inside the VM is the SSH *server* on
that byte stream and the endpoint the SSH *client*, although the VM dials the
TCP connection. ``docs/tether-protocol.md`` is the contract; in short:

* the tether names its container in its SSH version string and proves it with
  the container's own ed25519 host key, made at ``docker create``;
* the endpoint logs in with a key derived from the VCH key, so it keeps the
  same identity across restarts without storing another secret;
* one ``control@vic`` session per connection carries JSON lines: the tether's
  ``hello`` and ``exit`` events, the endpoint's ``signal`` requests;
* ``attach`` sessions carry the primary process's streams, ``exec`` sessions a
  new process's; both end with ``exit-status``.

What both sides agree on is ``services/tether/protocol.py``; the listening and
the connections are ``concentrator.py``, the sessions ``sessions.py``. This
module gathers the names the persona and the port layer use, so they need not
know that split.
"""

from ansible_collections.vic.containers.services.portlayer.attach.concentrator import (
    Concentrator,
    ConnectionEvent,
    endpoint_client_key,
)
from ansible_collections.vic.containers.services.portlayer.attach.sessions import Attachment, signal_name
from ansible_collections.vic.containers.services.tether.protocol import (
    ATTACH_SUBSYSTEM,
    CONTROL_SUBSYSTEM,
    DEFAULT_TERM_SIZE,
    PROTOCOL_VERSION,
    SERVER_VERSION_PREFIX,
    STDERR,
    STDOUT,
    USERNAME,
    announced_id,
    new_host_key,
    public_key_text,
)

__all__ = [
    "Concentrator", "ConnectionEvent", "Attachment", "endpoint_client_key", "signal_name",
    "new_host_key", "public_key_text", "announced_id",
    "PROTOCOL_VERSION", "SERVER_VERSION_PREFIX", "USERNAME", "CONTROL_SUBSYSTEM", "ATTACH_SUBSYSTEM",
    "STDOUT", "STDERR", "DEFAULT_TERM_SIZE",
]
