# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Test hosts: Debian bookworm machines with systemd, reached over SSH as real hosts are.

A template rootfs is made once with mmdebstrap (cached under .build/testhost, rebuilt only when its
recipe changes); each machine boots with systemd-nspawn on an overlayfs clone of it, on a bridge made
here (a private /24, no route out, forwarding off, no NAT). Inside, ``apt`` goes through an
apt-cacher-ng bound only to the bridge address (the package unpacked with ``dpkg -x``, no host
service) to the mirror this machine's apt uses; pip installs from a wheelhouse made on the host.
Everything a run starts is recorded in its folder and stopped by pid; ``leftovers`` says what remains.

Command line (molecule's create.yml / destroy.yml use it)::

    testhost.py up RUN_DIR NAME [NAME ...]   # boot machines, print their inventory as JSON
    testhost.py down RUN_DIR                 # stop everything RUN_DIR started, remove its mounts and links
    testhost.py wheelhouse -r REQUIREMENTS   # make (once) wheels for the machines' Python, print their folder
"""

import argparse
import fcntl
import glob
import hashlib
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD = REPO_ROOT / ".build" / "testhost"
SUITE = "bookworm"
# What every test host has; a role installs the rest through the apt proxy.
PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-apt", "iproute2",
            "ca-certificates", "curl", "udev")
# Run inside the new rootfs ("$1"): networkd configures host0; the clones must not share a
# machine-id (an empty file makes systemd generate one per boot); the apt lists stay (apt-get update
# ran while building), so apt's cache_valid_time finds packages without a first update.
CUSTOMIZE = ("chroot \"$1\" systemctl enable systemd-networkd",
             "truncate -s 0 \"$1/etc/machine-id\"",
             "rm -f \"$1/var/lib/dbus/machine-id\"")
SUBNETS = ipaddress.ip_network("10.231.0.0/16")
PROXY_PORT = 3142
SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=5")


class TestHostError(RuntimeError):
    """A step of making or stopping test hosts failed; the message names the step and its output."""


def _run(argv, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode:
        raise TestHostError("%s failed (%d): %s%s" % (" ".join(map(str, argv)), proc.returncode, proc.stdout,
                                                      proc.stderr))
    return proc.stdout


class _Lock:
    """An exclusive flock on a file under BUILD: parallel tests build the template and pick subnets once."""

    def __init__(self, name):
        BUILD.mkdir(parents=True, exist_ok=True)
        self.path = BUILD / name

    def __enter__(self):
        self.handle = open(self.path, "w")  # pylint: disable=consider-using-with
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.handle.close()


# -- what is built once ---------------------------------------------------------------------------


def mirror_uri():
    """The Debian mirror this machine's apt uses for bookworm main (read here, never stored in the repo)."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in Path(path).read_text().split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith("#"):
                    key, value = line.split(":", 1)
                    fields[key.strip().lower()] = value.split()
            if SUITE in fields.get("suites", ()) and "main" in fields.get("components", ()) and \
                    "deb" in fields.get("types", ()):
                return fields["uris"][0]
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        for line in Path(path).read_text().splitlines() if os.path.exists(path) else ():
            words = [w for w in line.split() if not w.startswith("[")]
            if len(words) >= 4 and words[0] == "deb" and words[2] == SUITE and "main" in words[3:]:
                return words[1]
    raise TestHostError("no apt source for %s main on this machine" % SUITE)


def template():
    """The template rootfs, built once per recipe (the mirror is not part of the recipe)."""
    recipe = json.dumps({"suite": SUITE, "packages": PACKAGES, "customize": CUSTOMIZE}, sort_keys=True)
    root = BUILD / ("template-" + hashlib.sha256(recipe.encode()).hexdigest()[:12])
    with _Lock("template.lock"):
        if root.is_dir():
            return root
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        argv = ["mmdebstrap", "--quiet", "--variant=minbase", "--include=" + ",".join(PACKAGES),
                "--skip=cleanup/apt/lists"]
        argv += ["--customize-hook=" + hook for hook in CUSTOMIZE]
        argv += [SUITE, str(partial), "deb %s %s main" % (mirror_uri(), SUITE)]
        _run(argv)
        partial.rename(root)
        for old in BUILD.glob("template-*"):
            if old != root:
                shutil.rmtree(old, ignore_errors=True)
        return root


def ssh_key():
    """The generated ed25519 key test hosts accept for root (private key path)."""
    key = BUILD / "ssh" / "id_ed25519"
    with _Lock("ssh.lock"):
        if not key.exists():
            key.parent.mkdir(parents=True, exist_ok=True)
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vic-testhost", "-f", str(key)])
    return key


def apt_cacher_ng():
    """apt-cacher-ng unpacked from its Debian package (downloaded once): the path of its binary."""
    folder = BUILD / "apt-cacher-ng"
    binary = folder / "usr" / "sbin" / "apt-cacher-ng"
    with _Lock("acng.lock"):
        if not binary.exists():
            download = BUILD / "acng-download"
            shutil.rmtree(download, ignore_errors=True)
            download.mkdir(parents=True)
            _run(["apt-get", "download", "-q", "apt-cacher-ng"], cwd=download)
            shutil.rmtree(folder, ignore_errors=True)
            _run(["dpkg", "-x", next(download.glob("apt-cacher-ng_*.deb")), folder])
            shutil.rmtree(download)
    return binary


def wheelhouse(requirements):
    """A folder of wheels for ``requirements`` (files), for pip ``--no-index --find-links`` on a test host;
    made once per content of the files.

    The host's Python is 3.11 like bookworm's, so pip resolves for the same interpreter; binary wheels only
    (a test host has no compiler)."""
    digest = hashlib.sha256(b"".join(Path(path).read_bytes() for path in requirements)).hexdigest()[:12]
    folder = BUILD / ("wheels-" + digest)
    with _Lock("wheels.lock"):
        if folder.is_dir():
            return folder
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        argv = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                "--only-binary=:all:", "--python-version", "3.11", "-d", str(partial)]
        for path in requirements:
            argv += ["-r", str(path)]
        _run(argv)
        partial.rename(folder)
        return folder


# -- one run: a bridge, an apt proxy and machines ---------------------------------------------------


def _addresses_in_use():
    out = _run(["ip", "-o", "-4", "addr", "show"])
    return [ipaddress.ip_interface(line.split()[3]).network for line in out.splitlines()]


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_pid(pid, timeout=30.0):
    """SIGTERM ``pid`` (nspawn powers its machine off), SIGKILL its group if it outlives ``timeout``."""
    if not _pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            if not _pid_alive(pid):
                return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _write(path, text, mode=0o644):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


class Run:
    """What one test run started, kept in ``folder/state.json`` so another process can stop it."""

    def __init__(self, folder):
        self.folder = Path(folder).resolve()
        self.state_path = self.folder / "state.json"
        self.state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {
            "bridge": None, "network": None, "proxy_pid": None, "machines": {}}

    def _save(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(self.state, indent=1))

    @property
    def host_address(self):
        return str(ipaddress.ip_network(self.state["network"])[1])

    def network(self):
        """The run's bridge (created once): a free private /24, the host at .1, forwarding off."""
        if self.state["bridge"]:
            return self.state["bridge"]
        bridge = "vth" + hashlib.sha256(str(self.folder).encode()).hexdigest()[:8]
        with _Lock("subnet.lock"):
            used = _addresses_in_use()
            # A random free /24, not the first: a run just stopped leaves the proxy port of its bridge
            # address in TIME_WAIT, and apt-cacher-ng does not bind over that.
            network = random.choice([n for n in SUBNETS.subnets(new_prefix=24)
                                     if n.network_address.packed[2] and not any(n.overlaps(u) for u in used)])
            _run(["ip", "link", "add", bridge, "type", "bridge"])
            self.state.update(bridge=bridge, network=str(network))
            self._save()
            _run(["ip", "addr", "add", "%s/24" % network[1], "dev", bridge])
        # No route out: nothing received on the bridge is forwarded, whatever the host's global setting.
        Path("/proc/sys/net/ipv4/conf/%s/forwarding" % bridge).write_text("0")
        _run(["ip", "link", "set", bridge, "up"])
        return bridge

    def proxy(self):
        """apt-cacher-ng on the bridge address only; machines use it as apt's HTTP proxy."""
        if self.state["proxy_pid"] and _pid_alive(self.state["proxy_pid"]):
            return "http://%s:%d" % (self.host_address, PROXY_PORT)
        binary = apt_cacher_ng()
        acng = binary.parents[2]
        work = self.folder / "apt-cacher-ng"
        for sub in ("cache", "log", "run"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        log = open(work / "log" / "stdout.log", "ab")  # pylint: disable=consider-using-with
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [str(binary), "-c", str(acng / "etc" / "apt-cacher-ng"), "ForeGround=1",
             "BindAddress=" + self.host_address, "Port=%d" % PROXY_PORT, "CacheDir=%s" % (work / "cache"),
             "LogDir=%s" % (work / "log"), "SocketPath=",
             "PidFile=%s" % (work / "run" / "pid"), "SupportDir=%s" % (acng / "usr" / "lib" / "apt-cacher-ng"),
             "ReportPage=", "ExThreshold=4"],  # no Unix socket: a pytest tmp path is too long for one
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            # Its own library (libsupacng.so) is unpacked, not installed.
            env=dict(os.environ, LD_LIBRARY_PATH=str(acng / "usr" / "lib" / "x86_64-linux-gnu")))
        log.close()
        self.state["proxy_pid"] = proc.pid
        self._save()
        _wait_port(self.host_address, PROXY_PORT, "apt-cacher-ng on %s" % self.host_address, proc,
                   log=work / "log" / "stdout.log")
        return "http://%s:%d" % (self.host_address, PROXY_PORT)

    def boot(self, name):
        """Boot machine ``name`` (an overlayfs clone of the template) and wait until SSH answers."""
        if name in self.state["machines"]:
            return self.state["machines"][name]
        self.network()
        proxy = self.proxy()
        lower = template()
        key = ssh_key()
        index = 10 + len(self.state["machines"])
        address = str(ipaddress.ip_network(self.state["network"])[index])
        home = self.folder / "machines" / name
        root = home / "root"
        for sub in ("upper", "work", "root"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        # nspawn's machine name, and its veth's ("vb-" + it, at most 15 characters): unique on the host.
        unit = "t%s%d" % (self.state["bridge"][3:], index)
        machine = {"name": name, "address": address, "root": str(root), "pid": None, "unit": unit}
        self.state["machines"][name] = machine
        self._save()
        _run(["mount", "-t", "overlay", "overlay", "-o",
              "lowerdir=%s,upperdir=%s,workdir=%s" % (lower, home / "upper", home / "work"), str(root)])
        _write(root / "etc" / "hostname", name + "\n")
        # Sorts before nspawn's 80-container-host0.network, which would give only a link-local address.
        _write(root / "etc" / "systemd" / "network" / "10-host0.network",
               "[Match]\nName=host0\n\n[Network]\nAddress=%s/24\nLinkLocalAddressing=no\n" % address)
        _write(root / "etc" / "hosts", "127.0.0.1 localhost\n%s %s\n" % (address, name))
        _write(root / "etc" / "apt" / "apt.conf.d" / "01proxy", 'Acquire::http::Proxy "%s";\n' % proxy)
        ssh_dir = root / "root" / ".ssh"
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write(ssh_dir / "authorized_keys", key.with_suffix(".pub").read_text(), 0o600)
        log = open(home / "console.log", "ab")  # pylint: disable=consider-using-with
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            ["systemd-nspawn", "-q", "-b", "-D", str(root), "-M", unit, "--hostname=" + name, "--register=no",
             "--keep-unit", "--network-bridge=" + self.state["bridge"], "--console=passive"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        machine["pid"] = proc.pid
        self._save()
        _wait_port(address, 22, "SSH on %s" % name, proc, timeout=120, log=home / "console.log")
        deadline = time.monotonic() + 60
        while self.ssh(name, "true", check=False).returncode:
            if time.monotonic() > deadline:
                raise TestHostError("SSH login to %s failed" % name)
            time.sleep(0.2)
        return machine

    def ssh(self, name, command, check=True, **kwargs):
        """Run ``command`` (a shell string) as root on machine ``name``."""
        argv = ["ssh", *SSH_OPTIONS, "-i", str(ssh_key()), "root@" + self.state["machines"][name]["address"],
                command]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
        if check and proc.returncode:
            raise TestHostError("%s on %s failed (%d): %s%s" % (command, name, proc.returncode, proc.stdout,
                                                                proc.stderr))
        return proc

    def inventory(self):
        """One entry per machine in molecule's instance-config shape."""
        return [{"instance": m["name"], "address": m["address"], "user": "root", "port": 22,
                 "identity_file": str(ssh_key())} for m in self.state["machines"].values()]

    def down(self):
        """Power every machine off, stop the proxy, remove mounts, the bridge and the run's files."""
        machines = self.state["machines"].values()
        for machine in machines:  # all power off at once, then each is awaited
            if machine["pid"] and _pid_alive(machine["pid"]):
                os.kill(machine["pid"], signal.SIGTERM)
        for machine in machines:
            if machine["pid"]:
                _stop_pid(machine["pid"])
            root = machine["root"]
            if _mounted(root):
                _run(["umount", root])
        if self.state["proxy_pid"]:
            _stop_pid(self.state["proxy_pid"], timeout=10)
        if self.state["bridge"] and _link_exists(self.state["bridge"]):
            _run(["ip", "link", "delete", self.state["bridge"]])
        gone = self.leftovers()
        if gone:
            raise TestHostError("left after teardown: %s" % gone)
        shutil.rmtree(self.folder, ignore_errors=True)

    def leftovers(self):
        """What this run started and still exists: processes, mounts, links (empty when clean)."""
        left = []
        pids = [m["pid"] for m in self.state["machines"].values()] + [self.state["proxy_pid"]]
        left += ["pid %d" % pid for pid in pids if pid and _pid_alive(pid)]
        left += ["mount %s" % line for line in _mounts() if line.startswith(str(self.folder))]
        links = [self.state["bridge"]] + ["vb-" + m["unit"] for m in self.state["machines"].values()]
        left += ["link %s" % link for link in links if link and _link_exists(link)]
        return left


def _mounts():
    with open("/proc/self/mountinfo") as handle:
        return [line.split()[4] for line in handle]


def _mounted(path):
    return str(path) in _mounts()


def _link_exists(name):
    return os.path.exists("/sys/class/net/" + name)


def _tail(path, size=2000):
    try:
        return ":\n" + Path(path).read_bytes()[-size:].decode(errors="replace")
    except (OSError, TypeError):
        return ""


def _wait_port(address, port, what, proc, timeout=30.0, log=None):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            pass
        if proc.poll() is not None:
            raise TestHostError("%s: the process exited (%s)%s" % (what, proc.returncode, _tail(log)))
        if time.monotonic() > deadline:
            raise TestHostError("gave up after %gs waiting for %s" % (timeout, what))
        time.sleep(0.1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up")
    up.add_argument("run")
    up.add_argument("names", nargs="+")
    down = sub.add_parser("down")
    down.add_argument("run")
    wheels = sub.add_parser("wheelhouse")
    wheels.add_argument("-r", dest="requirements", action="append", required=True)
    args = parser.parse_args(argv)
    if args.command == "up":
        run = Run(args.run)
        try:
            for name in args.names:
                run.boot(name)
        except BaseException:
            run.down()
            raise
        json.dump(run.inventory(), sys.stdout)
    elif args.command == "down":
        if Run(args.run).state_path.exists():
            Run(args.run).down()
    else:
        print(wheelhouse(args.requirements))
    return 0


if __name__ == "__main__":
    sys.exit(main())
