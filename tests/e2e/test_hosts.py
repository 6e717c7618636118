"""Compute services: registration, disable/enable, heartbeat loss, hypervisors."""
import os
import signal
import time


def services(admin):
    return admin.ok(admin.get("/v2.1/os-services"))["services"]


def compute(admin, host):
    return [s for s in services(admin) if s["host"] == host and s["binary"] == "ferry-compute"][0]


def test_agents_registered_with_inventory(admin):
    hyp = admin.ok(admin.get("/v2.1/os-hypervisors/detail", mv="2.1"))["hypervisors"]
    names = sorted(h["hypervisor_hostname"] for h in hyp)
    assert names == ["host1", "host2"]
    for h in hyp:
        assert h["vcpus"] == 8 and h["memory_mb"] == 16384 and h["local_gb"] == 200
        assert h["hypervisor_type"] == "fake" and h["state"] == "up" and h["status"] == "enabled"


def test_disabled_service_is_not_scheduled(admin, clean):
    svc = compute(admin, "host2")
    admin.ok(admin.request("PUT", f"/v2.1/os-services/{svc['id']}",
                           {"status": "disabled", "disabled_reason": "e2e"}))
    try:
        assert compute(admin, "host2")["status"] == "disabled"
        ids = [admin.boot(f"e2e-dis-{i}") for i in range(4)]
        hosts = {admin.wait(i)["OS-EXT-SRV-ATTR:host"] for i in ids}
        assert hosts == {"host1"}
    finally:
        admin.ok(admin.request("PUT", f"/v2.1/os-services/{svc['id']}", {"status": "enabled"}))
    assert compute(admin, "host2")["status"] == "enabled"


def test_killed_agent_reported_down_and_not_scheduled(admin, stack, clean):
    os.kill(stack.pid("compute-host2"), signal.SIGKILL)
    try:
        deadline = time.time() + 20
        while compute(admin, "host2")["state"] != "down":
            assert time.time() < deadline, "host2 still reported up"
            time.sleep(0.5)
        ids = [admin.boot(f"e2e-down-{i}") for i in range(3)]
        hosts = {admin.wait(i)["OS-EXT-SRV-ATTR:host"] for i in ids}
        assert hosts == {"host1"}
    finally:
        stack.up()   # restarts what is missing; harmless for the rest
    assert compute(admin, "host2")["state"] == "up"
