"""Fixtures for the tests against real QEMU guests: a Ferry stack whose compute agents
drive two libvirt daemons (FERRY_DRIVER=libvirt; tests/libvirt/run sets the rest)."""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from ferry import Client, Stack, hosts, reset_agents, set_agent  # noqa: E402
from lvlib import build_dirty_guest  # noqa: E402


_up_failed = []


@pytest.fixture(scope="session")
def stack():
    # A stack that did not come up fails every test at once (never skips them).
    if _up_failed:
        pytest.fail(f"the libvirt stack did not come up: {_up_failed[0]}")
    s = Stack()
    try:
        s.up(FERRY_DRIVER="libvirt")
    except Exception as e:
        _up_failed.append(e)
        s.down()
        raise
    yield s
    if not os.environ.get("FERRY_E2E_KEEP"):
        s.down()


@pytest.fixture(scope="session")
def admin(stack):
    c = Client(stack.api, "admin", stack.env["FERRY_ADMIN_PASSWORD"], "admin")
    stack.sql("INSERT INTO quota_limits (project_id, resource, hard_limit) "
              "SELECT id, r, -1 FROM projects, unnest(ARRAY['instances','cores','ram']) r "
              "WHERE name = 'admin' ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = -1")
    return c


@pytest.fixture(scope="session")
def flavors(admin, stack):
    """lv-tiny: 64 MiB diskless; lv-disk: 64 MiB with a 1 GiB qcow2 root disk;
    lv-dirty: 128 MiB booting the memory-dirtying kernel (diskless)."""
    kernel = build_dirty_guest(stack.state)
    for fid, ram, disk in (("lv-tiny", 64, 0), ("lv-disk", 64, 1), ("lv-dirty", 128, 0)):
        r = admin.post("/v2.1/flavors", {"flavor": {"name": fid, "ram": ram, "vcpus": 1,
                                                    "disk": disk, "id": fid}})
        assert r.status_code in (200, 409), r.text
    # The flavor API has no extra-spec writes yet; the kernel is a test fixture.
    assert "'" not in kernel
    stack.sql("UPDATE flavors SET extra_specs = jsonb_build_object('ferry:kernel', "
              f"'{kernel}'::text) WHERE flavorid = 'lv-dirty'")
    return kernel


# The libvirt driver's run-time settings the tests change, at their defaults.
LIBVIRT_DEFAULTS = {"live_migration_bandwidth_mibps": 0, "live_migration_downtime_ms": 500,
                    "live_migration_downtime_steps": 10}


def reset(stack):
    reset_agents(stack)
    for h in hosts(stack):
        set_agent(stack, h, **LIBVIRT_DEFAULTS)


def abort_migrations(admin):
    """A test that failed half-way may leave a migration that cannot finish alone."""
    for srv in admin.ok(admin.get("/v2.1/servers"))["servers"]:
        for m in admin.ok(admin.get(f"/v2.1/servers/{srv['id']}/migrations"))["migrations"]:
            if m["status"] == "running":
                admin.request("DELETE", f"/v2.1/servers/{srv['id']}/migrations/{m['id']}")


@pytest.fixture
def clean(admin, stack):
    admin.delete_all()
    reset(stack)
    yield
    reset(stack)
    abort_migrations(admin)
    admin.delete_all()
