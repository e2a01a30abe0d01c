# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Image references as Docker parses and prints them.

A reference names a repository (``registry host/path``) and a tag and/or a
digest. Names are kept fully qualified (``docker.io/library/busybox:latest``)
and shown in their familiar form (``busybox:latest``), as the docker CLI does.
"""

import re

from ansible_collections.vic.containers.plugins.module_utils._errors import InvalidInput

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
# An image id or a layer id: the hex of a sha256 digest.
HEX_ID = re.compile(r"^[a-f0-9]{64}$")

# The grammar of github.com/distribution/reference.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*" \
          r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(r"^(?P<name>(?:%s/)?%s(?:/%s)*)(?::(?P<tag>%s))?(?:@(?P<digest>%s))?$"
                        % (_DOMAIN, _COMPONENT, _COMPONENT, _TAG, _DIGEST))


class Reference:
    """An image reference as Docker normalizes it: registry host, repository path, tag and/or digest."""

    def __init__(self, domain, path, tag=None, digest=None):
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest

    @property
    def name(self):
        """The fully qualified repository: ``docker.io/library/busybox``."""
        return "%s/%s" % (self.domain, self.path)

    @property
    def familiar_name(self):
        """The repository as users write it: ``busybox``, ``127.0.0.1:5000/library/busybox``."""
        return familiar(self.name)

    @property
    def api_host(self):
        return DOCKER_HUB_API if self.domain == DOCKER_HUB else self.domain

    def tagged(self, tag=None):
        return "%s:%s" % (self.name, tag or self.tag or "latest")

    def familiar(self):
        """``busybox:latest`` or ``busybox@sha256:...`` as the docker CLI prints a reference."""
        if self.digest and not self.tag:
            return "%s@%s" % (self.familiar_name, self.digest)
        return "%s:%s" % (self.familiar_name, self.tag or "latest")

    def __str__(self):
        text = self.name
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text


def parse_reference(text, default_tag="latest"):
    """Parse ``text`` as ``docker pull`` does; anything else is the client's "invalid reference format"."""
    text = (text or "").strip()
    match = _REFERENCE.match(text)
    if not match or len(match.group("name")) > 255:
        if text.lower() != text and _REFERENCE.match(text.lower()):
            raise InvalidInput("invalid reference format: repository name (%s) must be lowercase" % text)
        raise InvalidInput("invalid reference format")
    name = match.group("name")
    if HEX_ID.match(name):
        raise InvalidInput("invalid repository name (%s), cannot specify 64-byte hexadecimal strings" % name)
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = DOCKER_HUB, name
    if domain == "index.docker.io":
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in path:
        path = "library/" + path
    tag = match.group("tag")
    digest = match.group("digest")
    if not tag and not digest:
        tag = default_tag
    return Reference(domain, path, tag, digest)


def familiar(full):
    """``busybox:latest`` for ``docker.io/library/busybox:latest``; other registries keep their host."""
    prefix = DOCKER_HUB + "/"
    if not full.startswith(prefix):
        return full
    rest = full[len(prefix):]
    return rest[len("library/"):] if rest.startswith("library/") and "/" not in rest[len("library/"):] else rest


def repository(name):
    """The repository of a full tag or digest name."""
    return name.split("@", 1)[0] if "@" in name else re.sub(r":[\w][\w.-]*$", "", name)


def short(digest):
    """The 12 hex digits Docker shows of a digest (an image id, a blob)."""
    return digest.split(":", 1)[-1][:12]
