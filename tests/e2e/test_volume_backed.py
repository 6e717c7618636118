"""Live migration of a volume-backed server (booted from a volume: its root disk is the
volume mapped with boot_index 0) on local, unshared storage.

The conductor gives check_can_live_migrate_source the server's block device info, and
the source decides from it, as Nova's manager does, whether the server is
volume-backed.  Such a server has no local disk to copy, so it live-migrates without
shared storage and without block migration ("auto" picks none); its volume
connections go to the destination.  A server whose root disk is local is still
refused without block migration."""
import os

import pytest

from ferry import (action, agent, allocations, bindings, connections, disk_path,
                   guests, hosts, instances_path, leftovers, make_flavor, make_port,
                   make_volume, migration_consumers, wait_events, wait_migration)

# No root disk size: a server booted from a volume then has no local disk at all.
NODISK = "e2e-vb-64m"
TERMINAL = ("completed", "error", "failed", "cancelled")


@pytest.fixture(scope="module", autouse=True)
def flavors(admin):
    make_flavor(admin, NODISK, 64, disk=0)


def bdm(vid, boot_index):
    return {"uuid": vid, "source_type": "volume", "destination_type": "volume",
            "boot_index": boot_index, "delete_on_termination": False}


def boot(client, name, root=True):
    """A server on host1 with a port, a data volume and (root=True) its root on a volume."""
    port = make_port(client, name + "-port")
    vols = [make_volume(client, name + "-data")]
    maps = [bdm(vols[0], -1)]
    if root:
        vols.insert(0, make_volume(client, name + "-root"))
        maps.insert(0, bdm(vols[0], 0))
    sid = client.boot(name, flavor=NODISK, networks=[{"port": port}], az="nova:host1",
                      block_device_mapping_v2=maps)
    client.wait(sid)
    return sid, port, vols


def live(client, sid, block, host="host2"):
    return action(client, sid, {"os-migrateLive": {"host": host, "block_migration": block}})


def local_storage(stack):
    return len({instances_path(stack, h) for h in hosts(stack)}) == len(hosts(stack))


def record(stack, mig_uuid):
    row = stack.sql("SELECT block_migration, migrate_data->>'is_volume_backed',"
                    " migrate_data->>'is_shared_instance_path' FROM migrations"
                    f" WHERE uuid = '{mig_uuid}'")[0]
    return {"block_migration": row[0] == "t", "is_volume_backed": row[1] == "true",
            "is_shared_instance_path": row[2] == "true"}


def guest(stack, host, sid):
    r = agent(stack, host, "GET", f"/internal/v1/instances/{sid}")
    assert r.status_code == 200, r.text
    return r.json()["instance"]


def assert_on(stack, client, sid, host, port, vols, moved=True):
    """The server runs on host only; its allocation, port binding and every volume
    connection are there and nowhere else; nothing is left on the other host.  A
    guest that moved was given its volumes by pre_live_migration on host."""
    s = client.server(sid)
    assert s["status"] == "ACTIVE", (s["status"], s.get("fault"))
    assert s["OS-EXT-SRV-ATTR:host"] == host
    assert s["OS-EXT-STS:task_state"] is None
    assert s["OS-EXT-STS:power_state"] == 1
    for h in hosts(stack):
        assert (sid in guests(stack, h)) == (h == host), f"guest of {sid} on {h}"
        if h != host:
            assert not os.path.exists(disk_path(stack, h, sid)), f"disk of {sid} left on {h}"
            assert not os.path.exists(os.path.join(instances_path(stack, h), sid))
        assert leftovers(stack, h, sid) == [], f"files of {sid} left on {h}"
    assert list(allocations(stack, sid)) == [host]
    assert migration_consumers(stack, sid) == []
    assert bindings(stack, sid) == [(host, "ACTIVE")]
    assert client.ok(client.get(f"/network/v2.0/ports/{port}"))["port"]["binding:host_id"] == host
    assert connections(stack, sid) == [host] * len(vols)
    assert sorted(v["id"] for v in s["os-extended-volumes:volumes_attached"]) == sorted(vols)
    if moved:
        attached = {v["volume_id"] for v in guest(stack, host, sid)["volumes"]}
        assert attached == set(vols)
    # Every connection is the one made for this host (the volume's file).
    paths = stack.sql("SELECT c.connection_info->>'path', v.path FROM volume_connections c"
                      " JOIN volume_attachments a ON a.id = c.attachment_id"
                      " JOIN volumes v ON v.id = a.volume_id"
                      f" WHERE a.instance_uuid = '{sid}'")
    assert paths and all(p[0] == p[1] for p in paths), paths
    for v in vols:
        row = stack.sql(f"SELECT status FROM volumes WHERE id = '{v}'")
        assert row == [["in-use"]], (v, row)


@pytest.mark.parametrize("block", [False, "auto"])
def test_volume_backed_moves_without_block_migration(admin, stack, clean, agents, block):
    assert local_storage(stack), "the e2e stack has local instance storage"
    sid, port, vols = boot(admin, f"e2e-vb-{block}")
    root = stack.scalar(f"SELECT boot_index FROM volume_attachments WHERE volume_id = '{vols[0]}'")
    assert root == "0"
    assert connections(stack, sid) == ["host1", "host1"]
    # Nothing local to copy: the guest's disk on the source holds no data.
    assert guest(stack, "host1", sid)["disk_size"] == 0

    admin.ok(live(admin, sid, block), 202)
    m = wait_migration(admin, sid, TERMINAL)
    assert m["status"] == "completed", m
    assert (m["source_compute"], m["dest_compute"]) == ("host1", "host2")
    rec = record(stack, m["uuid"])
    assert rec == {"block_migration": False, "is_volume_backed": True,
                   "is_shared_instance_path": False}, rec
    assert_on(stack, admin, sid, "host2", port, vols)
    ev = wait_events(admin, sid, "live-migration",
                     {"compute_post_live_migration_at_destination": "Success"})
    assert ev.get("compute_check_can_live_migrate_source") == "Success", ev

    # And back again, the same way.
    admin.ok(live(admin, sid, block, host="host1"), 202)
    m = wait_migration(admin, sid, TERMINAL, mid=None)
    assert (m["status"], m["dest_compute"]) == ("completed", "host1"), m
    assert not record(stack, m["uuid"])["block_migration"]
    assert_on(stack, admin, sid, "host1", port, vols)


def test_volume_backed_with_block_migration_still_works(admin, stack, clean, agents):
    """Block migration stays the caller's choice: it copies the (empty) local disk."""
    sid, port, vols = boot(admin, "e2e-vb-block")
    admin.ok(live(admin, sid, True), 202)
    m = wait_migration(admin, sid, TERMINAL)
    assert m["status"] == "completed", m
    rec = record(stack, m["uuid"])
    assert rec["block_migration"] and rec["is_volume_backed"], rec
    s = admin.server(sid)
    assert s["OS-EXT-SRV-ATTR:host"] == "host2" and s["status"] == "ACTIVE"
    assert connections(stack, sid) == ["host2", "host2"]
    assert bindings(stack, sid) == [("host2", "ACTIVE")]
    assert list(allocations(stack, sid)) == ["host2"]
    assert migration_consumers(stack, sid) == []
    assert sid not in guests(stack, "host1")


def test_local_root_disk_without_block_migration_is_refused(admin, stack, clean, agents):
    """Only a data volume: the root disk is local, so without shared storage the source
    refuses a live migration that would not copy it; "auto" picks block migration."""
    sid, port, vols = boot(admin, "e2e-vb-local", root=False)
    admin.ok(live(admin, sid, False), 202)
    m = wait_migration(admin, sid, TERMINAL)
    assert m["status"] == "error", m
    err = stack.scalar(f"SELECT migrate_data->>'error' FROM migrations WHERE uuid = '{m['uuid']}'")
    assert "Shared storage live-migration requires either shared storage or boot-from-volume" \
        in (err or ""), err
    ev = wait_events(admin, sid, "live-migration",
                     {"compute_check_can_live_migrate_source": "Error"})
    assert ev.get("compute_check_can_live_migrate_source") == "Error", ev
    assert_on(stack, admin, sid, "host1", port, vols, moved=False)

    admin.ok(live(admin, sid, "auto"), 202)
    m = wait_migration(admin, sid, TERMINAL)
    assert m["status"] == "completed", m
    rec = record(stack, m["uuid"])
    assert rec["block_migration"] and not rec["is_volume_backed"], rec
    assert admin.server(sid)["OS-EXT-SRV-ATTR:host"] == "host2"
    assert connections(stack, sid) == ["host2"]
