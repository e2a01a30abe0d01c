# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``--restart`` policies as dockerd has them: which are valid, whether a run that ended is run again, and when.

VIC never had them (vmware/vic#4033). The endpoint applies them: a run that ends
other than by ``docker stop`` / ``docker kill`` with the stop signal powers the
container VM on again after Docker's back-off (``Backoff``); an endpoint start is
dockerd's daemon restart (``wanted(..., restoring=True)``).
"""

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput

NO, ALWAYS, UNLESS_STOPPED, ON_FAILURE = "no", "always", "unless-stopped", "on-failure"
FIRST_DELAY = 0.1      # seconds before the first restart (dockerd's restartmanager: 100 ms)
MAX_DELAY = 60.0       # the back-off doubles up to a minute
RESET_AFTER = 10.0     # a run that lasted this long (seconds) starts the back-off again


def policy_of(host_config):
    """``(name, maximum retry count)`` of a HostConfig; ``no`` when none is given."""
    policy = (host_config or {}).get("RestartPolicy") or {}
    return policy.get("Name") or NO, int(policy.get("MaximumRetryCount") or 0)


def validate(host_config):
    """Refuse what dockerd refuses, in its words; AutoRemove with a policy as the docker CLI says it."""
    policy = (host_config or {}).get("RestartPolicy") or {}
    if not isinstance(policy, dict):
        raise InvalidInput("RestartPolicy must be an object")
    name, retries = policy.get("Name") or "", policy.get("MaximumRetryCount") or 0
    if not isinstance(retries, int) or isinstance(retries, bool):
        raise InvalidInput("invalid restart policy: maximum retry count must be an integer")
    if name in (ALWAYS, UNLESS_STOPPED, NO, ""):
        if retries != 0:
            raise InvalidInput("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    elif name == ON_FAILURE:
        if retries < 0:
            raise InvalidInput("invalid restart policy: maximum retry count cannot be negative")
    else:
        raise InvalidInput("invalid restart policy: unknown policy '%s'; use one of '%s', '%s', '%s', or '%s'"
                           % (name, NO, ALWAYS, ON_FAILURE, UNLESS_STOPPED))
    if (host_config or {}).get("AutoRemove") and name not in (NO, ""):
        raise InvalidInput("Conflicting options: --restart and --rm")


def wanted(host_config, code, restarts, stopped, restoring=False):
    """Whether a run that ended with ``code`` is run again, after ``restarts`` automatic restarts so far.

    ``stopped``: it was ended by ``docker stop`` / ``kill`` with the stop signal, which cancels every
    policy while the endpoint runs. ``restoring``: the endpoint is starting, which is dockerd's daemon
    restart: then, as dockerd's restart manager decides, ``always`` runs even a stopped container again,
    ``on-failure`` one whose last run failed, and ``unless-stopped`` (the one difference from ``always``)
    only one that was not stopped.
    """
    name, retries = policy_of(host_config)
    if name == NO or (stopped and not restoring):
        return False
    if name == ON_FAILURE:
        return code != 0 and (retries <= 0 or restarts < retries)
    if name == UNLESS_STOPPED:
        return not stopped
    return name == ALWAYS


class Backoff:
    """dockerd's restart back-off of one container: 100 ms, doubling, at most a minute; a run of 10 s or
    more starts it again. Kept in the endpoint's memory: after an endpoint restart it starts again too."""

    def __init__(self):
        self.delay = 0.0

    def next(self, ran_seconds):
        """The delay before the restart that follows a run of ``ran_seconds``."""
        if ran_seconds is not None and ran_seconds >= RESET_AFTER:
            self.delay = 0.0
        self.delay = FIRST_DELAY if self.delay == 0 else min(self.delay * 2, MAX_DELAY)
        return self.delay
