"""The API's policy file: per-action overrides of Nova's defaults, read at start, and a
file naming an unknown rule stopping the API with a clear message."""
import json
import os
import subprocess

import pytest

from ferry import ROOT, Client, SideStack

OVERRIDES = {
    # Anyone may list migrations; only an admin may create servers.
    "os_compute_api:os-migrations:index": "@",
    "os_compute_api:servers:create": "role:admin",
}


@pytest.fixture(scope="module")
def side(stack, tmp_path_factory):
    policy = tmp_path_factory.mktemp("policy") / "policy.json"
    policy.write_text(json.dumps(OVERRIDES))
    s = SideStack(stack.state + "-policy", int(stack.env["FERRY_PORT_BASE"]) + 500,
                  FERRY_API_CONF=f"policy_file = {policy}")
    s.up()
    try:
        if not s.sql("SELECT 1 FROM users WHERE name = 'alice'"):
            s.manage("user", "create", "alice", "--password", "alice-pw-1", "--project",
                     "demo", "--role", "member")
        yield s
    finally:
        if not os.environ.get("FERRY_E2E_KEEP"):
            s.down()


def test_overrides_apply(side):
    admin = Client(side.api, "admin", side.env["FERRY_ADMIN_PASSWORD"], "admin")
    member = Client(side.api, "alice", "alice-pw-1", "demo")
    # "@": a member may now list migrations (admin-only by default).
    r = member.get("/v2.1/os-migrations")
    assert r.status_code == 200 and r.json()["migrations"] == [], r.text
    # "role:admin": a member's create is refused with Nova's policy message ...
    r = member.post("/v2.1/servers", {"server": {"name": "m", "flavorRef": "6", "imageRef": "",
                                                 "networks": "none"}})
    assert r.status_code == 403, r.text
    assert r.json()["forbidden"]["message"] == \
        "Policy doesn't allow os_compute_api:servers:create to be performed."
    # ... and rules not in the file keep their defaults.
    r = member.get("/v2.1/os-hypervisors")
    assert r.status_code == 403, r.text
    sid = admin.boot("policy-admin-vm")
    assert admin.wait(sid)["status"] == "ACTIVE"
    admin.delete(sid)


def test_unknown_rule_stops_the_api(stack, tmp_path):
    bad = tmp_path / "bad-policy.json"
    bad.write_text(json.dumps({"os_compute_api:os-migrations:index": "@",
                               "os_compute_api:no-such:rule": "@"}))
    with open(os.path.join(stack.state, "etc", "api.conf")) as f:
        conf = [line for line in f if not line.startswith(("port", "policy_file"))]
    port = int(stack.env["FERRY_PORT_BASE"]) + 9
    cfg = tmp_path / "api.conf"
    cfg.write_text("".join(conf) + f"port = {port}\npolicy_file = {bad}\n")
    binary = os.path.join(ROOT, stack.env["FERRY_BUILD"], "ferry-api")
    p = subprocess.run([binary, "--config", str(cfg)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert f'{bad}: unknown policy rule "os_compute_api:no-such:rule"' in out, out
