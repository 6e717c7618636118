"""A small client for Ferry's public API and the local stack, for end-to-end tests."""
import json
import os
import subprocess
import time

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


class ApiError(AssertionError):
    pass


class Client:
    """Authenticated client: one user scoped to one project."""

    def __init__(self, api, user="admin", password=None, project="admin", microversion="2.90"):
        self.api = api
        self.session = requests.Session()
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
