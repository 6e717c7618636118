"""A small client for Ferry's public API and the local stack, for end-to-end tests."""
import json
import os
import re
import signal
import subprocess
import time
import uuid

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STACK = os.path.join(ROOT, "deploy", "local", "stack")


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    return env


class Stack:
    """The local stack the tests run against (deploy/local/stack)."""

    def __init__(self):
        self.state = os.environ.get("FERRY_STATE_DIR", os.path.join(ROOT, "deploy/local/state"))
        self.env = {}

    def up(self, **extra_env):
        env = dict(os.environ, **extra_env)
        subprocess.run([STACK, "up"], check=True, env=env)
        self.env = read_env(os.path.join(self.state, "stack.env"))

    def down(self):
        subprocess.run([STACK, "down"], check=False)

    @property
    def api(self):
        return self.env["FERRY_API_URL"]

    def sql(self, query, *args):
        """Runs one read-only query with psql; returns rows as lists of strings."""
        cmd = ["psql", self.env["FERRY_DB_URL"], "-tAF", "\t", "-v", "ON_ERROR_STOP=1"]
        for i, a in enumerate(args):
            cmd += ["-v", f"p{i}={a}"]
        out = subprocess.run(cmd + ["-c", query], check=True, capture_output=True, text=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def scalar(self, query):
        rows = self.sql(query)
        return rows[0][0] if rows else None

    def manage(self, *args):
        binary = os.path.join(ROOT, self.env["FERRY_BUILD"], "ferry-manage")
        return subprocess.run([binary, "--db-url", self.env["FERRY_DB_URL"], *args],
                              check=True, capture_output=True, text=True).stdout

    def pid(self, name):
        with open(os.path.join(self.state, "run", name + ".pid")) as f:
            return int(f.read().strip())

    # --- the processes of one kind (FERRY_APIS, FERRY_SCHEDULERS, FERRY_CONDUCTORS) ---

    def processes(self, kind):
        """Names of the stack's processes of one kind: "api" -> ["api", "api2", ...]."""
        names = [n[:-4] for n in os.listdir(os.path.join(self.state, "run")) if n.endswith(".pid")]
        mine = [n for n in names if re.fullmatch(re.escape(kind) + r"(?:[2-9]|[1-9][0-9]+)?", n)]
        return sorted(mine, key=lambda n: int(n[len(kind):] or 1))

    def url(self, name):
        with open(os.path.join(self.state, "run", name + ".url")) as f:
            return f.read().strip()

    def log(self, name):
        return os.path.join(self.state, "log", name + ".log")

    def log_marks(self, names):
        """{name: current size of its log}: where to start reading what comes next."""
        return {n: os.path.getsize(self.log(n)) if os.path.exists(self.log(n)) else 0
                for n in names}

    def log_since(self, marks):
        """{name: what its log received since marks}."""
        out = {}
        for n, off in marks.items():
            with open(self.log(n), "rb") as f:
                f.seek(off)
                out[n] = f.read().decode("utf-8", "replace")
        return out

    def served_by(self, marks, request_id, timeout=10):
        """The one process among marks that logged request_id (its line is written just
        after the answer is sent, so it is waited for)."""
        deadline = time.time() + timeout
        while True:
            who = [n for n, text in self.log_since(marks).items() if request_id in text]
            if who or time.time() > deadline:
                assert len(who) == 1, f"request {request_id} logged by {who or 'no process'}"
                return who[0]
            time.sleep(0.05)

    def per_process(self, kind, fetch, timeout=60):
        """{name: fetch(url, request_id)} for every process of kind.  The processes of
        a kind sharing a port (API, scheduler) are reached by asking again on fresh
        connections, which the kernel spreads over them, until each has answered once;
        the process that answered is found by the request id in the logs."""
        names = self.processes(kind)
        urls = {n: self.url(n) for n in names}
        out = {}
        for url in sorted(set(urls.values())):
            group = [n for n in names if urls[n] == url]
            deadline = time.time() + timeout
            while set(group) - set(out):
                marks = self.log_marks(group)
                rid = new_request_id()
                result = fetch(url, rid)
                out.setdefault(self.served_by(marks, rid) if len(group) > 1 else group[0], result)
                assert time.time() < deadline, f"{set(group) - set(out)} never answered on {url}"
        return out

    def stop_process(self, name, timeout=30):
        """SIGTERM (a graceful stop) and wait; `up` starts it again."""
        pid = self.pid(name)
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def new_request_id():
    return "req-" + str(uuid.uuid4())


# Several API processes (FERRY_APIS > 1) share one port, and the kernel picks one per
# connection: the clients then open a connection per request so that consecutive
# requests land on either process (a write on one, the read on another).
FRESH_CONNECTIONS = int(os.environ.get("FERRY_APIS", "1") or 1) > 1


class ApiError(AssertionError):
    pass


class Client:
    """Authenticated client: one user scoped to one project."""

    def __init__(self, api, user="admin", password=None, project="admin", microversion="2.90"):
        self.api = api
        self.session = requests.Session()
        if FRESH_CONNECTIONS:
            self.session.headers["Connection"] = "close"
        self.microversion = microversion
        self.user, self.password, self.project = user, password, project
        self.token = None
        if password is not None:
            self.token = self.issue_token(user, password, project)

    def issue_token(self, user, password, project):
        r = self.session.post(self.api + "/identity/v3/auth/tokens", json={
            "auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": "Default"}, "password": password}}},
                "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}})
        if r.status_code != 201:
            raise ApiError(f"token for {user}: {r.status_code} {r.text}")
        return r.headers["X-Subject-Token"]

    def request(self, method, path, body=None, raw=None, headers=None, token=True, mv=None):
        h = {"Accept": "application/json"}
        if token and self.token:
            h["X-Auth-Token"] = self.token
        mv = mv or self.microversion
        if mv and path.startswith("/v2.1"):
            h["OpenStack-API-Version"] = "compute " + mv
        if body is not None:
            h["Content-Type"] = "application/json"
            raw = json.dumps(body)
        h.update(headers or {})
        return self.session.request(method, self.api + path, data=raw, headers=h, timeout=30)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def ok(self, r, *codes):
        if r.status_code not in (codes or (200,)):
            raise ApiError(f"{r.request.method} {r.request.url}: {r.status_code} {r.text}")
        return r.json() if r.content else None

    # --- servers ---
    def boot(self, name, flavor="6", image="", networks="none", az=None, **extra):
        server = {"name": name, "flavorRef": flavor, "imageRef": image, "networks": networks}
        if az:
            server["availability_zone"] = az
        server.update(extra)
        return self.ok(self.post("/v2.1/servers", {"server": server}), 202)["server"]["id"]

    def server(self, sid):
        return self.ok(self.get(f"/v2.1/servers/{sid}"))["server"]

    def wait(self, sid, statuses=("ACTIVE",), timeout=30, fail=("ERROR",)):
        deadline = time.time() + timeout
        while True:
            s = self.server(sid)
            if s["status"] in statuses:
                return s
            if s["status"] in fail and s["status"] not in statuses:
                raise ApiError(f"server {sid} went {s['status']}: {s.get('fault')}")
            if time.time() > deadline:
                raise ApiError(f"server {sid} still {s['status']} / {s.get('OS-EXT-STS:task_state')}")
            time.sleep(0.05)

    def delete(self, sid, wait=True, timeout=30):
        r = self.request("DELETE", f"/v2.1/servers/{sid}")
        if r.status_code == 404:
            return
        self.ok(r, 204)
        if wait:
            deadline = time.time() + timeout
            while self.get(f"/v2.1/servers/{sid}").status_code != 404:
                if time.time() > deadline:
                    raise ApiError(f"server {sid} not deleted")
                time.sleep(0.05)

    def delete_all(self):
        servers = self.ok(self.get("/v2.1/servers?all_tenants=1"))["servers"]
        for s in servers:
            self.delete(s["id"], wait=False)
        for s in servers:
            self.delete(s["id"], wait=True)


# --- migrations: side stacks, agent control, records, invariants -----------------

class SideStack(Stack):
    """A second local stack with its own state directory, ports and options."""

    def __init__(self, state, port_base, **options):
        super().__init__()
        self.state = state
        self.options = dict(options, FERRY_STATE_DIR=state, FERRY_PORT_BASE=str(port_base))

    def up(self, **extra_env):
        super().up(**self.options, **extra_env)

    def down(self):
        subprocess.run([STACK, "down"], check=False, env=dict(os.environ, **self.options))


def agent_url(stack, host):
    return f"http://127.0.0.1:{int(stack.env['FERRY_PORT_BASE']) + 10 + int(host[4:])}"


def agent(stack, host, method, path, body=None, timeout=10):
    """Calls a compute agent's internal API with the service credential."""
    return requests.request(method, agent_url(stack, host) + path, json=body, timeout=timeout,
                            headers={"X-Service-Token": stack.env["FERRY_SERVICE_SECRET"]})


def hosts(stack):
    return [f"host{i}" for i in range(1, int(stack.env["FERRY_HOSTS"]) + 1)]


# What PUT /internal/v1/settings restores after a test (the agents' defaults).
AGENT_DEFAULTS = {"fake_memory_copy_ms": 0, "fake_dirty_rate": 0.0,
                  "live_migration_completion_timeout_s": 0, "live_migration_timeout_action": "abort",
                  "live_migration_progress_timeout_s": 0}


def inject(stack, host, step, action="error", times=1):
    r = agent(stack, host, "PUT", "/internal/v1/faults",
              {"faults": [{"step": step, "action": action, "times": times}]})
    assert r.status_code in (200, 204), f"faults on {host}: {r.status_code} {r.text}"


def set_agent(stack, host, **settings):
    r = agent(stack, host, "PUT", "/internal/v1/settings", settings)
    assert r.status_code in (200, 204), f"settings on {host}: {r.status_code} {r.text}"


def reset_agents(stack):
    """Clears faults and runtime settings on every agent that answers."""
    for h in hosts(stack):
        try:
            agent(stack, h, "DELETE", "/internal/v1/faults", timeout=3)
            agent(stack, h, "PUT", "/internal/v1/settings", AGENT_DEFAULTS, timeout=3)
        except requests.RequestException:
            pass


def guests(stack, host):
    """Instance uuids the agent of host has defined (any state)."""
    r = agent(stack, host, "GET", "/internal/v1/instances")
    assert r.status_code == 200, r.text
    return {i["uuid"] for i in r.json()["instances"]}


def instances_path(stack, host):
    shared = os.path.join(stack.state, "shared-instances")
    if os.path.isdir(shared):
        return shared
    return os.path.join(stack.state, "hosts", host, "instances")


def disk_path(stack, host, sid):
    return os.path.join(instances_path(stack, host), sid, "disk")


def leftovers(stack, host, sid):
    """Files of sid in host's instances path other than the guest's own directory."""
    base = instances_path(stack, host)
    if not os.path.isdir(base):
        return []
    return sorted(n for n in os.listdir(base) if n.startswith(sid) and n != sid)


def action(client, sid, body, mv=None):
    return client.post(f"/v2.1/servers/{sid}/action", body, mv=mv)


def migrations(client, mv="2.80", **filters):
    q = "&".join(f"{k}={v}" for k, v in filters.items())
    return client.ok(client.get("/v2.1/os-migrations" + (f"?{q}" if q else ""), mv=mv))["migrations"]


def last_migration(client, sid):
    ms = migrations(client, instance_uuid=sid)
    assert ms, f"no migration for {sid}"
    return max(ms, key=lambda m: m["id"])


def wait_migration(client, sid, statuses, timeout=30, mid=None):
    deadline = time.time() + timeout
    while True:
        ms = migrations(client, instance_uuid=sid)
        m = max(ms, key=lambda x: x["id"]) if mid is None else \
            next((x for x in ms if x["id"] == mid), None)
        if m and m["status"] in statuses:
            return m
        if time.time() > deadline:
            raise ApiError(f"migration of {sid} still {m and m['status']}, wanted {statuses}")
        time.sleep(0.05)


def instance_action(client, sid, name):
    """The newest instance action called name, with its events."""
    acts = client.ok(client.get(f"/v2.1/servers/{sid}/os-instance-actions"))["instanceActions"]
    acts = [a for a in acts if a["action"] == name]
    assert acts, f"no {name} action for {sid}"
    newest = max(acts, key=lambda a: a["start_time"])
    return client.ok(client.get(f"/v2.1/servers/{sid}/os-instance-actions/{newest['request_id']}"))[
        "instanceAction"]


def events(client, sid, name):
    """{event name: result} of the newest action called name."""
    return {e["event"]: e["result"] for e in instance_action(client, sid, name)["events"]}


def wait_events(client, sid, name, wanted, timeout=10):
    """Events are finished a moment after the state change the API shows."""
    deadline = time.time() + timeout
    while True:
        ev = events(client, sid, name)
        if all(ev.get(k) == v for k, v in wanted.items()) or time.time() > deadline:
            return ev
        time.sleep(0.05)


def allocations(stack, consumer):
    """{host: (vcpus, memory_mb, disk_gb)} held by one consumer."""
    rows = stack.sql("SELECT n.host, a.vcpus, a.memory_mb, a.disk_gb FROM allocations a "
                     f"JOIN compute_nodes n ON n.id = a.node_id WHERE a.consumer_uuid = '{consumer}'")
    return {r[0]: tuple(int(x) for x in r[1:]) for r in rows}


def bindings(stack, sid):
    return sorted((r[0], r[1]) for r in stack.sql(
        "SELECT b.host, b.status FROM port_bindings b JOIN ports p ON p.id = b.port_id "
        f"WHERE p.device_id = '{sid}'"))


def connections(stack, sid):
    return sorted(r[0] for r in stack.sql(
        "SELECT c.host FROM volume_connections c JOIN volume_attachments a ON a.id = c.attachment_id "
        f"WHERE a.instance_uuid = '{sid}'"))


def migration_consumers(stack, sid):
    """Allocations still held by any migration of sid (none once a move is over)."""
    return stack.sql("SELECT a.consumer_uuid, n.host FROM allocations a JOIN compute_nodes n "
                     "ON n.id = a.node_id JOIN migrations m ON m.uuid = a.consumer_uuid "
                     f"WHERE m.instance_uuid = '{sid}'")


def assert_settled(stack, client, sid, host, flavor=None, status="ACTIVE", ports=0, volumes=0):
    """After any outcome: the server, its guest, disk, allocation, port bindings and
    volume connections are on host and nowhere else, and nothing is left in between."""
    s = client.server(sid)
    assert s["status"] == status, (s["status"], s.get("fault"))
    assert s["OS-EXT-SRV-ATTR:host"] == host
    assert s["OS-EXT-STS:task_state"] is None
    assert s["OS-EXT-STS:power_state"] == (4 if status == "SHUTOFF" else 1)
    if flavor is not None:
        assert s["flavor"]["original_name"] == flavor
    for h in hosts(stack):
        assert (sid in guests(stack, h)) == (h == host), f"guest of {sid} on {h}"
        if instances_path(stack, h) != instances_path(stack, host):
            assert not os.path.exists(disk_path(stack, h, sid)), f"disk of {sid} left on {h}"
        assert leftovers(stack, h, sid) == [], f"files of {sid} left on {h}"
    assert os.path.exists(disk_path(stack, host, sid))
    assert list(allocations(stack, sid)) == [host]
    assert migration_consumers(stack, sid) == []
    assert bindings(stack, sid) == [(host, "ACTIVE")] * ports
    assert connections(stack, sid) == [host] * volumes
    return s


def make_flavor(client, fid, ram, vcpus=1, disk=1):
    r = client.post("/v2.1/flavors", {"flavor": {"name": fid, "ram": ram, "vcpus": vcpus,
                                                 "disk": disk, "id": fid}})
    assert r.status_code in (200, 409), r.text
    return fid


def make_port(client, name):
    nets = client.ok(client.get("/network/v2.0/networks"))["networks"]
    assert nets, "no network"
    return client.ok(client.post("/network/v2.0/ports", {"port": {
        "network_id": nets[0]["id"], "name": name}}), 201)["port"]["id"]


def make_volume(client, name, size=1):
    project = client.ok(client.get("/identity/v3/auth/tokens", headers={
        "X-Subject-Token": client.token}))["token"]["project"]["id"]
    v = client.ok(client.post(f"/volume/v3/{project}/volumes", {"volume": {
        "size": size, "name": name}}), 202, 200)["volume"]
    return v["id"]


def boot_with_port_and_volume(client, name, az=None, flavor="6"):
    port = make_port(client, name + "-port")
    vol = make_volume(client, name + "-vol")
    sid = client.boot(name, flavor=flavor, networks=[{"port": port}], az=az,
                      block_device_mapping_v2=[{"uuid": vol, "source_type": "volume",
                                                "destination_type": "volume", "boot_index": -1,
                                                "delete_on_termination": False}])
    return sid, port, vol
