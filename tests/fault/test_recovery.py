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
from ferry import (ROOT, Client, Stack, action, make_flavor, make_port, make_volume,  # noqa: E402
                   read_env, reset_agents, set_agent)

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


def pg_restart(s, down_s=3):
    pg = os.path.join(s.state, "pg")
    subprocess.run([os.path.join(ROOT, "deploy/lib/pgcluster"), "stop", pg], check=True)
    time.sleep(down_s)
    subprocess.run([os.path.join(ROOT, "deploy/lib/pgcluster"), "start", pg,
                    str(int(s.env["FERRY_PORT_BASE"]) + 3)], check=True, capture_output=True)


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


@pytest.mark.xfail(reason="known bug: a PostgreSQL restart in the middle of a resize can end it "
                          "in error (server back, nothing leaked) instead of finishing it; "
                          "some step still treats a lost connection as a failure", strict=False)
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
    fl.conductor_faults(s, [{"step": step, "action": "delay", "ms": 300}])
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
    s.sql(f"DELETE FROM allocations WHERE consumer_uuid = '{stray}' RETURNING 1")
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
