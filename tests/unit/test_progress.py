# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Docker's progress messages of a pull (services/imagec/progress.py): held back while a pull still checks
the image config."""

from ansible_collections.vic.containers.services.imagec import progress


def test_progress_is_held_until_the_pull_opens_it_and_keeps_its_order():
    sent = []
    held = progress.HeldProgress(sent.append)
    held({"status": "Downloading", "id": "a"})
    held({"status": "Download complete", "id": "a"})
    assert sent == []
    sent.append({"status": "Pulling fs layer", "id": "a"})
    held.open()
    held({"status": "Extracting", "id": "a"})
    assert [m["status"] for m in sent] == ["Pulling fs layer", "Downloading", "Download complete", "Extracting"]
