# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""An engine's plan (the VCH engine's and the Docker engines'): the steps from what is there to what the
task asks.

The descriptions are the module's ``changes``: the check-mode prediction and, with
``before`` / ``after``, the diff. Running the steps is the apply.
"""

from __future__ import annotations


class Plan:
    """Ordered (description, run) steps, the compared values before and after, and warnings."""

    def __init__(self, before=None, after=None):
        self.steps = []
        self.before = before  # None: the object did not exist
        self.after = after
        self.warnings = []

    def add(self, description, run):
        self.steps.append((description, run))

    @property
    def changes(self):
        return [description for description, _run in self.steps]

    @property
    def changed(self):
        return bool(self.steps)

    def apply(self):
        """Run the steps; a step returning False made no change (a pull that found the same image)."""
        changed = []
        for description, run in self.steps:
            if run() is not False:
                changed.append(description)
        return changed

    def diff(self):
        return {"before": self.before, "after": self.after}
