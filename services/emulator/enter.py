# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The first step inside a container VM's fresh namespaces: give the tether its root, then become it.

    python -m ansible_collections.vic.containers.services.emulator.enter [--root DIR --scratch DIR]
        [--bind SOURCE=TARGET ...] [--ready-fd FD] -- COMMAND...

Run by ``unshare --fork`` as the namespace's PID 1 (so the tether it execs is PID 1,
as in a VM). With ``--root`` (the VM's ISO unpacked, shared by every VM that boots that
ISO, never written): an overlay with its upper dir on a tmpfs at ``--scratch`` gives
this VM a private copy, the files the VM must reach (its channel socket, boot spec,
disks) are bind-mounted into it, and the tether is chrooted there. Without it (the
host-python mode) the binds are made on this machine's paths (in the run directory) and
the tether keeps this machine's files but gets an empty ``/dev``
(a tmpfs), as a VM's is, on which it mounts its own devtmpfs: mounting devtmpfs
again where it already is mounted fails (EBUSY). All these mounts belong to the
namespace's mount namespace: they vanish with it. With ``--ready-fd`` (a socket) it says
READY as soon as it runs (its namespaces are there), and execs the tether only once the
emulator answers GO: the VM's NICs (``portgroups.py``) are then in its network namespace.
"""

import argparse
import os
import socket
import subprocess
import sys

# The handshake on ``--ready-fd`` (a socket): READY once the namespaces are there, so the emulator can give the
# VM its NICs; GO back when it has, before the tether (which configures them at once) starts.
READY, GO = b"r", b"g"


def _mount(*args):
    subprocess.run(["mount", *args], check=True)


def private_root(root, scratch):
    """A writable copy of ``root`` (overlay on a tmpfs at ``scratch``); its path."""
    _mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", scratch)
    upper, work, merged = (os.path.join(scratch, d) for d in ("upper", "work", "root"))
    for folder in (upper, work, merged):
        os.mkdir(folder)
    _mount("-t", "overlay", "-o", "lowerdir=%s,upperdir=%s,workdir=%s" % (root, upper, work), "overlay", merged)
    return merged


def bind(source, root, target):
    """Bind-mount ``source`` (a file, a socket or a directory) at ``target`` inside ``root``."""
    inside = os.path.join(root, target.lstrip("/"))
    os.makedirs(os.path.dirname(inside), exist_ok=True)
    if os.path.isdir(source):
        os.makedirs(inside, exist_ok=True)
    elif not os.path.exists(inside):
        with open(inside, "w", encoding="ascii"):
            pass
    _mount("--bind", source, inside)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="enter", description=__doc__.splitlines()[0])
    parser.add_argument("--root")
    parser.add_argument("--scratch")
    parser.add_argument("--bind", action="append", default=[], metavar="SOURCE=TARGET")
    parser.add_argument("--ready-fd", type=int)
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    ready = None
    if args.ready_fd is not None:
        ready = socket.socket(fileno=args.ready_fd)
        ready.sendall(READY)
    # unshare makes the new mount namespace's mounts private already; say so again, as nothing done
    # here may reach the host's mount table.
    _mount("--make-rprivate", "/")
    root = "/" if args.root is None else private_root(args.root, args.scratch)
    for item in args.bind:
        source, _unused, target = item.partition("=")
        bind(source, root, target)
    if args.root is None:
        # After the binds: what they bring in may be under /dev (vcsim keeps datastores in /dev/shm).
        _mount("-t", "tmpfs", "-o", "mode=0755,nosuid", "tmpfs", "/dev")
    else:
        os.chroot(root)
        os.chdir("/")
    if ready is not None:
        # The mounts above were made meanwhile; without GO (the emulator could not plug the VM in) no tether.
        if ready.recv(1) != GO:
            sys.exit("enter: the emulator did not finish the VM's network")
        ready.close()
    os.execv(args.command[0], args.command)


if __name__ == "__main__":
    sys.exit(main())
