# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The product version, once (galaxy.yml must say the same: tests/unit/test_layout.py checks it); private."""

from __future__ import annotations

VERSION = "0.1.0"
