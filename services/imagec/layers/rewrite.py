# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A layer's tar entries as Docker applies them, rewritten for overlayfs.

Containers stack the layer disks with overlayfs, so the rewrite applies the
OCI rules as overlayfs reads them: a whiteout ``.wh.<name>`` becomes a 0/0
character device ``<name>``, an opaque marker ``.wh..wh..opq`` the
``trusted.overlay.opaque=y`` attribute of its folder, and a whiteout of a path
the layer itself also creates only hides the layers below (a folder becomes
opaque). Entries apply in order, as Docker applies them: a later entry
replaces an earlier one of the same path, a later folder entry updates the
folder. Folders are held back and written last with their final attributes.

Refused, with an error naming the layer and the entry: absolute names, ``..``,
paths through a symbolic link or a file, hard links to what is not a file of
the layer, and kinds of entries a filesystem cannot hold. Symbolic link
targets are kept as written, since they are read inside the container.
"""

import math
import posixpath
import tarfile

from ansible_collections.vic.containers.services.imagec.layers.stream import LayerError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "SCHILY.xattr.trusted.overlay.opaque"
_XATTR_PREFIXES = ("SCHILY.xattr.", "LIBARCHIVE.xattr.")
ROOT = "."

# What an entry is, once rewritten.
DIR, FILE, SYMLINK, LINK, SPECIAL, WHITEOUT_NODE, OPAQUE_MARK = (
    "folder", "file", "symbolic link", "hard link", "special file", "whiteout", "opaque marker")
_LINK_TARGETS = (FILE, LINK, SPECIAL)
_DOTS = frozenset((".", ".."))


def _normal(name):
    """True for a relative path with no empty, "." or ".." part (most entries): it is its own clean form."""
    if not name or name[0] == "/" or name[-1] == "/" or "//" in name:
        return False
    # Parts are split only for names with a part that starts with a dot (.hidden files, ./ and ../).
    return (name[0] != "." and "/." not in name) or not _DOTS.intersection(name.split("/"))


def _clean(name, layer):
    """The entry's path relative to the layer root (ROOT for the root itself); refuses escapes."""
    if _normal(name):
        return name     # normpath costs
    text = name
    while text.startswith("./"):
        text = text[2:]
    if text.startswith("/"):
        raise LayerError("layer %s: entry %s has an absolute path" % (layer, name))
    path = posixpath.normpath(text) if text else ROOT
    if path == ".." or path.startswith("../"):
        raise LayerError("layer %s: entry %s points outside the layer (path traversal)" % (layer, name))
    return path


def _kind(member, layer):
    if member.isdir():
        return DIR
    if member.issym():
        return SYMLINK
    if member.islnk():
        return LINK
    if member.isreg():
        return FILE
    if member.ischr() or member.isblk() or member.isfifo():
        return SPECIAL
    raise LayerError("layer %s: %s is of a kind of tar entry the VCH cannot store (type %r)"
                     % (layer, member.name, member.type))


def rewrite(member, layer):
    """(kind, the header to pack) for ``member``; an opaque marker's header is its folder's."""
    path = _clean(member.name, layer)
    parent, base = posixpath.split(path)
    parent = parent or ROOT
    if base == OPAQUE:
        return OPAQUE_MARK, _folder_header(parent)
    if base.startswith(WHITEOUT):
        hidden = base[len(WHITEOUT):]
        if hidden in ("", ".", ".."):
            raise LayerError("layer %s: %s is not a valid whiteout" % (layer, member.name))
        info = tarfile.TarInfo(posixpath.join(parent, hidden) if parent != ROOT else hidden)
        info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.CHRTYPE, 0, member.uid, member.gid, member.mtime
        return WHITEOUT_NODE, info
    kind = _kind(member, layer)
    if path == ROOT and kind != DIR:
        raise LayerError("layer %s: entry %s names the layer's root folder but is a %s" % (layer, member.name, kind))
    info = tarfile.TarInfo(path)
    info.type = tarfile.REGTYPE if kind == FILE else member.type
    info.mode, info.uid, info.gid, info.mtime = member.mode, member.uid, member.gid, member.mtime
    info.size = member.size if kind == FILE else 0
    info.linkname = _clean(member.linkname, layer) if kind == LINK else member.linkname
    info.devmajor, info.devminor = member.devmajor, member.devminor
    info.pax_headers = {k: v for k, v in member.pax_headers.items() if k.startswith(_XATTR_PREFIXES)}
    return kind, info


def _folder_header(path):
    info = tarfile.TarInfo(path)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


class Tree:
    """The layer's paths as Docker leaves them after applying its entries in order.

    ``nodes`` maps each path to (kind, index of the entry that made it; None
    for a folder made because something lies in it); ``folders`` holds the
    headers of the folders the layer names or makes opaque, packed last.
    ``replaced`` tells that a non-folder already packed was replaced or removed.
    """

    def __init__(self, layer):
        self.layer = layer
        self.nodes = {ROOT: (DIR, None)}
        # folder -> the paths right in it: a folder replaced by a file takes only its own subtree with it
        # (scanning every path instead made a layer replacing many folders quadratic).
        self._children = {}
        self.folders = {}
        self.sizes = {}
        self.links = {}
        self.replaced = False
        self.diff_id = None  # the content's digest, once read

    def apply(self, index, member):
        """Record entry ``index``; returns the header to pack now, or None (folders wait, some entries vanish)."""
        kind, info = rewrite(member, self.layer)
        path = info.name
        if kind == OPAQUE_MARK:
            self._make_folders(path, member.name)
            self._folder(path).pax_headers[OPAQUE_XATTR] = "y"
            return None
        self._make_folders(posixpath.dirname(path) or ROOT, member.name)
        node = self.nodes.get(path)
        if kind == WHITEOUT_NODE and node is not None:
            # A whiteout hides only the layers below: what this layer makes at the path stays, a folder opaque.
            if node[0] == DIR:
                self._folder(path).pax_headers[OPAQUE_XATTR] = "y"
            return None
        if kind == DIR and node is not None and node[0] == DIR:
            self._update_folder(path, info)
            return None
        if kind == LINK:
            self._check_link(path, info.linkname, member.name)
        self._remove(path)
        self._put(path, (kind, index))
        if kind == DIR:
            if node is not None and node[0] == WHITEOUT_NODE:
                info.pax_headers[OPAQUE_XATTR] = "y"  # it stands where the layer hid the one below
            self._update_folder(path, info)
            return None
        if kind == LINK:
            self.links[path] = info.linkname
        if kind == FILE:
            self.sizes[path] = info.size
        return info

    def apply_plain(self, index, name, kind, size):
        """``apply`` for the entries most layers are made of, read from the fields of a plain header (ustar.Reader.plain):
        a regular file or a symbolic link (``kind``, a tarfile type) with a normal name that is no whiteout, new, in
        a folder the layer has. What the rewrite would pack is the entry as it came. Returns False, having recorded
        nothing, for any other entry: ``apply`` takes it."""
        if not _normal(name) or WHITEOUT in name or name in self.nodes:
            return False
        parent = name.rpartition("/")[0] or ROOT
        node = self.nodes.get(parent)
        if node is None or node[0] != DIR:
            return False
        self._put(name, (FILE if kind == tarfile.REGTYPE else SYMLINK, index), parent)
        if kind == tarfile.REGTYPE:
            self.sizes[name] = size
        return True

    def survivors(self):
        """The indexes of the non-folder entries left when the layer is applied."""
        found = {path: node[1] for path, node in self.nodes.items() if node[0] != DIR}
        for path, target in self.links.items():
            if path in found and found.get(target, math.inf) > found[path]:
                raise LayerError("layer %s: hard link %s points to %s, which the layer replaces or removes after "
                                 "the link" % (self.layer, path, target))
        return set(found.values())

    def _make_folders(self, path, name):
        """Make ``path`` and the folders above it folders, as extracting ``name`` would."""
        node = self.nodes.get(path)
        if node is not None and node[0] == DIR:
            # Every path in the tree lies in folders only (replacing one removes what it held): nothing to walk.
            return
        walked = []
        for part in [] if path == ROOT else path.split("/"):
            walked.append(part)
            here = "/".join(walked)
            node = self.nodes.get(here)
            if node is None:
                self._put(here, (DIR, None))
            elif node[0] == WHITEOUT_NODE:
                self._remove(here)  # a folder of this layer where a whiteout was: it hides the one below
                self._put(here, (DIR, None))
                self._folder(here).pax_headers[OPAQUE_XATTR] = "y"
            elif node[0] == SYMLINK:
                raise LayerError("layer %s: entry %s passes through the symbolic link %s" % (self.layer, name, here))
            elif node[0] != DIR:
                raise LayerError("layer %s: entry %s lies inside %s, which is a %s, not a folder"
                                 % (self.layer, name, here, node[0]))

    def _folder(self, path):
        return self.folders.setdefault(path, _folder_header(path))

    def _update_folder(self, path, info):
        """A later header of a folder sets its attributes; extended attributes add up, the later winning."""
        held = self.folders.get(path)
        if held is not None:
            info.pax_headers = dict(held.pax_headers, **info.pax_headers)
        self.folders[path] = info

    def _check_link(self, path, target, name):
        node = self.nodes.get(target)
        if node is None or node[0] not in _LINK_TARGETS:
            raise LayerError("layer %s: hard link %s points to %s, which is not a file of the layer"
                             % (self.layer, name, target))
        if target == path:
            raise LayerError("layer %s: hard link %s points to itself" % (self.layer, name))

    def _put(self, path, node, parent=None):
        if path not in self.nodes:
            self._children.setdefault(parent or posixpath.dirname(path) or ROOT, set()).add(path)
        self.nodes[path] = node

    def _remove(self, path):
        """Remove ``path`` and, for a folder replaced by a non-folder, all it held."""
        if path not in self.nodes:
            return
        gone, pending = [], [path]
        while pending:
            here = pending.pop()
            gone.append(here)
            pending.extend(self._children.pop(here, ()))
        self._children.get(posixpath.dirname(path) or ROOT, set()).discard(path)
        for here in gone:
            self.replaced |= self.nodes.pop(here)[0] != DIR
            self.folders.pop(here, None)
            self.sizes.pop(here, None)
            self.links.pop(here, None)
