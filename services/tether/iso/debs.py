# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Debian packages for the ISO: versions from apt's lists, .debs cached by package=version.

The machine's apt sources are the only source. A package's candidate version is
read from the local lists (``apt-cache``, offline); its .deb is fetched once with
``apt-get download`` and kept under the cache directory named by package and
version, so a rebuild with the same lists never goes to the network.
"""

import os
import re
import subprocess
import tempfile
from pathlib import Path


class PackageError(Exception):
    """A package the ISO needs cannot be resolved, fetched or unpacked."""


def candidates(packages):
    """{package: (version, Depends field)} of the candidate versions, from apt's local lists.

    One apt-cache call for all of them: each call loads apt's whole cache (seconds on these machines).
    """
    result = subprocess.run(["apt-cache", "show", "--no-all-versions", *packages],
                            capture_output=True, text=True, check=False)
    found = {}
    for stanza in result.stdout.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version|Depends): (.*)$", stanza, re.MULTILINE))
        if "Package" in fields and "Version" in fields:
            found[fields["Package"]] = (fields["Version"], fields.get("Depends", ""))
    missing = sorted(set(packages) - set(found))
    if missing:
        raise PackageError(f"apt knows no package {', '.join(missing)} (run apt-get update?): {result.stderr.strip()}")
    return found


def pinned(packages, kernel_metapackage):
    """{package: version}, sorted by name, of `packages` and of the kernel image package that
    `kernel_metapackage` (e.g. linux-image-cloud-amd64) depends on, at the version it names."""
    found = candidates([*packages, kernel_metapackage])
    depends = found[kernel_metapackage][1]
    match = re.search(r"(linux-image-[0-9][^ ,]*) \(= ([^)]+)\)", depends)
    if not match:
        raise PackageError(f"{kernel_metapackage} depends on no linux-image package version: {depends!r}")
    versions = {package: found[package][0] for package in packages}
    versions[match.group(1)] = match.group(2)
    return dict(sorted(versions.items()))


def fetch(package, version, cache):
    """The cached .deb of package=version, downloaded into `cache` the first time."""
    cache = Path(cache)
    deb = cache / f"{package}={version}.deb"
    if deb.exists():
        return deb
    cache.mkdir(parents=True, exist_ok=True)
    # Download into a private directory, then rename: a concurrent build never sees half a file.
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        result = subprocess.run(["apt-get", "download", "-q", f"{package}={version}"], cwd=scratch,
                                capture_output=True, text=True, check=False)
        downloaded = list(Path(scratch).glob("*.deb"))
        if result.returncode != 0 or len(downloaded) != 1:
            raise PackageError(f"apt-get download {package}={version} failed: {result.stderr.strip()}")
        os.replace(downloaded[0], deb)
    return deb


def unpack(deb, root):
    """Unpack a .deb's files (not its scripts) under `root`, as dpkg would install them."""
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
