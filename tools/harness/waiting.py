# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Waiting on a condition, not for a guessed time: ``until`` (threads, processes) and ``until_async``
(an event loop) poll a check until it holds or a deadline passes, then fail saying what was awaited.

The interval only bounds how late a met condition is noticed; the timeout is the failure, never the
normal path, so it is generous: a loaded CI machine is slow, not broken. Stdlib only."""

import asyncio
import inspect
import time

TIMEOUT = 20.0
INTERVAL = 0.05


class WaitTimeout(AssertionError):
    """The condition did not hold before the deadline; the message says what was awaited."""


def _message(what, timeout, last):
    text = what() if callable(what) else what
    return "gave up after %gs waiting for %s (last check: %r)" % (timeout, text, last)


def until(check, what, timeout=TIMEOUT, interval=INTERVAL):
    """``check()``'s first true value, asking every ``interval`` seconds; WaitTimeout after ``timeout``.

    ``what`` (a string, or a callable giving one at failure time, e.g. to add a log) completes
    "waiting for ..." in the failure.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(_message(what, timeout, value))
        time.sleep(interval)


async def until_async(check, what, timeout=TIMEOUT, interval=INTERVAL):
    """``until`` on an event loop: ``check`` may be a plain function or a coroutine function, and the
    loop runs the awaited work between checks."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(_message(what, timeout, value))
        await asyncio.sleep(interval)
