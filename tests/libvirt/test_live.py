"""Live migration of real QEMU guests between two libvirt hosts: block migration,
abort, max downtime and force-complete of a guest that cannot converge, and the source
agent killed in the middle (libvirt's peer-to-peer job goes on without it)."""
import os
import signal
import time

import pytest

from ferry import action, last_migration, set_agent, wait_migration
from lvlib import TERMINAL, domains, images_dir, running_on, wait_until

# 20 MiB/s against a guest dirtying 128 MiB as fast as it can: never converges.
SLOW = {"live_migration_bandwidth_mibps": 20}


def live(admin, sid, host="host2", block="auto"):
    r = action(admin, sid, {"os-migrateLive": {"host": host, "block_migration": block}})
    assert r.status_code == 202, r.text


def boot(admin, flavor, host="host1", name="lv-live"):
    sid = admin.boot(name, flavor=flavor, image="", az=f"nova:{host}")
    admin.wait(sid, timeout=90)
    assert running_on(sid) == [host]
    return sid


def assert_on(admin, stack, sid, host):
    """Database, API and QEMU agree on where the guest runs."""
    s = admin.server(sid)
    assert s["OS-EXT-SRV-ATTR:host"] == host and s["status"] == "ACTIVE", s
    assert s["OS-EXT-STS:task_state"] is None
    assert running_on(sid) == [host]
    other = "host2" if host == "host1" else "host1"
    assert sid not in domains(other)


def wait_copying(admin, sid, timeout=60):
    """Waits until the migration runs and RAM is being copied."""
    def copying():
        ms = admin.ok(admin.get(f"/v2.1/servers/{sid}/migrations"))["migrations"]
        assert ms or last_migration(admin, sid)["status"] not in TERMINAL, last_migration(admin, sid)
        m = ms[0] if ms else None
        return m if m and m["status"] == "running" and (m["memory_processed_bytes"] or 0) > 0 \
            else None
    return wait_until(copying, timeout, "the RAM copy")


def test_block_migration_and_back(admin, stack, flavors, clean):
    sid = boot(admin, "lv-disk")
    for src, dst in (("host1", "host2"), ("host2", "host1")):
        live(admin, sid, dst)
        m = wait_migration(admin, sid, TERMINAL, timeout=120)
        assert (m["status"], m["source_compute"], m["dest_compute"]) == ("completed", src, dst), m
        assert stack.scalar(f"SELECT block_migration FROM migrations WHERE uuid = '{m['uuid']}'") == "t"
        assert_on(admin, stack, sid, dst)
        # The disk moved: the destination has it, the source's copy is gone.
        assert os.path.exists(os.path.join(images_dir(stack, dst), sid, "disk"))
        assert not os.path.exists(os.path.join(images_dir(stack, src), sid))
        assert int(stack.scalar(f"SELECT memory_total FROM migrations WHERE uuid = '{m['uuid']}'")) > 0


def test_abort_mid_flight(admin, stack, flavors, clean):
    sid = boot(admin, "lv-dirty")
    set_agent(stack, "host1", **SLOW)
    live(admin, sid)
    m = wait_copying(admin, sid)
    time.sleep(1)
    assert last_migration(admin, sid)["status"] == "running"
    r = admin.request("DELETE", f"/v2.1/servers/{sid}/migrations/{m['id']}")
    assert r.status_code == 202, r.text
    m = wait_migration(admin, sid, TERMINAL, timeout=60)
    assert m["status"] == "cancelled", m
    wait_until(lambda: admin.server(sid)["OS-EXT-STS:task_state"] is None, 30, "task cleared")
    assert_on(admin, stack, sid, "host1")
    assert not os.path.exists(os.path.join(images_dir(stack, "host2"), sid))


def test_force_complete_finishes(admin, stack, flavors, clean):
    sid = boot(admin, "lv-dirty")
    set_agent(stack, "host1", **SLOW)
    live(admin, sid)
    m = wait_copying(admin, sid)
    time.sleep(2)
    assert last_migration(admin, sid)["status"] == "running"   # cannot converge alone
    r = admin.post(f"/v2.1/servers/{sid}/migrations/{m['id']}/action", {"force_complete": None})
    assert r.status_code == 202, r.text
    m = wait_migration(admin, sid, TERMINAL, timeout=90)
    assert m["status"] == "completed", m
    assert_on(admin, stack, sid, "host2")


def test_max_downtime_finishes(admin, stack, flavors, clean):
    sid = boot(admin, "lv-dirty")
    set_agent(stack, "host1", **SLOW)
    live(admin, sid)
    wait_copying(admin, sid)
    time.sleep(1)
    assert last_migration(admin, sid)["status"] == "running"
    # Allowing a 20 s pause lets the copy switch over (the downtime ramp at once).
    set_agent(stack, "host1", live_migration_downtime_ms=20000, live_migration_downtime_steps=1)
    m = wait_migration(admin, sid, TERMINAL, timeout=90)
    assert m["status"] == "completed", m
    assert_on(admin, stack, sid, "host2")


def job_started(stack, sid):
    """True once the source agent has claimed the migration's job (libvirt's
    peer-to-peer migration is started right after)."""
    return stack.scalar("SELECT count(*) FROM migration_jobs j JOIN migrations m"
                        " ON m.uuid = j.migration_uuid WHERE j.kind = 'live_migration'"
                        f" AND m.instance_uuid = '{sid}'") == "1"


def kill_and_restart_source(stack):
    os.kill(stack.pid("compute-host1"), signal.SIGKILL)
    time.sleep(0.5)
    stack.up(FERRY_DRIVER="libvirt")   # restarts what is not running


def test_agent_killed_during_migration(admin, stack, flavors, clean):
    """libvirt's job goes on without the agent; whatever it ends in, the database
    follows where QEMU runs."""
    sid = boot(admin, "lv-disk")
    live(admin, sid)
    wait_until(lambda: job_started(stack, sid) or last_migration(admin, sid)["status"] in TERMINAL,
               60, "the migration job to start")
    kill_and_restart_source(stack)
    m = wait_migration(admin, sid, TERMINAL, timeout=120)
    wait_until(lambda: admin.server(sid)["OS-EXT-STS:task_state"] is None, 60, "task cleared")
    where = running_on(sid)
    assert len(where) == 1, where
    expect = "host2" if m["status"] == "completed" else "host1"
    assert where == [expect], (m, where)
    assert_on(admin, stack, sid, expect)


@pytest.mark.parametrize("ask", ["abort", "force_complete"])
def test_agent_killed_job_taken_over(admin, stack, flavors, clean, ask):
    """A migration that cannot converge outlives the agent's restart: the conductor
    waits, the restarted agent takes libvirt's job over, and abort or force-complete
    still act on it."""
    sid = boot(admin, "lv-dirty")
    set_agent(stack, "host1", **SLOW)
    live(admin, sid)
    wait_copying(admin, sid)
    kill_and_restart_source(stack)
    time.sleep(1)
    m = last_migration(admin, sid)
    assert m["status"] == "running", m
    assert running_on(sid) == ["host1"]
    if ask == "abort":
        r = admin.request("DELETE", f"/v2.1/servers/{sid}/migrations/{m['id']}")
    else:
        r = admin.post(f"/v2.1/servers/{sid}/migrations/{m['id']}/action",
                       {"force_complete": None})
    assert r.status_code == 202, r.text
    m = wait_migration(admin, sid, TERMINAL, timeout=90)
    wait_until(lambda: admin.server(sid)["OS-EXT-STS:task_state"] is None, 30, "task cleared")
    if ask == "abort":
        assert m["status"] == "cancelled", m
        assert_on(admin, stack, sid, "host1")
        assert not os.path.exists(os.path.join(images_dir(stack, "host2"), sid))
    else:
        assert m["status"] == "completed", m
        assert_on(admin, stack, sid, "host2")
