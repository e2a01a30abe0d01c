"""Read a layer disk (a SquashFS image in a flat extent) with rdsquashfs (squashfs-tools-ng): no mount
needed, nothing of ours in the way."""

import subprocess


def rdsquashfs(disk, option, path):
    result = subprocess.run(["rdsquashfs", option, path, str(disk)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, "rdsquashfs %s %s: %s" % (option, path, result.stderr)
    return result.stdout


def listing(disk, path="/"):
    """{name: the ls -l style line} of a folder."""
    return {line.split()[-1] if " -> " not in line else line.split(" -> ")[0].split()[-1]: line
            for line in rdsquashfs(disk, "-l", path).splitlines()}


def stat(disk, path):
    """The inode of ``path`` as rdsquashfs -s prints it: {"Inode type": ..., "Access": ..., ...}."""
    return dict(line.split(": ", 1) for line in rdsquashfs(disk, "-s", path).splitlines() if ": " in line)


def xattrs(disk, path):
    return dict(line.split("=", 1) for line in rdsquashfs(disk, "-x", path).splitlines() if "=" in line)


def cat(disk, path):
    return rdsquashfs(disk, "-c", path)
