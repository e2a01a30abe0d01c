# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A layer blob's fetch shared by pulls and layer stores (services/imagec/pull.py): the last holder to let go
stops an unfinished fetch, and its scratch folder goes once the fetch has ended."""

import asyncio
import os

from ansible_collections.vic.containers.services.imagec import pull
from ansible_collections.vic.containers.tools.harness.waiting import until_async


async def _until_gone(path):
    # The folder goes on an executor thread that nothing awaits (pull._Fetch._remove).
    return await until_async(lambda: not os.path.exists(path), "%s to be removed" % path)


def _fetch(work, body):
    forgotten = []
    task = asyncio.ensure_future(body())
    return pull._Fetch(task, "sha256:blob", str(work), forgotten.append), forgotten


def test_the_last_holder_letting_go_stops_the_fetch_and_its_folder_goes_after_it_ends(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    started, ended = asyncio.Event(), []

    async def fetching():
        started.set()
        try:
            await asyncio.sleep(60)  # a download that is still going when it is stopped: the case under test
        finally:
            (work / "disk").write_bytes(b"still writing while it stops")
            ended.append(True)

    async def scenario():
        fetch, forgotten = _fetch(work, fetching)
        fetch.acquire()  # a layer store takes it over
        await started.wait()  # cancelled before its first step, the fetch would never run its finally
        fetch.release()  # the pull lets go; the store still holds it
        # Nothing to wait for: what is checked is that nothing happens, so give a wrong stop time to show.
        await asyncio.sleep(0.05)
        running = not fetch.task.done() and work.exists() and not forgotten
        fetch.release()
        gone = await _until_gone(work)
        return running, fetch.task.cancelled(), forgotten[:1] == [fetch], gone
    running, cancelled, forgotten, gone = asyncio.run(scenario())
    assert running and cancelled and forgotten and gone and ended


def test_a_finished_fetch_keeps_its_disk_until_released(tmp_path):
    work = tmp_path / "work"
    work.mkdir()

    async def fetched():
        (work / "disk").write_bytes(b"packed")
        return "disk"

    async def scenario():
        fetch, forgotten = _fetch(work, fetched)
        result = await fetch.task
        # Nothing to wait for: what is checked is that nothing happens, so give a wrong removal time to show.
        await asyncio.sleep(0.05)
        kept = (work / "disk").exists() and not forgotten
        fetch.release()
        return result, kept, not fetch.task.cancelled(), forgotten[:1] == [fetch], await _until_gone(work)
    assert asyncio.run(scenario()) == ("disk", True, True, True, True)


def test_a_failed_fetch_is_forgotten_at_once_so_no_later_pull_joins_it(tmp_path):
    work = tmp_path / "work"
    work.mkdir()

    async def failing():
        raise OSError("registry gone")

    async def scenario():
        fetch, forgotten = _fetch(work, failing)
        await asyncio.gather(fetch.task, return_exceptions=True)
        await until_async(lambda: forgotten, "the failed fetch to be forgotten while a pull still holds it")
        early = forgotten == [fetch] and work.exists()
        fetch.release()
        return early, await _until_gone(work)
    assert asyncio.run(scenario()) == (True, True)
