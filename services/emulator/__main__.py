# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run container VMs for every VCH on a vCenter (the simulator) until SIGTERM.

    python -m ansible_collections.vic.containers.services.emulator [--hypervisor namespace|qemu]
        [--tether-python iso|host] [--log-level LEVEL]

vSphere connection from VMWARE_HOST, VMWARE_USER, VMWARE_PASSWORD, VMWARE_PORT,
VMWARE_VALIDATE_CERTS (as the modules and the endpoint). Prints one JSON line
when it follows the inventory; on SIGTERM or SIGINT it ends every VM it runs,
powers them off and removes what it made. See docs/emulator.md.
"""

import sys

from ansible_collections.vic.containers.services.emulator.main import main

sys.exit(main())
