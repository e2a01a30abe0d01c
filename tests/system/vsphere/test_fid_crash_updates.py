"""A feed batch's VMs as they are now (updates.current, which the endpoint's live cache and the host emulator
apply): vcsim does not always list a batch's changes of one VM in the order they happened, so the last listed
value can be an older one. The batches here are written as vcsim sent them; the VMs are vcsim's. And a
Follower's idle waits hand its owner nothing."""

import time

import pytest

from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc, tasks, updates
from ansible_collections.vic.containers.plugins.module_utils.vsphere.session import Session

try:
    from pyVmomi import vim, vmodl
except ImportError:  # pragma: no cover
    vim = vmodl = None

PATHS = ("name", "runtime.powerState", "summary.runtime.bootTime")


@pytest.fixture(scope="module")
def session(vcsim):
    with Session(vcsim.host, vcsim.username, vcsim.password, vcsim.port, validate_certs=False) as opened:
        yield opened


def _batch(*objects):
    pc = vmodl.query.PropertyCollector
    return pc.UpdateSet(version="7", filterSet=[pc.FilterUpdate(objectSet=[
        pc.ObjectUpdate(kind=kind, obj=ref, changeSet=[pc.Change(name=name, op="assign", val=value)
                                                       for name, value in changes])
        for ref, kind, changes in objects])])


def _vms(session):
    return session.content.rootFolder.childEntity[0].vmFolder.childEntity


def test_a_batch_listing_a_power_on_before_an_older_power_off_gives_the_vm_as_on(session, vcsim):
    vm = _vms(session)[0]
    if vm.runtime.powerState != "poweredOn":
        tasks.wait(session, {vm.PowerOnVM_Task(): "power on"})
    batch = _batch((vm, "modify", [("runtime.powerState", "poweredOn"), ("runtime.powerState", "poweredOff")]))
    # What the batch's last value says, and what the VM is.
    assert updates.applied({}, updates.fold(batch)[vm._moId][2])["runtime.powerState"] == "poweredOff"
    name = vm.name
    mark = vcsim.mark()
    ref, kind, changes = updates.current(session, batch, PATHS)[vm._moId]
    now = updates.applied({}, changes)
    assert (ref, kind, now["runtime.powerState"], now["name"]) == (vm, "modify", "poweredOn", name)
    assert now["summary.runtime.bootTime"] is not None
    assert vcsim.soap_methods(mark) == ["RetrievePropertiesEx"]  # one read for the whole batch


def test_a_vm_gone_since_the_batch_leaves_and_an_unset_property_is_removed(session, vcsim):
    first, second = _vms(session)[1:3]
    if second.runtime.powerState == "poweredOn":
        tasks.wait(session, {second.PowerOffVM_Task(): "power off"})
    if first.runtime.powerState == "poweredOn":
        tasks.wait(session, {first.PowerOffVM_Task(): "power off"})
    gone = first._moId
    tasks.wait(session, {first.Destroy_Task(): "destroy"})
    batch = _batch((vim.VirtualMachine(gone, session.stub), "modify", [("runtime.powerState", "poweredOn")]),
                   (second, "modify", [("summary.runtime.bootTime", "2026-01-01T00:00:00Z")]))
    answer = updates.current(session, batch, PATHS)
    assert answer[gone][1] == "leave"
    assert "summary.runtime.bootTime" not in updates.applied({"summary.runtime.bootTime": 1}, answer[second._moId][2])


def test_a_failed_read_falls_back_to_the_batch_values(session, vcsim):
    vm = _vms(session)[-1]
    batch = _batch((vm, "modify", [("name", "as-listed")]))
    vcsim.inject_fault("RetrievePropertiesEx")
    try:
        answer = updates.current(session, batch, PATHS)
    finally:
        vcsim.clear_faults()
    assert updates.applied({}, answer[vm._moId][2]) == {"name": "as-listed"}


class _Owner:
    def __init__(self):
        self.batches = []

    def deliver(self, update):
        self.batches.append(update)


def test_a_follower_delivers_no_batch_for_a_wait_that_timed_out(session):
    # The owner's bound method is kept once by the Follower, so its identity test (is it the usual delivery
    # or a renewed collector's first one?) holds: an idle feed hands its owner nothing, not empty batches.
    vm = _vms(session)[0]
    spec = vmodl.query.PropertyCollector.FilterSpec(objectSet=[pc.object_spec(vm)],
                                                    propSet=pc.property_specs({"VirtualMachine": ["name"]}))
    collector = updates.own_collector(session, spec)
    owner = _Owner()
    follower = updates.Follower(collector, owner.deliver, "idle-feed")
    follower.start()
    try:
        time.sleep(updates.MAX_WAIT_SECONDS * 2 + 1)  # the first wait (everything), then two that time out
    finally:
        follower.stop(join=True)
        collector.DestroyPropertyCollector()
    assert len(owner.batches) == 1 and owner.batches[0] is not None, owner.batches
