# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether: PID 1 of every container VM (docs/tether.md, docs/tether-protocol.md).

It mounts the VM's system filesystems and the container's disks, starts the
container's process, logs its output as Docker json-file lines and serves the
endpoint over SSH on the VM's serial line. ``main(argv)`` is what the ISO's
``/init`` calls and what ``python -m ...services.tether.agent`` runs.

Only the standard library, asyncssh and ``services/tether`` may be imported
here (the ISO carries nothing else), and lazily where only some paths need a
module: start-up time is the time to a container's first output.
"""


def main(argv=None):
    """Run the tether with its command line (``sys.argv[1:]`` when None); returns the exit code."""
    from ansible_collections.vic.containers.services.tether.agent import boot  # pylint: disable=import-outside-toplevel
    return boot.run(argv)
