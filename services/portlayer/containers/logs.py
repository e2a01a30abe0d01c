# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``docker logs`` from the container VM's log file on the datastore.

The tether writes each chunk of output as a line of Docker's json-file format
to the VM's file-backed serial port ``[ds] <id>/output.log``; this reads it back
(one HTTPS GET) and applies ``--since``, ``--until``, ``--tail`` and
``--timestamps``. The lines' format is ``services/tether/protocol.py``'s, the
one both sides use.

Each run's output follows a start line, and the tether's last line is not output
but how the process ended: what the endpoint records when it learnt of the end
only from the VM powering off (``last_run``).
"""

import collections
import datetime
import re

from ansible_collections.vic.containers.services.tether import protocol

LOG_FILE = protocol.LOG_FILE  # in the container VM's folder


def parse(data):
    """(time, stream number, bytes) of each output line; torn lines, start and exit lines are skipped."""
    entries = []
    for line in (data or b"").splitlines():
        parsed = protocol.parse_log_line(line)
        if parsed is None or parsed[0] != protocol.LOG_TEXT:
            continue
        try:
            entries.append((_time(parsed[3]), parsed[1], parsed[2].encode()))
        except ValueError:
            continue
    return entries


Run = collections.namedtuple("Run", "code started_at finished_at")
"""The log's last run: ``code`` and ``finished_at`` of its exit line (None when the VM went off while the
process ran: no exit line after its start line), ``started_at`` of its start line (None when the log has none)."""


def last_run(data):
    """The ``Run`` the log ends with, or None for a log with no start or exit line."""
    code = finished = None
    for line in reversed((data or b"").splitlines()):
        parsed = protocol.parse_log_line(line)
        if parsed is None or parsed[0] not in (protocol.LOG_EXIT, protocol.LOG_START):
            continue
        try:
            moment = _time(parsed[3])
        except ValueError:
            continue
        if parsed[0] == protocol.LOG_START:
            return Run(code, moment, finished)
        if finished is not None:
            break       # the exit line of the run before: this run's start line is not in the log
        code, finished = parsed[1], moment
    return Run(code, None, finished) if finished is not None else None


_STAMP = re.compile(r"^(?P<base>[^.]+?)(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)?$")


def _time(text):
    """RFC 3339 with up to nanoseconds (Go's format) -> an aware datetime, cut to microseconds."""
    match = _STAMP.match(text)
    if match is None:
        raise ValueError("not a timestamp: %r" % text)
    fraction = (match.group("fraction") or "")[:6].ljust(6, "0")
    zone = match.group("zone") or "Z"
    return datetime.datetime.fromisoformat("%s.%s%s" % (match.group("base"), fraction,
                                                        "+00:00" if zone == "Z" else zone))


def select(entries, streams, since=None, until=None, tail=None):
    chosen = [e for e in entries if e[1] in streams and (since is None or e[0] >= since)
              and (until is None or e[0] <= until)]
    if tail is not None and tail >= 0:
        chosen = chosen[len(chosen) - tail:] if tail else []
    return chosen


def render(stamp, data, timestamps):
    if not timestamps:
        return data
    # Docker prints RFC 3339 with nanoseconds; the log keeps microseconds.
    return stamp.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z").encode() + b" " + data


def moment(seconds):
    """A ``since`` / ``until`` of ``docker logs`` as a datetime; 0 (the CLI's default) means unset."""
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc) if seconds else None
