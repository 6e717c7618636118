"""A second stack whose compute hosts share one instances path: live migration without
block migration works, block migration is refused, and a cold migration copies nothing."""
import os

import pytest

from ferry import (Client, SideStack, action, allocations, assert_settled, disk_path, guests,
                   make_flavor, migration_consumers, reset_agents, wait_events, wait_migration)

TERMINAL = ("completed", "error", "failed", "cancelled", "confirmed", "reverted")


@pytest.fixture(scope="module")
def shared(stack):
    s = SideStack(stack.state + "-shared", int(stack.env["FERRY_PORT_BASE"]) + 200,
                  FERRY_SHARED_STORAGE="1")
    s.up()
    try:
        c = Client(s.api, "admin", s.env["FERRY_ADMIN_PASSWORD"], "admin")
        s.sql("INSERT INTO quota_limits (project_id, resource, hard_limit) "
              "SELECT id, r, -1 FROM projects, unnest(ARRAY['instances','cores','ram']) r "
              "WHERE name = 'admin' ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = -1")
        make_flavor(c, "e2e-s", 128, disk=0)
        make_flavor(c, "e2e-l", 256, 2, disk=0)
        yield s, c
    finally:
        if not os.environ.get("FERRY_E2E_KEEP"):
            s.down()


@pytest.fixture
def srv(shared):
    s, c = shared
    reset_agents(s)
    c.delete_all()
    sid = c.boot("e2e-shared", flavor="e2e-s", az="nova:host1")
    c.wait(sid)
    yield s, c, sid
    reset_agents(s)
    c.delete_all()


def live(c, sid, block):
    return action(c, sid, {"os-migrateLive": {"host": "host2", "block_migration": block}})


def test_hosts_share_the_instances_path(shared):
    s, _ = shared
    paths = s.sql("SELECT DISTINCT instances_path FROM compute_nodes")
    assert paths == [[os.path.join(s.state, "shared-instances")]]


@pytest.mark.parametrize("block", [False, "auto"])
def test_live_migration_without_block_migration(srv, block):
    s, c, sid = srv
    disk = disk_path(s, "host1", sid)
    inode = os.stat(disk).st_ino
    c.ok(live(c, sid, block), 202)
    m = wait_migration(c, sid, TERMINAL)
    assert m["status"] == "completed", m
    # "auto" on shared storage resolves to a plain live migration: the disk stays put.
    assert s.scalar(f"SELECT block_migration FROM migrations WHERE uuid = '{m['uuid']}'") == "f"
    assert os.stat(disk).st_ino == inode
    assert_settled(s, c, sid, "host2")
    assert sid not in guests(s, "host1")
    # The shared-storage test leaves no temp file behind.
    names = [n for n in os.listdir(os.path.join(s.state, "shared-instances"))
             if n.startswith(sid) or n.startswith(".") or "tmp" in n or "shared" in n]
    assert names == [sid], names


def test_block_migration_is_refused(srv):
    s, c, sid = srv
    c.ok(live(c, sid, True), 202)
    m = wait_migration(c, sid, TERMINAL)
    assert m["status"] == "error", m
    assert_settled(s, c, sid, "host1")
    ev = wait_events(c, sid, "live-migration", {"compute_check_can_live_migrate_source": "Error"})
    assert ev.get("compute_check_can_live_migrate_source") == "Error", ev
    assert [n for n in os.listdir(os.path.join(s.state, "shared-instances")) if n.startswith(sid)] == [sid]


@pytest.mark.parametrize("finish", ["confirmResize", "revertResize"])
def test_cold_migration_copies_nothing(srv, finish):
    s, c, _ = srv
    data = os.urandom(1024 * 1024 + 3)
    img = c.ok(c.request("POST", "/image/v2/images", {
        "name": "e2e-shared", "disk_format": "raw", "container_format": "bare"}), 201)
    c.ok(c.request("PUT", f"/image/v2/images/{img['id']}/file", raw=data,
                   headers={"Content-Type": "application/octet-stream"}), 204)
    c.delete_all()
    sid = c.boot("e2e-shared-cold", flavor="e2e-s", image=img["id"], az="nova:host1")
    c.wait(sid)
    disk = disk_path(s, "host1", sid)

    def same_data():
        with open(disk, "rb") as f:
            return f.read(len(data)) == data
    assert same_data()
    c.ok(action(c, sid, {"resize": {"flavorRef": "e2e-l"}}), 202)
    v = c.wait(sid, ("VERIFY_RESIZE",))
    assert v["OS-EXT-SRV-ATTR:host"] == "host2"
    m = wait_migration(c, sid, ("finished",) + TERMINAL)
    assert m["status"] == "finished"
    assert s.scalar(f"SELECT count(*) FROM migration_jobs WHERE migration_uuid = '{m['uuid']}' "
                    "AND kind = 'disk_transfer'") == "0"
    assert same_data()
    assert allocations(s, m["uuid"]) == {"host1": (1, 128, 0)}
    r = action(c, sid, {finish: None})
    assert r.status_code == (204 if finish == "confirmResize" else 202), r.text
    c.wait(sid)
    final = wait_migration(c, sid, TERMINAL)
    host = "host2" if finish == "confirmResize" else "host1"
    assert final["status"] == ("confirmed" if finish == "confirmResize" else "reverted")
    assert_settled(s, c, sid, host, flavor="e2e-l" if host == "host2" else "e2e-s")
    assert same_data()
    assert migration_consumers(s, sid) == []
    assert [n for n in os.listdir(os.path.join(s.state, "shared-instances")) if n.startswith(sid)] == [sid]
