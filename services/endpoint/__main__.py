# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Start the endpoint of a VCH from what vSphere holds: its record, sealed secrets and key.

    python -m ansible_collections.vic.containers.services.endpoint --name VCH [--datacenter DC]
        [--listen ADDRESS:PORT] [--tether-listen ADDRESS:PORT]

vSphere connection from VMWARE_HOST, VMWARE_USER, VMWARE_PASSWORD, VMWARE_PORT,
VMWARE_VALIDATE_CERTS (as the modules). Prints one JSON line when serving.
"""

import sys

from ansible_collections.vic.containers.services.endpoint.wiring import main

sys.exit(main())
