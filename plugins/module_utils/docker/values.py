# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Task values as the Docker API has them: sizes, port specs, references; private.

Each parser raises SpecError naming the option, so bad input fails before any request.
"""

from __future__ import annotations

import ipaddress
import re
import shlex

from ansible_collections.vic.containers.plugins.module_utils._errors import SpecError

# docker's RAMInBytes: a number and an optional binary unit, b k m g t p, with an optional trailing b.
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgtp]?)b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4, "p": 1024 ** 5}
_PORT = re.compile(r"^\d{1,5}(-\d{1,5})?$")


def size_bytes(value, option):
    """Bytes of a size such as ``512M``, ``1.5g`` or ``1073741824``, as ``docker run -m`` reads it."""
    match = _SIZE.match(str(value))
    if not match:
        raise SpecError(option, "%r is not a size: use a number with an optional unit b, k, m, g, t or p "
                                "(512M, 2G)" % (value,))
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def argv(value, option):
    """A command as a list: a string is split as a shell would."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise SpecError(option, "%r cannot be split into arguments: %s" % (value, exc))
    if isinstance(value, list):
        return [str(item) for item in value]
    raise SpecError(option, "must be a string or a list of strings, not %s" % type(value).__name__)


def string_map(value, option):
    """A dict of strings; booleans must be quoted, as community.docker asks, so that yes never becomes True."""
    result = {}
    for key, item in (value or {}).items():
        if isinstance(item, bool):
            raise SpecError(option, "the value of %s is a boolean (%s): quote it to pass the string you mean"
                            % (key, item))
        if isinstance(item, (dict, list)):
            raise SpecError(option, "the value of %s must be a string, not a %s" % (key, type(item).__name__))
        result[str(key)] = "" if item is None else str(item)
    return result


def port_bindings(specs, option):
    """{"80/tcp": [("ip", "8080")]} of ``docker run -p`` specs: [ip:][host_port:]container_port[/protocol]."""
    bindings = {}
    for index, spec in enumerate(specs):
        where = "%s[%d]" % (option, index)
        text = str(spec)
        port, _sep, protocol = text.partition("/")
        protocol = protocol or "tcp"
        if protocol not in ("tcp", "udp", "sctp"):
            raise SpecError(where, "%r: the protocol must be tcp, udp or sctp" % text)
        if port.startswith("["):
            raise SpecError(where, "%r: IPv6 bindings are not supported" % text)
        parts = port.split(":")
        if len(parts) > 3 or not parts[-1]:
            raise SpecError(where, "%r is not a port spec: use [ip:][host_port:]container_port[/protocol]" % text)
        container, host, address = parts[-1], parts[-2] if len(parts) > 1 else "", parts[0] if len(parts) == 3 else ""
        for what, number in (("container port", container), ("host port", host)):
            if number and (not _PORT.match(number) or any(int(p) > 65535 or int(p) == 0 for p in number.split("-"))):
                raise SpecError(where, "%r: the %s %r is not a port (1-65535)" % (text, what, number))
        if "-" in container:
            raise SpecError(where, "%r: container port ranges are not supported" % text)
        if address:
            try:
                ipaddress.IPv4Address(address)
            except ValueError:
                raise SpecError(where, "%r: %r is not an IPv4 address" % (text, address))
        bindings.setdefault("%s/%s" % (container, protocol), []).append((address, host))
    return bindings


def binding_strings(bindings):
    """The sorted ``ip:host_port:container/proto`` strings of port bindings, the comparable form."""
    return sorted("%s:%s:%s" % (ip or "", host or "", port) for port, pairs in (bindings or {}).items()
                  for ip, host in pairs)


def split_reference(reference):
    """(repository, tag or digest, separator) of an image reference; the tag defaults to latest."""
    if "@" in reference:
        repository, digest = reference.split("@", 1)
        return repository, digest, "@"
    last = reference.rpartition("/")[2]
    if ":" in last:
        repository, tag = reference.rsplit(":", 1)
        return repository, tag, ":"
    return reference, "latest", ":"


def full_reference(name, tag=None):
    """``name:tag`` (or name@digest); ``tag`` is used only when ``name`` has neither."""
    repository, found, sep = split_reference(name)
    if sep == "@" or name != repository:
        return "%s%s%s" % (repository, sep, found)
    return "%s:%s" % (repository, tag or "latest")
