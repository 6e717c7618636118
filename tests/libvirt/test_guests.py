"""Guests on real QEMU through the whole stack: boot, power off/on, delete."""
import os

from ferry import action
from lvlib import domains, images_dir, running_on, wait_until


def test_boot_power_delete(admin, stack, flavors, clean):
    sid = admin.boot("lv-boot", flavor="lv-disk", image="", az="nova:host1")
    s = admin.wait(sid, timeout=90)
    assert s["OS-EXT-SRV-ATTR:host"] == "host1" and s["OS-EXT-STS:power_state"] == 1
    assert running_on(sid) == ["host1"]
    # A qcow2 root disk of the flavor's size, where the hypervisor looks for it.
    disk = os.path.join(images_dir(stack, "host1"), sid, "disk")
    with open(disk, "rb") as f:
        assert f.read(4) == b"QFI\xfb"

    admin.ok(action(admin, sid, {"os-stop": None}), 202)
    admin.wait(sid, ("SHUTOFF",), timeout=60)
    assert domains("host1")[sid] == "shut off"
    admin.ok(action(admin, sid, {"os-start": None}), 202)
    admin.wait(sid, ("ACTIVE",), timeout=60)
    assert domains("host1")[sid] == "running"

    admin.delete(sid, timeout=60)
    assert sid not in domains("host1")
    assert not os.path.exists(os.path.join(images_dir(stack, "host1"), sid))


def test_power_state_follows_the_hypervisor(admin, stack, flavors, clean):
    """A guest stopped behind Ferry's back: the lifecycle event updates the record."""
    sid = admin.boot("lv-event", flavor="lv-tiny", image="", az="nova:host1")
    admin.wait(sid, timeout=90)
    from lvlib import virsh
    virsh("host1", "destroy", sid)
    wait_until(lambda: stack.scalar(f"SELECT power_state FROM instances WHERE uuid = '{sid}'")
               == "4", 20, "power_state 4 in the database")
