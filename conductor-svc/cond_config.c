/* The conductor's option table and the defaults that depend on other keys. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cond.h"
#include "fy_cleanup.h"
#include "fy_log.h"
#include "fy_util.h"

#define O(field) offsetof(cond_config, field)

static const fy_cfg_opt cond_opts[] = {
    {"db_url", FY_CFG_STR, NULL, 0, 0, O(db_url), FY_CFG_REQUIRED, "libpq conninfo / URL"},
    {"service_secret", FY_CFG_SECRET, NULL, 0, 0, O(service_secret), FY_CFG_REQUIRED,
     "inter-service credential (X-Service-Token)"},
    {"host", FY_CFG_STR, NULL, 0, 0, O(host), 0, "this host's name (default gethostname())"},
    {"bind", FY_CFG_STR, "127.0.0.1", 0, 0, O(bind), 0, "listen address"},
    {"port", FY_CFG_INT, "8776", 1, 65535, O(port), 0, "listen port"},
    {"threads", FY_CFG_INT, "4", 1, 256, O(threads), 0, "HTTP worker threads"},
    {"log_level", FY_CFG_STR, "info", 0, 0, O(log_level), 0, "error, warn, info, debug"},
    {"log_format", FY_CFG_STR, "text", 0, 0, O(log_format), 0, "text or json"},
    {"report_interval", FY_CFG_INT, "10", 1, 3600, O(report_interval), 0,
     "heartbeat period (s)"},
    {"service_down_time", FY_CFG_INT, "60", 1, 86400, O(service_down_time), 0,
     "a service whose heartbeat is older is down (s)"},
    /* A live migration holds its worker while the copy runs: room for many in flight. */
    {"workers", FY_CFG_INT, "16", 1, 256, O(workers), 0, "task worker threads"},
    {"lease_seconds", FY_CFG_INT, "15", 3, 3600, O(lease_seconds), 0,
     "task lease; another conductor resumes a task whose lease expired (s)"},
    {"scheduler_url", FY_CFG_STR, NULL, 0, 0, O(scheduler_url), FY_CFG_REQUIRED,
     "base URL of ferry-scheduler, e.g. http://127.0.0.1:8775"},
    {"max_attempts", FY_CFG_INT, "3", 1, 1 + COND_MAX_ALTERNATES, O(max_attempts), 0,
     "hosts tried for one build before it fails"},
    {"live_migration_retries", FY_CFG_INT, "3", 1, 100, O(live_migration_retries), 0,
     "candidate hosts a live migration without a given host tries"},
    {"live_migration_step_timeout_s", FY_CFG_INT, "120", 1, 86400,
     O(live_migration_step_timeout_s), 0, "timeout of one live-migration agent call (s)"},
    {"allow_resize_to_same_host", FY_CFG_BOOL, "false", 0, 0, O(allow_resize_to_same_host), 0,
     "a cold migration or resize may pick the source host"},
    {"resize_confirm_window", FY_CFG_INT, "0", 0, 31536000, O(resize_confirm_window), 0,
     "confirm resized servers automatically after this many seconds (0 = never)"},
    {"advertise_url", FY_CFG_STR, NULL, 0, 0, O(advertise_url), 0,
     "URL other services use to reach this conductor (default http://<bind>:<port>)"},
};

static bool unset(const char *s)
{
    return !s || !*s;
}

static bool wildcard_addr(const char *a)
{
    return fy_streq(a, "0.0.0.0") || fy_streq(a, "::") || fy_streq(a, "[::]");
}

static fy_code fill_derived(cond_config *cfg, fy_err *err)
{
    if (unset(cfg->host)) {
        char name[256] = "";
        if (gethostname(name, sizeof(name) - 1) < 0 || !*name)
            return fy_fail(err, FY_E_CONFIG, "host: not set and gethostname() failed");
        free(cfg->host);
        cfg->host = strdup(name);
    }
    if (unset(cfg->advertise_url)) {
        /* A wildcard bind is not an address peers can dial. */
        const char *addr = wildcard_addr(cfg->bind) ? "127.0.0.1" : cfg->bind;
        bool v6 = strchr(addr, ':') && addr[0] != '[';
        free(cfg->advertise_url);
        cfg->advertise_url = fy_strdup_printf(v6 ? "http://[%s]:%lld" : "http://%s:%lld", addr,
                                              cfg->port);
    }
    if (!cfg->host || !cfg->advertise_url)
        return fy_fail(err, FY_E_NOMEM, NULL);
    /* The scheduler paths are appended to this base. */
    size_t n = strlen(cfg->scheduler_url);
    while (n > 0 && cfg->scheduler_url[n - 1] == '/')
        cfg->scheduler_url[--n] = '\0';
    return FY_E_OK;
}

static bool http_url(const char *u)
{
    return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0;
}

static fy_code validate(const cond_config *cfg, fy_err *err)
{
    if (fy_log_level_from_name(cfg->log_level) < 0)
        return fy_fail(err, FY_E_CONFIG, "log_level: '%s' is not one of error, warn, info, debug",
                       cfg->log_level);
    if (!fy_streq(cfg->log_format, "text") && !fy_streq(cfg->log_format, "json"))
        return fy_fail(err, FY_E_CONFIG, "log_format: '%s' is not one of text, json",
                       cfg->log_format);
    if (!http_url(cfg->scheduler_url))
        return fy_fail(err, FY_E_CONFIG, "scheduler_url: '%s' is not an http(s) URL",
                       cfg->scheduler_url);
    if (strlen(cfg->host) > 200)
        return fy_fail(err, FY_E_CONFIG, "host: longer than 200 characters");
    return FY_E_OK;
}

fy_code cond_config_load(cond_config *cfg, const char *file, fy_err *err)
{
    memset(cfg, 0, sizeof(*cfg));
    if (fy_config_load(cond_opts, ELEMENTSOF(cond_opts), cfg, file, err))
        return err->code;
    if (fill_derived(cfg, err) || validate(cfg, err))
        return err->code;
    return FY_E_OK;
}

void cond_config_free(cond_config *cfg)
{
    fy_config_free(cond_opts, ELEMENTSOF(cond_opts), cfg);
}
