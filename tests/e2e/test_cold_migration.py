"""Cold migration and resize end to end: confirm, revert, stopped servers, quotas, the
same-host rule, reschedule, failures, the checksummed disk transfer and auto-confirm.
After every case the server's host, flavor, power state, disk, allocations, quota usage,
port bindings and volume connections are checked (docs/migrations.md)."""
import os
import time

import pytest

from ferry import (Client, SideStack, action, allocations, assert_settled, bindings,
                   boot_with_port_and_volume, connections, disk_path, guests, inject,
                   instance_action, last_migration, make_flavor, migration_consumers, migrations, reset_agents,
                   wait_events, wait_migration)

TERMINAL = ("confirmed", "reverted", "error")
FLAVORS = {"e2e-s": (1, 128, 0), "e2e-l": (2, 256, 0)}   # vcpus, ram, disk: disk = the image


@pytest.fixture(scope="module")
def flavors(admin):
    for fid, (vcpus, ram, disk) in FLAVORS.items():
        make_flavor(admin, fid, ram, vcpus, disk)
    return FLAVORS


@pytest.fixture(scope="module")
def image(admin):
    """A small image with random content, to see that the disk really travels."""
    data = os.urandom(1024 * 1024 + 7)
    img = admin.ok(admin.request("POST", "/image/v2/images", {
        "name": "e2e-cold", "disk_format": "raw", "container_format": "bare",
        "visibility": "public"}), 201)
    r = admin.request("PUT", f"/image/v2/images/{img['id']}/file", raw=data,
                      headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    return img["id"], data


def usage(client):
    a = client.ok(client.get("/v2.1/limits"))["limits"]["absolute"]
    return a["totalCoresUsed"], a["totalRAMUsed"], a["totalInstancesUsed"]


def reservations(stack, sid):
    return stack.sql("SELECT r.resource, r.delta FROM quota_reservations r JOIN migrations m "
                     f"ON m.uuid = r.consumer_uuid WHERE m.instance_uuid = '{sid}'")


def boot(client, flavor, host="host1", image=None, stopped=False, name="e2e-cold"):
    sid = client.boot(name, flavor=flavor, image=image or "", az=f"nova:{host}" if host else None)
    client.wait(sid)
    if stopped:
        client.ok(action(client, sid, {"os-stop": None}), 202)
        client.wait(sid, ("SHUTOFF",))
    return sid


def wait_settled_status(client, sid, stopped, timeout=30):
    return client.wait(sid, ("SHUTOFF",) if stopped else ("ACTIVE",), timeout=timeout)


def disk_starts_with(stack, host, sid, data):
    with open(disk_path(stack, host, sid), "rb") as f:
        return f.read(len(data)) == data


def expect_usage(client, base, flavor):
    vcpus, ram, _ = FLAVORS[flavor]
    assert usage(client) == (base[0] + vcpus, base[1] + ram, base[2] + 1)


# --- migrate / resize, then confirm / revert, running or stopped ------------------

@pytest.mark.parametrize("stopped", [False, True], ids=["running", "stopped"])
@pytest.mark.parametrize("finish", ["confirm", "revert"])
@pytest.mark.parametrize("kind", ["migrate", "resize-up", "resize-down"])
def test_move_then_finish(admin, stack, clean, agents, flavors, image, kind, finish, stopped):
    old = "e2e-l" if kind == "resize-down" else "e2e-s"
    new = {"migrate": old, "resize-up": "e2e-l", "resize-down": "e2e-s"}[kind]
    img, data = image
    base = usage(admin)
    sid = boot(admin, old, image=img, stopped=stopped)
    expect_usage(admin, base, old)

    body = {"migrate": None} if kind == "migrate" else {"resize": {"flavorRef": new}}
    r = action(admin, sid, body)
    assert r.status_code == 202, r.text
    s = admin.wait(sid, ("VERIFY_RESIZE",))
    assert s["OS-EXT-SRV-ATTR:host"] == "host2"
    assert s["OS-EXT-STS:vm_state"] == "resized" and s["OS-EXT-STS:task_state"] is None
    assert s["flavor"]["original_name"] == new
    assert s["OS-EXT-STS:power_state"] == (4 if stopped else 1)
    m = last_migration(admin, sid)
    assert m["status"] == "finished"
    assert m["migration_type"] == ("migration" if kind == "migrate" else "resize")
    assert (m["source_compute"], m["dest_compute"]) == ("host1", "host2")
    # Both hosts hold resources: the source's under the migration, as Nova does.
    assert allocations(stack, sid) == {"host2": FLAVORS[new]}
    assert allocations(stack, m["uuid"]) == {"host1": FLAVORS[old]}
    # The disk moved for real; the source keeps its copy for a revert.
    assert disk_starts_with(stack, "host2", sid, data)
    kept = [n for n in os.listdir(os.path.join(stack.state, "hosts", "host1", "instances"))
            if n.startswith(sid)]
    assert kept, "no source copy kept for revert"
    # During VERIFY_RESIZE the project pays for the new flavor (an upsize is reserved at
    # the API); a downsize may still be charged at the old size until it is confirmed.
    if kind == "resize-down":
        assert usage(admin) in [(base[0] + FLAVORS[f][0], base[1] + FLAVORS[f][1], base[2] + 1)
                                for f in (old, new)]
    else:
        expect_usage(admin, base, new)
    name = "migrate" if kind == "migrate" else "resize"
    ev = wait_events(admin, sid, name, {"compute_finish_resize": "Success"})
    for e in ("conductor_migrate_server", "compute_prep_resize", "compute_resize_instance",
              "compute_finish_resize"):
        assert ev.get(e) == "Success", (e, ev)

    if finish == "confirm":
        r = action(admin, sid, {"confirmResize": None})
        assert r.status_code == 204, r.text
        wait_settled_status(admin, sid, stopped)
        assert wait_migration(admin, sid, TERMINAL)["status"] == "confirmed"
        assert_settled(stack, admin, sid, "host2", flavor=new,
                       status="SHUTOFF" if stopped else "ACTIVE")
        assert disk_starts_with(stack, "host2", sid, data)
        expect_usage(admin, base, new)
        ev = wait_events(admin, sid, "confirmResize", {"compute_confirm_resize": "Success"})
        assert ev.get("compute_confirm_resize") == "Success", ev
    else:
        r = action(admin, sid, {"revertResize": None})
        assert r.status_code == 202, r.text
        wait_settled_status(admin, sid, stopped)
        assert wait_migration(admin, sid, TERMINAL)["status"] == "reverted"
        assert_settled(stack, admin, sid, "host1", flavor=old,
                       status="SHUTOFF" if stopped else "ACTIVE")
        assert disk_starts_with(stack, "host1", sid, data)
        expect_usage(admin, base, old)
        ev = wait_events(admin, sid, "revertResize", {"compute_finish_revert_resize": "Success"})
        for e in ("compute_revert_resize", "compute_finish_revert_resize"):
            assert ev.get(e) == "Success", (e, ev)
    assert reservations(stack, sid) == []
    # Over: no second confirm or revert (reference 034/035).
    assert action(admin, sid, {"confirmResize": None}).status_code == 409
    assert action(admin, sid, {"revertResize": None}).status_code == 409


def test_verify_resize_refuses_other_moves(admin, stack, clean, agents, flavors):
    sid = boot(admin, "e2e-s")
    admin.ok(action(admin, sid, {"migrate": None}), 202)
    admin.wait(sid, ("VERIFY_RESIZE",))
    for body in ({"os-migrateLive": {"host": None, "block_migration": "auto"}}, {"migrate": None},
                 {"resize": {"flavorRef": "e2e-l"}}):
        r = action(admin, sid, body)
        assert r.status_code == 409, (body, r.text)
    assert action(admin, sid, {"confirmResize": None}).status_code == 204
    admin.wait(sid)
    assert_settled(stack, admin, sid, "host2", flavor="e2e-s")


def test_move_with_port_and_volume(admin, stack, clean, agents, flavors):
    sid, _, _ = boot_with_port_and_volume(admin, "e2e-cold-pv", az="nova:host1", flavor="e2e-s")
    admin.wait(sid)
    admin.ok(action(admin, sid, {"resize": {"flavorRef": "e2e-l"}}), 202)
    admin.wait(sid, ("VERIFY_RESIZE",))
    assert bindings(stack, sid) == [("host2", "ACTIVE")]
    assert connections(stack, sid) == ["host2"]
    admin.ok(action(admin, sid, {"revertResize": None}), 202)
    admin.wait(sid)
    assert wait_migration(admin, sid, TERMINAL)["status"] == "reverted"
    assert_settled(stack, admin, sid, "host1", flavor="e2e-s", ports=1, volumes=1)
    admin.ok(action(admin, sid, {"migrate": None}), 202)
    admin.wait(sid, ("VERIFY_RESIZE",))
    assert action(admin, sid, {"confirmResize": None}).status_code == 204
    admin.wait(sid)
    assert wait_migration(admin, sid, TERMINAL)["status"] == "confirmed"
    assert_settled(stack, admin, sid, "host2", flavor="e2e-s", ports=1, volumes=1)


# --- refusals ------------------------------------------------------------------------

def test_over_quota_is_403_and_changes_nothing(admin, member, stack, clean, agents, flavors):
    project = stack.scalar("SELECT id FROM projects WHERE name = 'demo'")
    sid = member.boot("e2e-quota", flavor="e2e-s")
    s = member.wait(sid)
    host = admin.server(sid)["OS-EXT-SRV-ATTR:host"]
    used = usage(member)
    stack.sql("INSERT INTO quota_limits (project_id, resource, hard_limit) "
              f"VALUES ('{project}', 'cores', {used[0]}) ON CONFLICT (project_id, resource) "
              f"DO UPDATE SET hard_limit = {used[0]}")
    try:
        r = action(member, sid, {"resize": {"flavorRef": "e2e-l"}})
        assert r.status_code == 403, r.text
        assert "Quota exceeded for cores" in r.json()["forbidden"]["message"]
        assert usage(member) == used
        assert migrations(admin, instance_uuid=sid) == []
        assert stack.scalar(f"SELECT count(*) FROM quota_reservations WHERE project_id = '{project}'") == "0"
        assert_settled(stack, admin, sid, host, flavor="e2e-s")
        assert member.server(sid)["updated"] == s["updated"]
        # A plain migration asks for nothing more: the member cannot (admin only), admin can.
        assert action(member, sid, {"migrate": None}).status_code == 403
    finally:
        stack.sql(f"DELETE FROM quota_limits WHERE project_id = '{project}' AND resource = 'cores'")


def test_same_host_refused_by_default(admin, stack, clean, agents, flavors):
    sid = boot(admin, "e2e-s")
    base = usage(admin)
    svc = [s for s in admin.ok(admin.get("/v2.1/os-services"))["services"]
           if s["host"] == "host2" and s["binary"] == "ferry-compute"][0]
    admin.ok(admin.request("PUT", f"/v2.1/os-services/{svc['id']}", {"status": "disabled"}))
    try:
        for body in ({"migrate": None}, {"resize": {"flavorRef": "e2e-l"}}):
            admin.ok(action(admin, sid, body), 202)
            m = wait_migration(admin, sid, TERMINAL + ("finished",))
            assert m["status"] == "error", m
            admin.wait(sid)
            assert_settled(stack, admin, sid, "host1", flavor="e2e-s")
            assert usage(admin) == base
            assert reservations(stack, sid) == []
    finally:
        admin.ok(admin.request("PUT", f"/v2.1/os-services/{svc['id']}", {"status": "enabled"}))
    # 2.56 with the server's own host: refused at once (reference 100).
    r = action(admin, sid, {"migrate": {"host": "host1"}}, mv="2.56")
    assert r.status_code == 400


def test_migrate_to_a_given_host(admin, stack, clean, agents, flavors):
    sid = boot(admin, "e2e-s", host="host2")
    admin.ok(action(admin, sid, {"migrate": {"host": "host1"}}, mv="2.56"), 202)
    s = admin.wait(sid, ("VERIFY_RESIZE",))
    assert s["OS-EXT-SRV-ATTR:host"] == "host1"
    assert action(admin, sid, {"confirmResize": None}).status_code == 204
    admin.wait(sid)
    assert_settled(stack, admin, sid, "host1", flavor="e2e-s")


# --- failures ---------------------------------------------------------------------------

@pytest.mark.parametrize("host,step,event", [
    ("host1", "migrate_disk_and_power_off", "compute_resize_instance"),
    ("host2", "finish_migration", "compute_finish_resize"),
])
def test_failure_goes_error_and_rolls_quota_back(admin, stack, clean, agents, flavors, host, step, event):
    base = usage(admin)
    sid = boot(admin, "e2e-s")
    inject(stack, host, step)
    admin.ok(action(admin, sid, {"resize": {"flavorRef": "e2e-l"}}), 202)
    m = wait_migration(admin, sid, TERMINAL + ("finished",))
    assert m["status"] == "error", m
    s = admin.wait(sid, ("ERROR",), fail=())
    assert "injected fault" in s["fault"]["message"]
    assert reservations(stack, sid) == []
    assert migration_consumers(stack, sid) == []
    where = s["OS-EXT-SRV-ATTR:host"]
    assert list(allocations(stack, sid)) == [where]
    # Quota: the increase was rolled back; the project pays for the flavor it has.
    expect_usage(admin, base, s["flavor"]["original_name"])
    ev = wait_events(admin, sid, "resize", {event: "Error"})
    assert ev.get(event) == "Error", ev
    if step == "migrate_disk_and_power_off":
        assert where == "host1" and s["flavor"]["original_name"] == "e2e-s"
        assert os.path.exists(disk_path(stack, "host1", sid))
        assert not os.path.exists(os.path.join(stack.state, "hosts", "host2", "instances", sid))
        assert allocations(stack, sid)["host1"] == FLAVORS["e2e-s"]


def test_corrupted_transfer_is_detected(admin, stack, clean, agents, flavors, image):
    img, data = image
    sid = boot(admin, "e2e-s", image=img)
    inject(stack, "host1", "transfer_corrupt")
    admin.ok(action(admin, sid, {"migrate": None}), 202)
    m = wait_migration(admin, sid, TERMINAL + ("finished",))
    assert m["status"] == "error", m
    s = admin.wait(sid, ("ERROR",), fail=())
    msg = s["fault"]["message"].lower()
    assert "sha256" in msg or "checksum" in msg, msg
    assert s["OS-EXT-SRV-ATTR:host"] == "host1"
    assert disk_starts_with(stack, "host1", sid, data)
    # Nothing of the bad copy is left on the destination.
    left = [os.path.join(d, n) for d, dirs, files in os.walk(os.path.join(stack.state, "hosts", "host2"))
            for n in dirs + files if sid in n]
    assert left == []
    assert sid not in guests(stack, "host2")
    assert list(allocations(stack, sid)) == ["host1"]
    assert migration_consumers(stack, sid) == []


def test_failed_instance_can_be_deleted_cleanly(admin, stack, clean, agents, flavors):
    sid = boot(admin, "e2e-s")
    inject(stack, "host2", "finish_migration")
    admin.ok(action(admin, sid, {"migrate": None}), 202)
    admin.wait(sid, ("ERROR",), fail=())
    admin.delete(sid)
    for h in ("host1", "host2"):
        assert sid not in guests(stack, h)
        assert not [n for n in os.listdir(os.path.join(stack.state, "hosts", h, "instances"))
                    if n.startswith(sid)]
    assert stack.scalar(f"SELECT count(*) FROM allocations WHERE consumer_uuid IN "
                        f"(SELECT uuid FROM migrations WHERE instance_uuid = '{sid}') "
                        f"OR consumer_uuid = '{sid}'") == "0"


def test_delete_in_verify_resize_confirms_first(admin, stack, clean, agents, flavors, image):
    """As Nova: the move is confirmed, so the source's kept copy and the migration's
    allocation and quota reservation go too."""
    base = usage(admin)
    sid = boot(admin, "e2e-s", image=image[0])
    admin.ok(action(admin, sid, {"resize": {"flavorRef": "e2e-l"}}), 202)
    admin.wait(sid, ("VERIFY_RESIZE",))
    mig = last_migration(admin, sid)
    admin.delete(sid)
    assert wait_migration(admin, sid, ("confirmed",), mid=mig["id"])["status"] == "confirmed"
    for h in ("host1", "host2"):
        assert sid not in guests(stack, h)
        assert not [n for n in os.listdir(os.path.join(stack.state, "hosts", h, "instances"))
                    if n.startswith(sid)]
    assert stack.scalar(f"SELECT count(*) FROM allocations WHERE consumer_uuid IN "
                        f"('{sid}', '{mig['uuid']}')") == "0"
    assert reservations(stack, sid) == []
    assert usage(admin) == base


# --- a second stack: 3 hosts, same host allowed, auto-confirm -------------------------

CONFIRM_WINDOW = 3


@pytest.fixture(scope="module")
def trio(stack):
    base = int(stack.env["FERRY_PORT_BASE"]) + 300
    s = SideStack(stack.state + "-trio", base, FERRY_HOSTS="3",
                  FERRY_CONDUCTOR_CONF=f"allow_resize_to_same_host = true\n"
                                       f"resize_confirm_window = {CONFIRM_WINDOW}")
    s.up()
    try:
        c = Client(s.api, "admin", s.env["FERRY_ADMIN_PASSWORD"], "admin")
        s.sql("INSERT INTO quota_limits (project_id, resource, hard_limit) "
              "SELECT id, r, -1 FROM projects, unnest(ARRAY['instances','cores','ram']) r "
              "WHERE name = 'admin' ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = -1")
        for fid, (vcpus, ram, disk) in FLAVORS.items():
            make_flavor(c, fid, ram, vcpus, disk)
        yield s, c
    finally:
        if not os.environ.get("FERRY_E2E_KEEP"):
            s.down()


@pytest.fixture
def trio_clean(trio):
    s, c = trio
    reset_agents(s)
    c.delete_all()
    yield s, c
    reset_agents(s)
    c.delete_all()


def set_service(client, host, status):
    svc = [x for x in client.ok(client.get("/v2.1/os-services"))["services"]
           if x["host"] == host and x["binary"] == "ferry-compute"][0]
    client.ok(client.request("PUT", f"/v2.1/os-services/{svc['id']}", {"status": status}))


def test_auto_confirm(trio_clean):
    s, c = trio_clean
    sid = boot(c, "e2e-s")
    c.ok(action(c, sid, {"resize": {"flavorRef": "e2e-l"}}), 202)
    v = c.wait(sid, ("VERIFY_RESIZE",))
    t0 = time.time()
    c.wait(sid, timeout=CONFIRM_WINDOW + 10)
    assert time.time() - t0 >= CONFIRM_WINDOW - 1
    assert wait_migration(c, sid, TERMINAL)["status"] == "confirmed"
    assert_settled(s, c, sid, v["OS-EXT-SRV-ATTR:host"], flavor="e2e-l")
    ev = wait_events(c, sid, "confirmResize", {"compute_confirm_resize": "Success"})
    assert ev.get("compute_confirm_resize") == "Success", ev


def test_same_host_allowed(trio_clean):
    s, c = trio_clean
    sid = boot(c, "e2e-s")
    for h in ("host2", "host3"):
        set_service(c, h, "disabled")
    try:
        c.ok(action(c, sid, {"resize": {"flavorRef": "e2e-l"}}), 202)
        v = c.wait(sid, ("VERIFY_RESIZE",))
        assert v["OS-EXT-SRV-ATTR:host"] == "host1" and v["flavor"]["original_name"] == "e2e-l"
        m = last_migration(c, sid)
        assert (m["source_compute"], m["dest_compute"]) == ("host1", "host1")
        assert action(c, sid, {"confirmResize": None}).status_code in (204, 409)  # 409: auto-confirmed
        c.wait(sid)
        assert wait_migration(c, sid, TERMINAL)["status"] == "confirmed"
        assert_settled(s, c, sid, "host1", flavor="e2e-l")
        assert allocations(s, sid) == {"host1": FLAVORS["e2e-l"]}
    finally:
        for h in ("host2", "host3"):
            set_service(c, h, "enabled")


def test_reschedule_after_prep_resize_failure(trio_clean):
    s, c = trio_clean
    # Spread weigher: emptiest first, so the candidates come as host2, host1, host3.
    boot(c, "e2e-l", host="host3", name="e2e-filler")
    sid = boot(c, "e2e-s")
    inject(s, "host2", "prep_resize")
    inject(s, "host1", "prep_resize")
    c.ok(action(c, sid, {"resize": {"flavorRef": "e2e-l"}}), 202)
    v = c.wait(sid, ("VERIFY_RESIZE",))
    assert v["OS-EXT-SRV-ATTR:host"] == "host3"
    m = last_migration(c, sid)
    assert (m["status"], m["dest_compute"]) == ("finished", "host3")
    ev = [e for e in instance_action(c, sid, "resize")["events"] if e["event"] == "compute_prep_resize"]
    # Whatever order the scheduler proposed, only host3 could take it; a refusal, if the
    # scheduler tried a faulty host first, was rescheduled.
    assert [(e["host"], e["result"]) for e in ev if e["result"] == "Success"] == [("host3", "Success")], ev
    assert {e["host"] for e in ev if e["result"] == "Error"} <= {"host1", "host2"}, ev
    # The refusing hosts released their claims; both hosts of the move hold resources.
    assert allocations(s, sid) == {"host3": FLAVORS["e2e-l"]}
    assert allocations(s, m["uuid"]) == {"host1": FLAVORS["e2e-s"]}
    assert sid not in guests(s, "host2")
    assert action(c, sid, {"revertResize": None}).status_code in (202, 409)   # 409: auto-confirmed
    c.wait(sid)
    final = wait_migration(c, sid, TERMINAL)["status"]
    assert final in ("reverted", "confirmed")
    assert_settled(s, c, sid, "host1" if final == "reverted" else "host3")


def test_reschedule_gives_up_after_max_attempts(trio_clean):
    s, c = trio_clean
    sid = boot(c, "e2e-s")
    for h in ("host1", "host2", "host3"):
        inject(s, h, "prep_resize")
    c.ok(action(c, sid, {"resize": {"flavorRef": "e2e-l"}}), 202)
    m = wait_migration(c, sid, TERMINAL + ("finished",))
    assert m["status"] == "error", m
    c.wait(sid)
    assert_settled(s, c, sid, "host1", flavor="e2e-s")
    assert reservations(s, sid) == []
    ev = [e for e in instance_action(c, sid, "resize")["events"] if e["event"] == "compute_prep_resize"]
    assert len(ev) == 3 and {e["result"] for e in ev} == {"Error"}, ev
