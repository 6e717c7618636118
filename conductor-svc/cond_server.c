/* The conductor's HTTP endpoints and its life cycle: config, database, HTTP,
 * registration with heartbeats, the task engine; SIGTERM stops it in reverse. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cond.h"
#include "cond_cold.h"
#include "cond_fault.h"
#include "fy_cleanup.h"
#include "fy_httpc.h"
#include "fy_json.h"
#include "fy_health.h"
#include "fy_log.h"
#include "fy_metrics_http.h"
#include "fy_service.h"
#include "fy_util.h"

#define COND_MAX_BODY (64 * 1024)

const fy_route cond_routes[] = {
    {"GET", "/healthz", cond_healthz, FY_R_PUBLIC},
    {"GET", "/readyz", fy_health_handler, FY_R_PUBLIC},
    {"GET", "/metrics", fy_metrics_handler, FY_R_PUBLIC},
    {"GET", "/internal/v1/tasks/{}", cond_task_show, FY_R_INTERNAL},
    {"GET", "/internal/v1/faults", cond_fault_handle_get, FY_R_INTERNAL},
    {"PUT", "/internal/v1/faults", cond_fault_handle_put, FY_R_INTERNAL},
    {"DELETE", "/internal/v1/faults", cond_fault_handle_delete, FY_R_INTERNAL},
};
const size_t cond_nroutes = ELEMENTSOF(cond_routes);

fy_code cond_healthz(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req;
    json_t *body = json_pack("{s:s}", "status", "ok");
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

static json_t *col_json(PGresult *res, const char *col)
{
    const char *v = fy_db_str(res, 0, col);
    return v ? json_string(v) : json_null();
}

static json_t *task_json(PGresult *res)
{
    json_error_t jerr;
    const char *params = fy_db_str(res, 0, "params");
    json_t *p = params ? json_loads(params, 0, &jerr) : NULL;
    static const char *const cols[] = {"uuid",  "kind",  "instance_uuid", "migration_uuid",
                                       "request_id", "state", "step", "owner",
                                       "lease_until", "error", "created_at", "updated_at"};
    json_t *o = json_object();
    if (!o) {
        json_decref(p);
        return NULL;
    }
    for (size_t i = 0; i < ELEMENTSOF(cols); i++)
        json_object_set_new(o, cols[i], col_json(res, cols[i]));
    json_object_set_new(o, "attempts", json_integer(fy_db_ll(res, 0, "attempts", 0)));
    json_object_set_new(o, "params", p ? p : json_object());
    return o;
}

fy_code cond_task_show(fy_req *req, fy_resp *resp, fy_err *err)
{
    const char *uuid = req->params[0];
    if (!fy_uuid_valid(uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid task id: not a UUID.");
    const char *p[] = {uuid};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = fy_db_exec_one(&cond_sql_task_get, p, &res, err);
    if (rc == FY_E_NOT_FOUND)
        return fy_fail(err, FY_E_NOT_FOUND, "Task %s could not be found.", uuid);
    if (rc)
        return rc;
    json_t *body = json_pack("{s:o}", "task", task_json(res));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

static const char *parse_args(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"log-format", required_argument, NULL, 'L'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c') {
            file = optarg;
            continue;
        }
        if (c == 'L') {
            setenv("FERRY_LOG_FORMAT", optarg, 1); /* the config loader applies env last */
            continue;
        }
        fprintf(stderr, "usage: %s [--config FILE] [--log-format text|json]\n", argv[0]);
        exit(c == 'h' ? 0 : 2);
    }
    return file;
}

static fy_code server_start(cond_ctx *ctx, fy_httpd **ret, fy_err *err)
{
    fy_httpd_conf conf = {
        .bind_addr = ctx->cfg.bind,
        .port = (int)ctx->cfg.port,
        .threads = (unsigned)ctx->cfg.threads,
        .max_body = COND_MAX_BODY,
        .routes = cond_routes,
        .nroutes = cond_nroutes,
        .svc = ctx,
        .service_secret = ctx->cfg.service_secret,
        .finished = fy_metrics_http_finished,
    };
    fy_metrics_collect_tasks();
    return fy_httpd_start(&conf, ret, err);
}

static int run(cond_ctx *ctx)
{
    const cond_config *cfg = &ctx->cfg;
    fy_err err = {0};
    fy_httpd *d = NULL;
    cond_engine *eng = NULL;
    cond_autoconfirm *ac = NULL;
    int service_id = 0;

    if (fy_db_init(cfg->db_url, "ferry-conductor", &err) || fy_schema_check(&err) ||
        server_start(ctx, &d, &err) ||
        fy_service_register(cfg->host, "ferry-conductor", cfg->advertise_url, "internal",
                            &service_id, &err) ||
        fy_service_heartbeat_start(service_id, (int)cfg->report_interval, &err) ||
        cond_engine_start(ctx, &eng, &err) || cond_autoconfirm_start(ctx, &ac, &err))
        goto fail;
    fy_info("ferry-conductor on %s (scheduler %s)", cfg->advertise_url, cfg->scheduler_url);

    int sig = fy_signals_wait();
    fy_info("signal %d: stopping; running tasks finish or are released", sig);
    cond_autoconfirm_stop(ac);
    cond_engine_stop(eng);
    fy_service_heartbeat_stop();
    fy_httpd_stop(d);
    fy_db_shutdown();
    return 0;
fail:
    fy_error("start-up failed: %s: %s", fy_code_name(err.code), err.msg);
    cond_autoconfirm_stop(ac);
    cond_engine_stop(eng);
    fy_service_heartbeat_stop();
    fy_httpd_stop(d);
    fy_db_shutdown();
    return 1;
}

int cond_main(int argc, char **argv)
{
    const char *file = parse_args(argc, argv);
    cond_ctx ctx = {0};
    fy_err err = {0};

    fy_signals_block();
    if (cond_config_load(&ctx.cfg, file, &err)) {
        fprintf(stderr, "ferry-conductor: %s\n", err.msg);
        cond_config_free(&ctx.cfg);
        return 2;
    }
    fy_log_init("ferry-conductor", fy_log_level_from_name(ctx.cfg.log_level),
                strcmp(ctx.cfg.log_format, "json") == 0);
    fy_httpc_global_init();
    int status = run(&ctx);
    cond_config_free(&ctx.cfg);
    return status;
}
