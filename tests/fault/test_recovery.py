"""Recovery beyond the matrix (issue 7): PostgreSQL restarted in the middle of a live
and of a cold migration (item 4); a compute agent stopped for seconds during a step
(item 5); the agent's reconciliation at start (item 2).  Run by tests/fault/run
against its local-storage stack (FERRY_FAULT_LOCAL)."""
import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import faultlib as fl  # noqa: E402
from invariants import TERMINAL, check  # noqa: E402
from ferry import (ROOT, Client, Stack, action, inject, make_flavor, make_port,  # noqa: E402
                   make_volume, read_env, reset_agents, set_agent)

SMALL, LARGE = "fault-s", "fault-l"


@pytest.fixture(scope="module")
def env():
    state = os.environ.get("FERRY_FAULT_LOCAL")
    if not state:
        pytest.skip("FERRY_FAULT_LOCAL not set (run tests/fault/run)")
    s = Stack()
    s.state = state
    s.env = read_env(os.path.join(state, "stack.env"))
    c = Client(s.api, "admin", s.env["FERRY_ADMIN_PASSWORD"], "admin")
    s.sql("INSERT INTO quota_limits (project_id, resource, hard_limit) SELECT id, r, -1 FROM"
          " projects, unnest(ARRAY['instances','cores','ram']) r WHERE name = 'admin'"
          " ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = -1")
    make_flavor(c, SMALL, 64, disk=0)
    make_flavor(c, LARGE, 128, 2, disk=0)
    return s, c


@pytest.fixture
def srv(env):
    s, c = env
    reset_agents(s)
    c.delete_all()
    port = make_port(c, "rec-port")
    vol = make_volume(c, "rec-vol")
    sid = c.boot("rec", flavor=SMALL, networks=[{"port": port}], az="nova:host1",
                 block_device_mapping_v2=[{"uuid": vol, "source_type": "volume",
                                           "destination_type": "volume", "boot_index": -1,
                                           "delete_on_termination": False}])
    c.wait(sid)
    yield s, c, sid
    fl.restart_missing(s, fl.service_names(s))
    reset_agents(s)
    c.delete_all()


def mig_status(s, sid):
    rows = s.sql(f"SELECT status FROM migrations WHERE instance_uuid = '{sid}' ORDER BY id DESC LIMIT 1")
    return rows[0][0] if rows else None


def wait_for(s, sid, statuses, timeout=90):
    deadline = time.time() + timeout
    while True:
        try:
            st = mig_status(s, sid)
        except subprocess.CalledProcessError:   # the database is down a moment
            st = None
        if st in statuses:
            return st
        assert time.time() < deadline, f"migration still {st}"
        time.sleep(0.2)


def settled(s, c, sid, timeout=15):
    deadline = time.time() + timeout
    while True:
        bad = check(s, c, sid, ports=1, volumes=1)
        if not bad or time.time() > deadline:
            return bad
        time.sleep(0.3)


def pg_stop(s):
    subprocess.run([os.path.join(ROOT, "deploy/lib/pgcluster"), "stop", os.path.join(s.state, "pg")],
                   check=True)


def pg_start(s):
    subprocess.run([os.path.join(ROOT, "deploy/lib/pgcluster"), "start", os.path.join(s.state, "pg"),
                    str(int(s.env["FERRY_PORT_BASE"]) + 3)], check=True, capture_output=True)


def pg_restart(s, down_s=3):
    pg_stop(s)
    time.sleep(down_s)
    pg_start(s)


def wait_running_step(s, sid, steps, timeout=30):
    deadline = time.time() + timeout
    while True:
        rows = s.sql(f"SELECT step FROM tasks WHERE instance_uuid = '{sid}' AND state = 'running'")
        if rows and rows[0][0] in steps:
            return rows[0][0]
        assert time.time() < deadline, f"task never reached {steps}"
        time.sleep(0.05)


def test_pg_restart_during_live_migration(srv):
    s, c, sid = srv
    # A slow memory copy keeps the job running while the database is away.
    set_agent(s, "host1", fake_memory_copy_ms=6000)
    r = action(c, sid, {"os-migrateLive": {"host": None, "block_migration": True}})
    assert r.status_code == 202, r.text
    wait_running_step(s, sid, ("wait_job",))
    pg_restart(s)
    assert wait_for(s, sid, TERMINAL) == "completed"
    assert settled(s, c, sid) == []
    assert c.server(sid)["OS-EXT-SRV-ATTR:host"] == "host2"


def test_pg_restart_during_cold_migration(srv):
    s, c, sid = srv
    r = action(c, sid, {"resize": {"flavorRef": LARGE}})
    assert r.status_code == 202, r.text
    pg_restart(s, down_s=2)
    assert wait_for(s, sid, ("finished",) + TERMINAL) == "finished"
    assert action(c, sid, {"confirmResize": None}).status_code == 204
    assert wait_for(s, sid, TERMINAL) == "confirmed"
    assert settled(s, c, sid) == []
    assert c.server(sid)["flavor"]["original_name"] == LARGE


# Every step of a resize and of its confirm / revert meets a PostgreSQL
# restart: in "conductor" cases the database stops while the conductor is in
# the step (held a moment by a delay fault), so the step's own reads and
# writes fail; in "agent" cases the agent the step calls is frozen (SIGSTOP)
# until the call reaches it, and thawed once the database is down, so the
# agent's run-once record of the step meets the restart.  Each service waits
# for the database; the move ends as it would have without the restart.
CONDUCTOR_STEPS = [("resize", st) for st in ("move_allocation", "schedule", "prep_resize",
                                             "resize_instance", "finish_resize")] + \
                  [("confirm", st) for st in ("confirm_resize", "release_source")] + \
                  [("revert", st) for st in ("revert_resize", "finish_revert_resize")]
# The agent each step calls (host1 is the source, host2 the destination).
AGENT_OF_STEP = {"prep_resize": "host2", "resize_instance": "host1", "finish_resize": "host2",
                 "confirm_resize": "host1", "revert_resize": "host2",
                 "finish_revert_resize": "host1"}
COLD_CASES = [("conductor", p, st) for p, st in CONDUCTOR_STEPS] + \
             [("agent", p, st) for p, st in CONDUCTOR_STEPS if st in AGENT_OF_STEP]


def restart_in_step(s, sid, where, step):
    wait_running_step(s, sid, (step,))
    if where == "conductor":
        pg_restart(s, down_s=3)
        return
    pid = fl.pid_of(s, f"compute-{AGENT_OF_STEP[step]}")
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(2.5)     # the conductor's hold ends; its call waits on the agent
        pg_stop(s)
    finally:
        os.kill(pid, signal.SIGCONT)
    time.sleep(3)
    pg_start(s)


@pytest.mark.parametrize("where,phase,step", COLD_CASES,
                         ids=[f"{w}-{p}-{st}" for w, p, st in COLD_CASES])
def test_pg_restart_at_cold_step(srv, where, phase, step):
    s, c, sid = srv
    hold = [{"step": step, "action": "delay", "ms": 1500}]
    if phase == "resize":
        fl.conductor_faults(s, hold)
    r = action(c, sid, {"resize": {"flavorRef": LARGE}})
    assert r.status_code == 202, r.text
    if phase == "resize":
        restart_in_step(s, sid, where, step)
    assert wait_for(s, sid, ("finished",) + TERMINAL) == "finished"
    c.wait(sid, ("VERIFY_RESIZE",))
    if phase != "resize":
        fl.conductor_faults(s, hold)
    r = action(c, sid, {"confirmResize" if phase != "revert" else "revertResize": None})
    assert r.status_code in (202, 204), r.text
    if phase != "resize":
        restart_in_step(s, sid, where, step)
    want = "reverted" if phase == "revert" else "confirmed"
    assert wait_for(s, sid, TERMINAL) == want
    assert settled(s, c, sid) == []
    server = c.server(sid)
    assert server["flavor"]["original_name"] == (SMALL if phase == "revert" else LARGE)
    assert server["OS-EXT-SRV-ATTR:host"] == ("host1" if phase == "revert" else "host2")


def test_conductor_crash_during_rollback(srv):
    """A move that fails records its rollback before it undoes anything: a conductor
    killed while rolling back is resumed by rolling back again (never by repeating the
    failed step over a half-undone move), and ends with the server back on the source
    in ERROR and nothing leaked."""
    s, c, sid = srv
    inject(s, "host2", "finish_migration")
    fl.conductor_faults(s, [{"step": "rollback", "action": "crash"}])
    r = action(c, sid, {"resize": {"flavorRef": LARGE}})
    assert r.status_code == 202, r.text
    assert fl.wait_dead(s, "conductor", 30), "the conductor never reached the rollback"
    fl.start(s, "conductor")
    assert wait_for(s, sid, TERMINAL) == "error"
    server = c.server(sid)
    assert server["status"] == "ERROR" and server["OS-EXT-SRV-ATTR:host"] == "host1"
    assert server["flavor"]["original_name"] == SMALL
    assert settled_as(s, c, sid, ("ERROR",)) == []
    mig = s.sql(f"SELECT uuid FROM migrations WHERE instance_uuid = '{sid}'")[0][0]
    # finish_migration failed (not recorded); the rollback ran on both hosts.
    assert set(agent_steps(s, mig)) == {"prep_resize", "migrate_disk_and_power_off",
                                        "revert_migration_dest", "finish_revert_migration"}


def settled_as(s, c, sid, allow, timeout=15):
    deadline = time.time() + timeout
    while True:
        bad = check(s, c, sid, ports=1, volumes=1, allow=allow)
        if not bad or time.time() > deadline:
            return bad
        time.sleep(0.3)


def agent_steps(s, mig):
    return {r[0].split(":")[1]: int(r[1]) for r in s.sql(
        f"SELECT key, count(*) FROM agent_steps WHERE key LIKE '{mig}:%' GROUP BY key")}


@pytest.mark.parametrize("host,step", [("host2", "prep_resize"), ("host1", "resize_instance"),
                                       ("host2", "finish_resize")])
def test_agent_stopped_during_cold_step(srv, host, step):
    """SIGSTOP for 8 s while the conductor calls the agent: the call waits or is
    retried (the agent answers a repeated step with its recorded result), and the
    flow completes or rolls back cleanly."""
    s, c, sid = srv
    # Held long enough to be seen by the poll below (a step takes milliseconds).
    fl.conductor_faults(s, [{"step": step, "action": "delay", "ms": 1500}])
    r = action(c, sid, {"migrate": None})
    assert r.status_code == 202, r.text
    wait_running_step(s, sid, (step,))
    pid = fl.pid_of(s, f"compute-{host}")
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(8)
    finally:
        os.kill(pid, signal.SIGCONT)
    st = wait_for(s, sid, ("finished",) + TERMINAL)
    if st == "finished":
        assert action(c, sid, {"confirmResize": None}).status_code == 204
        st = wait_for(s, sid, TERMINAL)
    assert st in ("confirmed", "error"), st
    assert settled(s, c, sid) == []
    mig = s.sql(f"SELECT uuid FROM migrations WHERE instance_uuid = '{sid}'")[0][0]
    # The cold steps ran on the hosts they belong to and are recorded once each.
    assert set(agent_steps(s, mig)) <= {"prep_resize", "migrate_disk_and_power_off",
                                        "finish_migration", "confirm_migration"}


def domains(s, host):
    return os.path.join(s.state, "hosts", host, "domains")


def reconcile_events(c, sid):
    acts = c.ok(c.get(f"/v2.1/servers/{sid}/os-instance-actions"))["instanceActions"]
    return [a for a in acts if a["action"] == "reconcile"]


def test_reconcile_at_start(env):
    s, c = env
    reset_agents(s)
    c.delete_all()
    lost = c.boot("rec-lost", flavor=SMALL, az="nova:host1")
    stale = c.boot("rec-stale", flavor=SMALL, az="nova:host1")
    stray = c.boot("rec-stray", flavor=SMALL, az="nova:host1")
    for sid in (lost, stale, stray):
        c.wait(sid)
    fl.kill9(s, "compute-host1")
    # While the agent is away: the guest of `lost` disappears, `stale` is left in
    # a task state nobody runs, and `stray` is deleted behind the agent's back.
    os.remove(os.path.join(domains(s, "host1"), f"{lost}.json"))
    s.sql(f"UPDATE instances SET task_state = 'powering-off' WHERE uuid = '{stale}' RETURNING 1")
    s.sql(f"UPDATE instances SET deleted = true, deleted_at = now(), vm_state = 'deleted'"
          f" WHERE uuid = '{stray}' RETURNING 1")
    # Its allocation released as the scheduler does it (the node's usage with it).
    s.sql("WITH del AS (DELETE FROM allocations WHERE consumer_uuid ="
          f" '{stray}' RETURNING node_id, vcpus, memory_mb, disk_gb)"
          " UPDATE compute_nodes n SET vcpus_used = n.vcpus_used - del.vcpus,"
          " memory_mb_used = n.memory_mb_used - del.memory_mb,"
          " local_gb_used = n.local_gb_used - del.disk_gb FROM del WHERE n.id = del.node_id"
          " RETURNING 1")
    fl.start(s, "compute-host1")
    srv_lost = c.server(lost)
    assert srv_lost["status"] == "ERROR"
    assert "missing" in srv_lost["fault"]["message"]
    assert reconcile_events(c, lost)
    srv_stale = c.server(stale)
    assert srv_stale["status"] == "ACTIVE" and srv_stale["OS-EXT-STS:task_state"] is None
    assert reconcile_events(c, stale)
    guests = {g["uuid"] for g in fl_guests(s, "host1")}
    assert stray not in guests and stale in guests and lost not in guests
    c.delete_all()


def fl_guests(s, host):
    from invariants import guest_list
    return guest_list(s, host)
