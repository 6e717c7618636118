/* sched_config — the scheduler's option table. */
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "fy_log.h"
#include "fy_util.h"
#include "sched.h"

#define O(f) offsetof(sched_config, f)

const fy_cfg_opt sched_config_table[] = {
    {"db_url", FY_CFG_STR, NULL, 0, 0, O(db_url), FY_CFG_REQUIRED, "libpq conninfo / URL"},
    {"service_secret", FY_CFG_SECRET, NULL, 0, 0, O(service_secret), FY_CFG_REQUIRED,
     "inter-service credential (X-Service-Token)"},
    {"host", FY_CFG_STR, NULL, 0, 0, O(host), 0, "this service's host name (default gethostname())"},
    {"bind", FY_CFG_STR, "127.0.0.1", 0, 0, O(bind), 0, "listen address"},
    {"port", FY_CFG_INT, "8775", 0, 65535, O(port), 0, "listen port (0 = any free port)"},
    {"reuse_port", FY_CFG_BOOL, "false", 0, 0, O(reuse_port), 0,
     "share bind:port with other ferry-scheduler processes that set it too (SO_REUSEPORT)"},
    {"threads", FY_CFG_INT, "4", 1, 256, O(threads), 0, "HTTP worker threads"},
    {"log_level", FY_CFG_STR, "info", 0, 0, O(log_level), 0, "error, warn, info, debug"},
    {"log_format", FY_CFG_STR, "text", 0, 0, O(log_format), 0, "text or json"},
    {"report_interval", FY_CFG_INT, "10", 1, 3600, O(report_interval), 0,
     "heartbeat period (s)"},
    {"service_down_time", FY_CFG_INT, "60", 1, 86400, O(service_down_time), 0,
     "a compute host whose heartbeat is older is down (s)"},
    {"weigher", FY_CFG_STR, "spread", 0, 0, O(weigher), 0,
     "spread (most free RAM first) or pack (least free RAM first)"},
    {"max_candidates", FY_CFG_INT, "64", 1, 10000, O(max_candidates), 0,
     "hosts fetched per request after the coarse filter in SQL"},
};
const size_t sched_config_table_len = sizeof(sched_config_table) / sizeof(sched_config_table[0]);

static fy_code default_host(sched_config *cfg, fy_err *err)
{
    if (cfg->host && *cfg->host)
        return FY_E_OK;
    char name[HOST_NAME_MAX + 1] = "";
    if (gethostname(name, sizeof(name)) != 0 || !*name)
        return fy_fail(err, FY_E_CONFIG, "host: not set and gethostname() failed");
    name[sizeof(name) - 1] = '\0';
    char *copy = strdup(name);
    if (!copy)
        return fy_fail(err, FY_E_NOMEM, NULL);
    free(cfg->host);
    cfg->host = copy;
    return FY_E_OK;
}

fy_code sched_config_load(const char *file, sched_config *cfg, fy_err *err)
{
    fy_code rc = fy_config_load(sched_config_table, sched_config_table_len, cfg, file, err);
    if (rc != FY_E_OK)
        return rc;
    rc = default_host(cfg, err);
    if (rc != FY_E_OK)
        return rc;
    sched_weigher w;
    if (!sched_weigher_from_name(cfg->weigher, &w))
        return fy_fail(err, FY_E_CONFIG, "weigher: '%.64s' is not one of spread, pack",
                       cfg->weigher ? cfg->weigher : "");
    if (fy_log_level_from_name(cfg->log_level) < 0)
        return fy_fail(err, FY_E_CONFIG, "log_level: '%.64s' is not one of error, warn, info, debug",
                       cfg->log_level ? cfg->log_level : "");
    if (!fy_streq(cfg->log_format, "text") && !fy_streq(cfg->log_format, "json"))
        return fy_fail(err, FY_E_CONFIG, "log_format: '%.64s' is not one of text, json",
                       cfg->log_format ? cfg->log_format : "");
    return FY_E_OK;
}

void sched_config_free(sched_config *cfg)
{
    fy_config_free(sched_config_table, sched_config_table_len, cfg);
}
