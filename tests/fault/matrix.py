"""The fault matrix (issue 7, item 3): every flow x every step x every service involved.

For each case one server is booted, the flow started, and the service killed with
SIGKILL at the step: the conductor and the agents by their crash fault points
(deterministic: they _exit(137) right there), the scheduler while a conductor step
that calls it is held by a conductor "delay" fault, the API right after it accepted
the request.  The killed service is started again and the invariants
(invariants.py) are checked once the migration is terminal.

  matrix.py STATE_DIR [--flows live,live_block,...] [--only SUBSTRING]

STATE_DIR holds a stack started by tests/fault/run (stack.env).  Prints the matrix
and "matrix: N passed, N failed"."""
import argparse
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(__file__))
import faultlib as fl  # noqa: E402
from invariants import TERMINAL, check  # noqa: E402
from ferry import (Client, Stack, action, make_flavor, make_port, make_volume,  # noqa: E402
                   read_env, reset_agents)

BOUND_S = 60          # a migration must be terminal this long after the fault
SCHED_HOLD_MS = 1500  # conductor delay while the scheduler is dead
SERVICES = ("api", "conductor", "scheduler", "source", "dest")
SMALL, LARGE = "fault-s", "fault-l"


# A row: (label, phase, {service: (kind, step)}).  phase 1 = the move itself, 2 = its
# confirm/revert.  kind: "crash" (fault point of that service), "sched" (conductor held
# at step, scheduler killed meanwhile), "api" (API killed once the request is accepted).
def live_rows():
    return [
        ("accept", 1, {"api": ("api", None)}),
        ("checks", 1, {"conductor": ("crash", "checks"), "scheduler": ("sched", "checks"),
                       "dest": ("crash", "check_can_live_migrate_destination"),
                       "source": ("crash", "check_can_live_migrate_source")}),
        ("checks/dest_cleanup", 1, {"dest": ("crash", "check_can_live_migrate_destination_cleanup")}),
        ("pre_live_migration", 1, {"conductor": ("crash", "pre_live_migration"),
                                   "dest": ("crash", "pre_live_migration")}),
        ("live_migration", 1, {"conductor": ("crash", "live_migration"),
                               "source": ("crash", "live_migration")}),
        ("wait_job", 1, {"conductor": ("crash", "wait_job"),
                         "source": ("crash", "live_migration_job")}),
        ("post_terminate_source_connections", 1,
         {"conductor": ("crash", "post_terminate_source_connections")}),
        ("post_migrate_instance_start", 1, {"conductor": ("crash", "post_migrate_instance_start")}),
        ("post_live_migration_at_destination", 1,
         {"conductor": ("crash", "post_live_migration_at_destination"),
          "dest": ("crash", "post_live_migration_at_destination")}),
        ("post_migrate_instance_finish", 1, {"conductor": ("crash", "post_migrate_instance_finish")}),
        ("post_live_migration_source", 1, {"conductor": ("crash", "post_live_migration_source"),
                                           "source": ("crash", "post_live_migration_source")}),
        ("post_done", 1, {"conductor": ("crash", "post_done"), "scheduler": ("sched", "post_done")}),
    ]


def cold_rows(finish):
    rows = [
        ("accept", 1, {"api": ("api", None)}),
        ("move_allocation", 1, {"conductor": ("crash", "move_allocation"),
                                "scheduler": ("sched", "move_allocation")}),
        ("schedule", 1, {"conductor": ("crash", "schedule"), "scheduler": ("sched", "schedule")}),
        ("prep_resize", 1, {"conductor": ("crash", "prep_resize"), "dest": ("crash", "prep_resize")}),
        ("resize_instance", 1, {"conductor": ("crash", "resize_instance"),
                                "source": ("crash", "migrate_disk_and_power_off")}),
        ("finish_resize", 1, {"conductor": ("crash", "finish_resize"),
                              "dest": ("crash", "finish_migration")}),
        (f"{finish}:accept", 2, {"api": ("api", None)}),
    ]
    if finish == "confirm":
        rows += [
            ("confirm_resize", 2, {"conductor": ("crash", "confirm_resize"),
                                   "source": ("crash", "confirm_migration")}),
            ("release_source", 2, {"conductor": ("crash", "release_source"),
                                   "scheduler": ("sched", "release_source")}),
        ]
    else:
        rows += [
            ("revert_resize", 2, {"conductor": ("crash", "revert_resize"),
                                  "scheduler": ("sched", "revert_resize"),
                                  "dest": ("crash", "revert_migration_dest")}),
            ("finish_revert_resize", 2, {"conductor": ("crash", "finish_revert_resize"),
                                         "scheduler": ("sched", "finish_revert_resize"),
                                         "source": ("crash", "finish_revert_migration")}),
        ]
    return rows


# flow: (stack key, rows, move request, finish request or None)
FLOWS = {
    "live": ("shared", live_rows(), {"os-migrateLive": {"host": None, "block_migration": False}}, None),
    "live_block": ("local", live_rows(), {"os-migrateLive": {"host": None, "block_migration": True}},
                   None),
    "migrate_confirm": ("local", cold_rows("confirm"), {"migrate": None}, {"confirmResize": None}),
    "migrate_revert": ("local", cold_rows("revert"), {"migrate": None}, {"revertResize": None}),
    "resize_confirm": ("local", cold_rows("confirm"), {"resize": {"flavorRef": LARGE}},
                       {"confirmResize": None}),
    "resize_revert": ("local", cold_rows("revert"), {"resize": {"flavorRef": LARGE}},
                      {"revertResize": None}),
}


class Env:
    def __init__(self, state):
        self.stack = Stack()
        self.stack.state = state
        self.stack.env = read_env(os.path.join(state, "stack.env"))
        self.client = Client(self.stack.api, "admin", self.stack.env["FERRY_ADMIN_PASSWORD"], "admin")
        self.stack.sql("INSERT INTO quota_limits (project_id, resource, hard_limit) SELECT id, r, -1"
                       " FROM projects, unnest(ARRAY['instances','cores','ram']) r WHERE name ="
                       " 'admin' ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = -1")
        make_flavor(self.client, SMALL, 64, disk=0)
        make_flavor(self.client, LARGE, 128, 2, disk=0)
        self.project = self.client.ok(self.client.get("/identity/v3/auth/tokens", headers={
            "X-Subject-Token": self.client.token}))["token"]["project"]["id"]

    def relogin(self):
        self.client = Client(self.stack.api, "admin", self.stack.env["FERRY_ADMIN_PASSWORD"], "admin")


def latest_migration(env, sid):
    rows = env.stack.sql(f"SELECT uuid, status FROM migrations WHERE instance_uuid = '{sid}'"
                         " ORDER BY id DESC LIMIT 1")
    return (rows[0][0], rows[0][1]) if rows else (None, None)


def wait_status(env, sid, statuses, watch, timeout=BOUND_S):
    """Waits for the newest migration to reach statuses, starting again whatever
    watch (a list of service names) found dead.  Returns the status."""
    deadline = time.time() + timeout
    while True:
        for n in watch:
            if not fl.alive(env.stack, n):
                fl.start(env.stack, n)
        _, st = latest_migration(env, sid)
        if st in statuses:
            return st
        if time.time() > deadline:
            raise AssertionError(f"migration still {st} after {timeout} s")
        time.sleep(0.1)


def arm(env, svc, kind, step, src, dst):
    if kind == "crash" and svc == "conductor":
        fl.conductor_faults(env.stack, [{"step": step, "action": "crash"}])
    elif kind == "crash":
        fl.agent_faults(env.stack, src if svc == "source" else dst, [{"step": step, "action": "crash"}])
    elif kind == "sched":
        fl.conductor_faults(env.stack, [{"step": step, "action": "delay", "ms": SCHED_HOLD_MS}])


def victim(svc, src, dst):
    return {"source": f"compute-{src}", "dest": f"compute-{dst}"}.get(svc, svc)


def wait_step(env, sid, step, timeout=30):
    deadline = time.time() + timeout
    while not env.stack.sql(f"SELECT 1 FROM tasks WHERE instance_uuid = '{sid}' AND state ="
                            f" 'running' AND step = '{step}'"):
        if time.time() > deadline:
            raise AssertionError(f"step {step} never reached")
        time.sleep(0.02)


def request(env, sid, body):
    r = action(env.client, sid, body)
    assert r.status_code in (202, 204), f"{list(body)[0]}: {r.status_code} {r.text}"


def fire(env, sid, svc, kind, step, src, dst, body):
    """Sends body with the fault armed, then makes sure the fault really happened."""
    name = victim(svc, src, dst)
    arm(env, svc, kind, step, src, dst)
    request(env, sid, body)
    if kind == "api":
        fl.kill9(env.stack, "api")
        fl.start(env.stack, "api")
        env.relogin()
    elif kind == "sched":
        wait_step(env, sid, step)
        fl.kill9(env.stack, "scheduler")
        time.sleep(SCHED_HOLD_MS / 1000 + 0.5)   # the held step now calls a dead scheduler
        fl.start(env.stack, "scheduler")
    elif not fl.wait_dead(env.stack, name, 30):
        raise AssertionError(f"fault at {step} never fired on {name}")


def boot(env, stack_key, flow):
    port = make_port(env.client, "fault-port")
    vol = make_volume(env.client, "fault-vol")
    sid = env.client.boot(f"fault-{flow}", flavor=SMALL, networks=[{"port": port}], az="nova:host1",
                          block_device_mapping_v2=[{"uuid": vol, "source_type": "volume",
                                                    "destination_type": "volume", "boot_index": -1,
                                                    "delete_on_termination": False}])
    env.client.wait(sid, timeout=30)
    return sid, port, vol


def cleanup(env, sid, port, vol):
    fl.clear_faults(env.stack)
    reset_agents(env.stack)
    env.client.delete(sid, timeout=30)
    env.client.request("DELETE", f"/network/v2.0/ports/{port}")
    env.client.request("DELETE", f"/volume/v3/{env.project}/volumes/{vol}")


def run_case(env, flow, phase, svc, kind, step):
    stack_key, _, move, finish = FLOWS[flow]
    watch = fl.service_names(env.stack)
    sid, port, vol = boot(env, stack_key, flow)
    src, dst = "host1", "host2"
    try:
        if phase == 1:
            fire(env, sid, svc, kind, step, src, dst, move)
        else:
            request(env, sid, move)
        st = wait_status(env, sid, TERMINAL + (("finished",) if finish else ()), watch)
        if finish and st == "finished":
            env.client.wait(sid, ("VERIFY_RESIZE",), timeout=BOUND_S)
            if phase == 2:
                fire(env, sid, svc, kind, step, src, dst, finish)
            else:
                request(env, sid, finish)
            st = wait_status(env, sid, TERMINAL, watch)
        bad = wait_invariants(env, sid)
        return (not bad), f"{st}" + ("" if not bad else ": " + "; ".join(bad))
    finally:
        fl.restart_missing(env.stack, watch)
        cleanup(env, sid, port, vol)


def wait_invariants(env, sid, settle=10):
    """The migration is terminal; events and the last writes land a moment later."""
    deadline = time.time() + settle
    while True:
        bad = check(env.stack, env.client, sid, ports=1, volumes=1)
        if not bad or time.time() > deadline:
            return bad
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--local", required=True, help="state dir of the local-storage stack")
    ap.add_argument("--shared", required=True, help="state dir of the shared-storage stack")
    ap.add_argument("--flows", default=",".join(FLOWS))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    envs = {"local": Env(args.local), "shared": Env(args.shared)}
    passed = failed = skipped = 0
    results = []
    t0 = time.time()
    for flow in args.flows.split(","):
        stack_key, rows, _, _ = FLOWS[flow]
        for label, phase, cells in rows:
            for svc in SERVICES:
                if svc not in cells:
                    skipped += 1
                    continue
                case = f"{flow} {label} {svc}"
                if args.only and args.only not in case:
                    continue
                kind, step = cells[svc]
                t = time.time()
                try:
                    ok, why = run_case(envs[stack_key], flow, phase, svc, kind, step)
                except Exception as e:  # a failed case must not stop the matrix
                    ok, why = False, f"{type(e).__name__}: {e}"
                    traceback.print_exc(file=sys.stderr)
                results.append((flow, label, svc, ok))
                passed += ok
                failed += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {case:70s} {time.time() - t:5.1f}s {why}",
                      flush=True)
    print_matrix(results)
    print(f"{skipped} cells skipped: the service takes no part in that step"
          " (the API only in accepting a request; the scheduler only in steps that claim,"
          " move or release allocations; an agent only in the steps it runs)")
    print(f"matrix took {time.time() - t0:.0f} s")
    print(f"matrix: {passed} passed, {failed} failed")
    return 1 if failed else 0


def print_matrix(results):
    print()
    print(f"{'flow':16s} {'step':36s} " + " ".join(f"{s:9s}" for s in SERVICES))
    cells = {}
    order = []
    for flow, label, svc, ok in results:
        key = (flow, label)
        if key not in cells:
            cells[key] = {}
            order.append(key)
        cells[key][svc] = "ok" if ok else "FAIL"
    for key in order:
        print(f"{key[0]:16s} {key[1]:36s} " +
              " ".join(f"{cells[key].get(s, '-'):9s}" for s in SERVICES))


if __name__ == "__main__":
    sys.exit(main())
