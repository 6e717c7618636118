"""Cold-migration benchmark against a running local stack (see tests/bench/cold_migration).

One server booted from a 64 MiB image is migrated back and forth: migrate ->
VERIFY_RESIZE, then confirm; migrate -> VERIFY_RESIZE, then revert.

The disk transfer's own time comes from migration_jobs (kind disk_transfer: the sending
agent's start to end, the receiver's verification, its one fdatasync and the rename
included).  The receiving agent's ferry_disk_transfer_sync_seconds (its /metrics, read
before and after each migration) gives that fdatasync's share, so the transfer is shown
with and without its final sync.  It is compared like with like with `cp` of the same
disk file to the same file system, source in the page cache as the transfer's is (the
disk was written by the previous transfer): cp alone against the transfer without its
sync, and cp followed by an fdatasync of the copy against the durable transfer.  cp runs
with --sparse=auto (holes skipped, as the transfer skips them), copying as it does by
default, but with --reflink=never on file systems that could clone (a clone is not a
copy, and a transfer cannot clone across hosts)."""
import argparse
import os
import statistics
import subprocess
import sys
import time

import requests

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from ferry import Client, Stack, action, agent_url, disk_path, read_env  # noqa: E402

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


def wait_status(c, sid, status, t0, poll=0.0):
    while True:
        time.sleep(poll)
        s = c.server(sid)
        if s["status"] == status and s["OS-EXT-STS:task_state"] is None:
            return (time.perf_counter() - t0) * 1000, s
        if s["status"] == "ERROR":
            raise SystemExit(f"server went ERROR: {s.get('fault')}")


def wait_migration(c, sid, status, poll=0.0):
    while True:
        time.sleep(poll)
        m = c.ok(c.get(f"/v2.1/os-migrations?instance_uuid={sid}&limit=1", mv="2.59"))["migrations"][0]
        if m["status"] == status:
            return m
        if m["status"] == "error":
            raise SystemExit(f"migration error: {m}")


SYNC_SUM = "ferry_disk_transfer_sync_seconds_sum"


def sync_seconds(stack, host):
    """Seconds the agent of host has spent in the final fdatasync of received disks."""
    r = requests.get(agent_url(stack, host) + "/metrics", timeout=10)
    r.raise_for_status()
    for line in r.text.splitlines():
        if line.startswith(SYNC_SUM):
            return float(line.split()[-1])
    return 0.0


def cycle(c, stack, sid, host, finish, poll=0.0):
    """migrate -> VERIFY_RESIZE -> confirm|revert, asking for the state every poll seconds
    (0: as fast as answers come); returns (move ms, finish ms, uuid, host, ms of the
    receiver's final sync)."""
    synced = sync_seconds(stack, OTHER[host])
    t0 = time.perf_counter()
    c.ok(action(c, sid, {"migrate": None}), 202)
    move, s = wait_status(c, sid, "VERIFY_RESIZE", t0, poll)
    assert s["OS-EXT-SRV-ATTR:host"] == OTHER[host]
    sync = (sync_seconds(stack, OTHER[host]) - synced) * 1000
    t1 = time.perf_counter()
    if finish == "confirm":
        c.ok(action(c, sid, {"confirmResize": None}), 204)
    else:
        c.ok(action(c, sid, {"revertResize": None}), 202)
    done, s = wait_status(c, sid, "ACTIVE", t1, poll)
    m = wait_migration(c, sid, "confirmed" if finish == "confirm" else "reverted", poll)
    done = (time.perf_counter() - t1) * 1000
    return move, done, m["uuid"], s["OS-EXT-SRV-ATTR:host"], sync


def transfer_ms(stack, uuids):
    rows = stack.sql("SELECT migration_uuid, extract(epoch FROM updated_at - started_at) * 1000 "
                     "FROM migration_jobs WHERE kind = 'disk_transfer' AND state = 'completed'")
    got = {r[0]: float(r[1]) for r in rows}
    return {u: got[u] for u in uuids if u in got}


# File systems where cp's default (--reflink=auto, and copy_file_range) may share the
# blocks instead of copying them: there it must be told to copy.
CLONING_FS = {"btrfs", "xfs", "bcachefs", "zfs"}


def cp_command(path, tmp):
    """cp as it copies by default (holes skipped, copy_file_range where it can), but never
    a clone: a transfer cannot clone across hosts."""
    fs = subprocess.run(["stat", "-f", "-c", "%T", path], check=True, capture_output=True,
                        text=True).stdout.strip()
    return ["cp", "--sparse=auto"] + (["--reflink=never"] if fs in CLONING_FS else []) + [path, tmp]


def cp_ms(path, runs=7):
    """Median ms of `cp` of path to the same directory, and of cp plus an fdatasync of the
    copy.  A first, untimed copy makes sure the source is in the page cache."""
    tmp = path + ".bench-cp"
    cmd = cp_command(path, tmp)
    plain, synced = [], []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        t1 = time.perf_counter()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)
        t2 = time.perf_counter()
        os.unlink(tmp)
        if i > 0:
            plain.append((t1 - t0) * 1000)
            synced.append((t2 - t0) * 1000)
    return statistics.median(plain), statistics.median(synced)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--xfer-cycles", type=int, default=10,
                    help="further cycles for the transfer against cp, polled every 200 ms")
    args = ap.parse_args()
    stack = Stack()
    c, image = setup(stack)
    sid = c.boot("bench-cold", flavor="bench-64m", image=image, az="nova:host1")
    host = c.wait(sid)["OS-EXT-SRV-ATTR:host"]
    st = os.stat(disk_path(stack, host, sid))
    size = st.st_size
    print(f"disk: {size // MIB} MiB apparent, {st.st_blocks * 512 // MIB} MiB allocated")
    data = st.st_blocks * 512
    moves, confirms, reverts, uuids = [], [], [], []
    for i in range(args.cycles):
        for finish in ("confirm", "revert"):
            move, done, uuid, host, _ = cycle(c, stack, sid, host, finish)
            moves.append((uuid, move))
            (confirms if finish == "confirm" else reverts).append(done)
            uuids.append(uuid)
    copied = transfer_ms(stack, uuids)
    net = [ms - copied[u] for u, ms in moves if u in copied]
    # The transfer against cp: the client polling as fast as it can would compete with the
    # transfer for the CPUs (cp runs alone), so these cycles ask every 200 ms.
    syncs = {}
    for i in range(args.xfer_cycles):
        for finish in ("confirm", "revert"):
            _, _, uuid, host, sync = cycle(c, stack, sid, host, finish, poll=0.2)
            syncs[uuid] = sync
    xfer = transfer_ms(stack, list(syncs))
    nosync = [xfer[u] - syncs[u] for u in xfer]
    copy, copy_sync = cp_ms(disk_path(stack, host, sid))
    xfer_p50 = statistics.median(xfer.values()) if xfer else float("nan")
    nosync_p50 = statistics.median(nosync) if nosync else float("nan")
    sync_p50 = statistics.median(syncs[u] for u in xfer) if xfer else float("nan")
    print()
    print(f"{'cold migration (fake driver, 64 MiB disk)':<52} {'p50':>9} {'p99':>9} {'target':>12}")
    print(f"{'-' * 52} {'-' * 9} {'-' * 9} {'-' * 12}")
    mv = [ms for _, ms in moves]
    print(f"{'migrate -> VERIFY_RESIZE (with the disk copy)':<52} {statistics.median(mv):>7.1f}ms {pct(mv, 99):>7.1f}ms")
    if net:
        print(f"{'migrate -> VERIFY_RESIZE, disk copy excluded':<52} {statistics.median(net):>7.1f}ms "
              f"{pct(net, 99):>7.1f}ms {'<= 30 ms':>12}")
    print(f"{'confirm -> ACTIVE, migration confirmed':<52} {statistics.median(confirms):>7.1f}ms "
          f"{pct(confirms, 99):>7.1f}ms {'<= 15 ms':>12}")
    print(f"{'revert -> ACTIVE, migration reverted':<52} {statistics.median(reverts):>7.1f}ms {pct(reverts, 99):>7.1f}ms")
    print()
    what = f"{data // MIB} MiB of data in a {size // MIB} MiB sparse file, page cache warm"
    print(f"disk transfer against cp of the same file, same disk ({what}; {len(xfer)} transfers)")
    print(f"{'':<52} {'no sync':>9} {'synced':>9} {'target':>12}")
    print(f"{'-' * 52} {'-' * 9} {'-' * 9} {'-' * 12}")
    if xfer:
        xp99 = pct(list(xfer.values()), 99)
        print(f"{'disk transfer p50 (migration_jobs)':<52} {nosync_p50:>7.1f}ms {xfer_p50:>7.1f}ms")
        print(f"{'disk transfer p99':<52} {pct(nosync, 99):>7.1f}ms {xp99:>7.1f}ms")
        print(f"{'  of which the final fdatasync, p50':<52} {'':>9} {sync_p50:>7.1f}ms")
    print(f"{'cp (+ fdatasync of the copy), median of 7':<52} {copy:>7.1f}ms {copy_sync:>7.1f}ms")
    if xfer:
        print(f"{'transfer data throughput':<52} {data / MIB / nosync_p50 * 1000:>5.0f}MiB/s "
              f"{data / MIB / xfer_p50 * 1000:>5.0f}MiB/s")
        print(f"{'cp data throughput':<52} {data / MIB / copy * 1000:>5.0f}MiB/s "
              f"{data / MIB / copy_sync * 1000:>5.0f}MiB/s")
        print(f"{'transfer vs cp (cp time / transfer time)':<52} {copy / nosync_p50:>8.2f}x "
              f"{copy_sync / xfer_p50:>8.2f}x {'>= 0.9x':>12}")
    print(f"cycles: {args.cycles} (each: migrate+confirm, migrate+revert; {len(moves)} migrations) "
          f"for the latencies, then {args.xfer_cycles} for the transfer")
    c.delete(sid)


if __name__ == "__main__":
    main()
