# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether ISO's version stamp, written by its builder (``services/tether/iso``) and read by ``vic_vch``.

The builder gives xorriso ``stamp(version)`` as the application identifier; reading
it back costs a few 2 KiB reads of the volume descriptors, so ``vic_vch`` knows
without uploading whether the image store already has that ISO. It is read from
the Joliet descriptor (UCS-2, as written): ISO 9660 upper-cases the primary
descriptor's copy.
"""

APPLICATION = "vic.containers-tether"
ISO_NAME = "bootstrap.iso"      # in the image store's folder, as VIC named it

_SECTOR = 2048
_DESCRIPTORS = 16 * _SECTOR     # the volume descriptor set starts at sector 16
_APPLICATION_ID = slice(574, 702)
_ESCAPES = slice(88, 91)
_JOLIET = (b"%/@", b"%/C", b"%/E")  # UCS-2 levels 1, 2 and 3
_SUPPLEMENTARY, _TERMINATOR = 2, 255
_MAX_DESCRIPTORS = 32


def stamp(version):
    """The application identifier the builder writes."""
    return "%s %s" % (APPLICATION, version)


def read_version(path):
    """The tether version stamped in the ISO at ``path``; ValueError naming the file when it has none."""
    with open(path, "rb") as iso:
        iso.seek(_DESCRIPTORS)
        descriptor = iso.read(_SECTOR)
        if descriptor[1:6] != b"CD001":
            raise ValueError("%s is not a tether ISO: not an ISO 9660 image" % path)
        for _unused in range(_MAX_DESCRIPTORS):
            if len(descriptor) < _SECTOR or descriptor[1:6] != b"CD001" or descriptor[0] == _TERMINATOR:
                break
            if descriptor[0] == _SUPPLEMENTARY and descriptor[_ESCAPES] in _JOLIET:
                return _version(path, descriptor[_APPLICATION_ID].decode("utf-16-be", "replace").strip())
            descriptor = iso.read(_SECTOR)
    raise ValueError("%s is not a tether ISO built by vic.containers (it has no Joliet volume descriptor)" % path)


def _version(path, application):
    name, _unused, version = application.partition(" ")
    if name != APPLICATION or not version:
        raise ValueError("%s is not a tether ISO built by vic.containers (its application id is %r)"
                         % (path, application))
    return version
