"""Bad input never crashes anything: malformed bodies on several endpoints of the
real stack each get a clean 4xx, and every service keeps answering afterwards."""
import uuid

import pytest
import requests

from ferry import agent_url

MAX_BODY = 1048576  # ferry-api's default max_body

DEEP = "[" * 100000 + "]" * 100000
CASES = {
    # name: (raw body bytes, content type, expected status)
    "oversized": (b'{"x": "' + b"a" * (2 * MAX_BODY) + b'"}', "application/json", 413),
    "deep-json": (DEEP.encode(), "application/json", 400),
    "deep-objects": (('{"a":' * 5000 + "1" + "}" * 5000).encode(), "application/json", 400),
    "huge-real": (b'{"server": {"name": 1e400}}', "application/json", 400),
    "huge-int": (b'{"server": {"name": 99999999999999999999999}}', "application/json", 400),
    "invalid-utf8": (b'{"server": {"name": "\xff\xfe\xc3\x28"}}', "application/json", 400),
    "overlong-utf8": (b'{"server": {"name": "\xc0\xaf"}}', "application/json", 400),
    "text-plain": (b'{"server": {"name": "x"}}', "text/plain", 415),
    "form": (b"server=x", "application/x-www-form-urlencoded", 415),
    "nul-byte": (b'{"server": {"name": "a\x00b"}}', "application/json", 400),
    "duplicate-keys": (b'{"server": {"name": "a", "name": "b"}}', "application/json", 400),
    "truncated": (b'{"server": {"name": ', "application/json", 400),
    "trailing-garbage": (b'{"server": {}} {}', "application/json", 400),
}
# Top-level values a handler expecting an object must refuse itself.
NON_OBJECTS = [b"[]", b"[1, 2]", b'"server"', b"42", b"null", b"true"]


@pytest.fixture(scope="module")
def target(admin):
    """A server to aim actions at (the action must fail on the body, not the lookup)."""
    admin.delete_all()
    sid = admin.boot("bad-input")
    admin.wait(sid)
    yield sid
    admin.delete(sid)


def endpoints(admin, target):
    return {
        "servers-create": (admin, "/v2.1/servers", True),
        "server-action": (admin, f"/v2.1/servers/{target}/action", True),
        "flavors-create": (admin, "/v2.1/flavors", True),
        "tokens": (admin, "/identity/v3/auth/tokens", False),
        "images-create": (admin, "/image/v2/images", True),
    }


ENDPOINTS = ["servers-create", "server-action", "flavors-create", "tokens", "images-create"]


def post_raw(client, path, raw, ctype, token, **kw):
    headers = {"Content-Type": ctype} if ctype else {}
    return client.request("POST", path, raw=raw, headers=headers, token=token, **kw)


def assert_clean_4xx(r, expected=None):
    if expected is not None:
        assert r.status_code == expected, f"{r.status_code} {r.text[:300]}"
    else:
        assert 400 <= r.status_code < 500, f"{r.status_code} {r.text[:300]}"
    # every refusal is a JSON error body the client can read
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    assert isinstance(r.json(), dict)


def assert_up(stack):
    for url in (stack.api, stack.env["FERRY_SCHEDULER_URL"], stack.env["FERRY_CONDUCTOR_URL"],
                agent_url(stack, "host1")):
        assert requests.get(url + "/healthz", timeout=10).status_code == 200, url


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_body(stack, admin, target, endpoint, case):
    client, path, token = endpoints(admin, target)[endpoint]
    raw, ctype, expected = CASES[case]
    assert_clean_4xx(post_raw(client, path, raw, ctype, token), expected)
    assert_up(stack)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("raw", NON_OBJECTS, ids=[n.decode() for n in NON_OBJECTS])
def test_non_object_body(stack, admin, target, endpoint, raw):
    client, path, token = endpoints(admin, target)[endpoint]
    assert_clean_4xx(post_raw(client, path, raw, "application/json", token), 400)
    assert_up(stack)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_empty_body(stack, admin, target, endpoint):
    client, path, token = endpoints(admin, target)[endpoint]
    assert_clean_4xx(post_raw(client, path, b"", "application/json", token), 400)
    assert_up(stack)


def test_oversized_chunked(stack, admin):
    """Without Content-Length the limit is enforced while the body streams in."""
    def chunks():
        piece = b"[" + b"1," * 65536
        for _ in range(40):
            yield piece
    r = admin.request("POST", "/v2.1/servers", raw=chunks(),
                      headers={"Content-Type": "application/json"})
    assert_clean_4xx(r, 413)
    assert_up(stack)


def test_wrong_types_and_ranges(stack, admin):
    bodies = [
        {"server": {"name": ["x"], "flavorRef": "1"}},
        {"server": {"name": "x" * 256, "flavorRef": "1"}},
        {"server": {"name": "x", "flavorRef": {"id": 1}}},
        {"server": {"name": "x", "flavorRef": "1", "min_count": 2 ** 63}},
        {"server": {"name": "x", "flavorRef": "1", "min_count": "1e3"}},
        {"server": {"name": "x", "flavorRef": "1", "networks": [{"uuid": "not-a-uuid"}]}},
        {"server": {"name": "x", "flavorRef": "1", "networks": 7}},
        {"server": None},
    ]
    for body in bodies:
        assert_clean_4xx(admin.post("/v2.1/servers", body))
    assert_up(stack)


def test_bad_action_bodies(stack, admin, target):
    bodies = [
        {"os-migrateLive": None},
        {"os-migrateLive": {"host": 5, "block_migration": "auto"}},
        {"os-migrateLive": {"host": None, "block_migration": "sometimes"}},
        {"os-migrateLive": {"host": "h" * 10000, "block_migration": False}},
        {"migrate": {"host": ["a"]}},
        {"resize": {"flavorRef": None}},
        {"resize": {}},
        {"no-such-action": None},
        {},
    ]
    for body in bodies:
        assert_clean_4xx(admin.post(f"/v2.1/servers/{target}/action", body))
    assert admin.server(target)["status"] == "ACTIVE"
    assert_up(stack)


def test_bad_flavor_numbers(stack, admin):
    for ram in (1e400, -1, 0, 2 ** 31, "12abc", "99999999999999999999999", True, None):
        body = {"flavor": {"name": f"bad-{uuid.uuid4().hex[:8]}", "ram": ram, "vcpus": 1, "disk": 0}}
        assert_clean_4xx(admin.post("/v2.1/flavors", body))
    assert_up(stack)


@pytest.mark.parametrize("path", ["/v2.1/servers/%zz", "/v2.1/servers/a%00b/action",
                                  "/v2.1/servers?limit=%ff%fe", "/v2.1/servers?limit=-1",
                                  "/v2.1/servers?limit=99999999999999999999999",
                                  "/v2.1/servers/" + "x" * 4000])
def test_bad_urls(stack, admin, path):
    r = admin.get(path)
    assert 400 <= r.status_code < 500, f"{path}: {r.status_code} {r.text[:200]}"
    assert_up(stack)


@pytest.mark.parametrize("svc", ["scheduler", "agent"])
@pytest.mark.parametrize("case", ["deep-json", "huge-real", "invalid-utf8", "text-plain",
                                  "nul-byte", "duplicate-keys", "oversized"])
def test_internal_services(stack, svc, case):
    """The services behind the API take the same central checks (with the credential)."""
    url = (stack.env["FERRY_SCHEDULER_URL"] + "/internal/v1/select_destinations" if svc == "scheduler"
           else agent_url(stack, "host1") + f"/internal/v1/instances/{uuid.uuid4()}/spawn")
    raw, ctype, expected = CASES[case]
    r = requests.post(url, data=raw, timeout=30, headers={
        "Content-Type": ctype, "X-Service-Token": stack.env["FERRY_SERVICE_SECRET"]})
    # their body limits are their own: a big body may be refused for its size first
    allowed = {expected, 413} if len(raw) > 65536 else {expected}
    assert r.status_code in allowed, f"{r.status_code} {r.text[:200]}"
    assert_up(stack)
