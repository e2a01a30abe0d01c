# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Restart policies as dockerd has them (services/portlayer/containers/restart.py) and the log's exit line."""

import datetime

import pytest
from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput
from ansible_collections.vic.containers.services.portlayer.containers import logs, restart


def host(name, retries=0, **extra):
    return dict({"RestartPolicy": {"Name": name, "MaximumRetryCount": retries}}, **extra)


@pytest.mark.parametrize("config", [{}, host(""), host("no"), host("always"), host("unless-stopped"),
                                    host("on-failure"), host("on-failure", 3), {"AutoRemove": True}])
def test_valid_policies(config):
    restart.validate(config)


@pytest.mark.parametrize("config, message", [
    (host("bogus"), "invalid restart policy: unknown policy 'bogus'; use one of 'no', 'always', 'on-failure', "
                    "or 'unless-stopped'"),
    (host("always", 2), "invalid restart policy: maximum retry count can only be used with 'on-failure'"),
    (host("on-failure", -1), "invalid restart policy: maximum retry count cannot be negative"),
    (host("always", AutoRemove=True), "Conflicting options: --restart and --rm"),
])
def test_refused_policies_in_dockerds_words(config, message):
    with pytest.raises(InvalidInput) as refused:
        restart.validate(config)
    assert str(refused.value) == message


def test_which_runs_are_run_again():
    assert not restart.wanted(host("no"), 1, 0, False)
    assert restart.wanted(host("always"), 0, 5, False) and restart.wanted(host("unless-stopped"), 0, 5, False)
    assert not restart.wanted(host("always"), 1, 0, True)  # docker stop / kill with the stop signal
    assert not restart.wanted(host("on-failure"), 0, 0, False)
    assert restart.wanted(host("on-failure"), 1, 100, False)
    assert restart.wanted(host("on-failure", 2), 1, 1, False) and not restart.wanted(host("on-failure", 2), 1, 2, False)


def test_backoff_doubles_to_a_minute_and_starts_again_after_a_long_run():
    backoff = restart.Backoff()
    delays = [backoff.next(0.5) for _attempt in range(12)]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8] and delays[-1] == 60.0 and max(delays) == 60.0
    assert backoff.next(10.0) == 0.1
    assert backoff.next(None) == 0.2


def _at(second, micro=0):
    return datetime.datetime(2026, 1, 2, 3, 4, second, micro, datetime.timezone.utc)


def test_the_log_start_and_exit_lines_are_not_output_and_give_the_last_run():
    data = (b'{"start": true, "time": "2026-01-02T03:04:05Z"}\n'
            b'{"log": "hi\\n", "stream": "stdout", "time": "2026-01-02T03:04:05.1Z"}\n'
            b'{"exit": 3, "time": "2026-01-02T03:04:06.000001Z"}\n'
            b'{"start": true, "time": "2026-01-02T03:04:06.5Z"}\n'
            b'{"log": "again\\n", "stream": "stderr", "time": "2026-01-02T03:04:07Z"}\n'
            b'{"exit": 143, "time": "2026-01-02T03:04:08.5Z"}\n{"exit": 1, "ti')
    assert [entry[2] for entry in logs.parse(data)] == [b"hi\n", b"again\n"]
    assert logs.last_run(data) == (143, _at(6, 500000), _at(8, 500000))
    # The VM went off while the run's process ran: a start line with no exit after it.
    assert logs.last_run(data + b'\n{"start": true, "time": "2026-01-02T03:04:09Z"}\n{"log": "x", "time": "20') == (
        None, _at(9), None)
    # A run whose start line is not in the log (a log written before the tether wrote one).
    assert logs.last_run(b'{"exit": 3, "time": "2026-01-02T03:04:06Z"}\n{"exit": 4, "time": "2026-01-02T03:04:07Z"}\n'
                         ) == (4, None, _at(7))
    assert logs.last_run(b'{"log": "x", "stream": "stdout", "time": "2026-01-02T03:04:05Z"}\n') is None
    assert logs.last_run(None) is None
