"""Cold-migration benchmark against a running local stack (see tests/bench/cold_migration).

One server booted from a 64 MiB image is migrated back and forth: migrate ->
VERIFY_RESIZE, then confirm; migrate -> VERIFY_RESIZE, then revert.  The disk transfer's
own time comes from migration_jobs (kind disk_transfer) and is compared with `cp` of
the same disk file on the same filesystem."""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from ferry import Client, Stack, action, disk_path, read_env  # noqa: E402

MIB = 1024 * 1024
OTHER = {"host1": "host2", "host2": "host1"}


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def setup(stack):
    stack.env = read_env(os.path.join(stack.state, "stack.env"))
    c = Client(stack.api, "admin", stack.env["FERRY_ADMIN_PASSWORD"], "admin")
    stack.sql("INSERT INTO quota_limits (project_id, resource, hard_limit) "
              "SELECT id, r, -1 FROM projects, unnest(ARRAY['instances','cores','ram']) r "
              "WHERE name = 'admin' ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = -1")
    r = c.post("/v2.1/flavors", {"flavor": {"name": "bench-64m", "ram": 64, "vcpus": 1,
                                            "disk": 1, "id": "bench-64m"}})
    assert r.status_code in (200, 409), r.text
    img = c.ok(c.request("POST", "/image/v2/images", {
        "name": "bench-64m", "disk_format": "raw", "container_format": "bare",
        "visibility": "public"}), 201)
    c.ok(c.request("PUT", f"/image/v2/images/{img['id']}/file", raw=os.urandom(64 * MIB),
                   headers={"Content-Type": "application/octet-stream"}), 204)
    return c, img["id"]


def wait_status(c, sid, status, t0):
    while True:
        s = c.server(sid)
        if s["status"] == status and s["OS-EXT-STS:task_state"] is None:
            return (time.perf_counter() - t0) * 1000, s
        if s["status"] == "ERROR":
            raise SystemExit(f"server went ERROR: {s.get('fault')}")


def wait_migration(c, sid, status):
    while True:
        m = c.ok(c.get(f"/v2.1/os-migrations?instance_uuid={sid}&limit=1", mv="2.59"))["migrations"][0]
        if m["status"] == status:
            return m
        if m["status"] == "error":
            raise SystemExit(f"migration error: {m}")


def cycle(c, sid, host, finish):
    """migrate -> VERIFY_RESIZE -> confirm|revert; returns (move ms, finish ms, uuid, host)."""
    t0 = time.perf_counter()
    c.ok(action(c, sid, {"migrate": None}), 202)
    move, s = wait_status(c, sid, "VERIFY_RESIZE", t0)
    assert s["OS-EXT-SRV-ATTR:host"] == OTHER[host]
    t1 = time.perf_counter()
    if finish == "confirm":
        c.ok(action(c, sid, {"confirmResize": None}), 204)
    else:
        c.ok(action(c, sid, {"revertResize": None}), 202)
    done, s = wait_status(c, sid, "ACTIVE", t1)
    m = wait_migration(c, sid, "confirmed" if finish == "confirm" else "reverted")
    done = (time.perf_counter() - t1) * 1000
    return move, done, m["uuid"], s["OS-EXT-SRV-ATTR:host"]


def transfer_ms(stack, uuids):
    rows = stack.sql("SELECT migration_uuid, extract(epoch FROM updated_at - started_at) * 1000 "
                     "FROM migration_jobs WHERE kind = 'disk_transfer' AND state = 'completed'")
    got = {r[0]: float(r[1]) for r in rows}
    return {u: got[u] for u in uuids if u in got}


def cp_ms(path, runs=5):
    tmp = path + ".bench-cp"
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(["cp", path, tmp], check=True)
        out.append((time.perf_counter() - t0) * 1000)
        os.unlink(tmp)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=100)
    args = ap.parse_args()
    stack = Stack()
    c, image = setup(stack)
    sid = c.boot("bench-cold", flavor="bench-64m", image=image, az="nova:host1")
    host = c.wait(sid)["OS-EXT-SRV-ATTR:host"]
    st = os.stat(disk_path(stack, host, sid))
    size = st.st_size
    print(f"disk: {size // MIB} MiB apparent, {st.st_blocks * 512 // MIB} MiB allocated")
    moves, confirms, reverts, uuids = [], [], [], []
    for i in range(args.cycles):
        for finish in ("confirm", "revert"):
            move, done, uuid, host = cycle(c, sid, host, finish)
            moves.append((uuid, move))
            (confirms if finish == "confirm" else reverts).append(done)
            uuids.append(uuid)
    xfer = transfer_ms(stack, uuids)
    net = [ms - xfer[u] for u, ms in moves if u in xfer]
    copy = cp_ms(disk_path(stack, host, sid))
    xfer_p50 = statistics.median(xfer.values()) if xfer else float("nan")
    print()
    print(f"{'cold migration (fake driver, 64 MiB disk)':<48} {'p50':>9} {'p99':>9} {'target':>12}")
    print(f"{'-' * 48} {'-' * 9} {'-' * 9} {'-' * 12}")
    mv = [ms for _, ms in moves]
    print(f"{'migrate -> VERIFY_RESIZE (with the disk copy)':<48} {statistics.median(mv):>7.1f}ms {pct(mv, 99):>7.1f}ms")
    if net:
        print(f"{'migrate -> VERIFY_RESIZE, disk copy excluded':<48} {statistics.median(net):>7.1f}ms "
              f"{pct(net, 99):>7.1f}ms {'<= 30 ms':>12}")
    print(f"{'confirm -> ACTIVE, migration confirmed':<48} {statistics.median(confirms):>7.1f}ms "
          f"{pct(confirms, 99):>7.1f}ms {'<= 15 ms':>12}")
    print(f"{'revert -> ACTIVE, migration reverted':<48} {statistics.median(reverts):>7.1f}ms {pct(reverts, 99):>7.1f}ms")
    print(f"{'disk transfer (migration_jobs), ' + str(len(xfer)) + ' samples':<48} {xfer_p50:>7.1f}ms")
    print(f"{'cp of the same ' + str(size // MIB) + ' MiB file, same disk':<48} {copy:>7.1f}ms")
    if xfer:
        ratio = copy / xfer_p50
        print(f"{'transfer throughput (apparent size)':<48} {size / MIB / xfer_p50 * 1000:>7.0f}MiB/s")
        print(f"{'cp throughput':<48} {size / MIB / copy * 1000:>7.0f}MiB/s")
        print(f"{'transfer vs cp':<48} {ratio:>8.2f}x {'':>9} {'>= 0.9x':>12}")
    print(f"cycles: {args.cycles} (each: migrate+confirm, migrate+revert); {len(moves)} migrations")
    c.delete(sid)


if __name__ == "__main__":
    main()
