"""Scale-out: two API, two scheduler and two conductor processes at once (FERRY_APIS,
FERRY_SCHEDULERS, FERRY_CONDUCTORS = 2; tests/run-all runs the e2e suite so).

A run of boots (from an uploaded image), live migrations and cold migrations with confirm
is traced by request id through every process's log: each request was handled by exactly
one API process, both API processes and both schedulers served some of them, each
conductor task ran once, in one conductor, and the results hold no double claim and no
double move."""
import os
import re
from collections import Counter, defaultdict

import pytest

from ferry import (ApiError, Client, action, allocations, assert_settled, new_request_id,
                   migrations, wait_migration)

KINDS = ("api", "scheduler", "conductor")
BOOTS = 6
# One line per request served (common/fy_httpd.c): "[<request id>] [<migration>] GET /path -> 200"
ACCESS = re.compile(r"\[([A-Za-z0-9-]+)\] \[[^\]]*\] ([A-Z]+) (\S+) -> (\d+) \(")
TASK_START = re.compile(r"task ([0-9a-f-]{36}): (\w+) of ")
TASK_DONE = re.compile(r"task ([0-9a-f-]{36}): (\w+) done")


class TracingClient(Client):
    """Gives every request a request id of its own and records it; a connection per
    request, so that the kernel spreads them over the API processes."""

    def __init__(self, *args, **kwargs):
        self.sent = []
        super().__init__(*args, **kwargs)

    def issue_token(self, user, password, project):
        r = self.request("POST", "/identity/v3/auth/tokens", token=False, body={
            "auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": "Default"}, "password": password}}},
                "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}})
        if r.status_code != 201:
            raise ApiError(f"token for {user}: {r.status_code} {r.text}")
        return r.headers["X-Subject-Token"]

    def request(self, method, path, body=None, raw=None, headers=None, token=True, mv=None):
        rid = new_request_id()
        h = {"x-openstack-request-id": rid, "Connection": "close", **(headers or {})}
        r = super().request(method, path, body=body, raw=raw, headers=h, token=token, mv=mv)
        assert r.headers.get("x-openstack-request-id") == rid, r.headers
        self.sent.append((rid, method, path.split("?")[0], r.status_code))
        return r


@pytest.fixture
def scaled(stack):
    counts = {k: len(stack.processes(k)) for k in KINDS}
    if min(counts.values()) < 2:
        pytest.skip(f"the stack runs {counts} processes; this needs two of each "
                    "(FERRY_APIS=2 FERRY_SCHEDULERS=2 FERRY_CONDUCTORS=2, as tests/run-all runs it)")
    return stack


def access_lines(texts):
    """[(process, request id, method, path, status)] of the access lines in {process: text}."""
    return [(proc, *m.groups()) for proc, text in texts.items() for m in ACCESS.finditer(text)]


def node_usage_matches_allocations(stack):
    """compute_nodes.*_used is exactly the sum of the allocations on each node."""
    return stack.sql(
        "SELECT n.host, n.vcpus_used, n.memory_mb_used, n.local_gb_used, "
        "coalesce(sum(a.vcpus), 0), coalesce(sum(a.memory_mb), 0), coalesce(sum(a.disk_gb), 0) "
        "FROM compute_nodes n LEFT JOIN allocations a ON a.node_id = n.id GROUP BY n.id "
        "HAVING n.vcpus_used <> coalesce(sum(a.vcpus), 0) "
        "OR n.memory_mb_used <> coalesce(sum(a.memory_mb), 0) "
        "OR n.local_gb_used <> coalesce(sum(a.disk_gb), 0)") == []


def other(host):
    return "host2" if host == "host1" else "host1"


def run_round(c, stack, image, tag):
    """Boots BOOTS servers, live-migrates two, cold-migrates and confirms two, checks
    the outcome, deletes them.  Returns {server: [(operation, request id)]}."""
    ops = defaultdict(list)
    sids = []
    for i in range(BOOTS):                       # all accepted first: the builds overlap
        sids.append(c.boot(f"scale-{tag}-{i}", image=image))
        ops[sids[-1]].append(("boot", c.sent[-1][0]))
    flavor = c.ok(c.get("/v2.1/flavors/6"))["flavor"]
    want = (flavor["vcpus"], flavor["ram"], flavor["disk"])
    where = {}
    for sid in sids:
        where[sid] = c.wait(sid)["OS-EXT-SRV-ATTR:host"]
        assert allocations(stack, sid) == {where[sid]: want}
    assert node_usage_matches_allocations(stack)

    live, cold = sids[:2], sids[2:4]
    for sid in live:
        r = action(c, sid, {"os-migrateLive": {"host": None, "block_migration": "auto"}})
        assert r.status_code == 202, r.text
        ops[sid].append(("live", c.sent[-1][0]))
    for sid in cold:
        r = action(c, sid, {"migrate": None})
        assert r.status_code == 202, r.text
        ops[sid].append(("migrate", c.sent[-1][0]))
    for sid in live:
        assert wait_migration(c, sid, ("completed", "error", "failed"))["status"] == "completed"
        c.wait(sid)
    for sid in cold:
        c.wait(sid, ("VERIFY_RESIZE",))
        r = action(c, sid, {"confirmResize": None})
        assert r.status_code == 204, r.text
        ops[sid].append(("confirm", c.sent[-1][0]))
    for sid in cold:
        assert wait_migration(c, sid, ("confirmed", "error"))["status"] == "confirmed"
    for sid in sids:
        moved = sid in live or sid in cold
        assert_settled(stack, c, sid, other(where[sid]) if moved else where[sid])
        ms = migrations(c, instance_uuid=sid)
        kinds = {"live": "live-migration", "migrate": "migration"}
        assert [m["migration_type"] for m in ms] == \
            [kinds[op] for op, _ in ops[sid] if op in kinds], (sid, ms)
    assert node_usage_matches_allocations(stack)
    for sid in sids:
        c.delete(sid)
    assert node_usage_matches_allocations(stack)
    return ops


def test_each_request_handled_once(scaled, admin, clean):
    stack = scaled
    procs = {k: stack.processes(k) for k in KINDS}
    marks = stack.log_marks([n for k in KINDS for n in procs[k]])
    c = TracingClient(stack.api, "admin", stack.env["FERRY_ADMIN_PASSWORD"], "admin")
    # An image uploaded through one API process; the agents fetch it through either.
    img = c.ok(c.request("POST", "/image/v2/images", {
        "name": "scale-out", "disk_format": "raw", "container_format": "bare",
        "visibility": "public"}), 201)["id"]
    r = c.request("PUT", f"/image/v2/images/{img}/file", raw=os.urandom(256 * 1024 + 3),
                  headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text

    # Which process of a kind a connection reaches is the kernel's choice, and a
    # conductor keeps its connections to the scheduler: rounds go on (a few at most)
    # until every process of every kind has served.
    ops = {}
    for rnd in range(8):
        ops.update(run_round(c, stack, img, rnd))
        texts = stack.log_since(marks)
        lines = access_lines(texts)
        ours = {rid for rid, *_ in c.sent}
        served = {p for p, rid, *_ in lines if rid in ours}
        ran = {p for p in procs["conductor"] if TASK_START.search(texts[p])}
        if served >= set(procs["api"]) | set(procs["scheduler"]) and ran == set(procs["conductor"]):
            break

    # API: every request the client sent was handled by exactly one API process, with
    # the status the client got; both processes served.
    api_lines = Counter((rid, m, path) for p, rid, m, path, st in lines if p in procs["api"])
    by = defaultdict(set)
    for p, rid, m, path, st in lines:
        if p in procs["api"]:
            by[(rid, m, path)].add((p, int(st)))
    for rid, m, path, st in c.sent:
        assert api_lines[(rid, m, path)] == 1, (rid, m, path, by[(rid, m, path)])
        assert next(iter(by[(rid, m, path)]))[1] == st, (rid, m, path, by[(rid, m, path)], st)
    per_api = Counter(next(iter(by[(rid, m, path)]))[0] for rid, m, path, _ in c.sent)
    assert set(per_api) == set(procs["api"]), per_api

    # Scheduler: each boot and move was scheduled by exactly one call, on one scheduler;
    # both schedulers served.
    selects = Counter(rid for p, rid, m, path, st in lines
                      if p in procs["scheduler"] and path == "/internal/v1/select_destinations")
    for sid, sops in ops.items():
        for op, rid in sops:
            if op in ("boot", "live", "migrate"):
                assert selects[rid] == 1, (sid, op, rid, selects[rid])
    per_sched = Counter(p for p, rid, *_ in lines if p in procs["scheduler"] and rid in ours)
    assert set(per_sched) == set(procs["scheduler"]), per_sched

    # Conductors: every task of the run (boot, move, confirm, delete) ran once, in the
    # conductor that holds it in the database, and is done after its first claim.
    starts, dones = defaultdict(list), defaultdict(list)
    for p in procs["conductor"]:
        for m in TASK_START.finditer(texts[p]):
            starts[m.group(1)].append(p)
        for m in TASK_DONE.finditer(texts[p]):
            dones[m.group(1)].append(p)
    rids = "', '".join(sorted(rid for rid, m, *_ in c.sent if m != "GET"))
    tasks = stack.sql("SELECT uuid, kind, state, attempts, split_part(owner, ':', 1) FROM tasks "
                      f"WHERE request_id IN ('{rids}') ORDER BY id")
    assert len(tasks) >= len(ops) * 2, tasks           # at least a build and a delete each
    kinds = Counter(t[1] for t in tasks)
    assert kinds["build"] == len(ops) and kinds["delete"] == len(ops), kinds
    assert kinds["live_migrate"] == kinds["migrate"] == kinds["confirm"] == 2 * len(ops) // BOOTS
    for uuid, kind, state, attempts, owner in tasks:
        assert (state, attempts) == ("done", "1"), (uuid, kind, state, attempts)
        assert starts[uuid] == [owner] and dones[uuid] == [owner], (uuid, kind, owner,
                                                                    starts[uuid], dones[uuid])
    per_cond = Counter(t[4] for t in tasks)
    assert set(per_cond) == set(procs["conductor"]), per_cond
