# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host emulator against vcsim, with container VMs made here through the API and a tether stand-in.

The stand-in (tools/harness/emulator.py) reports what the emulator handed it (boot
spec, disks, log descriptor, channel) and then exits with the code its command
names, or sleeps until killed; the endpoint's tether port is a plain TCP server
here, which answers the stand-in's hello, so the channel relay is tested end to end.
"""

import json
import os
import signal
import socket
import threading

import pytest

from ansible_collections.vic.containers.plugins.module_utils.vch import actions
from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc
from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks
from ansible_collections.vic.containers.plugins.module_utils.vsphere.session import Session
from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.tools.harness.emulator import STAND_IN, Emulator, emulated
from ansible_collections.vic.containers.tools.harness.waiting import until

from pyVmomi import vim

DISK_KB = 4096


class FakeConcentrator:
    """The endpoint's tether port as far as the relay is concerned: answers ``hello X`` with ``welcome X``."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                conn, _unused = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                line = conn.makefile("r", encoding="utf-8").readline()
                conn.sendall(line.replace("hello", "welcome", 1).encode())

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def session(vcsim):
    with Session(vcsim.host, vcsim.username, vcsim.password, vcsim.port, validate_certs=False) as opened:
        yield opened


@pytest.fixture(scope="module")
def concentrator():
    server = FakeConcentrator()
    yield server
    server.close()


@pytest.fixture
def stand_in_emulator(vcsim):
    # Per test: the tests that start emulators of their own must find no other one following the same
    # vSphere (two would both run a VM that powers on: two tethers, two reports in its log).
    with emulated(vcsim, tether_python="host", tether_module=STAND_IN) as running:
        yield running


def make_vm(session, name, command, port, managed=True, boot=True, networks=()):
    """A container VM as the endpoint makes one: pvscsi + a new disk, the two serial ports, the boot spec, a NIC
    on each of ``networks`` (standard port group names)."""
    content = session.content
    datacenter = content.rootFolder.childEntity[0]
    pool = datacenter.hostFolder.childEntity[0].resourcePool
    host_key, _public = protocol.new_host_key()
    _key, endpoint_key = protocol.new_host_key()
    container_id = name + "0" * 8
    spec = protocol.boot_spec(container_id, host_key, endpoint_key, {"Cmd": command}, hostname=name, layers=[0],
                              rw=1)
    scsi = vim.vm.device.ParaVirtualSCSIController(key=-300, busNumber=0, sharedBus="noSharing")
    devices = [vim.vm.device.VirtualDeviceSpec(operation="add", device=scsi)]
    for unit, key in ((0, -400), (1, -401)):
        backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName="[LocalDS_0] %s/disk%d.vmdk" % (name, unit), diskMode="persistent", thinProvisioned=True)
        disk = vim.vm.device.VirtualDisk(key=key, controllerKey=-300, unitNumber=unit, capacityInKB=DISK_KB,
                                         backing=backing)
        devices.append(vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk))
    for key, backing in ((-600, vim.vm.device.VirtualSerialPort.URIBackingInfo(
            direction="client", serviceURI="tcp://127.0.0.1:%d" % port)),
            (-601, vim.vm.device.VirtualSerialPort.FileBackingInfo(fileName="[LocalDS_0] %s/output.log" % name))):
        devices.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.VirtualSerialPort(
            key=key, yieldOnPoll=True, backing=backing)))
    devices += actions.nic_specs([(network, None, None) for network in networks])
    config = vim.vm.ConfigSpec(
        name=name, guestId="otherGuest64", numCPUs=1, memoryMB=64, deviceChange=devices,
        files=vim.vm.FileInfo(vmPathName="[LocalDS_0] %s/%s.vmx" % (name, name)),
        extraConfig=actions.option_values(codec.split_value(protocol.BOOT_KEY, json.dumps(spec)) if boot else {}))
    if managed:
        config.managedBy = vim.ext.ManagedByInfo(extensionKey=codec.MANAGED_BY_EXTENSION,
                                                 type=codec.MANAGED_BY_CONTAINER)
    task = datacenter.vmFolder.CreateVM_Task(config=config, pool=pool)
    ref = tasks.wait(session, {task: "creating " + name})[0]
    return ref, container_id


def power(session, ref, on):
    task = ref.PowerOnVM_Task() if on else ref.PowerOffVM_Task()
    tasks.wait(session, {task: "powering"}, ignore=("InvalidPowerState",))


def power_state(session, ref):
    return pc.retrieve_objects(session, [ref], ("runtime.powerState",))[0].get("runtime.powerState")


def destroy(session, ref):
    tasks.wait(session, {ref.Destroy_Task(): "destroying"})


def log_lines(vcsim, name):
    path = os.path.join(vcsim.datastores["LocalDS_0"], name, "output.log")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as log:
        return [json.loads(line) for line in log]


def test_a_container_vm_runs_its_tether_with_its_disks_log_and_channel_and_is_powered_off_when_it_ends(
        vcsim, session, concentrator, stand_in_emulator):
    ref, container_id = make_vm(session, "ends", ["exit", "3"], concentrator.port)
    try:
        power(session, ref, True)
        until(lambda: power_state(session, ref) == "poweredOff",
              lambda: "the VM to be powered off after its tether ended:\n" + stand_in_emulator.log()[-3000:])
        reports = log_lines(vcsim, "ends")
        assert len(reports) == 1, stand_in_emulator.log()
        report = reports[0]
        assert report["id"] == container_id
        # Both disks handed in by SCSI unit and grown to their capacity (vcsim makes them empty).
        assert report["disks"] == {"0": DISK_KB * 1024, "1": DISK_KB * 1024}
        assert report["answer"] == "welcome " + container_id     # the channel reached the endpoint's port
        assert report["pid"] == 1                                   # the tether is its namespace's init
        until(lambda: stand_in_emulator.processes() == [], "the VM's processes to end")
    finally:
        destroy(session, ref)


def test_a_power_off_through_the_api_kills_the_vm_and_a_power_on_boots_it_again(
        vcsim, session, concentrator, stand_in_emulator):
    ref, _container_id = make_vm(session, "sleeper", ["sleep"], concentrator.port)
    try:
        power(session, ref, True)
        until(lambda: len(log_lines(vcsim, "sleeper")) == 1, lambda: "the tether to report:\n" + stand_in_emulator.log())
        assert stand_in_emulator.processes() != []
        power(session, ref, False)
        until(lambda: stand_in_emulator.processes() == [], "the VM's processes to be killed")
        assert power_state(session, ref) == "poweredOff"
        power(session, ref, True)  # the log goes on, as a serial port's file does
        until(lambda: len(log_lines(vcsim, "sleeper")) == 2, lambda: "the second boot:\n" + stand_in_emulator.log())
        power(session, ref, False)
        until(lambda: stand_in_emulator.processes() == [], "the VM's processes to be killed")
    finally:
        destroy(session, ref)


def nic_macs(session, ref):
    devices = pc.retrieve_objects(session, [ref], ("config.hardware.device",))[0].get("config.hardware.device")
    return [d.macAddress for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]


def test_a_vms_nics_are_eth_n_with_their_macs_on_a_bridge_per_port_group_ended_with_the_vm(
        vcsim, session, concentrator, stand_in_emulator):
    ref, _container_id = make_vm(session, "nics", ["sleep"], concentrator.port,
                                 networks=("VM Network", "DC0_DVPG0", "VM Network"))
    try:
        power(session, ref, True)
        until(lambda: len(log_lines(vcsim, "nics")) == 1, lambda: "the tether to report:\n" + stand_in_emulator.log())
        macs = nic_macs(session, ref)
        assert len(set(macs)) == 3 and all(macs), macs
        # In the VM's own network namespace: its NICs only, named in its order, with the MACs vSphere gave them.
        assert log_lines(vcsim, "nics")[0]["nics"] == {"eth0": macs[0], "eth1": macs[1], "eth2": macs[2]}
        log = stand_in_emulator.log()
        assert log.count("bridge in the namespace of pid") == 2, log   # two port groups: two bridges
        power(session, ref, False)
        # The VM ended, nothing uses the bridges: their namespaces' holders end too.
        until(lambda: stand_in_emulator.processes() == [], "the VM's processes and the bridges to end")
        # The emulator logs a bridge's end once it reaped its holder, a moment after the process is gone.
        until(lambda: stand_in_emulator.log().count("bridge ended") == 2, stand_in_emulator.log)
    finally:
        destroy(session, ref)


def test_a_vm_that_is_no_container_vm_is_left_alone(vcsim, session, concentrator, stand_in_emulator):
    ref, _container_id = make_vm(session, "plain", ["exit", "0"], concentrator.port, managed=False)
    ended, _unused = make_vm(session, "marker", ["exit", "0"], concentrator.port)
    try:
        power(session, ref, True)
        power(session, ended, True)
        # The container VM powered on after it has run and ended: the plain one had its chance by then.
        until(lambda: power_state(session, ended) == "poweredOff", "the container VM to run and end")
        assert log_lines(vcsim, "plain") == [] and power_state(session, ref) == "poweredOn"
    finally:
        power(session, ref, False)
        destroy(session, ref)
        destroy(session, ended)


def test_a_container_vm_without_a_boot_spec_is_powered_off_as_a_vm_whose_tether_halts(
        vcsim, session, concentrator, stand_in_emulator):
    ref, _container_id = make_vm(session, "nospec", ["exit", "0"], concentrator.port, boot=False)
    try:
        power(session, ref, True)
        until(lambda: power_state(session, ref) == "poweredOff", lambda: "the power-off:\n" + stand_in_emulator.log())
        assert "container VM nospec has no boot spec" in stand_in_emulator.log()
        assert log_lines(vcsim, "nospec") == []
    finally:
        destroy(session, ref)


def test_stopping_the_emulator_ends_its_vms_powers_them_off_and_leaves_nothing(vcsim, session, concentrator):
    emulator = Emulator(vcsim, tether_python="host", tether_module=STAND_IN)
    ref, _container_id = make_vm(session, "running", ["sleep"], concentrator.port)
    try:
        power(session, ref, True)
        until(lambda: len(log_lines(vcsim, "running")) == 1, lambda: "the tether to report:\n" + emulator.log(), timeout=60)
        assert emulator.stop() == 0, emulator.log()
        assert emulator.leftovers() == {}, emulator.log()
        assert power_state(session, ref) == "poweredOff"
    finally:
        emulator.close()
        destroy(session, ref)


def test_an_emulator_killed_with_sigkill_takes_its_vms_with_it_and_the_next_one_clears_its_files(
        vcsim, session, concentrator):
    killed = Emulator(vcsim, tether_python="host", tether_module=STAND_IN)
    ref, _container_id = make_vm(session, "orphan", ["sleep"], concentrator.port, networks=("VM Network",))
    try:
        power(session, ref, True)
        until(lambda: len(log_lines(vcsim, "orphan")) == 1,
              lambda: "the tether to report (log: %s):\n%s" % (log_lines(vcsim, "orphan"), killed.log()), timeout=60)
        until(killed.processes, lambda: "the VM's processes to run:\n" + killed.log())
        os.kill(killed.proc.pid, signal.SIGKILL)
        killed.proc.wait(10)
        # The kernel ends the VM's processes with the emulator (parent-death signal, then the pid namespace), and
        # the process that holds its port group's namespace.
        until(lambda: killed.processes() == [], lambda: "the VM's processes to die with the emulator")
        assert os.path.isdir(killed.base)   # its files are the next emulator's to clear (a kill -9 runs no code)
        # Off first, as vSphere has it after a host dies: else the next emulator boots it again, and the
        # files of that new run are its own, not leftovers.
        power(session, ref, False)
        with emulated(vcsim, tether_python="host", tether_module=STAND_IN):
            assert killed.leftovers() == {}, killed.log()
    finally:
        killed.close()
        if power_state(session, ref) != "poweredOff":
            power(session, ref, False)
        destroy(session, ref)
