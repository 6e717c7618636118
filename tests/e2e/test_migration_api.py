"""The public API of migrations: validation, microversion boundaries, policy, conflicts,
quota, os-migrations, server migrations and instance actions (compared with the recorded
Nova exchanges in the design repository's reference/nova)."""
import concurrent.futures
import time

import pytest

from ferry import set_agent

BOOL_ENUM = ("[True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', "
             "False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no'")


def action(client, sid, body, mv=None):
    return client.post(f"/v2.1/servers/{sid}/action", body, mv=mv)


def err(r, status, key, message=None):
    assert r.status_code == status, r.text
    body = r.json()[key]
    assert body["code"] == status
    if message is not None:
        assert body["message"] == message
    return body["message"]


def settle(admin, stack, sid, timeout=40):
    """Waits until the server has no task and its migrations are all finished with."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = admin.server(sid)
        open_ = stack.scalar(
            "SELECT count(*) FROM migrations WHERE instance_uuid = '%s' AND status IN "
            "('accepted','queued','preparing','running','post-migrating','pre-migrating',"
            "'migrating','confirming','reverting')" % sid)
        if s["OS-EXT-STS:task_state"] is None and open_ == "0":
            return s
        time.sleep(0.1)
    raise AssertionError(f"server {sid} did not settle: {admin.server(sid)}")


def host_of(admin, sid):
    return admin.server(sid)["OS-EXT-SRV-ATTR:host"]


def other_host(stack, host):
    return "host2" if host == "host1" else "host1"


# --- os-migrateLive validation (092-096, 083, 084, 097, 110) ---

def test_live_migrate_body_validation(admin, clean):
    sid = admin.boot("lm-valid", az="nova:host1")
    admin.wait(sid)
    err(action(admin, sid, {"os-migrateLive": {"host": "host2"}}), 400, "badRequest",
        "Invalid input for field/attribute os-migrateLive. Value: {'host': 'host2'}. "
        "'block_migration' is a required property")
    err(action(admin, sid, {"os-migrateLive": {"host": "host2", "block_migration": "maybe"}}),
        400, "badRequest",
        "Invalid input for field/attribute block_migration. Value: maybe. 'maybe' is not one of "
        + BOOL_ENUM + ", 'auto']")
    err(action(admin, sid, {"os-migrateLive": {"host": "host2", "block_migration": "auto"}},
               mv="2.24"), 400, "badRequest",
        "Invalid input for field/attribute block_migration. Value: auto. 'auto' is not one of "
        + BOOL_ENUM + "]")
    err(action(admin, sid, {"os-migrateLive": {"host": "host2", "block_migration": False}},
               mv="2.1"), 400, "badRequest",
        "Invalid input for field/attribute os-migrateLive. Value: {'host': 'host2', "
        "'block_migration': False}. 'disk_over_commit' is a required property")
    err(action(admin, sid, {"os-migrateLive": {"host": "host2", "block_migration": False,
                                               "disk_over_commit": False}}, mv="2.25"),
        400, "badRequest")
    err(action(admin, sid, {"os-migrateLive": {"host": "host2", "block_migration": "auto",
                                               "force": True}}, mv="2.68"), 400, "badRequest",
        "Invalid input for field/attribute os-migrateLive. Value: {'host': 'host2', "
        "'block_migration': 'auto', 'force': True}. Additional properties are not allowed "
        "('force' was unexpected)")
    err(action(admin, sid, {"os-migrateLive": {"host": "h", "block_migration": True,
                                               "force": True}}, mv="2.29"), 400, "badRequest")
    for mv in ("2.90", "2.30"):
        err(action(admin, sid, {"os-migrateLive": {"host": "nosuchhost",
                                                   "block_migration": "auto"}}, mv=mv),
            400, "badRequest", "Compute host nosuchhost could not be found.")
    err(action(admin, "00000000-0000-0000-0000-000000000000",
               {"os-migrateLive": {"host": "host2", "block_migration": "auto"}}),
        404, "itemNotFound",
        "Instance 00000000-0000-0000-0000-000000000000 could not be found.")
    # Nothing was recorded by the refused requests.
    assert admin.server(sid)["OS-EXT-STS:task_state"] is None


def test_live_migrate_of_stopped_server_conflicts(admin, clean):
    sid = admin.boot("lm-stopped")
    admin.wait(sid)
    admin.ok(action(admin, sid, {"os-stop": None}), 202)
    admin.wait(sid, ("SHUTOFF",))
    err(action(admin, sid, {"os-migrateLive": {"host": None, "block_migration": "auto"}}),
        409, "conflictingRequest",
        f"Cannot 'os-migrateLive' instance {sid} while it is in vm_state stopped")


def test_policy_for_members(admin, member, stack, clean):
    theirs = admin.boot("lm-admin-owned")
    mine = member.boot("lm-member-owned")
    admin.wait(theirs)
    member.wait(mine)
    body = {"os-migrateLive": {"host": "host2", "block_migration": "auto"}}
    err(action(member, theirs, body), 404, "itemNotFound",
        f"Instance {theirs} could not be found.")
    err(action(member, theirs, {"migrate": None}), 404, "itemNotFound")
    err(action(member, mine, body), 403, "forbidden",
        "Policy doesn't allow os_compute_api:os-migrate-server:migrate_live to be performed.")
    err(action(member, mine, {"migrate": None}), 403, "forbidden",
        "Policy doesn't allow os_compute_api:os-migrate-server:migrate to be performed.")
    err(member.get("/v2.1/os-migrations"), 403, "forbidden",
        "Policy doesn't allow os_compute_api:os-migrations:index to be performed.")
    err(member.get(f"/v2.1/servers/{mine}/migrations"), 403, "forbidden",
        "Policy doesn't allow os_compute_api:servers:migrations:index to be performed.")
    err(member.get(f"/v2.1/servers/{theirs}/os-instance-actions"), 404, "itemNotFound")
    # The owner sees its actions, with events but without tracebacks or hosts.
    acts = member.ok(member.get(f"/v2.1/servers/{mine}/os-instance-actions"))["instanceActions"]
    assert [a["action"] for a in acts] == ["create"]
    shown = member.ok(member.get(
        f"/v2.1/servers/{mine}/os-instance-actions/{acts[0]['request_id']}"))["instanceAction"]
    for ev in shown["events"]:
        assert "traceback" not in ev and "host" not in ev and "hostId" in ev
    assert stack.scalar("SELECT count(*) FROM migrations") is not None


# --- one live migration, looked at from every side ---

def test_live_migration_conflicts_and_records(admin, stack, agents, clean):
    sid = admin.boot("lm-main", az="nova:host1")
    admin.wait(sid)
    set_agent(stack, "host1", fake_memory_copy_ms=4000)  # holds the migration in 'running'
    body = {"os-migrateLive": {"host": "host2", "block_migration": "auto"}}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = sorted(r.status_code for r in pool.map(
            lambda _: action(admin, sid, body), range(4)))
    assert codes == [202, 409, 409, 409]
    err(action(admin, sid, body), 409, "conflictingRequest",
        f"Cannot 'os-migrateLive' instance {sid} while it is in task_state migrating")
    err(action(admin, sid, {"migrate": None}), 409, "conflictingRequest",
        f"Cannot 'migrate' instance {sid} while it is in task_state migrating")
    err(action(admin, sid, {"resize": {"flavorRef": "7"}}), 409, "conflictingRequest",
        f"Cannot 'resize' instance {sid} while it is in task_state migrating")
    rows = stack.sql("SELECT id, uuid, status, source_compute, dest_compute, migration_type "
                     "FROM migrations WHERE instance_uuid = '%s'" % sid)
    assert len(rows) == 1
    mid, muuid, _, src, dest, mtype = rows[0]
    assert (src, dest, mtype) == ("host1", "host2", "live-migration")
    task = stack.sql("SELECT kind, params->>'host', params->>'block_migration', "
                     "params->>'force' FROM tasks WHERE migration_uuid = '%s'" % muuid)
    assert task == [["live_migrate", "host2", "auto", "false"]]

    # Server migrations: not there before 2.22/2.23/2.24.
    err(admin.post(f"/v2.1/servers/{sid}/migrations/{mid}/action", {"force_complete": None},
                   mv="2.21"), 404, "itemNotFound", "The resource could not be found.")
    err(admin.get(f"/v2.1/servers/{sid}/migrations", mv="2.22"), 404, "itemNotFound")
    err(admin.request("DELETE", f"/v2.1/servers/{sid}/migrations/{mid}", mv="2.23"),
        404, "itemNotFound")
    # Unknown migration of a migrating server (119-121).
    err(admin.post(f"/v2.1/servers/{sid}/migrations/999999/action", {"force_complete": None}),
        400, "badRequest", f"Migration 999999 not found for instance {sid}")
    err(admin.request("DELETE", f"/v2.1/servers/{sid}/migrations/999999"), 404, "itemNotFound",
        f"Migration 999999 not found for instance {sid}")
    err(admin.get(f"/v2.1/servers/{sid}/migrations/999999"), 404, "itemNotFound",
        f"In-progress live migration 999999 is not found for server {sid}.")

    # Wait for 'running', then look at it.
    deadline = time.time() + 20
    while stack.scalar(f"SELECT status FROM migrations WHERE id = {mid}") != "running":
        assert time.time() < deadline, "migration never ran"
        time.sleep(0.05)
    lst = admin.ok(admin.get(f"/v2.1/servers/{sid}/migrations"))["migrations"]
    assert [m["id"] for m in lst] == [int(mid)]
    keys = {"created_at", "dest_compute", "dest_host", "dest_node", "disk_processed_bytes",
            "disk_remaining_bytes", "disk_total_bytes", "id", "memory_processed_bytes",
            "memory_remaining_bytes", "memory_total_bytes", "server_uuid", "source_compute",
            "source_node", "status", "updated_at"}
    assert set(lst[0]) == keys | {"uuid", "user_id", "project_id"}
    shown = admin.ok(admin.get(f"/v2.1/servers/{sid}/migrations/{mid}", mv="2.23"))["migration"]
    assert set(shown) == keys and shown["status"] == "running"
    om = admin.ok(admin.get(f"/v2.1/os-migrations?instance_uuid={sid}", mv="2.80"))["migrations"]
    assert om[0]["links"][0]["href"].endswith(f"/v2.1/servers/{sid}/migrations/{mid}")
    assert om[0]["links"][1]["rel"] == "bookmark"

    # force_complete while running is accepted and flagged for the conductor.
    r = admin.post(f"/v2.1/servers/{sid}/migrations/{mid}/action", {"force_complete": None})
    assert r.status_code == 202 and not r.content
    assert stack.scalar(f"SELECT migrate_data->>'force_complete_requested' FROM migrations "
                        f"WHERE id = {mid}") == "true"
    set_agent(stack, "host1", fake_memory_copy_ms=0)
    settle(admin, stack, sid)

    # Afterwards (015-019).
    assert admin.ok(admin.get(f"/v2.1/servers/{sid}/migrations"))["migrations"] == []
    status = stack.scalar(f"SELECT status FROM migrations WHERE id = {mid}")
    err(admin.get(f"/v2.1/servers/{sid}/migrations/{mid}"), 404, "itemNotFound",
        f"Live migration {mid} for server {sid} is not in progress.")
    err(admin.post(f"/v2.1/servers/{sid}/migrations/{mid}/action", {"force_complete": None}),
        409, "conflictingRequest", f"Instance {sid} is in an invalid state for 'force_complete'")
    for mv in ("2.90", "2.24"):
        err(admin.request("DELETE", f"/v2.1/servers/{sid}/migrations/{mid}", mv=mv),
            409, "conflictingRequest",
            f"Instance {sid} is in an invalid state for 'abort live migration'")
    assert status in ("completed", "failed", "error", "cancelled")

    # Instance actions: the migration and the force-complete were recorded.
    acts = admin.ok(admin.get(f"/v2.1/servers/{sid}/os-instance-actions", mv="2.84"))
    names = [a["action"] for a in acts["instanceActions"]]
    assert names[0] == "live_migration_force_complete" or "live-migration" in names
    assert set(acts["instanceActions"][0]) == {"action", "instance_uuid", "request_id",
                                               "user_id", "project_id", "start_time",
                                               "message", "updated_at"}
    old = admin.ok(admin.get(f"/v2.1/servers/{sid}/os-instance-actions", mv="2.1"))
    assert "updated_at" not in old["instanceActions"][0]
    lm = [a for a in acts["instanceActions"] if a["action"] == "live-migration"][0]
    full = admin.ok(admin.get(f"/v2.1/servers/{sid}/os-instance-actions/{lm['request_id']}",
                              mv="2.84"))["instanceAction"]
    for ev in full["events"]:
        assert set(ev) == {"event", "start_time", "finish_time", "result", "traceback", "host",
                           "hostId", "details"}
    bare = admin.ok(admin.get(f"/v2.1/servers/{sid}/os-instance-actions/{lm['request_id']}",
                              mv="2.1"))["instanceAction"]
    for ev in bare["events"]:
        assert set(ev) == {"event", "start_time", "finish_time", "result", "traceback"}
    err(admin.get(f"/v2.1/servers/{sid}/os-instance-actions/req-nosuch"), 404, "itemNotFound")


def test_abort_while_running(admin, stack, agents, clean):
    sid = admin.boot("lm-abort", az="nova:host1")
    admin.wait(sid)
    set_agent(stack, "host1", fake_memory_copy_ms=5000)
    admin.ok(action(admin, sid, {"os-migrateLive": {"host": "host2", "block_migration": "auto"}}),
             202)
    mid = stack.scalar(f"SELECT id FROM migrations WHERE instance_uuid = '{sid}'")
    deadline = time.time() + 20
    while stack.scalar(f"SELECT status FROM migrations WHERE id = {mid}") != "running":
        assert time.time() < deadline, "migration never ran"
        time.sleep(0.05)
    r = admin.request("DELETE", f"/v2.1/servers/{sid}/migrations/{mid}", mv="2.24")
    assert r.status_code == 202 and not r.content
    assert stack.scalar(f"SELECT migrate_data->>'abort_requested' FROM migrations "
                        f"WHERE id = {mid}") == "true"
    s = settle(admin, stack, sid)
    assert s["status"] == "ACTIVE"
    acts = [a["action"] for a in admin.ok(admin.get(
        f"/v2.1/servers/{sid}/os-instance-actions"))["instanceActions"]]
    assert "live_migration_cancel" in acts


def test_live_migrate_below_2_34_answers_the_precheck(admin, stack, clean):
    sid = admin.boot("lm-sync", az="nova:host1")
    admin.wait(sid)
    # Same host: the conductor's pre-check refuses it and 2.30 reports it synchronously.
    r = action(admin, sid, {"os-migrateLive": {"host": "host1", "block_migration": "auto"}},
               mv="2.30")
    assert r.status_code == 400, r.text
    assert r.json()["badRequest"]["message"]
    settle(admin, stack, sid)
    # From 2.34 the same request is accepted and fails later (080).
    r = action(admin, sid, {"os-migrateLive": {"host": "host1", "block_migration": "auto"}})
    assert r.status_code == 202
    settle(admin, stack, sid)
    assert host_of(admin, sid) == "host1"


# --- migrate / resize / confirm / revert (100-105, 113, 034, 035) ---

def test_migrate_and_resize_validation(admin, stack, clean):
    sid = admin.boot("cold-valid", flavor="7", az="nova:host1")
    admin.wait(sid)
    err(action(admin, sid, {"migrate": {"host": "host1"}}, mv="2.56"), 400, "badRequest",
        "Cannot migrate to the host where the server exists.")
    err(action(admin, sid, {"migrate": {"host": "nosuchhost"}}, mv="2.56"), 400, "badRequest",
        "Compute host nosuchhost could not be found.")
    err(action(admin, sid, {"migrate": {"host": "host2", "x": 1}}, mv="2.56"), 400, "badRequest")
    err(action(admin, sid, {"resize": {"flavorRef": "7"}}), 400, "badRequest",
        "When resizing, instances must change flavor!")
    err(action(admin, sid, {"resize": {"flavorRef": "999"}}), 400, "badRequest",
        "Flavor 999 could not be found.")
    err(action(admin, sid, {"resize": {}}), 400, "badRequest",
        "Invalid input for field/attribute resize. Value: {}. 'flavorRef' is a required property")
    err(action(admin, sid, {"confirmResize": None}), 409, "conflictingRequest",
        f"Cannot 'confirmResize' instance {sid} while it is in vm_state active")
    err(action(admin, sid, {"revertResize": None}), 409, "conflictingRequest",
        f"Cannot 'revertResize' instance {sid} while it is in vm_state active")
    big = admin.boot("cold-big", flavor="8", az="nova:host1")
    admin.wait(big)
    err(action(admin, big, {"resize": {"flavorRef": "7"}}), 400, "badRequest",
        "Server disk was unable to be resized because: Resizing to a smaller disk flavor is "
        "not allowed.")
    assert stack.scalar(f"SELECT count(*) FROM migrations WHERE instance_uuid IN "
                        f"('{sid}', '{big}')") == "0"


def test_resize_records_and_confirm(admin, stack, clean):
    sid = admin.boot("cold-resize", flavor="6", az="nova:host1")
    admin.wait(sid)
    r = action(admin, sid, {"resize": {"flavorRef": "7"}})
    assert r.status_code == 202 and not r.content
    row = stack.sql(f"SELECT migration_type, old_flavor_id, new_flavor_id, old_instance_type_id,"
                    f" new_instance_type_id, source_compute FROM migrations "
                    f"WHERE instance_uuid = '{sid}'")
    assert row[0][:3] == ["resize", "6", "7"] and row[0][5] == "host1"
    assert row[0][3] != row[0][4]
    kind = stack.scalar(f"SELECT kind || ':' || (params->'flavor'->>'flavorid') FROM tasks "
                        f"WHERE instance_uuid = '{sid}' AND kind = 'resize'")
    assert kind == "resize:7"
    s = admin.wait(sid, ("VERIFY_RESIZE",), timeout=40)
    assert s["flavor"]["original_name"] == "ferry.micro"
    r = action(admin, sid, {"confirmResize": None})
    assert r.status_code == 204, r.text
    admin.wait(sid, ("ACTIVE",), timeout=40)
    settle(admin, stack, sid)
    acts = [a["action"] for a in admin.ok(admin.get(
        f"/v2.1/servers/{sid}/os-instance-actions"))["instanceActions"]]
    assert acts[:2] == ["confirmResize", "resize"]


def test_migrate_of_stopped_server_and_revert(admin, stack, clean):
    sid = admin.boot("cold-stopped", az="nova:host1")
    admin.wait(sid)
    admin.ok(action(admin, sid, {"os-stop": None}), 202)
    admin.wait(sid, ("SHUTOFF",))
    r = action(admin, sid, {"migrate": {"host": "host2"}}, mv="2.56")
    assert r.status_code == 202, r.text
    assert stack.scalar(f"SELECT params->>'host' FROM tasks WHERE instance_uuid = '{sid}' "
                        f"AND kind = 'migrate'") == "host2"
    admin.wait(sid, ("VERIFY_RESIZE",), timeout=40)
    err(action(admin, sid, {"migrate": None}), 409, "conflictingRequest",
        f"Cannot 'migrate' instance {sid} while it is in vm_state resized")
    err(action(admin, sid, {"os-migrateLive": {"host": None, "block_migration": "auto"}}),
        409, "conflictingRequest",
        f"Cannot 'os-migrateLive' instance {sid} while it is in vm_state resized")
    r = action(admin, sid, {"revertResize": None})
    assert r.status_code == 202 and not r.content
    admin.wait(sid, ("SHUTOFF",), timeout=40)
    s = settle(admin, stack, sid)
    assert s["OS-EXT-SRV-ATTR:host"] == "host1"


def test_migrate_host_ignored_before_2_56(admin, stack, clean):
    sid = admin.boot("cold-255", az="nova:host1")
    admin.wait(sid)
    r = action(admin, sid, {"migrate": {"host": "nosuchhost"}}, mv="2.55")
    assert r.status_code == 202, r.text
    assert stack.scalar(f"SELECT params->'host' FROM tasks WHERE instance_uuid = '{sid}' "
                        f"AND kind = 'migrate'") == "null"
    admin.wait(sid, ("VERIFY_RESIZE", "ACTIVE"), timeout=40)
    settle(admin, stack, sid)


def test_resize_over_quota_changes_nothing(admin, member, stack, clean):
    project = stack.scalar("SELECT id FROM projects WHERE name = 'demo'")
    sid = member.boot("quota-resize", flavor="6")
    member.wait(sid)
    used = int(stack.scalar("SELECT coalesce(sum((flavor->>'vcpus')::int), 0) FROM instances "
                            f"WHERE project_id = '{project}' AND NOT deleted"))
    admin.ok(admin.request("PUT", f"/v2.1/os-quota-sets/{project}",
                           {"quota_set": {"cores": used}}))
    try:
        err(action(member, sid, {"resize": {"flavorRef": "8"}}), 403, "forbidden",
            f"Quota exceeded for cores: Requested 1, but already used {used} of {used} cores")
        s = member.server(sid)
        assert s["status"] == "ACTIVE" and s["OS-EXT-STS:task_state"] is None
        assert stack.scalar(f"SELECT count(*) FROM migrations WHERE instance_uuid = '{sid}'") == "0"
        assert stack.scalar(f"SELECT count(*) FROM quota_reservations "
                            f"WHERE project_id = '{project}'") == "0"
        assert stack.scalar(f"SELECT new_flavor IS NULL FROM instances WHERE uuid = '{sid}'") == "t"
    finally:
        admin.ok(admin.request("DELETE", f"/v2.1/os-quota-sets/{project}"), 202)
    # Within quota the member may resize its own server; the increase is reserved.
    r = action(member, sid, {"resize": {"flavorRef": "8"}})
    assert r.status_code == 202, r.text
    muuid = stack.scalar(f"SELECT uuid FROM migrations WHERE instance_uuid = '{sid}'")
    res = stack.sql(f"SELECT resource, delta FROM quota_reservations WHERE consumer_uuid = "
                    f"'{muuid}' ORDER BY resource")
    assert res in ([["cores", "1"], ["ram", "192"]], [])  # [] once the conductor committed
    member.wait(sid, ("VERIFY_RESIZE",), timeout=40)
    settle(admin, stack, sid)


# --- os-migrations (043-064) ---

def test_os_migrations_fields_filters_paging(admin, stack, clean):
    sid = admin.boot("om", az="nova:host1")
    admin.wait(sid)
    for _ in range(3):
        admin.ok(action(admin, sid, {"migrate": None}), 202)
        admin.wait(sid, ("VERIFY_RESIZE",), timeout=40)
        admin.ok(action(admin, sid, {"confirmResize": None}), 204)
        admin.wait(sid, ("ACTIVE",), timeout=40)
        settle(admin, stack, sid)
    q = f"/v2.1/os-migrations?instance_uuid={sid}"
    base = {"id", "source_compute", "dest_compute", "source_node", "dest_node", "dest_host",
            "old_instance_type_id", "new_instance_type_id", "instance_uuid", "status",
            "created_at", "updated_at"}
    m21 = admin.ok(admin.get(q, mv="2.1"))["migrations"]
    assert len(m21) == 3 and set(m21[0]) == base
    m23 = admin.ok(admin.get(q, mv="2.23"))["migrations"]
    assert set(m23[0]) == base | {"migration_type"}
    m59 = admin.ok(admin.get(q, mv="2.59"))["migrations"]
    assert set(m59[0]) == base | {"migration_type", "uuid"}
    m80 = admin.ok(admin.get(q, mv="2.80"))["migrations"]
    assert set(m80[0]) == base | {"migration_type", "uuid", "user_id", "project_id"}
    ids = [m["id"] for m in m80]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert all(m["status"] == "confirmed" for m in m80)

    # Filters.
    assert admin.ok(admin.get(q + "&migration_type=live-migration", mv="2.23"))["migrations"] == []
    assert len(admin.ok(admin.get(q + "&migration_type=migration"))["migrations"]) == 3
    assert len(admin.ok(admin.get(q + "&status=confirmed"))["migrations"]) == 3
    assert admin.ok(admin.get(q + "&status=running"))["migrations"] == []
    hosts = {m["source_compute"] for m in m80} | {m["dest_compute"] for m in m80}
    for h in hosts:
        got = admin.ok(admin.get(q + f"&host={h}"))["migrations"]
        assert got and all(h in (m["source_compute"], m["dest_compute"]) for m in got)
    assert admin.ok(admin.get("/v2.1/os-migrations?instance_uuid=bogus"))["migrations"] == []

    # Paging (2.59): limit, links, marker; limit ignored before 2.59.
    page = admin.ok(admin.get(q + "&limit=2", mv="2.59"))
    assert [m["uuid"] for m in page["migrations"]] == [m["uuid"] for m in m59[:2]]
    href = page["migrations_links"][0]["href"]
    assert href.endswith(f"/v2.1/os-migrations?instance_uuid={sid}&limit=2"
                         f"&marker={m59[1]['uuid']}")
    rest = admin.ok(admin.get(q + f"&limit=2&marker={m59[1]['uuid']}", mv="2.59"))
    assert [m["uuid"] for m in rest["migrations"]] == [m59[2]["uuid"]]
    assert "migrations_links" not in rest
    assert len(admin.ok(admin.get(q + "&limit=1", mv="2.1"))["migrations"]) == 3
    err(admin.get("/v2.1/os-migrations?marker=00000000-0000-0000-0000-000000000000", mv="2.59"),
        400, "badRequest", "Marker 00000000-0000-0000-0000-000000000000 could not be found.")
    err(admin.get("/v2.1/os-migrations?limit=-1", mv="2.59"), 400, "badRequest")
    assert len(admin.ok(admin.get(q + "&changes-since=2000-01-01T00:00:00Z",
                                  mv="2.59"))["migrations"]) == 3
    assert admin.ok(admin.get(q + "&changes-before=2000-01-01T00:00:00Z",
                              mv="2.66"))["migrations"] == []
    err(admin.get(q + "&changes-before=2000-01-01T00:00:00Z", mv="2.65"), 400, "badRequest",
        "Additional properties are not allowed ('changes-before' was unexpected)")
    err(admin.get(q + "&changes-since=soon", mv="2.59"), 400, "badRequest")
    err(admin.get(q + "&changes-since=2030-01-01T00:00:00Z&changes-before=2000-01-01T00:00:00Z",
                  mv="2.66"), 400, "badRequest",
        "The value of changes-since must be less than or equal to changes-before.")

    # 2.80 user/project filters; unknown keys from 2.59.
    user = stack.scalar("SELECT id FROM users WHERE name = 'admin'")
    assert len(admin.ok(admin.get(q + f"&user_id={user}", mv="2.80"))["migrations"]) == 3
    assert admin.ok(admin.get("/v2.1/os-migrations?project_id=nosuchproject",
                              mv="2.80"))["migrations"] == []
    err(admin.get("/v2.1/os-migrations?user_id=admin", mv="2.79"), 400, "badRequest",
        "Additional properties are not allowed ('user_id' was unexpected)")
    err(admin.get("/v2.1/os-migrations?bogus=1", mv="2.80"), 400, "badRequest",
        "Additional properties are not allowed ('bogus' was unexpected)")
    assert admin.get("/v2.1/os-migrations?bogus=1", mv="2.58").status_code == 200

    # Instance actions paging (2.58).
    acts = admin.ok(admin.get(f"/v2.1/servers/{sid}/os-instance-actions?limit=2",
                              mv="2.58"))
    assert len(acts["instanceActions"]) == 2 and acts["links"][0]["rel"] == "next"
    marker = acts["instanceActions"][1]["request_id"]
    more = admin.ok(admin.get(f"/v2.1/servers/{sid}/os-instance-actions?marker={marker}",
                              mv="2.58"))["instanceActions"]
    assert more and marker not in [a["request_id"] for a in more]
    err(admin.get(f"/v2.1/servers/{sid}/os-instance-actions?marker=req-nosuch", mv="2.58"),
        400, "badRequest", "Marker req-nosuch could not be found.")


# --- limits and quota sets ---

def test_limits_and_quota_sets(admin, member, stack, clean):
    project = stack.scalar("SELECT id FROM projects WHERE name = 'demo'")
    sid = member.boot("limits", flavor="7")
    member.wait(sid)
    lim = member.ok(member.get("/v2.1/limits"))["limits"]
    assert lim["rate"] == []
    a = lim["absolute"]
    assert a["maxTotalInstances"] == 10 and a["maxTotalCores"] == 20 and \
        a["maxTotalRAMSize"] == 51200
    assert a["totalInstancesUsed"] >= 1 and a["totalRAMUsed"] >= 128
    assert "maxPersonality" not in a and "maxImageMeta" not in a
    old = member.ok(member.get("/v2.1/limits", mv="2.1"))["limits"]["absolute"]
    assert old["maxPersonality"] == 5 and old["maxImageMeta"] == 128
    qs = member.ok(member.get(f"/v2.1/os-quota-sets/{project}"))["quota_set"]
    assert qs["id"] == project and qs["instances"] == 10 and qs["cores"] == 20
    assert "injected_files" not in qs
    assert "injected_files" in member.ok(member.get(f"/v2.1/os-quota-sets/{project}",
                                                    mv="2.56"))["quota_set"]
    det = member.ok(member.get(f"/v2.1/os-quota-sets/{project}/detail"))["quota_set"]
    assert det["ram"]["limit"] == 51200 and det["ram"]["in_use"] >= 128
    err(member.request("PUT", f"/v2.1/os-quota-sets/{project}", {"quota_set": {"cores": 5}}),
        403, "forbidden")
    upd = admin.ok(admin.request("PUT", f"/v2.1/os-quota-sets/{project}",
                                 {"quota_set": {"cores": 7, "instances": "4"}}))["quota_set"]
    assert upd["cores"] == 7 and upd["instances"] == 4 and "id" not in upd
    assert member.ok(member.get("/v2.1/limits"))["limits"]["absolute"]["maxTotalCores"] == 7
    err(admin.request("PUT", f"/v2.1/os-quota-sets/{project}", {"quota_set": {"bogus": 1}}),
        400, "badRequest")
    err(admin.request("PUT", f"/v2.1/os-quota-sets/{project}", {"quota_set": {"cores": -2}}),
        400, "badRequest")
    err(admin.request("PUT", f"/v2.1/os-quota-sets/{project}", {"quota_set": {"instances": 0}}),
        400, "badRequest")
    defaults = admin.ok(admin.get(f"/v2.1/os-quota-sets/{project}/defaults"))["quota_set"]
    assert defaults["cores"] == 20
    admin.ok(admin.request("DELETE", f"/v2.1/os-quota-sets/{project}"), 202)
    assert member.ok(member.get(f"/v2.1/os-quota-sets/{project}"))["quota_set"]["cores"] == 20
    admin_project = stack.scalar("SELECT id FROM projects WHERE name = 'admin'")
    err(member.get(f"/v2.1/os-quota-sets/{admin_project}"), 403, "forbidden")


@pytest.mark.parametrize("mv", ["2.1", "2.90"])
def test_unknown_server_migrations(admin, mv):
    err(admin.get("/v2.1/servers/00000000-0000-0000-0000-000000000000/migrations", mv="2.90"),
        404, "itemNotFound", "Instance 00000000-0000-0000-0000-000000000000 could not be found.")
    err(admin.post("/v2.1/servers/00000000-0000-0000-0000-000000000000/action",
                   {"migrate": None}, mv=mv), 404, "itemNotFound")
