# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether ISO: built from Debian packages (``build``), its version read back (``iso_version``),
its initramfs unpacked for the host emulator (``unpack``). See docs/tether-iso.md.

Standard library only, like the rest of services/tether/ (the ISO does not carry this package).
"""

from .builder import Built, build, collection_version
from .contents import KERNEL_COMMAND_LINE
from .image import ImageError, iso_version, unpack

__all__ = ["Built", "ImageError", "KERNEL_COMMAND_LINE", "build", "collection_version", "iso_version", "unpack"]
