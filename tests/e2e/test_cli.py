"""The unchanged `openstack` CLI (python3-openstackclient) against the local stack.

Every command runs as a subprocess with the environment of the stack's openrc, as an
operator would use it, and the checks read what it prints (`-f json` / `-f value`).
Each command costs about a second of Python start-up, so checks are batched.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from ferry import set_agent, wait_migration

pytestmark = pytest.mark.skipif(shutil.which("openstack") is None,
                                reason="python3-openstackclient is not installed")

FLAVOR = "cli.zero"   # a zero-disk flavor keeps the copy of a block migration short
BIG_FLAVOR = "cli.zero.big"


class CliError(AssertionError):
    pass


def openrc_env(stack, user=None, password=None, project=None):
    """The environment `source openrc` gives, optionally for another user."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    with open(os.path.join(stack.state, "openrc")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export ") and "=" in line:
                k, v = line[len("export "):].split("=", 1)
                env[k] = v
    if user:
        env.update(OS_USERNAME=user, OS_PASSWORD=password, OS_PROJECT_NAME=project)
    return env


class Cli:
    def __init__(self, env):
        self.env = env

    def run(self, *args, fmt="json", check=True, timeout=90):
        cmd = ["openstack", *args]
        if fmt:
            cmd += ["-f", fmt]
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise CliError(f"{' '.join(cmd)}: rc {p.returncode}\n{p.stderr}\n{p.stdout}")
        if not check:
            return p
        if fmt == "json":
            return json.loads(p.stdout) if p.stdout.strip() else None
        return p.stdout

    def refused(self, *args):
        """Runs a command that must fail; returns its error output."""
        p = self.run(*args, fmt=None, check=False)
        assert p.returncode != 0, f"{args} succeeded: {p.stdout}"
        return p.stderr


@pytest.fixture(scope="module")
def cli(stack, admin):
    return Cli(openrc_env(stack))


@pytest.fixture(scope="module")
def member_cli(stack, member):
    return Cli(openrc_env(stack, "alice", "alice-pw-1", "demo"))


@pytest.fixture(scope="module")
def image(admin):
    """A small raw image uploaded through the image API."""
    img = admin.ok(admin.post("/image/v2/images", {"name": "cli-image", "disk_format": "raw",
                                                    "container_format": "bare",
                                                    "visibility": "public"}), 201)
    r = admin.request("PUT", f"/image/v2/images/{img['id']}/file", raw=b"\0" * 65536,
                      headers={"Content-Type": "application/octet-stream"})
    admin.ok(r, 204)
    return img["id"]


def wait_status(client, sid, status, timeout=30):
    return client.wait(sid, (status,), timeout=timeout)


def test_reads_and_flavor_create(cli):
    made = cli.run("flavor", "create", "--ram", "64", "--disk", "0", "--vcpus", "1",
                   "--id", "cli-1", FLAVOR)
    assert (made["name"], made["ram"], made["disk"], made["vcpus"], made["id"]) == \
        (FLAVOR, 64, 0, 1, "cli-1")
    cli.run("flavor", "create", "--ram", "128", "--disk", "0", "--vcpus", "2", "--id", "cli-2",
            BIG_FLAVOR)

    flavors = {f["Name"]: f for f in cli.run("flavor", "list")}
    assert flavors["m1.tiny"]["RAM"] == 512 and flavors["m1.tiny"]["VCPUs"] == 1
    assert flavors[BIG_FLAVOR]["VCPUs"] == 2 and flavors[BIG_FLAVOR]["Is Public"] is True
    shown = cli.run("flavor", "show", "m1.small")
    assert (shown["id"], shown["ram"], shown["disk"], shown["vcpus"]) == ("2", 1024, 2, 1)

    services = cli.run("compute", "service", "list")
    computes = sorted(s["Host"] for s in services if s["Binary"] == "ferry-compute")
    assert computes == ["host1", "host2"]
    assert all(s["State"] == "up" and s["Status"] == "enabled" for s in services)

    hypervisors = cli.run("hypervisor", "list")
    assert sorted(h["Hypervisor Hostname"] for h in hypervisors) == ["host1", "host2"]
    assert all(h["State"] == "up" and h["Hypervisor Type"] == "fake" for h in hypervisors)
    # From 2.88 the CLI splits the agent's `uptime` line into these fields.
    hv = cli.run("hypervisor", "show", "host1")
    assert (hv["hypervisor_hostname"], hv["state"], hv["service_host"]) == \
        ("host1", "up", "host1")
    assert re.fullmatch(r"\d\d:\d\d:\d\d", hv["host_time"]), hv
    assert re.fullmatch(r"\d+\.\d\d, \d+\.\d\d, \d+\.\d\d", hv["load_average"]), hv
    assert hv["uptime"] and hv["users"].isdigit(), hv

    quota = cli.run("quota", "show")
    assert quota["project_name"] == "admin"
    for key in ("cores", "instances", "ram", "volumes", "ports", "per-volume-gigabytes"):
        assert isinstance(quota[key], int), key

    limits = {x["Name"]: x["Value"] for x in cli.run("limits", "show", "--absolute")}
    for key in ("maxTotalCores", "maxTotalInstances", "maxTotalRAMSize", "totalCoresUsed",
                "totalRAMUsed", "totalInstancesUsed", "maxTotalVolumes", "totalVolumesUsed"):
        assert key in limits, key


def test_service_disable_enable(cli, admin):
    cli.run("compute", "service", "set", "--disable", "--disable-reason", "maintenance",
            "host2", "ferry-compute", fmt=None)
    rows = cli.run("compute", "service", "list", "--service", "ferry-compute", "--long")
    by_host = {s["Host"]: s for s in rows}
    assert by_host["host2"]["Status"] == "disabled"
    assert by_host["host2"]["Disabled Reason"] == "maintenance"
    assert by_host["host1"]["Status"] == "enabled"
    cli.run("compute", "service", "set", "--enable", "host2", "ferry-compute", fmt=None)
    svc = admin.ok(admin.get("/v2.1/os-services?host=host2&binary=ferry-compute"))["services"]
    assert svc[0]["status"] == "enabled"


def test_server_lifecycle_moves_and_events(cli, admin, image, agents, clean):
    s = cli.run("server", "create", "--flavor", FLAVOR, "--image", image, "--nic", "none",
                "--availability-zone", "nova:host1", "--wait", "cli-vm")
    sid = s["id"]
    assert (s["status"], s["OS-EXT-SRV-ATTR:host"], s["flavor"]["original_name"]) == \
        ("ACTIVE", "host1", FLAVOR)

    listed = cli.run("server", "list")
    assert [(x["ID"], x["Name"], x["Status"]) for x in listed] == [(sid, "cli-vm", "ACTIVE")]

    cli.run("server", "stop", "cli-vm", fmt=None)
    wait_status(admin, sid, "SHUTOFF")
    cli.run("server", "start", "cli-vm", fmt=None)
    wait_status(admin, sid, "ACTIVE")

    # Live migration to a named host with block migration, waited for by the CLI.
    out = cli.run("server", "migrate", "--live-migration", "--host", "host2",
                  "--block-migration", "--wait", "cli-vm", fmt=None)
    assert "Complete" in out
    shown = cli.run("server", "show", "cli-vm")
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "host2")

    # Cold migration back to host1, confirmed with the subcommand.
    cli.run("server", "migrate", "--host", "host1", "--wait", "cli-vm", fmt=None)
    shown = cli.run("server", "show", "cli-vm")
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("VERIFY_RESIZE", "host1")
    cli.run("server", "resize", "confirm", "cli-vm", fmt=None)
    wait_status(admin, sid, "ACTIVE")

    # Resize, reverted with the subcommand: the old flavor comes back.
    cli.run("server", "resize", "--flavor", BIG_FLAVOR, "--wait", "cli-vm", fmt=None)
    shown = admin.server(sid)
    assert (shown["status"], shown["flavor"]["original_name"]) == ("VERIFY_RESIZE", BIG_FLAVOR)
    cli.run("server", "resize", "revert", "cli-vm", fmt=None)
    shown = wait_status(admin, sid, "ACTIVE")
    assert shown["flavor"]["original_name"] == FLAVOR

    # Resize again, this time confirmed with the --confirm flag.
    cli.run("server", "resize", "--flavor", BIG_FLAVOR, "--wait", "cli-vm", fmt=None)
    wait_status(admin, sid, "VERIFY_RESIZE")
    cli.run("server", "resize", "--confirm", "cli-vm", fmt=None)
    shown = wait_status(admin, sid, "ACTIVE")
    assert shown["flavor"]["original_name"] == BIG_FLAVOR
    # ... and back, undone with the --revert flag.
    cli.run("server", "resize", "--flavor", FLAVOR, "--wait", "cli-vm", fmt=None)
    wait_status(admin, sid, "VERIFY_RESIZE")
    cli.run("server", "resize", "--revert", "cli-vm", fmt=None)
    shown = wait_status(admin, sid, "ACTIVE")
    assert shown["flavor"]["original_name"] == BIG_FLAVOR

    # Every move is in the migration list, newest first.
    rows = cli.run("server", "migration", "list", "--server", "cli-vm")
    kinds = [(r["Type"], r["Status"]) for r in rows]
    assert kinds == [("resize", "reverted"), ("resize", "confirmed"), ("resize", "reverted"),
                     ("migration", "confirmed"), ("live-migration", "completed")]
    live = rows[-1]
    assert (live["Source Compute"], live["Dest Compute"], live["Server UUID"]) == \
        ("host1", "host2", sid)

    filtered = cli.run("server", "migration", "list", "--server", "cli-vm", "--type",
                       "live-migration", "--status", "completed", "--host", "host2")
    assert [r["UUID"] for r in filtered] == [live["UUID"]]
    page = cli.run("server", "migration", "list", "--server", "cli-vm", "--limit", "2")
    assert [r["UUID"] for r in page] == [r["UUID"] for r in rows[:2]]
    nxt = cli.run("server", "migration", "list", "--server", "cli-vm", "--limit", "2",
                  "--marker", rows[1]["UUID"])
    assert [r["UUID"] for r in nxt] == [r["UUID"] for r in rows[2:4]]
    assert cli.run("server", "migration", "list", "--changes-before",
                   "2000-01-01T00:00:00Z") == []
    since = cli.run("server", "migration", "list", "--server", "cli-vm",
                    "--changes-since", "2000-01-01T00:00:00Z")
    assert len(since) == 5
    # --project/--user go through the identity API to resolve names to ids.
    mine = cli.run("server", "migration", "list", "--server", "cli-vm", "--project", "admin",
                   "--user", "admin")
    assert [r["UUID"] for r in mine] == [r["UUID"] for r in rows]
    assert cli.run("server", "migration", "list", "--server", "cli-vm", "--project",
                   "service") == []

    # Instance actions and their events.
    events = cli.run("server", "event", "list", "cli-vm")
    actions = [e["Action"] for e in events]
    assert actions[0] == "revertResize" and actions[-1] == "create"
    assert {"live-migration", "migrate", "resize", "confirmResize", "stop", "start"} <= \
        set(actions)
    live_req = next(e["Request ID"] for e in events if e["Action"] == "live-migration")
    ev = cli.run("server", "event", "show", "cli-vm", live_req)
    assert (ev["action"], ev["request_id"], ev["instance_uuid"]) == \
        ("live-migration", live_req, sid)
    assert ev["events"]
    assert all(e["result"] == "Success" for e in ev["events"])

    cli.run("server", "delete", "--wait", "cli-vm", fmt=None)
    assert cli.run("server", "list") == []


def slow_live_migration(cli, admin, stack, sid):
    """Starts a live migration that stays running until the test acts on it."""
    for h in ("host1", "host2"):
        set_agent(stack, h, fake_memory_copy_ms=60000)
    cli.run("server", "migrate", "--live-migration", "--block-migration", "cli-mig", fmt=None)
    return wait_migration(admin, sid, ("running",), timeout=20)


def test_migration_show_abort_force_complete(cli, admin, stack, image, agents, clean):
    s = cli.run("server", "create", "--flavor", FLAVOR, "--image", image, "--nic", "none",
                "--availability-zone", "nova:host1", "--wait", "cli-mig")
    sid = s["id"]

    mig = slow_live_migration(cli, admin, stack, sid)
    shown = cli.run("server", "migration", "show", "cli-mig", str(mig["id"]))
    assert (shown["UUID"], shown["Status"], shown["Server UUID"], shown["Source Compute"]) == \
        (mig["uuid"], "running", sid, "host1")
    assert shown["Memory Total Bytes"] > 0
    listed = cli.run("server", "migration", "list", "--server", "cli-mig", "--status", "running")
    assert [r["UUID"] for r in listed] == [mig["uuid"]]
    cli.run("server", "migration", "abort", "cli-mig", str(mig["id"]), fmt=None)
    wait_migration(admin, sid, ("cancelled",), mid=mig["id"])
    assert wait_status(admin, sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "host1"

    mig = slow_live_migration(cli, admin, stack, sid)
    cli.run("server", "migration", "force", "complete", "cli-mig", str(mig["id"]), fmt=None)
    wait_migration(admin, sid, ("completed",), mid=mig["id"])
    assert wait_status(admin, sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == "host2"

    # Neither works on a migration that is over: Nova's 409 texts reach the user.
    err = cli.refused("server", "migration", "abort", "cli-mig", str(mig["id"]))
    assert "HTTP 409" in err and \
        f"Instance {sid} is in an invalid state for 'abort live migration'" in err
    err = cli.refused("server", "migration", "show", "cli-mig", str(mig["id"]))
    assert "HTTP 404" in err


def test_non_admin_refusals(cli, member_cli, member, image, clean):
    made = member_cli.run("server", "create", "--flavor", "ferry.nano", "--image", image,
                          "--nic", "none", "alice-vm")
    sid = made["id"]
    member.wait(sid)
    mine = member_cli.run("server", "list")
    assert [x["ID"] for x in mine] == [sid]

    def refused(*args, rule):
        err = member_cli.refused(*args)
        # novaclient prints "(HTTP 403)", openstacksdk "HttpException: 403".
        assert "HTTP 403" in err or "HttpException: 403" in err, err
        assert f"Policy doesn't allow {rule} to be performed." in err, err

    refused("server", "migrate", "--live-migration", "alice-vm",
            rule="os_compute_api:os-migrate-server:migrate_live")
    refused("server", "migrate", "alice-vm", rule="os_compute_api:os-migrate-server:migrate")
    refused("server", "migration", "list", rule="os_compute_api:os-migrations:index")
    refused("compute", "service", "list", rule="os_compute_api:os-services:list")
    refused("hypervisor", "list", rule="os_compute_api:os-hypervisors:list-detail")
    refused("flavor", "create", "--ram", "64", "--disk", "1", "alice-flavor",
            rule="os_compute_api:os-flavor-manage:create")

    # What the owner may do: look at the instance's actions, resize it.
    events = member_cli.run("server", "event", "list", "alice-vm")
    assert [e["Action"] for e in events] == ["create"]
    member_cli.run("server", "resize", "--flavor", "ferry.micro", "--wait", "alice-vm",
                   fmt=None)
    assert member.server(sid)["status"] == "VERIFY_RESIZE"
    member_cli.run("server", "resize", "confirm", "alice-vm", fmt=None)
    assert member.wait(sid)["flavor"]["original_name"] == "ferry.micro"
    assert member_cli.run("quota", "show")["project_name"] == "demo"
