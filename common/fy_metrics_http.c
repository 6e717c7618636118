#include "fy_metrics_http.h"

#include <stdio.h>
#include <stdlib.h>
#include "fy_db.h"
#include "fy_log.h"
#include "fy_metrics.h"

static const fy_metric_def m_requests = {
    "ferry_http_requests_total", "HTTP requests served, by method, route pattern and status.",
    FY_METRIC_COUNTER, {"method", "route", "status", NULL}, {0}};
static const fy_metric_def m_latency = {
    "ferry_http_request_duration_seconds", "HTTP request latency, by method and route pattern.",
    FY_METRIC_HISTOGRAM, {"method", "route", NULL}, {0}};
static const fy_metric_def m_heartbeat = {
    "ferry_service_heartbeat_age_seconds",
    "Seconds since each service's last heartbeat (absent: never reported).", FY_METRIC_GAUGE,
    {"binary", "host", NULL}, {0}};
static const fy_metric_def m_tasks = {
    "ferry_tasks", "Tasks waiting or being worked on, by kind and state.", FY_METRIC_GAUGE,
    {"kind", "state", NULL}, {0}};
static const fy_metric_def m_collect_errors = {
    "ferry_metrics_collect_errors_total",
    "Scrape-time collections that failed (e.g. the database was unreachable).",
    FY_METRIC_COUNTER, {"collector", NULL}, {0}};

static const fy_sql sql_heartbeats = {
    "fy_metrics_heartbeats",
    "SELECT \"binary\", host, EXTRACT(EPOCH FROM now() - last_seen_up)::float8 AS age"
    "  FROM services WHERE last_seen_up IS NOT NULL ORDER BY \"binary\", host",
    0};
static const fy_sql sql_tasks = {
    "fy_metrics_tasks",
    "SELECT kind, state, count(*) AS n FROM tasks WHERE state IN ('queued', 'running')"
    " GROUP BY kind, state ORDER BY kind, state",
    0};

static const fy_sql sql_migration = {
    "fy_metrics_migration",
    "SELECT migration_type, status,"
    "       EXTRACT(EPOCH FROM updated_at - created_at)::float8 AS seconds,"
    "       COALESCE(memory_processed, 0) AS memory, COALESCE(disk_processed, 0) AS disk"
    "  FROM migrations WHERE uuid = $1::uuid",
    1};

static const fy_metric_def m_migrations = {
    "ferry_migrations_total", "Migrations that reached a final status, by type and status.",
    FY_METRIC_COUNTER, {"type", "status", NULL}, {0}};
static const fy_metric_def m_mig_seconds = {
    "ferry_migration_duration_seconds",
    "Time from a migration's creation to its final status, by type and status.",
    FY_METRIC_HISTOGRAM, {"type", "status", NULL},
    {1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}};
static const fy_metric_def m_mig_bytes = {
    "ferry_migration_bytes_transferred_total",
    "Bytes moved by finished migrations, by type and kind (memory, disk).", FY_METRIC_COUNTER,
    {"type", "kind", NULL}, {0}};

void fy_metrics_migration_ended(const char *migration_uuid)
{
    const char *p[] = {migration_uuid};
    PGresult *res = NULL;
    fy_err err = {0};
    if (!migration_uuid || fy_db_exec(&sql_migration, p, &res, &err) != FY_E_OK) {
        fy_debug("metrics: migration %s: %s", migration_uuid ? migration_uuid : "-", err.msg);
        return;
    }
    if (PQntuples(res) == 1) {
        const char *type = fy_db_str(res, 0, "migration_type");
        const char *status = fy_db_str(res, 0, "status");
        fy_metric_inc(&m_migrations, FY_LV(type, status), 1);
        fy_metric_observe(&m_mig_seconds, FY_LV(type, status),
                          fy_db_double(res, 0, "seconds", 0));
        fy_metric_inc(&m_mig_bytes, FY_LV(type, "memory"), (double)fy_db_ll(res, 0, "memory", 0));
        fy_metric_inc(&m_mig_bytes, FY_LV(type, "disk"), (double)fy_db_ll(res, 0, "disk", 0));
    }
    PQclear(res);
}

fy_code fy_metrics_handler(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req;
    size_t len = 0;
    char *text = fy_metrics_render(&len);
    if (!text)
        return fy_fail(err, FY_E_NOMEM, "cannot render metrics");
    resp->status = 200;
    resp->raw = text;
    resp->raw_len = len;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return FY_E_OK;
}

void fy_metrics_http_finished(fy_req *req, int status, double seconds)
{
    const char *route = req->route ? req->route : "unmatched";
    const char *method = req->method ? req->method : "";
    char st[16];
    snprintf(st, sizeof(st), "%d", status);
    fy_metric_inc(&m_requests, FY_LV(method, route, st), 1);
    fy_metric_observe(&m_latency, FY_LV(method, route), seconds);
}

/* Re-reads a gauge family from one query whose first two columns are its labels
 * and whose third is the value. */
static void collect(const fy_sql *stmt, const fy_metric_def *def, const char *name)
{
    PGresult *res = NULL;
    fy_err err = {0};
    if (fy_db_exec(stmt, NULL, &res, &err) != FY_E_OK) {
        fy_debug("metrics: %s: %s", name, err.msg);
        fy_metric_inc(&m_collect_errors, FY_LV(name), 1);
        return;
    }
    fy_metric_clear(def);
    for (int i = 0; i < PQntuples(res); i++)
        fy_metric_set(def, FY_LV(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1)),
                      strtod(PQgetvalue(res, i, 2), NULL));
    PQclear(res);
}

static void collect_heartbeats(void *arg)
{
    (void)arg;
    collect(&sql_heartbeats, &m_heartbeat, "heartbeats");
}

static void collect_tasks(void *arg)
{
    (void)arg;
    collect(&sql_tasks, &m_tasks, "tasks");
}

void fy_metrics_collect_heartbeats(void)
{
    fy_metric_register(&m_heartbeat);
    fy_metric_add_collector(collect_heartbeats, NULL);
}

void fy_metrics_collect_tasks(void)
{
    fy_metric_register(&m_tasks);
    fy_metric_add_collector(collect_tasks, NULL);
}
