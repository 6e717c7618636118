/* fy_metrics_http — the registry on the HTTP server: GET /metrics, per-route
 * request counts and latencies, and the scrape-time gauges read from the
 * database.  Every service mounts
 *     {"GET", "/metrics", fy_metrics_handler, FY_R_PUBLIC}
 * and sets fy_httpd_conf.finished = fy_metrics_http_finished (or calls it from
 * its own hook). */
#pragma once
#include "fy_httpd.h"

fy_code fy_metrics_handler(fy_req *req, fy_resp *resp, fy_err *err);

/* Counts the request in ferry_http_requests_total{method,route,status} and its
 * latency in ferry_http_request_duration_seconds{method,route}.  route is the
 * matched route pattern ("unmatched" for 404s); status 0 means the client left. */
void fy_metrics_http_finished(fy_req *req, int status, double seconds);

/* Scrape-time gauges from the shared database (register once, in one service,
 * so a cluster does not report them several times):
 *   ferry_service_heartbeat_age_seconds{binary,host}  seconds since last heartbeat
 *   ferry_tasks{kind,state}                           queued / running tasks */
void fy_metrics_collect_heartbeats(void);
void fy_metrics_collect_tasks(void);

/* Records a migration that just reached its final status (call once, where the
 * status write succeeded): ferry_migrations_total{type,status},
 * ferry_migration_duration_seconds{type,status} (created -> final) and
 * ferry_migration_bytes_transferred_total{type,kind} (memory, disk), read from
 * the migrations row.  Failures are only logged at debug. */
void fy_metrics_migration_ended(const char *migration_uuid);
