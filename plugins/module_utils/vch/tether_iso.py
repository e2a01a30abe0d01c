# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether ISO's version stamp, written by its builder and read by ``vic_vch`` before an upload.

The builder (``services/tether/iso``) puts ``STAMP_PREFIX + version`` in the ISO 9660
primary volume descriptor's application id; reading it back costs one 2 KiB read, so
``vic_vch`` knows without uploading whether the image store already has that ISO.
"""

STAMP_PREFIX = "VIC.CONTAINERS TETHER "
ISO_NAME = "bootstrap.iso"      # in the image store's folder, as VIC named it
_PVD_OFFSET = 16 * 2048         # the primary volume descriptor: sector 16
_APPLICATION_ID = slice(574, 702)


def stamp(version):
    """The application id the builder writes (ISO 9660 upper-cases it; ``read_version`` lower-cases it back)."""
    return STAMP_PREFIX + version


def read_version(path):
    """The tether version stamped in the ISO at ``path``; ValueError naming the file when it has none."""
    with open(path, "rb") as iso:
        iso.seek(_PVD_OFFSET)
        descriptor = iso.read(2048)
    if descriptor[:6] != b"\x01CD001":
        raise ValueError("%s is not an ISO 9660 image" % path)
    application = descriptor[_APPLICATION_ID].decode("ascii", "replace").strip()
    if not application.upper().startswith(STAMP_PREFIX):
        raise ValueError("%s is not a tether ISO built by vic.containers (its application id is %r)"
                         % (path, application))
    return application[len(STAMP_PREFIX):].strip().lower()
