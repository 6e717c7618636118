"""Live migration with shared instance storage (run with FERRY_SHARED_STORAGE=1: both
libvirt hosts see one directory at the same path)."""
import os

from ferry import action, wait_migration
from lvlib import TERMINAL, domains, images_dir, running_on


def test_shared_storage_live_migration(admin, stack, flavors, clean):
    assert os.path.isdir(os.path.join(stack.state, "shared-instances")), "needs shared storage"
    sid = admin.boot("lv-shared", flavor="lv-disk", image="", az="nova:host1")
    admin.wait(sid, timeout=90)
    disk = os.path.join(images_dir(stack, "host1"), sid, "disk")
    before = os.stat(disk).st_ino
    r = action(admin, sid, {"os-migrateLive": {"host": "host2", "block_migration": "auto"}})
    assert r.status_code == 202, r.text
    m = wait_migration(admin, sid, TERMINAL, timeout=120)
    assert m["status"] == "completed", m
    # "auto" on shared storage: no block migration, the very same disk file.
    assert stack.scalar(f"SELECT block_migration FROM migrations WHERE uuid = '{m['uuid']}'") == "f"
    assert os.stat(disk).st_ino == before
    assert running_on(sid) == ["host2"] and sid not in domains("host1")
    assert admin.server(sid)["OS-EXT-SRV-ATTR:host"] == "host2"
