# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Boot a container VM's tether ISO in QEMU: the host emulator's ``--hypervisor qemu`` mode.

The VM looks to the tether as a container VM on ESXi does: the ISO on an IDE
CD-ROM, the disks on a pvscsi controller at their SCSI units, the log port on
the first serial port (a file, as VIC's ``output.log``), the tether channel on
the second (a TCP client to the VM's serial-port URI, redialled when it drops).
The boot spec comes through QEMU's firmware config, where the tether looks for
it (docs/tether-protocol.md "The boot spec").

QEMU here is Debian's 7.2: a socket chardev's redial option is ``reconnect=<s>``
(QEMU 9 renamed it ``reconnect-ms``). KVM is unusable on these machines, so the
default accelerator is TCG.
"""

import shutil
import signal
import subprocess

BOOT_SPEC_NAME = "opt/vic.containers/boot"
QEMU = "qemu-system-x86_64"


def command(iso, disks, boot_spec, log, channel, *, memory_mb=512, cpus=1, accel="tcg", machine="q35",
            cpu="qemu64,+rdrand", qemu=QEMU):
    """QEMU's argument list.

    iso: the tether ISO's path. disks: {SCSI unit: (flat file path, read_only)}.
    boot_spec: path of the boot spec JSON file. log: path of the log file
    (appended to, so a restarted VM keeps its earlier output). channel:
    (host, port) the tether channel dials out to. machine: q35, whose AHCI CD-ROM
    ISOLINUX reads the kernel and initramfs from in 1.7 s under TCG, where the pc
    machine's IDE one takes 3.3 s. cpu: with RDRAND the kernel (RANDOM_TRUST_CPU) has
    its random pool at once; without it CPython's first getrandom() waits ~1.2 s under TCG
    for the kernel's jitter entropy.
    """
    host, port = channel
    arguments = [shutil.which(qemu) or qemu, "-accel", accel, "-machine", machine, "-cpu", cpu, "-m", str(memory_mb),
                 "-smp", str(cpus), "-nodefaults", "-nographic", "-no-user-config", "-no-reboot",
                 "-drive", f"file={_escape(iso)},media=cdrom,if=none,id=cdrom,readonly=on",
                 "-device", "ide-cd,drive=cdrom,bus=ide.0", "-boot", "d",
                 "-fw_cfg", f"name={BOOT_SPEC_NAME},file={_escape(boot_spec)}",
                 # SeaBIOS would print to the first serial port with no VGA: the log port is the process's alone.
                 "-fw_cfg", "name=etc/sercon-port,string=0",
                 "-chardev", f"file,id=log,path={_escape(log)},append=on", "-serial", "chardev:log",
                 "-chardev", f"socket,id=channel,host={host},port={port},reconnect=1", "-serial", "chardev:channel"]
    if disks:
        arguments += ["-device", "pvscsi,id=pvscsi0"]
    for unit, (path, read_only) in sorted(disks.items()):
        arguments += ["-drive", f"file={_escape(path)},format=raw,if=none,id=disk{unit},"
                                f"readonly={'on' if read_only else 'off'}",
                      "-device", f"scsi-hd,drive=disk{unit},bus=pvscsi0.0,scsi-id={unit},lun=0"]
    return arguments


def start(iso, disks, boot_spec, log, channel, *, stderr=None, **options):
    """Start the VM; the Popen of its QEMU process (stop it with stop()). QEMU's own errors go to `stderr`."""
    # Its own session: a signal meant for the emulator's terminal does not reach the VM.
    return subprocess.Popen(command(iso, disks, boot_spec, log, channel, **options), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)


def stop(process, timeout=5):
    """Power the VM off: SIGTERM to its QEMU (by pid), SIGKILL after `timeout` s; its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def _escape(value):
    # QEMU option values end at a comma; a literal one is written twice.
    return str(value).replace(",", ",,")
