"""The live cache (services/portlayer/cache.py) applying vSphere's update feed: a VM the endpoint destroyed never
comes back, whatever the feed still reports of it, and a batch counts in each VM's last values.

The batches are pyVmomi's own UpdateSet objects, in the shapes vcsim sends; one collected while a
destroy ran can arrive after it."""

from pyVmomi import vim, vmodl

from ansible_collections.vic.containers.services.portlayer.cache import LiveCache

PC = vmodl.query.PropertyCollector


def _batch(*objects):
    updates = [PC.ObjectUpdate(obj=vim.VirtualMachine(moid), kind=kind,
                               changeSet=[PC.Change(name=name, op="assign", val=value)
                                          for name, value in changes.items()])
               for moid, kind, changes in objects]
    return PC.UpdateSet(version="1", filterSet=[PC.FilterUpdate(objectSet=updates)])


def _cache():
    cache = LiveCache(state=None)
    seen = []
    cache.listen(lambda moid, before, after: seen.append((moid, after and after.get("name"))))
    return cache, seen


def test_a_destroyed_vm_reported_again_by_the_feed_stays_gone():
    cache, seen = _cache()
    cache._apply(_batch(("vm-7", "enter", {"name": "web"})))
    cache.drop("vm-7")
    # Late reports of it: an enter (collected while the destroy ran), a modify, then its leave.
    cache._apply(_batch(("vm-7", "enter", {"name": "web", "runtime.powerState": "poweredOff"})))
    cache._apply(_batch(("vm-7", "modify", {"name": "web2"})))
    assert "vm-7" not in cache.vms
    cache._apply(_batch(("vm-7", "leave", {})))
    cache._apply(_batch(("vm-7", "enter", {"name": "web"})))  # even after its leave
    assert "vm-7" not in cache.vms
    assert seen == [("vm-7", "web"), ("vm-7", None)]  # listeners are told once that it went


def test_a_vm_that_left_the_pool_comes_back_when_it_enters_again():
    cache, seen = _cache()
    cache._apply(_batch(("vm-5", "enter", {"name": "old"})))
    cache._apply(_batch(("vm-5", "leave", {})))  # moved out of the VCH pool in vCenter, then back
    cache._apply(_batch(("vm-5", "enter", {"name": "old"})))
    assert cache.vms["vm-5"]["name"] == "old" and seen == [("vm-5", "old"), ("vm-5", None), ("vm-5", "old")]


def test_a_late_write_through_does_not_bring_a_destroyed_vm_back():
    cache, unused = _cache()
    cache._apply(_batch(("vm-8", "enter", {"name": "db"})))
    cache.drop("vm-8")
    cache.put(vim.VirtualMachine("vm-8"), {"runtime.powerState": "poweredOff"})
    assert "vm-8" not in cache.vms


def test_other_vms_come_and_go_as_reported_and_a_batch_counts_in_its_last_values():
    cache, unused = _cache()
    cache.drop("vm-1")
    cache._apply(_batch(("vm-2", "enter", {"name": "a"}), ("vm-2", "modify", {"name": "b"}),
                        ("vm-3", "enter", {"name": "c"})))
    assert {moid: vm["name"] for moid, vm in cache.vms.items()} == {"vm-2": "b", "vm-3": "c"}
    # A VM listed as leaving and changing in one batch, in either order, is gone.
    cache._apply(_batch(("vm-3", "leave", {}), ("vm-3", "modify", {"name": "d"})))
    cache._apply(_batch(("vm-2", "modify", {"name": "e"}), ("vm-2", "leave", {})))
    assert not cache.vms
