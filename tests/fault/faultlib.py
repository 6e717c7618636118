"""Process control for the fault tests: kill -9 a service of the local stack, start it
again the way deploy/local/stack starts it (same binary, config, log and pid file, so
`stack down` stops it), and the conductors' fault points."""
import os
import signal
import subprocess
import sys
import time

import requests

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
from ferry import ROOT, agent_url, hosts  # noqa: E402

BINARIES = {"api": "ferry-api", "scheduler": "ferry-scheduler"}

# Children started here; kept so that a killed one is reaped, not left a zombie.
_children = {}


def binary(name):
    if name.startswith("conductor"):
        return "ferry-conductor"
    if name.startswith("compute-"):
        return "ferry-compute"
    return BINARIES[name]


def pid_of(stack, name):
    try:
        with open(os.path.join(stack.state, "run", name + ".pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def alive(stack, name):
    pid = pid_of(stack, name)
    if pid is None:
        return False
    child = _children.get(name)
    if child is not None and child.pid == pid:
        return child.poll() is None
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def url_of(stack, name):
    with open(os.path.join(stack.state, "run", name + ".url")) as f:
        return f.read().strip()


def kill9(stack, name):
    pid = pid_of(stack, name)
    if pid and alive(stack, name):
        os.kill(pid, signal.SIGKILL)
    wait_dead(stack, name, 10)


def wait_dead(stack, name, timeout):
    deadline = time.time() + timeout
    while alive(stack, name):
        if time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


def start(stack, name, wait=True):
    """Starts name as deploy/local/stack does (its FERRY_* variables kept out)."""
    if alive(stack, name):
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    exe = os.path.join(ROOT, stack.env["FERRY_BUILD"], binary(name))
    conf = os.path.join(stack.state, "etc", name + ".conf")
    with open(os.path.join(stack.state, "log", name + ".log"), "ab") as log:
        p = subprocess.Popen([exe, "--config", conf], stdout=log, stderr=log,
                             stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    _children[name] = p
    with open(os.path.join(stack.state, "run", name + ".pid"), "w") as f:
        f.write(f"{p.pid}\n")
    if wait:
        wait_healthy(stack, name)


def wait_healthy(stack, name, timeout=30):
    url = url_of(stack, name)
    deadline = time.time() + timeout
    while True:
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if not alive(stack, name):
            raise AssertionError(f"{name} exited at start")
        if time.time() > deadline:
            raise AssertionError(f"{name} not healthy after {timeout} s")
        time.sleep(0.05)
    if name.startswith("compute-"):
        host = name[len("compute-"):]
        while not stack.sql(f"SELECT 1 FROM services WHERE host = '{host}' AND \"binary\" = "
                            "'ferry-compute' AND last_seen_up > now() - interval '3 seconds'"):
            if time.time() > deadline:
                raise AssertionError(f"{name}: no heartbeat")
            time.sleep(0.1)


def restart_missing(stack, names):
    for n in names:
        if not alive(stack, n):
            start(stack, n)


def service_names(stack):
    run = os.path.join(stack.state, "run")
    return sorted(f[:-4] for f in os.listdir(run) if f.endswith(".pid"))


def conductor_faults(stack, faults, name="conductor"):
    r = requests.put(url_of(stack, name) + "/internal/v1/faults", json={"faults": faults},
                     headers={"X-Service-Token": stack.env["FERRY_SERVICE_SECRET"]}, timeout=5)
    assert r.status_code == 200, f"conductor faults: {r.status_code} {r.text}"


def agent_faults(stack, host, faults):
    r = requests.put(agent_url(stack, host) + "/internal/v1/faults", json={"faults": faults},
                     headers={"X-Service-Token": stack.env["FERRY_SERVICE_SECRET"]}, timeout=5)
    assert r.status_code == 200, f"faults on {host}: {r.status_code} {r.text}"


def clear_faults(stack):
    hdr = {"X-Service-Token": stack.env["FERRY_SERVICE_SECRET"]}
    for n in service_names(stack):
        if n.startswith("conductor") or n.startswith("compute-"):
            try:
                requests.delete(url_of(stack, n) + "/internal/v1/faults", headers=hdr, timeout=3)
            except requests.RequestException:
                pass


def compute_names(stack):
    return [f"compute-{h}" for h in hosts(stack)]
