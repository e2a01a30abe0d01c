# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The in-memory feed between a layer's download and its packer (services/imagec/pull.py): blocks,
back-pressure on the downloader, and what a failed download or a stopped packer does."""

import asyncio
import threading

import pytest

from ansible_collections.vic.containers.services.imagec import pull
from ansible_collections.vic.containers.tools.harness.waiting import until_async


def _held(feed, draining):
    """The downloader parked in drain() (its wake-up future set), or drain() wrongly returned."""
    return feed._room is not None or draining.done()  # pylint: disable=protected-access


def test_the_packer_reads_whole_blocks_and_the_end_only_once_the_download_is_finished(monkeypatch):
    monkeypatch.setattr(pull, "_FEED_BLOCK", 8)

    async def scenario():
        feed = pull._BlobFeed(asyncio.get_running_loop())
        reads = []
        reader = threading.Thread(target=lambda: reads.extend(iter(lambda: feed.read(100), b"")))
        reader.start()
        for chunk in (b"abc", b"defgh", b"ij"):
            feed.write(chunk)
            # A slow download is the case under test: the pieces must arrive while the reader waits.
            await asyncio.sleep(0.05)
        feed.finish()
        await asyncio.get_running_loop().run_in_executor(None, reader.join)
        return reads
    reads = asyncio.run(scenario())
    # The first read waited for a whole block (a slow reader may get more); nothing is lost or added.
    assert len(reads[0]) >= 8 and b"".join(reads) == b"abcdefghij"


def test_the_downloader_waits_while_the_packer_is_behind(monkeypatch):
    monkeypatch.setattr(pull, "_FEED_LIMIT", 10)

    async def scenario():
        feed = pull._BlobFeed(asyncio.get_running_loop())
        feed.write(b"x" * 25)
        draining = asyncio.ensure_future(feed.drain())
        await until_async(lambda: _held(feed, draining), "the downloader to be held back in drain()")
        held = not draining.done()
        await asyncio.get_running_loop().run_in_executor(None, feed.read, 20)  # 5 left: below half the limit
        await asyncio.wait_for(draining, 1)
        return held
    assert asyncio.run(scenario())


def test_a_failed_download_fails_the_packer_and_a_stopped_packer_stops_the_download(monkeypatch):
    monkeypatch.setattr(pull, "_FEED_LIMIT", 10)

    async def scenario():
        loop = asyncio.get_running_loop()
        failed = pull._BlobFeed(loop)
        failed.write(b"abc")
        failed.finish(RuntimeError("connection reset"))
        with pytest.raises(OSError, match="the download of the layer failed"):
            failed.read(100)
        stopped = pull._BlobFeed(loop)
        stopped.write(b"y" * 25)
        draining = asyncio.ensure_future(stopped.drain())
        # Closed before drain() parks, the feed would not show that close() wakes a held downloader.
        await until_async(lambda: _held(stopped, draining), "the downloader to be held back in drain()")
        stopped.close()
        await asyncio.wait_for(draining, 1)
        with pytest.raises(pull._PackerStopped):
            stopped.write(b"more")
    asyncio.run(scenario())
