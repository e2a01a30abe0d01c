# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Who a container's process runs as, with which environment, from which file: as Docker (runc) decides.

Pure functions over the text of the container's ``/etc/passwd`` and
``/etc/group`` and its environment; the process module calls them after it
has entered the container's root, so every path here is the container's own.
The error sentences are dockerd's, as users know them.
"""

import collections
import os
import stat

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

ExecUser = collections.namedtuple("ExecUser", "uid gid groups home")
PasswdEntry = collections.namedtuple("PasswdEntry", "name uid gid home")
GroupEntry = collections.namedtuple("GroupEntry", "name gid members")


class StartError(Exception):
    """A process that cannot be started: ``code`` is Docker's exit code, the message dockerd's sentence."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def parse_passwd(text):
    """The entries of a passwd file's text; malformed lines are skipped, as libc does."""
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 6 and fields[2].isdigit() and fields[3].isdigit():
            entries.append(PasswdEntry(fields[0], int(fields[2]), int(fields[3]), fields[5]))
    return entries


def parse_group(text):
    """The entries of a group file's text."""
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[2].isdigit():
            entries.append(GroupEntry(fields[0], int(fields[2]), [m for m in fields[3].split(",") if m]))
    return entries


def resolve_user(spec, passwd_text, group_text):
    """The ``ExecUser`` of a Docker ``User`` (``""``, ``name``, ``uid``, ``name:group``, ``uid:gid``).

    As runc's GetExecUser: a name must be in passwd, a number need not be (then
    gid 0 and HOME ``/``); a group likewise; supplementary groups are those that
    list the user's name."""
    user, _colon, group = spec.partition(":")
    user = user or "0"
    passwd = parse_passwd(passwd_text)
    entry = next((e for e in passwd if e.name == user or (user.isdigit() and e.uid == int(user))), None)
    if entry is None and not user.isdigit():
        raise StartError(f"unable to find user {user}: no matching entries in passwd file", 126)
    uid, gid, home, name = (entry.uid, entry.gid, entry.home, entry.name) if entry else (int(user), 0, "/", None)
    groups = parse_group(group_text)
    if group:
        match = next((g for g in groups if g.name == group or (group.isdigit() and g.gid == int(group))), None)
        if match is None and not group.isdigit():
            raise StartError(f"unable to find group {group}: no matching entries in group file", 126)
        gid = match.gid if match else int(group)
    supplementary = sorted({g.gid for g in groups if name is not None and name in g.members} | {gid})
    return ExecUser(uid, gid, supplementary, home or "/")


def extra_groups(groups, added, group_text):
    """``groups`` with ``--group-add``'s (names from the container's group file, or numbers), as runc adds them."""
    entries = parse_group(group_text)
    found = set(groups)
    for group in added:
        match = next((g for g in entries if g.name == group or (group.isdigit() and g.gid == int(group))), None)
        if match is None and not group.isdigit():
            raise StartError(f"Unable to find group {group}: no matching entries in group file", 126)
        found.add(match.gid if match else int(group))
    return sorted(found)


def environment(base, extra, *, hostname, home, tty):
    """The process's environment as a dict: the container's ``Env``, then an exec's, with Docker's defaults
    (PATH, HOSTNAME, HOME, and TERM=xterm with a TTY) where they are not set."""
    env = {}
    for item in list(base) + list(extra):
        key, sep, value = item.partition("=")
        if key and sep:     # a bare KEY is the client's to resolve (docker run -e KEY); none reaches here
            env[key] = value
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOSTNAME", hostname)
    env.setdefault("HOME", home)
    if tty:
        env.setdefault("TERM", "xterm")
    return env


def look_path(name, path_value):
    """The file to exec for argv[0] as Go's exec.LookPath finds it (no shell); StartError as runc reports it."""
    if "/" in name:
        problem = _not_executable(name)
        if problem is None:
            return name
        raise StartError(f'exec: "{name}": {problem}', 127 if problem.startswith("stat ") else 126)
    for directory in (path_value or "").split(":"):
        candidate = os.path.join(directory or ".", name)
        if _not_executable(candidate) is None:
            return candidate
    raise StartError(f'exec: "{name}": executable file not found in $PATH', 127)


def _not_executable(path):
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"stat {path}: {exc.strerror.lower()}"
    if stat.S_ISDIR(mode) or not mode & 0o111:
        return "permission denied"
    return None
