# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``python -m ansible_collections.vic.containers.services.tether.iso --output FILE``: build the tether ISO."""

import argparse
import sys

from .builder import DEFAULT_CACHE, build
from .debs import PackageError


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ansible_collections.vic.containers.services.tether.iso",
                                     description="Build the tether ISO from Debian packages.")
    parser.add_argument("--output", required=True, help="where to write the ISO")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE),
                        help="cache of .debs and built ISOs (default: %(default)s)")
    options = parser.parse_args(argv)
    try:
        built = build(options.output, cache=options.cache)
    except PackageError as error:
        parser.exit(1, f"{parser.prog}: {error}\n")
    print(f"{built.path}: {built.size} bytes ({built.size / 1e6:.1f} MB), version {built.version}"
          f"{' (cached)' if built.cached else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
