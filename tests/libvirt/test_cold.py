"""Cold migration of real QEMU guests: the disk is pushed between the agents, the guest
is defined and started on the destination; confirm and revert."""
import os

import pytest

from ferry import action, wait_migration
from lvlib import domains, images_dir, running_on

TERMINAL = ("confirmed", "reverted", "error")


@pytest.mark.parametrize("finish", ["confirm", "revert"])
def test_cold_migrate(admin, stack, flavors, clean, finish):
    sid = admin.boot("lv-cold", flavor="lv-disk", image="", az="nova:host1")
    admin.wait(sid, timeout=90)
    src_disk = os.path.join(images_dir(stack, "host1"), sid, "disk")
    with open(src_disk, "rb") as f:
        head = f.read(65536)
    r = action(admin, sid, {"migrate": None})
    assert r.status_code == 202, r.text
    s = admin.wait(sid, ("VERIFY_RESIZE",), timeout=120)
    assert s["OS-EXT-SRV-ATTR:host"] == "host2"
    assert running_on(sid) == ["host2"]
    assert sid not in domains("host1")
    dest_disk = os.path.join(images_dir(stack, "host2"), sid, "disk")
    with open(dest_disk, "rb") as f:
        assert f.read(len(head)) == head
    kept = os.path.join(images_dir(stack, "host1"), sid + "_resize")
    assert os.path.exists(os.path.join(kept, "disk"))

    if finish == "confirm":
        assert action(admin, sid, {"confirmResize": None}).status_code == 204
        admin.wait(sid, ("ACTIVE",), timeout=60)
        assert wait_migration(admin, sid, TERMINAL, timeout=60)["status"] == "confirmed"
        assert running_on(sid) == ["host2"]
        assert not os.path.exists(kept)
        assert admin.server(sid)["OS-EXT-SRV-ATTR:host"] == "host2"
    else:
        assert action(admin, sid, {"revertResize": None}).status_code == 202
        admin.wait(sid, ("ACTIVE",), timeout=90)
        assert wait_migration(admin, sid, TERMINAL, timeout=60)["status"] == "reverted"
        assert running_on(sid) == ["host1"]
        assert sid not in domains("host2")
        assert not os.path.exists(os.path.join(images_dir(stack, "host2"), sid))
        assert not os.path.exists(kept) and os.path.exists(src_disk)
        assert admin.server(sid)["OS-EXT-SRV-ATTR:host"] == "host1"
