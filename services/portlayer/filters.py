# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Docker's ``--filter`` semantics, shared by ps, images, volume ls and network ls."""

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput


def label_matches(labels, wanted):
    """``key`` (the label is set) or ``key=value`` (set to that value)."""
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)


def keep(filters, tests):
    """Whether an object passes ``filters`` ({name: [values]}): every filter named, any of its values.

    ``tests`` maps each filter this listing knows to a test of one value; another name is
    the client's mistake, as Docker answers it.
    """
    for key, values in filters.items():
        test = tests.get(key)
        if test is None:
            raise InvalidInput("invalid filter '%s'" % key)
        if not any(test(v) for v in values):
            return False
    return True
