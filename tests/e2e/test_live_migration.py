"""Live migration end to end: the request, every pre-check, every action step and its
undo, abort, force-complete, the convergence controls, the migration records and the
instance actions (docs/migrations.md; Nova's exchanges in reference/nova/)."""
import os
import signal
import time

import pytest
import requests

from ferry import (action, agent, allocations, assert_settled, bindings, boot_with_port_and_volume,
                   connections, disk_path, events, guests, inject, instance_action, last_migration,
                   make_flavor, migration_consumers, migrations, set_agent, wait_events,
                   wait_migration)

PRECHECK = ("error",)
ROLLED_BACK = ("failed", "error")
TERMINAL = ("completed", "error", "failed", "cancelled")


def live(client, sid, host="host2", block="auto", mv=None):
    return action(client, sid, {"os-migrateLive": {"host": host, "block_migration": block}}, mv=mv)


# Flavors without a root disk size: the disk is the image (or empty), so a block
# migration copies what the guest really holds and the tests stay fast.
SMALL = "e2e-64m"


@pytest.fixture(scope="module", autouse=True)
def flavors(admin):
    make_flavor(admin, SMALL, 64, disk=0)
    make_flavor(admin, "e2e-16g", 16000, disk=0)
    make_flavor(admin, "e2e-1g", 1024, disk=0)


@pytest.fixture(scope="module")
def image(admin):
    data = os.urandom(2 * 1024 * 1024 + 5)
    img = admin.ok(admin.request("POST", "/image/v2/images", {
        "name": "e2e-live", "disk_format": "raw", "container_format": "bare",
        "visibility": "public"}), 201)
    r = admin.request("PUT", f"/image/v2/images/{img['id']}/file", raw=data,
                      headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    return img["id"], data


def boot_on(client, host, name="e2e-live", flavor=SMALL, image=""):
    sid = client.boot(name, flavor=flavor, image=image, az=f"nova:{host}")
    client.wait(sid)
    return sid


@pytest.fixture
def srv(admin, clean, agents):
    return boot_on(admin, "host1")


def wait_running(client, sid, timeout=20):
    return wait_migration(client, sid, ("running",) + TERMINAL, timeout=timeout)


def server_migrations(client, sid):
    return client.ok(client.get(f"/v2.1/servers/{sid}/migrations"))["migrations"]


def wait_service(client, host, state, timeout=30):
    deadline = time.time() + timeout
    while True:
        svc = [s for s in client.ok(client.get("/v2.1/os-services"))["services"]
               if s["host"] == host and s["binary"] == "ferry-compute"][0]
        if svc["state"] == state:
            return
        assert time.time() < deadline, f"{host} still {svc['state']}"
        time.sleep(0.3)


# --- success -------------------------------------------------------------------

@pytest.mark.parametrize("host,block", [("host2", "auto"), ("host2", True),
                                        (None, "auto"), (None, True)])
def test_live_migration_succeeds(admin, stack, clean, agents, image, host, block):
    srv = boot_on(admin, "host1", image=image[0])
    assert admin.ok(live(admin, srv, host, block), 202) is None
    m = wait_migration(admin, srv, TERMINAL)
    assert m["status"] == "completed", m
    assert (m["source_compute"], m["dest_compute"]) == ("host1", "host2")
    assert m["migration_type"] == "live-migration"
    assert_settled(stack, admin, srv, "host2")
    # Local storage: "auto" is a block migration, the disk was copied.
    assert stack.scalar(f"SELECT block_migration FROM migrations WHERE uuid = '{m['uuid']}'") == "t"
    with open(disk_path(stack, "host2", srv), "rb") as f:
        assert f.read(len(image[1])) == image[1]
    ev = wait_events(admin, srv, "live-migration", {"compute_post_live_migration_at_destination": "Success"})
    for name in ("conductor_live_migrate_instance", "compute_check_can_live_migrate_destination",
                 "compute_check_can_live_migrate_source", "compute_pre_live_migration",
                 "compute_live_migration", "compute_post_live_migration_at_destination"):
        assert ev.get(name) == "Success", (name, ev)
    # Over: not listed by the server's migrations API any more (reference 015/016).
    assert server_migrations(admin, srv) == []
    r = admin.get(f"/v2.1/servers/{srv}/migrations/{m['id']}")
    assert r.status_code == 404 and "not in progress" in r.json()["itemNotFound"]["message"]
    assert [x["id"] for x in migrations(admin, instance_uuid=srv, status="completed",
                                        migration_type="live-migration")] == [m["id"]]


def test_live_migration_back_and_forth(admin, stack, srv):
    for src, dst in (("host1", "host2"), ("host2", "host1"), ("host1", "host2")):
        admin.ok(live(admin, srv, dst), 202)
        m = wait_migration(admin, srv, TERMINAL)
        assert (m["status"], m["source_compute"], m["dest_compute"]) == ("completed", src, dst)
        assert_settled(stack, admin, srv, dst)
    assert len(migrations(admin, instance_uuid=srv)) == 3


def test_live_migration_with_port_and_volume(admin, stack, clean, agents):
    sid, port, vol = boot_with_port_and_volume(admin, "e2e-live-pv", az="nova:host1", flavor=SMALL)
    admin.wait(sid)
    assert bindings(stack, sid) == [("host1", "ACTIVE")]
    assert connections(stack, sid) == ["host1"]
    admin.ok(live(admin, sid, "host2"), 202)
    assert wait_migration(admin, sid, TERMINAL)["status"] == "completed"
    assert_settled(stack, admin, sid, "host2", ports=1, volumes=1)
    p = admin.ok(admin.get(f"/network/v2.0/ports/{port}"))["port"]
    assert p["binding:host_id"] == "host2"
    s = admin.server(sid)
    assert [v["id"] for v in s["os-extended-volumes:volumes_attached"]] == [vol]


def test_rollback_with_port_and_volume(admin, stack, clean, agents):
    sid, _, _ = boot_with_port_and_volume(admin, "e2e-live-pv-rb", az="nova:host1", flavor=SMALL)
    admin.wait(sid)
    inject(stack, "host1", "live_migration_job")
    admin.ok(live(admin, sid, "host2"), 202)
    assert wait_migration(admin, sid, TERMINAL)["status"] in ROLLED_BACK
    assert_settled(stack, admin, sid, "host1", ports=1, volumes=1)


# --- pre-checks -----------------------------------------------------------------

def assert_precheck_failed(admin, stack, sid, event=None):
    m = wait_migration(admin, sid, TERMINAL)
    assert m["status"] in PRECHECK, m
    assert_settled(stack, admin, sid, "host1")
    act = instance_action(admin, sid, "live-migration")
    if event:
        ev = wait_events(admin, sid, "live-migration", {event: "Error"})
        assert ev.get(event) == "Error", ev
    return m, act


def test_same_host_fails_in_the_conductor(admin, stack, srv):
    # 2.34+: accepted, then refused by the conductor (reference 080/081).
    admin.ok(live(admin, srv, "host1"), 202)
    _, act = assert_precheck_failed(admin, stack, srv, "conductor_live_migrate_instance")
    ev = [e for e in act["events"] if e["event"] == "conductor_live_migrate_instance"][0]
    assert ev["traceback"]


def test_same_host_before_2_34_is_400(admin, stack, srv):
    r = live(admin, srv, "host1", True, mv="2.30")
    assert r.status_code == 400, r.text
    assert_settled(stack, admin, srv, "host1")


def test_unknown_host_is_400(admin, stack, srv):
    r = live(admin, srv, "nosuchhost")
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == "Compute host nosuchhost could not be found."
    assert migrations(admin, instance_uuid=srv) == []
    assert_settled(stack, admin, srv, "host1")


def test_local_storage_without_block_migration_is_refused(admin, stack, srv):
    admin.ok(live(admin, srv, "host2", False), 202)
    assert_precheck_failed(admin, stack, srv, "compute_check_can_live_migrate_source")


def wait_agent_back(admin, stack, host, since, timeout=30):
    """A restarted agent counts once it answers its API and has sent a heartbeat
    after `since` (a heartbeat of the killed process must not count)."""
    deadline = time.time() + timeout
    while True:
        try:
            ok = agent(stack, host, "GET", "/internal/v1/instances", timeout=2).status_code == 200
        except requests.RequestException:
            ok = False
        if ok and stack.scalar(
                "SELECT count(*) FROM services WHERE host = '%s' AND \"binary\" = 'ferry-compute' "
                "AND last_seen_up > to_timestamp(%f)" % (host, since)) == "1":
            break
        assert time.time() < deadline, f"agent of {host} not back"
        time.sleep(0.1)
    wait_service(admin, host, "up")


def test_destination_down(admin, stack, srv):
    os.kill(stack.pid("compute-host2"), signal.SIGKILL)
    try:
        wait_service(admin, "host2", "down")
        r = live(admin, srv, "host2")
        assert r.status_code in (202, 400), r.text
        if r.status_code == 202:
            # The agents are checked for leftovers once host2 is back (below).
            m = wait_migration(admin, srv, TERMINAL)
            assert m["status"] in PRECHECK, m
    finally:
        since = time.time()
        stack.up()
        wait_agent_back(admin, stack, "host2", since)
    assert_settled(stack, admin, srv, "host1")


def test_not_enough_memory_on_destination(admin, stack, clean, agents):
    big = "e2e-16g"
    sid = boot_on(admin, "host1", "e2e-big", big)
    filler = boot_on(admin, "host2", "e2e-filler", big)
    admin.ok(live(admin, sid, "host2"), 202)
    assert_precheck_failed(admin, stack, sid)
    assert_settled(stack, admin, filler, "host2")


@pytest.mark.parametrize("column,value", [("hypervisor_version", "hypervisor_version - 1"),
                                          ("hypervisor_type", "'qemu'")])
def test_incompatible_hypervisor(admin, stack, srv, column, value):
    old = stack.scalar(f"SELECT {column} FROM compute_nodes WHERE host = 'host2'")
    stack.sql(f"UPDATE compute_nodes SET {column} = {value} WHERE host = 'host2'")
    try:
        admin.ok(live(admin, srv, "host2"), 202)
        assert_precheck_failed(admin, stack, srv)
    finally:
        stack.sql(f"UPDATE compute_nodes SET {column} = '{old}' WHERE host = 'host2'")


def test_stopped_server_is_409(admin, stack, srv):
    admin.ok(action(admin, srv, {"os-stop": None}), 202)
    admin.wait(srv, ("SHUTOFF",))
    r = live(admin, srv)
    assert r.status_code == 409
    assert r.json()["conflictingRequest"]["message"] == \
        f"Cannot 'os-migrateLive' instance {srv} while it is in vm_state stopped"
    assert migrations(admin, instance_uuid=srv) == []
    assert_settled(stack, admin, srv, "host1", status="SHUTOFF")


def test_second_request_while_migrating_is_409(admin, stack, srv):
    set_agent(stack, "host1", fake_memory_copy_ms=3000)
    admin.ok(live(admin, srv), 202)
    for body in ({"os-migrateLive": {"host": "host2", "block_migration": "auto"}},
                 {"migrate": None}, {"os-stop": None}):
        r = action(admin, srv, body)
        assert r.status_code == 409, (body, r.status_code, r.text)
    assert wait_migration(admin, srv, TERMINAL)["status"] == "completed"
    assert len(migrations(admin, instance_uuid=srv)) == 1
    assert_settled(stack, admin, srv, "host2")


def test_non_admin_is_403(admin, member, stack, clean, agents):
    sid = member.boot("e2e-member-live", flavor=SMALL)
    member.wait(sid)
    host = admin.server(sid)["OS-EXT-SRV-ATTR:host"]
    r = live(member, sid, None)
    assert r.status_code == 403
    assert "os_compute_api:os-migrate-server:migrate_live" in r.json()["forbidden"]["message"]
    assert member.get("/v2.1/os-migrations").status_code == 403
    assert migrations(admin, instance_uuid=sid) == []
    assert_settled(stack, admin, sid, host)


# --- a fault at each action step ------------------------------------------------

@pytest.mark.parametrize("host,step,statuses,event", [
    ("host2", "check_can_live_migrate_destination", PRECHECK, "compute_check_can_live_migrate_destination"),
    ("host1", "check_can_live_migrate_source", PRECHECK, "compute_check_can_live_migrate_source"),
    ("host2", "pre_live_migration", ROLLED_BACK, "compute_pre_live_migration"),
    # Nova's compute_live_migration event covers queueing the request on the source
    # (reference 072: it ends before pre_live_migration), so it is no place for the error.
    ("host1", "live_migration", ROLLED_BACK, None),
    ("host1", "live_migration_job", ROLLED_BACK, None),
])
def test_fault_rolls_back(admin, stack, srv, host, step, statuses, event):
    inject(stack, host, step)
    admin.ok(live(admin, srv), 202)
    m = wait_migration(admin, srv, TERMINAL)
    assert m["status"] in statuses, m
    s = assert_settled(stack, admin, srv, "host1")
    assert s["status"] == "ACTIVE"
    if event:
        ev = wait_events(admin, srv, "live-migration", {event: "Error"})
        assert ev.get(event) == "Error", ev
    if statuses is ROLLED_BACK and step != "check_can_live_migrate_destination":
        ev = wait_events(admin, srv, "live-migration",
                         {"compute_rollback_live_migration_at_destination": "Success"})
        assert ev.get("compute_rollback_live_migration_at_destination") == "Success", ev
    # The fault was used up and the server can still move.
    admin.ok(live(admin, srv), 202)
    assert wait_migration(admin, srv, TERMINAL)["status"] == "completed"
    assert_settled(stack, admin, srv, "host2")


def test_failed_rollback_at_destination_is_retried(admin, stack, srv):
    inject(stack, "host1", "live_migration_job")
    inject(stack, "host2", "rollback_live_migration_at_destination")
    admin.ok(live(admin, srv), 202)
    assert wait_migration(admin, srv, TERMINAL)["status"] in ROLLED_BACK
    # The rollback call is idempotent: once it went through, nothing is left on host2.
    deadline = time.time() + 15
    while (srv in guests(stack, "host2") or os.path.exists(disk_path(stack, "host2", srv))) \
            and time.time() < deadline:
        time.sleep(0.2)
    assert_settled(stack, admin, srv, "host1")


def test_crash_of_destination_agent_rolls_back(admin, stack, srv):
    inject(stack, "host2", "pre_live_migration", action="crash")
    try:
        admin.ok(live(admin, srv), 202)
        assert wait_migration(admin, srv, TERMINAL, timeout=60)["status"] in ROLLED_BACK
    finally:
        stack.up()
        wait_service(admin, "host2", "up")
    s = admin.server(srv)
    assert s["status"] == "ACTIVE" and s["OS-EXT-SRV-ATTR:host"] == "host1"
    assert list(allocations(stack, srv)) == ["host1"]
    assert migration_consumers(stack, srv) == []


def test_fault_after_the_switch_puts_the_server_in_error_on_destination(admin, stack, srv):
    inject(stack, "host2", "post_live_migration_at_destination")
    admin.ok(live(admin, srv), 202)
    m = wait_migration(admin, srv, TERMINAL)
    assert m["status"] == "error", m
    s = admin.wait(srv, ("ERROR",), fail=())
    # As Nova: the guest already runs on the destination, which now owns the instance.
    assert s["OS-EXT-SRV-ATTR:host"] == "host2"
    assert list(allocations(stack, srv)) == ["host2"]
    assert migration_consumers(stack, srv) == []
    assert srv not in guests(stack, "host1")
    ev = wait_events(admin, srv, "live-migration", {"compute_post_live_migration_at_destination": "Error"})
    assert ev.get("compute_post_live_migration_at_destination") == "Error", ev


# --- abort, force-complete, convergence ------------------------------------------

def test_abort_mid_copy(admin, stack, srv):
    set_agent(stack, "host1", fake_memory_copy_ms=20000)
    admin.ok(live(admin, srv), 202)
    m = wait_running(admin, srv)
    assert m["status"] == "running"
    listed = server_migrations(admin, srv)
    assert [x["id"] for x in listed] == [m["id"]] and listed[0]["status"] == "running"
    first = admin.ok(admin.get(f"/v2.1/servers/{srv}/migrations/{m['id']}"))["migration"]
    time.sleep(0.6)
    second = admin.ok(admin.get(f"/v2.1/servers/{srv}/migrations/{m['id']}"))["migration"]
    assert second["memory_total_bytes"] >= 64 * 2 ** 20
    assert (second["memory_processed_bytes"] or 0) > (first["memory_processed_bytes"] or 0)
    assert second["memory_remaining_bytes"] < second["memory_total_bytes"]
    t0 = time.time()
    r = admin.request("DELETE", f"/v2.1/servers/{srv}/migrations/{m['id']}")
    assert r.status_code == 202, r.text
    m = wait_migration(admin, srv, TERMINAL)
    assert m["status"] == "cancelled", m
    assert time.time() - t0 < 5
    assert_settled(stack, admin, srv, "host1")
    ev = wait_events(admin, srv, "live_migration_cancel", {"compute_live_migration_abort": "Success"})
    assert ev.get("compute_live_migration_abort") == "Success", ev
    # Over: abort and force-complete of a finished migration are refused (reference 017/018).
    assert admin.request("DELETE", f"/v2.1/servers/{srv}/migrations/{m['id']}").status_code in (400, 404, 409)
    assert admin.post(f"/v2.1/servers/{srv}/migrations/{m['id']}/action",
                      {"force_complete": None}).status_code in (400, 404, 409)


@pytest.fixture
def hot(admin, clean, agents, stack):
    """A server whose memory is dirtied faster than it is copied: it cannot converge
    by itself (1 GiB needs seconds of downtime, far above the max-downtime ramp)."""
    sid = boot_on(admin, "host1", "e2e-hot", "e2e-1g")
    set_agent(stack, "host1", fake_dirty_rate=1.5)
    return sid


def test_force_complete(admin, stack, hot):
    admin.ok(live(admin, hot), 202)
    m = wait_running(admin, hot)
    assert m["status"] == "running"
    time.sleep(1.0)
    assert last_migration(admin, hot)["status"] == "running"   # does not converge alone
    r = admin.post(f"/v2.1/servers/{hot}/migrations/{m['id']}/action", {"force_complete": None})
    assert r.status_code == 202, r.text
    assert wait_migration(admin, hot, TERMINAL, timeout=10)["status"] == "completed"
    assert_settled(stack, admin, hot, "host2")
    ev = wait_events(admin, hot, "live_migration_force_complete",
                     {"compute_live_migration_force_complete": "Success"})
    assert ev.get("compute_live_migration_force_complete") == "Success", ev


@pytest.mark.parametrize("timeout_action,statuses,host", [
    ("abort", ("cancelled", "failed"), "host1"),
    ("force_complete", ("completed",), "host2"),
])
def test_completion_timeout(admin, stack, hot, timeout_action, statuses, host):
    set_agent(stack, "host1", live_migration_completion_timeout_s=2,
              live_migration_timeout_action=timeout_action)
    t0 = time.time()
    admin.ok(live(admin, hot), 202)
    m = wait_migration(admin, hot, TERMINAL, timeout=15)
    assert m["status"] in statuses, m
    assert 1.5 < time.time() - t0 < 8
    assert_settled(stack, admin, hot, host)


def test_stall_detection_aborts(admin, stack, hot):
    set_agent(stack, "host1", live_migration_progress_timeout_s=2)
    t0 = time.time()
    admin.ok(live(admin, hot), 202)
    m = wait_migration(admin, hot, TERMINAL, timeout=15)
    assert m["status"] in ("cancelled", "failed"), m
    assert 1.5 < time.time() - t0 < 8
    assert_settled(stack, admin, hot, "host1")


# --- records ----------------------------------------------------------------------

def test_os_migrations_filters_after_several_outcomes(admin, stack, srv):
    admin.ok(live(admin, srv), 202)
    ok = wait_migration(admin, srv, TERMINAL)
    inject(stack, "host1", "pre_live_migration")
    admin.ok(live(admin, srv, "host1"), 202)
    bad = wait_migration(admin, srv, TERMINAL)
    assert (ok["status"], bad["status"] in ROLLED_BACK) == ("completed", True)
    assert_settled(stack, admin, srv, "host2")
    mine = migrations(admin, instance_uuid=srv)
    assert [m["id"] for m in mine] == [bad["id"], ok["id"]]   # newest first, as Nova
    assert [m["id"] for m in migrations(admin, instance_uuid=srv, status="completed")] == [ok["id"]]
    assert [m["id"] for m in migrations(admin, instance_uuid=srv, source_compute="host2")] == [bad["id"]]
    assert {m["id"] for m in migrations(admin, instance_uuid=srv, host="host1")} == {ok["id"], bad["id"]}
    assert migrations(admin, instance_uuid=srv, migration_type="resize") == []
    page = migrations(admin, instance_uuid=srv, limit=1)
    assert [m["id"] for m in page] == [bad["id"]]
    rest = migrations(admin, instance_uuid=srv, limit=5, marker=page[0]["uuid"])
    assert [m["id"] for m in rest] == [ok["id"]]
    acts = admin.ok(admin.get(f"/v2.1/servers/{srv}/os-instance-actions"))["instanceActions"]
    assert [a["action"] for a in acts].count("live-migration") == 2
    assert events(admin, srv, "live-migration").get("compute_pre_live_migration") == "Error"
