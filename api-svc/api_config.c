/* The API's configuration table. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "api.h"
#include "fy_cleanup.h"
#include "fy_config.h"
#include "fy_util.h"

#define OPT(k, t, d, lo, hi, f, fl, h) {k, t, d, lo, hi, offsetof(api_config, f), fl, h}

static const fy_cfg_opt api_config_table[] = {
    OPT("db_url", FY_CFG_SECRET, NULL, 0, 0, db_url, FY_CFG_REQUIRED, "PostgreSQL URL"),
    OPT("service_secret", FY_CFG_SECRET, NULL, 0, 0, service_secret, FY_CFG_REQUIRED,
        "inter-service credential (X-Service-Token)"),
    OPT("host", FY_CFG_STR, NULL, 0, 0, host, 0, "this host's name (default: hostname)"),
    OPT("bind", FY_CFG_STR, "127.0.0.1", 0, 0, bind, 0, "listen address"),
    OPT("port", FY_CFG_INT, "8774", 0, 65535, port, 0, "listen port"),
    OPT("reuse_port", FY_CFG_BOOL, "false", 0, 0, reuse_port, 0,
        "share bind:port with other ferry-api processes that set it too (SO_REUSEPORT)"),
    OPT("threads", FY_CFG_INT, "8", 1, 256, threads, 0, "HTTP worker threads"),
    OPT("log_level", FY_CFG_STR, "info", 0, 0, log_level, 0, "error, warn, info, debug"),
    OPT("log_format", FY_CFG_STR, "text", 0, 0, log_format, 0, "text or json"),
    OPT("public_url", FY_CFG_STR, "", 0, 0, public_url, 0,
        "base URL for links and the catalog (default http://<bind>:<port>)"),
    OPT("region", FY_CFG_STR, "RegionOne", 0, 0, region, 0, "region name in the catalog"),
    OPT("token_ttl", FY_CFG_INT, "3600", 60, 86400 * 30, token_ttl, 0, "token lifetime (s)"),
    OPT("images_dir", FY_CFG_STR, NULL, 0, 0, images_dir, FY_CFG_REQUIRED,
        "where image files are kept"),
    OPT("max_body", FY_CFG_INT, "1048576", 1024, 64LL << 20, max_body, 0, "JSON body limit"),
    OPT("max_image_size", FY_CFG_INT, "4294967296", 0, 1LL << 42, max_image_size, 0,
        "image upload limit (bytes)"),
    OPT("service_down_time", FY_CFG_INT, "60", 1, 86400, service_down_time, 0,
        "a service whose heartbeat is older is down (s)"),
    OPT("policy_file", FY_CFG_STR, NULL, 0, 0, policy_file, 0, "JSON policy overrides"),
    OPT("volumes_dir", FY_CFG_STR, "", 0, 0, volumes_dir, 0,
        "volume files, on storage every compute host reaches (default <images_dir>/../volumes)"),
};

static fy_code fill_derived(api_config *cfg, fy_err *err)
{
    if (!cfg->host || !*cfg->host) {
        char name[256] = "";
        if (gethostname(name, sizeof name - 1) != 0 || !*name)
            snprintf(name, sizeof name, "localhost");
        free(cfg->host);
        cfg->host = strdup(name);
        if (!cfg->host)
            return fy_fail(err, FY_E_NOMEM, NULL);
    }
    if (!cfg->volumes_dir || !*cfg->volumes_dir) {
        char *dir = fy_strdup_printf("%s/../volumes", cfg->images_dir);
        if (!dir)
            return fy_fail(err, FY_E_NOMEM, NULL);
        free(cfg->volumes_dir);
        cfg->volumes_dir = dir;
    }
    if (cfg->public_url && *cfg->public_url) {
        /* Links are built as public_url + "/v2.1/...": no trailing slash. */
        size_t n = strlen(cfg->public_url);
        while (n > 0 && cfg->public_url[n - 1] == '/')
            cfg->public_url[--n] = '\0';
        return FY_E_OK;
    }
    bool v6 = strchr(cfg->bind, ':') != NULL;
    char *url = fy_strdup_printf("http://%s%s%s:%lld", v6 ? "[" : "", cfg->bind, v6 ? "]" : "",
                                 cfg->port);
    if (!url)
        return fy_fail(err, FY_E_NOMEM, NULL);
    free(cfg->public_url);
    cfg->public_url = url;
    return FY_E_OK;
}

fy_code api_config_load(api_config *cfg, const char *file, fy_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    fy_code rc = fy_config_load(api_config_table, ELEMENTSOF(api_config_table), cfg, file, err);
    if (rc == FY_E_OK)
        rc = fill_derived(cfg, err);
    if (rc != FY_E_OK)
        api_config_free(cfg);
    return rc;
}

void api_config_free(api_config *cfg)
{
    fy_config_free(api_config_table, ELEMENTSOF(api_config_table), cfg);
}

void api_config_dump(const api_config *cfg, FILE *out)
{
    fy_config_dump(api_config_table, ELEMENTSOF(api_config_table), cfg, out);
}
