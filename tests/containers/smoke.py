#!/usr/bin/env python3
"""End-to-end smoke test against a deployed Ferry (the compose deployment).

    smoke.py API_URL ADMIN_PASSWORD SERVICE_URL...

Token, boot, live migration, cold migration + confirm, then every service's
/metrics and /readyz.  Prints one line per check and "smoke: N passed, N failed";
exits non-zero on any failure."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import requests  # noqa: E402
from ferry import ApiError, Client  # noqa: E402

results = {"passed": 0, "failed": 0}


def check(name, fn):
    t0 = time.time()
    try:
        fn()
    except Exception as e:  # a failed check must not stop the others
        results["failed"] += 1
        print(f"FAIL {name} ({time.time() - t0:.1f}s): {type(e).__name__}: {e}")
        return
    results["passed"] += 1
    print(f"ok   {name} ({time.time() - t0:.1f}s)")


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise ApiError(f"timed out waiting for {what}")
        time.sleep(0.2)


def main():
    api, password, services = sys.argv[1], sys.argv[2], sys.argv[3:]
    state = {}

    def token():
        state["c"] = Client(api, "admin", password, "admin")
        assert state["c"].token

    def host_of(sid):
        return state["c"].server(sid).get("OS-EXT-SRV-ATTR:host")

    def boot():
        c = state["c"]
        sid = c.boot("ct-smoke")
        state["sid"] = sid
        s = c.wait(sid, timeout=60)
        assert s["OS-EXT-SRV-ATTR:host"], s

    def action(body, mv):
        c = state["c"]
        r = c.post(f"/v2.1/servers/{state['sid']}/action", body, mv=mv)
        c.ok(r, 202, 204)   # confirmResize answers 204, as in Nova

    def live_migrate():
        src = host_of(state["sid"])
        action({"os-migrateLive": {"host": None, "block_migration": "auto"}}, "2.30")
        wait_for(lambda: host_of(state["sid"]) != src and
                 state["c"].server(state["sid"])["status"] == "ACTIVE", 120, "live migration")

    def cold_migrate():
        c = state["c"]
        src = host_of(state["sid"])
        action({"migrate": None}, "2.56")
        c.wait(state["sid"], ("VERIFY_RESIZE",), timeout=120)
        action({"confirmResize": None}, "2.56")
        s = c.wait(state["sid"], ("ACTIVE",), timeout=60)
        assert s["OS-EXT-SRV-ATTR:host"] != src, s

    def delete():
        state["c"].delete(state["sid"], timeout=60)

    def metrics():
        for url in [api] + services:
            r = requests.get(url + "/metrics", timeout=10)
            assert r.status_code == 200, (url, r.status_code)
            assert r.headers["Content-Type"].startswith("text/plain"), r.headers
            assert "ferry_http_requests_total{" in r.text, url
            assert "ferry_db_query_duration_seconds_count{" in r.text, url
            r = requests.get(url + "/readyz", timeout=10)
            assert r.status_code == 200, (url, r.status_code)

    check("token", token)
    if "c" not in state:
        results["failed"] += 3
    else:
        check("boot", boot)
        if "sid" in state:
            check("live migrate", live_migrate)
            check("cold migrate + confirm", cold_migrate)
            check("delete", delete)
        check("metrics and readiness", metrics)
    print("smoke: {passed} passed, {failed} failed".format(**results))
    return 1 if results["failed"] or not results["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
