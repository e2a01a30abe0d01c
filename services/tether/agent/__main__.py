# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``python -m ansible_collections.vic.containers.services.tether.agent``: the tether's command line."""

import sys

from ansible_collections.vic.containers.services.tether.agent import main

sys.exit(main())
