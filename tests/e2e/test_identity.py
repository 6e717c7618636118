"""Identity: Keystone-v3 tokens, expiry, and that every endpoint but discovery needs one."""
import requests

from ferry import Client


def test_token_issue_and_catalog(stack, admin):
    r = admin.session.post(stack.api + "/identity/v3/auth/tokens", json={
        "auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"},
            "password": stack.env["FERRY_ADMIN_PASSWORD"]}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
    assert r.status_code == 201
    assert len(r.headers["X-Subject-Token"]) >= 32
    token = r.json()["token"]
    assert {x["name"] for x in token["roles"]} >= {"admin"}
    compute = [c for c in token["catalog"] if c["type"] == "compute"][0]
    urls = {e["interface"]: e["url"] for e in compute["endpoints"]}
    assert urls["public"] == stack.api + "/v2.1"
    assert any(c["type"] == "image" for c in token["catalog"])


def test_token_validate_get_and_head(stack, admin):
    h = {"X-Auth-Token": admin.token, "X-Subject-Token": admin.token}
    r = requests.get(stack.api + "/identity/v3/auth/tokens", headers=h)
    assert r.status_code == 200 and r.json()["token"]["user"]["name"] == "admin"
    assert requests.head(stack.api + "/identity/v3/auth/tokens", headers=h).status_code == 200
    h["X-Subject-Token"] = "0" * 64
    assert requests.get(stack.api + "/identity/v3/auth/tokens", headers=h).status_code == 404


def test_wrong_password_is_401(stack):
    r = requests.post(stack.api + "/identity/v3/auth/tokens", json={
        "auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": "wrong"}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
    assert r.status_code == 401


def test_missing_and_forged_token_are_401(stack):
    assert requests.get(stack.api + "/v2.1/servers").status_code == 401
    r = requests.get(stack.api + "/v2.1/servers", headers={"X-Auth-Token": "f" * 64})
    assert r.status_code == 401
    assert "unauthorized" in r.json() or "error" in r.json()
    r = requests.get(stack.api + "/v2.1/flavors", headers={"X-Auth-Token": "not-a-token"})
    assert r.status_code == 401


def test_version_discovery_needs_no_token(stack):
    r = requests.get(stack.api + "/")
    assert r.status_code == 200
    v = {x["id"]: x for x in r.json()["versions"]}
    assert v["v2.1"]["min_version"] == "2.1"
    assert requests.get(stack.api + "/v2.1").status_code == 200


def test_token_expiry(stack):
    c = Client(stack.api, "admin", stack.env["FERRY_ADMIN_PASSWORD"], "admin")
    assert c.get("/v2.1/flavors").status_code == 200
    # Age the token as time would: its row now says it expired a second ago.
    subprocess_sql(stack, "UPDATE tokens SET expires_at = now() - interval '1 second' "
                          "WHERE issued_at = (SELECT max(issued_at) FROM tokens)")
    assert c.get("/v2.1/flavors").status_code == 401


def test_internal_endpoints_need_service_credential(stack):
    r = requests.post(stack.env["FERRY_SCHEDULER_URL"] + "/internal/v1/select_destinations",
                      json={"consumer_uuid": "00000000-0000-4000-8000-000000000000"})
    assert r.status_code == 401
    r = requests.get(stack.env["FERRY_API_URL"].rsplit(":", 1)[0] + ":" +
                     str(int(stack.env["FERRY_PORT_BASE"]) + 11) + "/internal/v1/instances")
    assert r.status_code == 401
    r = requests.get(stack.env["FERRY_API_URL"].rsplit(":", 1)[0] + ":" +
                     str(int(stack.env["FERRY_PORT_BASE"]) + 11) + "/internal/v1/instances",
                     headers={"X-Service-Token": stack.env["FERRY_SERVICE_SECRET"]})
    assert r.status_code == 200


def test_member_is_not_admin(member):
    r = member.get("/v2.1/os-services")
    assert r.status_code == 403
    assert "forbidden" in r.json()


def subprocess_sql(stack, q):
    import subprocess
    subprocess.run(["psql", stack.env["FERRY_DB_URL"], "-qc", q], check=True)
