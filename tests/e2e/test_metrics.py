"""Observability: every service's /metrics after a boot, /readyz, --log-format json.
Every process is scraped: with several processes of a kind (FERRY_APIS, FERRY_SCHEDULERS,
FERRY_CONDUCTORS) a counter is their sum, as a Prometheus query summing over instances."""
import json
import os
import re
import subprocess
import time

import requests

from ferry import ROOT, agent_url, hosts

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')


def scrape(url, request_id=None):
    headers = {"x-openstack-request-id": request_id} if request_id else {}
    # requests.get opens a connection of its own: shared ports spread them.
    r = requests.get(url + "/metrics", timeout=10, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in r.text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = dict(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        samples[(m.group(1), tuple(sorted(labels.items())))] = float(m.group(4))
    return samples


def total(samples, name, **labels):
    """Sum of the matching samples: of one scrape, or of {process: scrape} (every process
    of a kind)."""
    if samples and isinstance(next(iter(samples.values())), dict):
        return sum(total(s, name, **labels) for s in samples.values())
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == v2 for k, v2 in labels.items()))


KINDS = ("api", "scheduler", "conductor")


def scrape_all(stack):
    """{kind or compute host: {process: samples}}, every process of every kind."""
    out = {kind: stack.per_process(kind, scrape) for kind in KINDS}
    out.update({h: {h: scrape(agent_url(stack, h))} for h in hosts(stack)})
    return out


def test_metrics_move_after_a_boot(stack, admin, clean):
    before = scrape_all(stack)
    sid = admin.boot("metrics-1")
    admin.wait(sid)
    admin.delete(sid)
    # Agents touch the database on their heartbeat (report_interval = 1 s in the stack).
    time.sleep(1.5)
    after = scrape_all(stack)

    def moved(name, metric, **labels):
        b, a = total(before[name], metric, **labels), total(after[name], metric, **labels)
        assert a > b, f"{name}: {metric}{labels} did not move ({b} -> {a})"

    moved("api", "ferry_http_requests_total", method="POST", route="/v2.1/servers", status="202")
    moved("api", "ferry_http_request_duration_seconds_count", method="POST", route="/v2.1/servers")
    moved("scheduler", "ferry_scheduler_decision_duration_seconds_count", result="chosen")
    moved("scheduler", "ferry_http_requests_total",
          route="/internal/v1/select_destinations", status="200")
    moved("conductor", "ferry_conductor_task_runs_total", kind="build", outcome="done")
    moved("conductor", "ferry_conductor_task_runs_total", kind="delete", outcome="done")
    moved("conductor", "ferry_http_client_request_duration_seconds_count",
          path="/internal/v1/select_destinations", status="200")
    for name in after:
        moved(name, "ferry_db_query_duration_seconds_count")
    spawned = sum(total(after[h], "ferry_http_requests_total",
                        route="/internal/v1/instances/{}/spawn", status="200")
                  - total(before[h], "ferry_http_requests_total",
                          route="/internal/v1/instances/{}/spawn", status="200")
                  for h in hosts(stack))
    assert spawned >= 1
    # Scrape-time gauges: heartbeat age of every compute host (each scheduler), and
    # the conductors' view of the task queue.
    for proc, samples in after["scheduler"].items():
        for h in hosts(stack):
            age = total(samples, "ferry_service_heartbeat_age_seconds",
                        binary="ferry-compute", host=h)
            assert 0 <= age < 10, (proc, h, age)
    for proc, samples in after["conductor"].items():
        assert any(n == "ferry_conductor_tasks_running" for n, _ in samples), proc


def test_unknown_paths_use_one_label(stack):
    api = stack.env["FERRY_API_URL"]
    for i in range(3):
        requests.get(f"{api}/no/such/path/{i}", timeout=10)
    s = stack.per_process("api", scrape)
    assert total(s, "ferry_http_requests_total", route="unmatched", status="404") >= 3
    assert not any("no/such" in dict(ls).get("route", "") for p in s.values() for _, ls in p)


def test_readyz_and_healthz(stack):
    def probe(url, rid):
        # One connection for both: one process answers them.
        with requests.Session() as s:
            return {path: s.get(url + path, timeout=10,
                                headers={"x-openstack-request-id": rid} if rid else {})
                    for path in ("/healthz", "/readyz")}

    answers = {h: probe(agent_url(stack, h), None) for h in hosts(stack)}
    for kind in KINDS:
        answers.update(stack.per_process(kind, probe))
    for name, rs in answers.items():
        for path, r in rs.items():
            assert r.status_code == 200, (name, path, r.status_code, r.text)


def test_log_format_json_option(stack, tmp_path):
    """--log-format json on the command line wins over the config file's text."""
    conf = tmp_path / "bad.conf"
    conf.write_text("log_format = text\n")
    build = os.path.join(ROOT, stack.env["FERRY_BUILD"])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "FERRY_DB_URL": "postgresql://127.0.0.1:1/none?connect_timeout=1",
           "FERRY_SERVICE_SECRET": "x", "FERRY_IMAGES_DIR": str(tmp_path / "images"),
           "FERRY_SCHEDULER_URL": "http://127.0.0.1:1", "FERRY_STATE_DIR": str(tmp_path / "st"),
           "FERRY_PORT": "1", "ASAN_OPTIONS": "detect_leaks=0"}
    for binary in ("ferry-api", "ferry-scheduler", "ferry-conductor"):
        p = subprocess.run([os.path.join(build, binary), "--config", str(conf),
                            "--log-format", "json"], env=env, capture_output=True, text=True,
                           timeout=30)
        assert p.returncode != 0
        lines = [json.loads(line) for line in p.stderr.splitlines() if line.startswith("{")]
        assert lines, (binary, p.stderr)
        assert all(rec["service"] == binary and "level" in rec and "request_id" in rec
                   and "migration_id" in rec for rec in lines), lines
