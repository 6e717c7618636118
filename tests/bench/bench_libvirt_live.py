"""The libvirt live-migration benchmark (run by tests/bench/libvirt_live): one guest
migrated back and forth through Ferry's API and directly with virsh, alternating."""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "libvirt"))
from ferry import Client, Stack, action, read_env  # noqa: E402
from lvlib import uri, virsh  # noqa: E402

TERMINAL = ("completed", "error", "failed", "cancelled")


def ferry_migrate(c, sid, dst):
    """POST os-migrateLive -> the migration completed and the server settled on dst."""
    t0 = time.monotonic()
    r = action(c, sid, {"os-migrateLive": {"host": dst, "block_migration": "auto"}})
    assert r.status_code == 202, r.text
    while True:
        s = c.server(sid)
        if s["OS-EXT-SRV-ATTR:host"] == dst and s["OS-EXT-STS:task_state"] is None:
            break
        assert time.monotonic() - t0 < 120, f"migration to {dst} not done: {s['status']}"
        time.sleep(0.01)
    return time.monotonic() - t0


def virsh_migrate(name, src, dst):
    t0 = time.monotonic()
    subprocess.run(["virsh", "-q", "-c", uri(src), "migrate", "--live", "--p2p", "--persistent",
                    "--undefinesource", name, uri(dst)], check=True, capture_output=True)
    return time.monotonic() - t0


def virsh_downtime(host, name):
    out = virsh(host, "domjobinfo", "--completed", name, check=False)
    m = re.search(r"Total downtime:\s+(\d+)", out)
    return int(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    st = Stack()
    st.env = read_env(os.path.join(st.state, "stack.env"))
    c = Client(st.api, "admin", st.env["FERRY_ADMIN_PASSWORD"], "admin")
    r = c.post("/v2.1/flavors", {"flavor": {"name": "bench-64", "ram": 64, "vcpus": 1,
                                            "disk": 0, "id": "bench-64"}})
    assert r.status_code in (200, 409), r.text
    sid = c.boot("bench-libvirt", flavor="bench-64", image="", az="nova:host1")
    c.wait(sid, timeout=120)
    name = c.server(sid)["OS-EXT-SRV-ATTR:instance_name"] if "OS-EXT-SRV-ATTR:instance_name" \
        in c.server(sid) else virsh("host1", "domname", sid).strip()
    ferry, direct, ferry_dt, virsh_dt = [], [], [], []
    for i in range(a.rounds):
        for src, dst in (("host1", "host2"), ("host2", "host1")):
            ferry.append(ferry_migrate(c, sid, dst))
            dt = st.scalar("SELECT j.downtime_ms FROM migration_jobs j JOIN migrations m "
                           "ON m.uuid = j.migration_uuid WHERE m.instance_uuid = "
                           f"'{sid}' ORDER BY m.id DESC LIMIT 1")
            if dt:
                ferry_dt.append(int(dt))
        for src, dst in (("host1", "host2"), ("host2", "host1")):
            direct.append(virsh_migrate(name, src, dst))
            dt = virsh_downtime(dst, name)
            if dt is not None:
                virsh_dt.append(dt)
        print(f"round {i + 1}: ferry {ferry[-2]:.2f} {ferry[-1]:.2f} s, "
              f"virsh {direct[-2]:.2f} {direct[-1]:.2f} s", flush=True)
    fm, vm = statistics.median(ferry), statistics.median(direct)
    print()
    print(f"{'':24}{'n':>4}{'median s':>10}{'min s':>8}{'max s':>8}{'downtime ms (median)':>22}")
    for label, xs, dts in (("ferry API (p2p)", ferry, ferry_dt),
                           ("virsh migrate --p2p", direct, virsh_dt)):
        dtm = f"{statistics.median(dts):.0f}" if dts else "-"
        print(f"{label:24}{len(xs):>4}{statistics.median(xs):>10.3f}{min(xs):>8.3f}"
              f"{max(xs):>8.3f}{dtm:>22}")
    ratio = fm / vm
    print(f"ratio ferry/virsh: {ratio:.3f} (target <= 1.10): {'ok' if ratio <= 1.10 else 'ABOVE'}")
    c.request("DELETE", f"/v2.1/servers/{sid}")


if __name__ == "__main__":
    main()
