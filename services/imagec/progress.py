# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The progress messages of a pull, as dockerd sends them and the docker CLI shows them: one JSON
object per layer step, with a bar while bytes move."""

import math
import time

_STEP = 512 * 1024
_PERIOD = 0.1


class HeldProgress:
    """Progress messages held back until ``open()``: layers download while the pull still checks the image
    config, and a refused config must be the request's error, sent before any message."""

    def __init__(self, progress):
        self._progress = progress
        self._held = []  # None once open

    def __call__(self, message):
        if self._held is None:
            self._progress(message)
        else:
            self._held.append(message)

    def open(self):
        held, self._held = self._held, None
        for message in held:
            self._progress(message)


def step(status, short):
    """A layer's step without a bar: "Pulling fs layer", "Download complete", ..."""
    return {"status": status, "progressDetail": {}, "id": short}


def throttled(progress, status, short):
    """A (done, total) callback sending Docker's progress messages as dockerd paces them: after half a MiB
    more and a tenth of a second at the soonest, and always the last one."""
    last = {"done": -_STEP, "at": -math.inf}

    def report(done, total):
        now = time.monotonic()
        if done != total and (done - last["done"] < _STEP or now - last["at"] < _PERIOD):
            return
        last.update(done=done, at=now)
        message = {"status": status, "progressDetail": {"current": done, "total": total}, "id": short,
                   "progress": _bar(done, total)}
        progress(message)
    return report


def _bar(done, total):
    """The bar the docker CLI shows (it prints the server's text as is)."""
    if not total:
        return "%s" % _human(done)
    width = 50
    filled = min(width, int(width * done / total))
    arrow = "=" * max(0, filled - 1) + (">" if filled else "")
    return "[%s%s] %8s/%s" % (arrow, " " * (width - len(arrow)), _human(done), _human(total))


def _human(size):
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return ("%d%s" if unit == "B" else "%.3g%s") % (size, unit)
        size /= 1000.0
    return "%d" % size
