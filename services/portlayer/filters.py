# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Docker's ``--filter`` semantics, shared by ps, images, volume ls and network ls."""

import datetime
import re
import time

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput


def label_matches(labels, wanted):
    """``key`` (the label is set) or ``key=value`` (set to that value)."""
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)


def keep(filters, tests):
    """Whether an object passes ``filters`` ({name: [values]}): every filter named, any of its values,
    but every one of its labels (dockerd's ``MatchKVList``: ``--filter label=a --filter label=b`` is both).

    ``tests`` maps each filter this listing knows to a test of one value; another name is
    the client's mistake, as Docker answers it.
    """
    for key, values in filters.items():
        test = tests.get(key)
        if test is None:
            raise InvalidInput("invalid filter '%s'" % key)
        if not (all if key == "label" else any)(test(v) for v in values):
            return False
    return True


def check_values(filters, key, valid):
    """Refuse a value of filter ``key`` that is not in ``valid``, as dockerd does (``invalidFilter``)."""
    for value in filters.get(key) or ():
        if value not in valid:
            raise InvalidInput("invalid filter '%s=%s'" % (key, value))


def name_matches(pattern, name):
    """dockerd's name filter: a regular expression searched in the name with its leading slash (``/c1``);
    one that does not compile matches nothing, as in dockerd."""
    try:
        return re.search(pattern, "/" + name) is not None
    except re.error:
        return False


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def until_seconds(text):
    """The moment of a prune's ``until`` filter as unix seconds: a Go duration before now (``24h``), unix
    seconds, or an RFC 3339 time, as dockerd reads it."""
    match = _DURATION.match(text)
    if match:
        return time.time() - float(match.group(1)) * _SECONDS[match.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidInput("invalid filter 'until=%s'" % text) from None
