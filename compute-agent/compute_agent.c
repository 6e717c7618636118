/* The agent's life cycle, from configuration to a drained shutdown. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "compute.h"
#include "compute_fault.h"
#include "compute_image.h"
#include "compute_mig.h"
#include "compute_reconcile.h"
#include "fy_db.h"
#include "fy_httpc.h"
#include "fy_log.h"
#include "fy_metrics_http.h"
#include "fy_service.h"
#include "fy_util.h"

/* How long start-up waits for the database before giving up. */
#define DB_WAIT_MS 30000
#define MAX_BODY (1024 * 1024)
/* A transferred disk: the largest root disk a flavor may ask for (16 TiB). */
#define MAX_UPLOAD ((size_t)16384 << 30)

/* Set when a stop signal arrives during start-up: that is a clean exit. */
static bool stopped_early;

/* Sleeps up to ms, returning early (true) when SIGTERM/SIGINT arrives; they are
 * blocked, so a signal sent during start-up is not lost. */
static bool stop_requested_within(long ms)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    if (sigtimedwait(&set, NULL, &ts) > 0)
        stopped_early = true;
    return stopped_early;
}

typedef fy_code (*db_step)(const compute_config *cfg, void *arg, fy_err *err);

/* A database not reachable yet, or not synced yet, is worth waiting for. */
static bool worth_waiting(fy_code rc)
{
    if (rc == FY_E_UNAVAILABLE || rc == FY_E_TIMEOUT || rc == FY_E_DB_RETRY)
        return true;
    if (rc == FY_E_SCHEMA) {
        int cur = -1;
        fy_err e2 = {0};
        return fy_schema_current(&cur, &e2) == FY_E_OK && cur == 0;
    }
    return false;
}

/* Runs step until it succeeds, fails for good, DB_WAIT_MS pass, or a stop
 * signal comes (FY_E_UNAVAILABLE "interrupted"). */
static fy_code with_db_wait(const char *what, db_step step, const compute_config *cfg,
                            void *arg, fy_err *err)
{
    uint64_t deadline = fy_now_ms() + DB_WAIT_MS;
    bool warned = false;
    for (;;) {
        fy_err_clear(err);
        fy_code rc = step(cfg, arg, err);
        if (rc == FY_E_OK || !worth_waiting(rc) || fy_now_ms() >= deadline)
            return rc ? fy_err_prefix(err, "%s", what) : FY_E_OK;
        if (!warned) {
            fy_warn("%s: %s; retrying for up to %d s", what, err->msg, DB_WAIT_MS / 1000);
            warned = true;
        }
        if (stop_requested_within(1000))
            return fy_fail(err, FY_E_UNAVAILABLE, "%s: interrupted by a stop signal", what);
    }
}

static fy_code schema_step(const compute_config *cfg, void *arg, fy_err *err)
{
    (void)cfg;
    (void)arg;
    return fy_schema_check(err);
}

static fy_code register_step(const compute_config *cfg, void *arg, fy_err *err)
{
    return compute_register(cfg, arg, err);
}

static fy_code start_server(const compute_config *cfg, compute_ctx *ctx, fy_httpd **ret,
                            fy_err *err)
{
    fy_httpd_conf hc = {
        .bind_addr = cfg->bind,
        .port = (int)cfg->port,
        .threads = (unsigned)cfg->threads,
        .max_body = MAX_BODY,
        .max_upload = MAX_UPLOAD,
        .upload_dir = cfg->state_dir,
        .routes = compute_routes,
        .nroutes = compute_nroutes,
        .svc = ctx,
        .service_secret = cfg->service_secret,
        .finished = fy_metrics_http_finished,
    };
    return fy_httpd_start(&hc, ret, err);
}

static fy_code make_ctx(const compute_config *cfg, compute_ctx *ctx, fy_err *err)
{
    compute_driver_conf dc = {
        .instances_path = cfg->instances_path,
        .state_dir = cfg->state_dir,
        .spawn_delay_ms = cfg->fake_spawn_delay_ms,
        .host = cfg->host,
        .libvirt_uri = cfg->libvirt_uri,
        .libvirt_images_dir = cfg->libvirt_images_dir,
        .lm_permit_post_copy = cfg->live_migration_permit_post_copy,
    };
    _cleanup_free_ char *base = fy_strdup_printf("%s/_base", cfg->state_dir);
    if (!base)
        return fy_fail(err, FY_E_NOMEM, NULL);
    ctx->cfg = cfg;
    compute_settings_init(cfg);
    if (compute_fault_init(cfg->fault_inject, err))
        return err->code;
    if (compute_driver_new(cfg->driver, &dc, &ctx->driver, err))
        return fy_err_prefix(err, "virt driver");
    /* The driver settles what it can tell from the hypervisor first; whatever
     * is still marked running after that cannot be running any more. */
    if (ctx->driver->ops->reconcile && ctx->driver->ops->reconcile(ctx->driver, cfg->host, err))
        return fy_err_prefix(err, "reconciling with the hypervisor");
    if (compute_reconcile_at_start(ctx->driver, cfg->host, err))
        return fy_err_prefix(err, "live migration jobs");
    if (compute_image_cache_new(base, cfg->image_url, cfg->service_secret, &ctx->images, err))
        return fy_err_prefix(err, "image cache");
    return FY_E_OK;
}

static fy_code serve(const compute_config *cfg, fy_err *err)
{
    compute_ctx ctx = {0};
    fy_httpd *httpd = NULL;
    int service_id = 0;
    fy_code rc;
    if ((rc = fy_db_init(cfg->db_url, "ferry-compute", err)) ||
        (rc = with_db_wait("database schema", schema_step, cfg, NULL, err)) ||
        (rc = make_ctx(cfg, &ctx, err)) || (rc = start_server(cfg, &ctx, &httpd, err)) ||
        (rc = with_db_wait("registration", register_step, cfg, &service_id, err)) ||
        (rc = fy_service_heartbeat_start(service_id, (int)cfg->report_interval, err)))
        goto out;

    fy_info("compute agent for host %s listening on %s (port %d), driver %s", cfg->host,
            cfg->advertise_url, fy_httpd_port(httpd), cfg->driver);
    int sig = fy_signals_wait();
    fy_info("signal %d: stopping", sig);
out:
    fy_httpd_stop(httpd);
    compute_live_job_shutdown();
    fy_service_heartbeat_stop();
    compute_image_cache_free(ctx.images);
    compute_driver_free(ctx.driver);
    fy_db_shutdown();
    return rc;
}

int compute_agent_run(const char *config_file)
{
    compute_config cfg;
    fy_err err = {0};
    if (compute_config_load(&cfg, config_file, &err)) {
        fprintf(stderr, "ferry-compute: configuration: %s\n", err.msg);
        compute_config_free(&cfg);
        return 1;
    }
    fy_log_init("ferry-compute", fy_log_level_from_name(cfg.log_level),
                fy_streq(cfg.log_format, "json"));
    fy_httpc_global_init();
    fy_code rc = serve(&cfg, &err);
    if (rc && stopped_early) {
        fy_info("stopped during start-up");
        rc = FY_E_OK;
    } else if (rc) {
        fy_error("ferry-compute: %s", err.msg);
    }
    compute_config_free(&cfg);
    return rc ? 1 : 0;
}
