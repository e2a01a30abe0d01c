# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the tether ISO carries: the Debian packages, and what is kept of them.

Every list here is explicit on purpose. A prune traced from one run of the
tether once missed ``glob`` (imported on a path the trace did not take), so the
kept standard library is a list that tests/system/tether/test_iso.py checks by
importing, inside the unpacked ISO tree and with its own interpreter, every
module the tether package imports.
"""

from ansible_collections.vic.containers.services.tether.agent import kmod

# The kernel: Debian's cloud flavour has the 8250 serial port, ext4, tmpfs and
# devtmpfs built in, and an LZ4 image that starts fast under emulation. The
# metapackage names the versioned image package in its Depends.
KERNEL_METAPACKAGE = "linux-image-cloud-amd64"

# Debian packages unpacked into the initramfs (dependencies spelled out: only
# what the kept files need, not what apt would install on a full system).
PACKAGES = (
    # CPython, its standard library and the shared libraries it links.
    "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib",
    "libc6", "libexpat1", "zlib1g", "libssl3", "libffi8", "libgcc-s1", "liblzma5",
    # The SSH server of the tether channel and its cryptography.
    "python3-asyncssh", "python3-cryptography", "python3-cffi-backend", "python3-typing-extensions",
    # The embedded DNS server's wire format (agent/dns_answers.py): only DNSPYTHON of it is kept.
    "python3-dnspython",
    # mke2fs, for volume disks formatted on first use.
    "e2fsprogs", "libext2fs2", "libcom-err2", "libblkid1", "libuuid1",
)

# Packages of which the initramfs keeps only TOOL_FILES (their libraries are the ones above): open-vm-tools'
# vmware-rpctool (31 kB, libc only) reads the boot spec from guestinfo through the VMware backdoor on ESXi,
# which has no QEMU fw_cfg (the rest of open-vm-tools, its daemons and libraries, is not needed).
TOOL_PACKAGES = ("open-vm-tools",)
TOOL_FILES = ("usr/bin/vmware-rpctool",)

# BIOS boot from the CD-ROM; these stay on the ISO, outside the initramfs.
BOOT_PACKAGES = ("isolinux", "syslinux-common")
ISOLINUX_BIN = "usr/lib/ISOLINUX/isolinux.bin"
ISOHYBRID_MBR = "usr/lib/ISOLINUX/isohdpfx.bin"
LDLINUX = "usr/lib/syslinux/modules/bios/ldlinux.c32"

# Kernel modules the tether loads, its own list (their dependencies are added from
# each module's own depends= field). A name the kernel has built in is skipped.
KERNEL_MODULES = kmod.VM_MODULES

# Standard library modules and packages kept (top-level names; a package is
# kept whole). What the tether, asyncssh and cryptography import, what they
# import lazily on paths a trace may not take (glob, tarfile, pty, ctypes,
# lzma for .ko.xz modules, encodings.idna for host names), and what
# `python -m` needs (runpy, pkgutil).
STDLIB = (
    "__future__", "_collections_abc", "_compat_pickle", "_compression", "_markupbase", "_sitebuiltins",
    "_strptime", "_threading_local", "_weakrefset",
    "abc", "argparse", "ast", "asyncio", "base64", "bisect", "calendar", "codecs", "collections",
    "concurrent", "contextlib", "contextvars", "copy", "copyreg", "ctypes", "dataclasses", "datetime",
    "dis", "email", "encodings", "enum", "fnmatch", "functools", "genericpath", "getopt", "getpass",
    "gettext", "glob", "gzip", "hashlib", "heapq", "hmac", "importlib", "inspect", "io", "ipaddress",
    "json", "keyword", "linecache", "locale", "logging", "lzma", "ntpath", "numbers", "opcode", "operator",
    "os", "pathlib", "pickle", "pkgutil", "platform", "posixpath", "pprint", "pty", "queue", "quopri",
    "random", "re", "reprlib", "runpy", "secrets", "selectors", "shlex", "shutil", "signal", "site",
    "socket", "ssl", "stat", "string", "stringprep", "struct", "subprocess", "tarfile", "tempfile",
    "textwrap", "threading", "token", "tokenize", "traceback", "tty", "types", "typing", "urllib",
    "uuid", "warnings", "weakref", "zipimport",
)

# The encodings kept of the encodings package (the rest are codepages no
# tether path uses).
ENCODINGS = ("__init__", "aliases", "ascii", "charmap", "idna", "latin_1", "punycode", "raw_unicode_escape",
             "unicode_escape", "utf_16", "utf_32", "utf_8", "utf_8_sig")

# Extension modules kept of lib-dynload (the rest of what the tether needs is
# built into Debian's interpreter: _socket, select, fcntl, zlib, pyexpat...).
EXTENSIONS = ("_asyncio", "_contextvars", "_ctypes", "_hashlib", "_json", "_lzma", "_queue", "_ssl", "_typing",
              "_uuid", "mmap", "resource", "termios")

# The modules of dnspython the embedded DNS server imports (dns.message and what it imports, the record
# types it answers with), of its 150 or so: the rest (resolver, query, zones, DNSSEC, the other record types)
# serves no question the server answers. A record type missing here is read as generic data by dnspython.
DNSPYTHON = tuple(f"dns/{name}.py" for name in (
    "__init__", "_immutable_ctx", "edns", "entropy", "enum", "exception", "flags", "immutable", "inet", "ipv4",
    "ipv6", "message", "name", "opcode", "rcode", "rdata", "rdataclass", "rdataset", "rdatatype", "renderer",
    "reversename", "rrset", "set", "tokenizer", "tsig", "ttl", "version", "wire",
    "rdtypes/__init__", "rdtypes/nsbase", "rdtypes/ANY/__init__", "rdtypes/ANY/OPT", "rdtypes/ANY/PTR",
    "rdtypes/ANY/TSIG", "rdtypes/IN/__init__", "rdtypes/IN/A", "rdtypes/IN/AAAA"))

# Third-party packages (or single modules of them) kept of /usr/lib/python3/dist-packages.
DIST_PACKAGES = ("asyncssh", "cryptography", "typing_extensions.py",
                 "_cffi_backend.cpython-311-x86_64-linux-gnu.so") + DNSPYTHON

# Shared-library directories copied from the packages (gconv's 8 MB of
# charset converters are left out: nothing in the tether calls iconv).
LIBRARY_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64")
LIBRARY_SKIP = ("gconv", "e2fsprogs", "audit")

# Single files kept as they are.
FILES = ("usr/bin/python3.11", "sbin/mke2fs", "etc/mke2fs.conf")

# Empty directories PID 1 mounts on or works in.
DIRECTORIES = ("dev", "proc", "sys", "tmp", "run", "mnt", "root", "etc")

# (path, major, minor): the character devices the initramfs needs before
# devtmpfs is mounted. Python dies at start without /dev/urandom
# ("_Py_HashRandomization_Init: failed to get random numbers").
DEVICES = (("dev/console", 5, 1), ("dev/null", 1, 3), ("dev/urandom", 1, 9))

# The kernel command line: ttyS0 (file-backed) is the log port, so the
# console says only errors; ttyS1 is the tether channel; a panic reboots at
# once, which ends the VM (QEMU runs with -no-reboot).
KERNEL_COMMAND_LINE = "console=ttyS0 quiet loglevel=3 panic=-1"

# The tether's package inside the tree, under the collection's namespace.
TETHER_PACKAGE = "usr/lib/python3/dist-packages/ansible_collections/vic/containers/services/tether"
