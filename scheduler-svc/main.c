/* ferry-scheduler — chooses destination hosts and claims their resources. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fy_db.h"
#include "fy_httpc.h"
#include "fy_log.h"
#include "fy_service.h"
#include "fy_util.h"
#include "sched.h"

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

/* Where other services reach us: the bind address unless it is a wildcard. */
static void own_url(const sched_config *cfg, int port, char *out, size_t size)
{
    const char *addr = cfg->bind;
    if (!addr || !*addr || strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0)
        addr = cfg->host;
    snprintf(out, size, strchr(addr, ':') ? "http://[%s]:%d" : "http://%s:%d", addr, port);
}

static int run(sched_ctx *ctx)
{
    const sched_config *cfg = ctx->cfg;
    fy_err err = { 0 };
    fy_httpd *d = NULL;
    int service_id = 0;
    char url[512];

    if (sched_policy_from_config(cfg, &ctx->policy, &err) != FY_E_OK ||
        fy_db_init(cfg->db_url, "ferry-scheduler", &err) != FY_E_OK ||
        fy_schema_check(&err) != FY_E_OK || sched_server_start(ctx, &d, &err) != FY_E_OK)
        goto fail;
    own_url(cfg, fy_httpd_port(d), url, sizeof(url));
    if (fy_service_register(cfg->host, "ferry-scheduler", url, "internal", &service_id, &err) !=
            FY_E_OK ||
        fy_service_heartbeat_start(service_id, (int)cfg->report_interval, &err) != FY_E_OK)
        goto fail;
    fy_info("ferry-scheduler on %s (weigher %s, max_candidates %d)", url,
            sched_weigher_name(ctx->policy.weigher), ctx->policy.max_candidates);

    int sig = fy_signals_wait();
    fy_info("signal %d: stopping", sig);
    fy_service_heartbeat_stop();
    fy_httpd_stop(d);
    fy_db_shutdown();
    return 0;
fail:
    fy_error("start-up failed: %s: %s", fy_code_name(err.code), err.msg);
    fy_httpd_stop(d);
    fy_db_shutdown();
    return 1;
}

int main(int argc, char **argv)
{
    const char *file = parse_args(argc, argv);
    sched_config cfg = { 0 };
    fy_err err = { 0 };

    fy_signals_block();
    if (sched_config_load(file, &cfg, &err) != FY_E_OK) {
        fprintf(stderr, "ferry-scheduler: %s\n", err.msg);
        sched_config_free(&cfg);
        return 2;
    }
    fy_log_init("ferry-scheduler", fy_log_level_from_name(cfg.log_level),
                strcmp(cfg.log_format, "json") == 0);
    fy_httpc_global_init();

    sched_ctx ctx = { .cfg = &cfg };
    int status = run(&ctx);
    sched_config_free(&cfg);
    return status;
}
