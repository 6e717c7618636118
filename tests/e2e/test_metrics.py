"""Observability: every service's /metrics after a boot, /readyz, --log-format json."""
import json
import os
import re
import subprocess
import time

import requests

from ferry import ROOT, agent_url, hosts

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')


def scrape(url):
    r = requests.get(url + "/metrics", timeout=10)
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
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == v2 for k, v2 in labels.items()))


def urls(stack):
    env = stack.env
    return {"api": env["FERRY_API_URL"], "scheduler": env["FERRY_SCHEDULER_URL"],
            "conductor": env["FERRY_CONDUCTOR_URL"],
            **{h: agent_url(stack, h) for h in hosts(stack)}}


def test_metrics_move_after_a_boot(stack, admin, clean):
    svc = urls(stack)
    before = {name: scrape(url) for name, url in svc.items()}
    sid = admin.boot("metrics-1")
    admin.wait(sid)
    admin.delete(sid)
    # Agents touch the database on their heartbeat (report_interval = 1 s in the stack).
    time.sleep(1.5)
    after = {name: scrape(url) for name, url in svc.items()}

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
    for name in svc:
        moved(name, "ferry_db_query_duration_seconds_count")
    spawned = sum(total(after[h], "ferry_http_requests_total",
                        route="/internal/v1/instances/{}/spawn", status="200")
                  - total(before[h], "ferry_http_requests_total",
                          route="/internal/v1/instances/{}/spawn", status="200")
                  for h in hosts(stack))
    assert spawned >= 1
    # Scrape-time gauges: heartbeat age of every compute host (scheduler), and
    # the conductor's view of the task queue.
    for h in hosts(stack):
        age = total(after["scheduler"], "ferry_service_heartbeat_age_seconds",
                    binary="ferry-compute", host=h)
        assert 0 <= age < 10, (h, age)
    assert any(n == "ferry_conductor_tasks_running" for n, _ in after["conductor"])


def test_unknown_paths_use_one_label(stack):
    api = stack.env["FERRY_API_URL"]
    for i in range(3):
        requests.get(f"{api}/no/such/path/{i}", timeout=10)
    s = scrape(api)
    assert total(s, "ferry_http_requests_total", route="unmatched", status="404") >= 3
    assert not any("no/such" in dict(ls).get("route", "") for _, ls in s)


def test_readyz_and_healthz(stack):
    for name, url in urls(stack).items():
        for path in ("/healthz", "/readyz"):
            r = requests.get(url + path, timeout=10)
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
