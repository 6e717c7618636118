"""The invariants every recovered flow must leave behind (issue 7, item 3).

After any fault and restart, once the migration is terminal: the server is in a
stable state on exactly the host the database names and runs there exactly once;
no allocation, port binding, volume connection, quota reservation or task is
leaked or doubled.  check() returns a list of violations (empty = all hold)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from ferry import agent, bindings, connections, hosts  # noqa: E402

STABLE = ("ACTIVE", "SHUTOFF", "VERIFY_RESIZE")
TERMINAL = ("completed", "confirmed", "reverted", "error", "failed", "cancelled")
POWER = {"ACTIVE": 1, "SHUTOFF": 4}


def guest_list(stack, host):
    r = agent(stack, host, "GET", "/internal/v1/instances", timeout=5)
    r.raise_for_status()
    return r.json()["instances"]


def node_usage_mismatches(stack):
    """Nodes whose *_used sums differ from their allocations (a doubled or lost claim)."""
    rows = stack.sql(
        "SELECT n.host, n.vcpus_used, n.memory_mb_used, n.local_gb_used,"
        " coalesce(sum(a.vcpus), 0), coalesce(sum(a.memory_mb), 0), coalesce(sum(a.disk_gb), 0)"
        " FROM compute_nodes n LEFT JOIN allocations a ON a.node_id = n.id"
        " GROUP BY n.id, n.host, n.vcpus_used, n.memory_mb_used, n.local_gb_used")
    return [r[0] for r in rows if r[1:4] != r[4:7]]


def check(stack, client, sid, ports=0, volumes=0, allow=STABLE):
    bad = []
    s = client.server(sid)
    host, status = s["OS-EXT-SRV-ATTR:host"], s["status"]
    if status not in allow:
        bad.append(f"server {status} ({(s.get('fault') or {}).get('message', '')[:120]})")
    if s["OS-EXT-STS:task_state"] is not None:
        bad.append(f"task_state {s['OS-EXT-STS:task_state']}")
    for h in hosts(stack):
        mine = [g for g in guest_list(stack, h) if g["uuid"] == sid]
        want = 1 if h == host else 0
        if len(mine) != want:
            bad.append(f"{len(mine)} guest(s) on {h}, database says {host}")
        elif mine and status in POWER and mine[0].get("power_state") != POWER[status]:
            bad.append(f"guest on {h} power_state {mine[0].get('power_state')} but server {status}")
    fl = s["flavor"]
    want_alloc = {host: (fl["vcpus"], fl["ram"], fl["disk"])}
    rows = stack.sql("SELECT n.host, a.vcpus, a.memory_mb, a.disk_gb FROM allocations a JOIN"
                     f" compute_nodes n ON n.id = a.node_id WHERE a.consumer_uuid = '{sid}'")
    got_alloc = {r[0]: tuple(int(x) for x in r[1:]) for r in rows}
    if got_alloc != want_alloc:
        bad.append(f"allocations {got_alloc}, want {want_alloc}")
    mig = stack.sql("SELECT a.consumer_uuid, n.host FROM allocations a JOIN compute_nodes n"
                    " ON n.id = a.node_id JOIN migrations m ON m.uuid = a.consumer_uuid"
                    f" WHERE m.instance_uuid = '{sid}'")
    if mig:
        bad.append(f"migration allocations left {mig}")
    mism = node_usage_mismatches(stack)
    if mism:
        bad.append(f"node usage differs from allocations on {mism}")
    b = bindings(stack, sid)
    if b != [(host, "ACTIVE")] * ports:
        bad.append(f"port bindings {b}")
    c = connections(stack, sid)
    if c != [host] * volumes:
        bad.append(f"volume connections {c}")
    q = stack.sql("SELECT q.resource, q.delta FROM quota_reservations q WHERE q.consumer_uuid IN"
                  f" (SELECT uuid FROM migrations WHERE instance_uuid = '{sid}')"
                  f" OR q.consumer_uuid = '{sid}'")
    if q and status != "VERIFY_RESIZE":
        bad.append(f"quota reservations left {q}")
    t = stack.sql(f"SELECT kind, state, step FROM tasks WHERE instance_uuid = '{sid}'"
                  " AND state IN ('queued', 'running')")
    if t:
        bad.append(f"unfinished tasks {t}")
    m = stack.sql(f"SELECT status FROM migrations WHERE instance_uuid = '{sid}'"
                  " ORDER BY id DESC LIMIT 1")
    if m and m[0][0] not in TERMINAL and not (status == "VERIFY_RESIZE" and m[0][0] == "finished"):
        bad.append(f"migration still {m[0][0]}")
    return bad
