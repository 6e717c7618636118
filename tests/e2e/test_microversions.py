"""Each microversion boundary of the migration APIs, on both sides, compared with the
exchanges recorded from a real Nova (reference/nova in the design repository):
same status, same key sets (recursively), same values except the run-specific ones
(ids, uuids, times, hosts, request ids, the host:port of hrefs).

2.22 force_complete, 2.23 server migrations list/show and os-migrations migration_type,
2.24 abort, 2.25 block_migration "auto" / no disk_over_commit, 2.30 force, 2.56 migrate
with a host, 2.59 os-migrations uuid/limit/marker/changes-since, 2.65 abort before
running, 2.68 no force, 2.80 os-migrations user_id/project_id."""
import glob
import json
import os
import re
import signal
import time

import pytest

from ferry import ROOT, set_agent, wait_migration

REFERENCE = os.environ.get("FERRY_NOVA_REFERENCE",
                           os.path.join(ROOT, "..", "shared", "reference", "nova"))

pytestmark = pytest.mark.skipif(not os.path.isdir(REFERENCE),
                                reason=f"no recorded Nova exchanges in {REFERENCE}")

# Keys whose values belong to one run or one deployment.
RUN_SPECIFIC = {"id", "uuid", "instance_uuid", "server_uuid", "created_at", "updated_at",
                "user_id", "project_id", "source_compute", "dest_compute", "source_node",
                "dest_node", "dest_host", "old_instance_type_id", "new_instance_type_id",
                "memory_total_bytes", "memory_processed_bytes", "memory_remaining_bytes",
                "disk_total_bytes", "disk_processed_bytes", "disk_remaining_bytes"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
REQ_ID = re.compile(r"req-" + UUID.pattern)
HOST_PORT = re.compile(r"https?://[^/]+")
MIGRATION_NO = re.compile(r"([Mm]igration) \d+")
HOST_NAME = re.compile(r"\bhost\d+\b")


def recording(number):
    paths = glob.glob(os.path.join(REFERENCE, f"{number:03d}-*.json"))
    assert len(paths) == 1, f"recording {number}: {paths}"
    with open(paths[0]) as f:
        return json.load(f)


def normal(text):
    for pattern, token in ((REQ_ID, "<req>"), (UUID, "<uuid>"), (HOST_PORT, "<base>"),
                           (MIGRATION_NO, r"\1 <n>"), (HOST_NAME, "<host>")):
        text = pattern.sub(token, text)
    return text


def same_shape(ours, ref, where="body", values=True):
    """Asserts ours matches ref: keys recursively, values unless run-specific."""
    if isinstance(ref, dict):
        assert isinstance(ours, dict), f"{where}: {ours!r} is not an object"
        assert set(ours) == set(ref), \
            f"{where}: keys differ: extra {set(ours) - set(ref)}, missing {set(ref) - set(ours)}"
        for k in ref:
            same_shape(ours[k], ref[k], f"{where}.{k}", values and k not in RUN_SPECIFIC)
    elif isinstance(ref, list):
        assert isinstance(ours, list), f"{where}: {ours!r} is not a list"
        # Lists hold this run's records: every element has the shape of Nova's first.
        for i, item in enumerate(ours):
            if ref:
                same_shape(item, ref[0], f"{where}[{i}]", values=False)
    elif values and isinstance(ref, str):
        assert isinstance(ours, str) and normal(ours) == normal(ref), \
            f"{where}: {ours!r} != {ref!r}"
    elif values:
        assert ours == ref, f"{where}: {ours!r} != {ref!r}"


def matches(r, number, values=True):
    """Asserts the response r answers as Nova did in recording number."""
    ref = recording(number)["response"]
    assert r.status_code == ref["status"], f"{number}: {r.status_code} {r.text}"
    # The version headers echo the version asked, which may differ from the recording's.
    asked = r.request.headers.get("OpenStack-API-Version")
    assert r.headers.get("OpenStack-API-Version") == asked, f"{number}: {r.headers}"
    assert r.headers.get("X-OpenStack-Nova-API-Version") == asked.split()[1], r.headers
    assert "OpenStack-API-Version" in r.headers.get("Vary", ""), r.headers
    body = r.json() if r.content else None
    if ref["body"] is None:
        assert body is None, f"{number}: unexpected body {r.text}"
    else:
        same_shape(body, ref["body"], f"{number}", values)
    return body


def action(client, sid, body, mv):
    return client.post(f"/v2.1/servers/{sid}/action", body, mv=mv)


def settle(admin, stack, sid, timeout=40):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = admin.server(sid)
        busy = stack.scalar(
            "SELECT count(*) FROM migrations WHERE instance_uuid = '%s' AND status IN "
            "('accepted','queued','preparing','running','post-migrating','pre-migrating',"
            "'migrating','confirming','reverting')" % sid)
        if s["OS-EXT-STS:task_state"] is None and busy == "0":
            return s
        time.sleep(0.1)
    raise AssertionError(f"server {sid} did not settle: {admin.server(sid)}")


def host_of(admin, sid):
    return admin.server(sid)["OS-EXT-SRV-ATTR:host"]


def other(host):
    return "host2" if host == "host1" else "host1"


def live(admin, sid, mv="2.90", **extra):
    body = {"host": other(host_of(admin, sid)), "block_migration": "auto", **extra}
    return action(admin, sid, {"os-migrateLive": body}, mv)


def status_of(stack, mid):
    return stack.scalar(f"SELECT status FROM migrations WHERE id = {int(mid)}")


def held_running(admin, stack, sid):
    """Starts a live migration that stays 'running' until aborted or forced."""
    for h in ("host1", "host2"):
        set_agent(stack, h, fake_memory_copy_ms=60000)
    matches(live(admin, sid), 9)
    return wait_migration(admin, sid, ("running",), timeout=20)["id"]


def wait_status(stack, mid, wanted, timeout=20):
    deadline = time.time() + timeout
    while (s := status_of(stack, mid)) not in wanted:
        assert time.time() < deadline, f"migration {mid} stuck in {s}"
        time.sleep(0.02)
    return s


@pytest.fixture
def server(admin, stack, agents, clean):
    sid = admin.boot("mv-vm", az="nova:host1")
    admin.wait(sid)
    return sid


def test_server_migrations_2_22_to_2_24(admin, stack, server):
    sid = server
    mid = held_running(admin, stack, sid)
    base = f"/v2.1/servers/{sid}/migrations"
    # 2.23: list/show appear; before, the routes do not exist.
    matches(admin.get(base, mv="2.22"), 22)
    matches(admin.get(f"{base}/{mid}", mv="2.22"), 22)
    matches(admin.get(f"{base}/{mid}", mv="2.23"), 12)
    matches(admin.get(base, mv="2.90"), 10)
    matches(admin.get(f"{base}/{mid}", mv="2.90"), 11)
    # os-migrations links an in-progress live migration to its server migration.
    matches(admin.get(f"/v2.1/os-migrations?instance_uuid={sid}", mv="2.80"), 13)
    # 2.24: abort appears.
    matches(admin.request("DELETE", f"{base}/{mid}", mv="2.23"), 22)
    # 2.22: force_complete appears.
    matches(admin.post(f"{base}/{mid}/action", {"force_complete": None}, mv="2.21"), 22)
    matches(admin.post(f"{base}/{mid}/action", {"force_complete": None}, mv="2.22"), 14)
    wait_migration(admin, sid, ("completed",), mid=mid)
    settle(admin, stack, sid)
    # Over: both refused with Nova's 409, on either side of 2.24's later versions.
    matches(admin.post(f"{base}/{mid}/action", {"force_complete": None}, mv="2.22"), 17)
    matches(admin.request("DELETE", f"{base}/{mid}", mv="2.24"), 19)
    matches(admin.request("DELETE", f"{base}/{mid}", mv="2.90"), 18)
    matches(admin.get(f"{base}/{mid}", mv="2.90"), 16)
    matches(admin.get(base, mv="2.23"), 15)

    mid = held_running(admin, stack, sid)
    matches(admin.request("DELETE", f"{base}/{mid}", mv="2.24"), 24)
    wait_migration(admin, sid, ("cancelled",), mid=mid)
    settle(admin, stack, sid)


def test_live_migrate_body_2_25_2_30_2_68(admin, stack, server):
    sid = server
    # 2.25: "auto" and no disk_over_commit; before, disk_over_commit is required.
    matches(live(admin, sid, mv="2.24"), 94)
    matches(action(admin, sid, {"os-migrateLive": {"host": "host2", "block_migration": False}},
                   "2.1"), 95)
    r = live(admin, sid, mv="2.25", disk_over_commit=False)
    assert r.status_code == 400 and \
        "Additional properties are not allowed ('disk_over_commit' was unexpected)" in \
        r.json()["badRequest"]["message"], r.text
    matches(live(admin, sid, mv="2.25"), 9)
    settle(admin, stack, sid)
    # 2.30: force is accepted; before, it is an unknown property.
    r = live(admin, sid, mv="2.29", force=True)
    assert r.status_code == 400 and \
        "Additional properties are not allowed ('force' was unexpected)" in \
        r.json()["badRequest"]["message"], r.text
    matches(live(admin, sid, mv="2.30", force=True), 9)
    settle(admin, stack, sid)
    # 2.68: force is gone again.
    matches(live(admin, sid, mv="2.67", force=True), 9)
    settle(admin, stack, sid)
    matches(live(admin, sid, mv="2.68", force=True), 96)
    # Accepted ones really moved the server each time.
    assert host_of(admin, sid) == "host2"


def test_migrate_host_2_56(admin, stack, server):
    sid = server
    # 2.55: the host is ignored (the scheduler picks; with two hosts it is the other one).
    matches(action(admin, sid, {"migrate": {"host": "host1"}}, "2.55"), 102)
    s = admin.wait(sid, ("VERIFY_RESIZE",))
    assert s["OS-EXT-SRV-ATTR:host"] == "host2"
    admin.ok(action(admin, sid, {"confirmResize": None}, "2.90"), 204)
    settle(admin, stack, sid)
    # 2.56: the host is honoured.
    matches(action(admin, sid, {"migrate": {"host": "host1"}}, "2.56"), 36)
    s = admin.wait(sid, ("VERIFY_RESIZE",))
    assert s["OS-EXT-SRV-ATTR:host"] == "host1"
    matches(action(admin, sid, {"migrate": {"host": "host1"}}, "2.56"), 113)
    admin.ok(action(admin, sid, {"confirmResize": None}, "2.90"), 204)
    settle(admin, stack, sid)


def test_os_migrations_2_23_2_59_2_80(admin, stack, server):
    sid = server
    matches(live(admin, sid), 9)
    settle(admin, stack, sid)
    q = f"/v2.1/os-migrations?instance_uuid={sid}"
    # migration_type from 2.23, uuid and links from 2.59, user/project from 2.80.
    matches(admin.get(q, mv="2.22"), 48)
    matches(admin.get("/v2.1/os-migrations", mv="2.1"), 43)
    matches(admin.get("/v2.1/os-migrations", mv="2.23"), 44)
    matches(admin.get("/v2.1/os-migrations", mv="2.58"), 44)
    matches(admin.get("/v2.1/os-migrations", mv="2.59"), 45)
    matches(admin.get("/v2.1/os-migrations", mv="2.79"), 45)
    matches(admin.get("/v2.1/os-migrations", mv="2.80"), 47)
    rows = matches(admin.get(q, mv="2.80"), 47)["migrations"]
    assert [(m["migration_type"], m["status"]) for m in rows] == [("live-migration", "completed")]
    # 2.59 paging: limit ignored before, honoured from; a bad marker is refused.
    matches(admin.get("/v2.1/os-migrations?limit=1", mv="2.1"), 60)
    matches(admin.get("/v2.1/os-migrations?limit=1", mv="2.58"), 44)
    matches(admin.get("/v2.1/os-migrations?limit=2", mv="2.59"), 55)
    matches(admin.get("/v2.1/os-migrations?marker=00000000-0000-0000-0000-000000000000",
                      mv="2.59"), 57)
    matches(admin.get("/v2.1/os-migrations?changes-since=2000-01-01T00:00:00Z", mv="2.59"), 58)
    # 2.80: user_id / project_id filters; before, they are unknown properties.
    matches(admin.get("/v2.1/os-migrations?user_id=admin", mv="2.79"), 63)
    matches(admin.get("/v2.1/os-migrations?project_id=nosuchproject", mv="2.80"), 62)
    matches(admin.get("/v2.1/os-migrations?bogus=1", mv="2.80"), 64)
    user = admin.ok(admin.get(q, mv="2.80"))["migrations"][0]["user_id"]
    matches(admin.get(f"/v2.1/os-migrations?user_id={user}&limit=3", mv="2.80"), 61)


def test_abort_before_running_2_65(admin, stack, server):
    """2.65 lets a queued or preparing migration be aborted; before, only a running one.
    Those states last milliseconds with the fake driver, so the conductor is paused while
    the migration is accepted and the record is put in 'preparing' by hand: what is
    under test is the API's answer for that state."""
    sid = server
    cond_pid = stack.pid("conductor")
    os.kill(cond_pid, signal.SIGSTOP)
    try:
        matches(live(admin, sid), 9)
        mid = stack.scalar(f"SELECT max(id) FROM migrations WHERE instance_uuid = '{sid}'")
        stack.sql(f"UPDATE migrations SET status = 'preparing' WHERE id = {int(mid)}")
        base = f"/v2.1/servers/{sid}/migrations/{mid}"
        matches(admin.request("DELETE", base, mv="2.64"), 27)
        matches(admin.request("DELETE", base, mv="2.24"), 27)
        matches(admin.post(f"{base}/action", {"force_complete": None}, mv="2.90"), 28)
        matches(admin.request("DELETE", base, mv="2.65"), 24)
        assert stack.scalar(f"SELECT migrate_data->>'abort_requested' FROM migrations "
                            f"WHERE id = {int(mid)}") == "true"
    finally:
        os.kill(cond_pid, signal.SIGCONT)
    # The conductor finds the abort request before the migration runs.
    assert wait_status(stack, mid, ("cancelled", "error", "failed")) == "cancelled"
    s = settle(admin, stack, sid)
    assert (s["status"], s["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "host1")


def test_abort_accepted_2_65(admin, stack, server):
    """A migration still 'accepted' (the conductor paused) cannot be aborted, even at
    2.65 — Nova's answer in recording 124."""
    sid = server
    cond_pid = stack.pid("conductor")
    os.kill(cond_pid, signal.SIGSTOP)
    try:
        matches(live(admin, sid), 9)
        mid = stack.scalar(f"SELECT max(id) FROM migrations WHERE instance_uuid = '{sid}'")
        assert status_of(stack, mid) == "accepted"
        matches(admin.request("DELETE", f"/v2.1/servers/{sid}/migrations/{mid}", mv="2.65"),
                124)
    finally:
        os.kill(cond_pid, signal.SIGCONT)
    settle(admin, stack, sid)
