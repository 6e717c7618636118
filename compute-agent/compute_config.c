/* The compute agent's option table and the defaults that depend on other keys. */
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include "compute.h"
#include "fy_log.h"
#include "fy_util.h"

#define O(field) offsetof(compute_config, field)

static const fy_cfg_opt compute_opts[] = {
    {"db_url", FY_CFG_STR, NULL, 0, 0, O(db_url), FY_CFG_REQUIRED, "libpq conninfo / URL"},
    {"service_secret", FY_CFG_SECRET, NULL, 0, 0, O(service_secret), FY_CFG_REQUIRED,
     "inter-service credential (X-Service-Token)"},
    {"host", FY_CFG_STR, NULL, 0, 0, O(host), 0, "this host's name (default gethostname())"},
    {"bind", FY_CFG_STR, "127.0.0.1", 0, 0, O(bind), 0, "listen address"},
    {"port", FY_CFG_INT, "8780", 1, 65535, O(port), 0, "listen port"},
    {"threads", FY_CFG_INT, "4", 1, 256, O(threads), 0, "HTTP worker threads"},
    {"log_level", FY_CFG_STR, "info", 0, 0, O(log_level), 0, "error, warn, info, debug"},
    {"log_format", FY_CFG_STR, "text", 0, 0, O(log_format), 0, "text or json"},
    {"report_interval", FY_CFG_INT, "10", 1, 3600, O(report_interval), 0,
     "heartbeat period (s)"},
    {"service_down_time", FY_CFG_INT, "60", 1, 86400, O(service_down_time), 0,
     "a service whose heartbeat is older is down (s)"},

    {"state_dir", FY_CFG_STR, NULL, 0, 0, O(state_dir), FY_CFG_REQUIRED,
     "agent state: instances/, _base/ image cache, node_uuid"},
    {"instances_path", FY_CFG_STR, NULL, 0, 0, O(instances_path), 0,
     "guest directories (default <state_dir>/instances)"},
    {"driver", FY_CFG_STR, "fake", 0, 0, O(driver), 0, "virt driver: fake"},
    {"vcpus", FY_CFG_INT, "8", 1, 1 << 20, O(vcpus), 0, "vCPUs reported as inventory"},
    {"memory_mb", FY_CFG_INT, "16384", 1, INT_MAX, O(memory_mb), 0, "RAM reported (MiB)"},
    {"disk_gb", FY_CFG_INT, "200", 1, INT_MAX, O(disk_gb), 0, "disk reported (GiB)"},
    {"hypervisor_type", FY_CFG_STR, "fake", 0, 0, O(hypervisor_type), 0, "hypervisor type"},
    {"hypervisor_version", FY_CFG_INT, "1000000", 0, INT_MAX, O(hypervisor_version), 0,
     "hypervisor version, Nova's encoding (1.0.0 = 1000000)"},
    {"cpu_model", FY_CFG_STR, "qemu64", 0, 0, O(cpu_model), 0, "CPU model"},
    {"cpu_allocation_ratio", FY_CFG_DOUBLE, "16.0", 0, 0, O(cpu_allocation_ratio), 0,
     "vCPU overcommit"},
    {"ram_allocation_ratio", FY_CFG_DOUBLE, "1.5", 0, 0, O(ram_allocation_ratio), 0,
     "RAM overcommit"},
    {"disk_allocation_ratio", FY_CFG_DOUBLE, "1.0", 0, 0, O(disk_allocation_ratio), 0,
     "disk overcommit"},
    {"availability_zone", FY_CFG_STR, "nova", 0, 0, O(availability_zone), 0,
     "availability zone of this host"},
    {"advertise_url", FY_CFG_STR, NULL, 0, 0, O(advertise_url), 0,
     "URL other services use to reach this agent (default http://<bind>:<port>)"},
    {"image_url", FY_CFG_STR, "http://127.0.0.1:8774/image", 0, 0, O(image_url), 0,
     "base URL of the image API"},
    {"fake_spawn_delay_ms", FY_CFG_INT, "0", 0, 600000, O(fake_spawn_delay_ms), 0,
     "fake driver: artificial spawn delay (ms)"},
};

static bool unset(const char *s)
{
    return !s || !*s;
}

static bool wildcard_addr(const char *a)
{
    return fy_streq(a, "0.0.0.0") || fy_streq(a, "::") || fy_streq(a, "[::]");
}

static fy_code fill_derived(compute_config *cfg, fy_err *err)
{
    if (unset(cfg->host)) {
        char name[256] = "";
        if (gethostname(name, sizeof(name) - 1) < 0 || !*name)
            return fy_fail(err, FY_E_CONFIG, "host: not set and gethostname() failed");
        free(cfg->host);
        cfg->host = strdup(name);
    }
    if (unset(cfg->instances_path)) {
        free(cfg->instances_path);
        cfg->instances_path = fy_strdup_printf("%s/instances", cfg->state_dir);
    }
    if (unset(cfg->advertise_url)) {
        /* A wildcard bind is not an address peers can dial. */
        const char *addr = wildcard_addr(cfg->bind) ? "127.0.0.1" : cfg->bind;
        bool v6 = strchr(addr, ':') && addr[0] != '[';
        free(cfg->advertise_url);
        cfg->advertise_url = fy_strdup_printf(v6 ? "http://[%s]:%lld" : "http://%s:%lld", addr,
                                              cfg->port);
    }
    if (!cfg->host || !cfg->instances_path || !cfg->advertise_url)
        return fy_fail(err, FY_E_NOMEM, NULL);
    return FY_E_OK;
}

static fy_code check_ratio(const char *key, double v, fy_err *err)
{
    if (!(v > 0.0) || v > 1000.0)
        return fy_fail(err, FY_E_CONFIG, "%s: %g is out of range (0, 1000]", key, v);
    return FY_E_OK;
}

static fy_code validate(const compute_config *cfg, fy_err *err)
{
    if (!fy_streq(cfg->driver, "fake"))
        return fy_fail(err, FY_E_CONFIG,
                       "driver: unknown virt driver '%s' (supported: fake)", cfg->driver);
    if (fy_log_level_from_name(cfg->log_level) < 0)
        return fy_fail(err, FY_E_CONFIG, "log_level: '%s' is not one of error, warn, info, debug",
                       cfg->log_level);
    if (!fy_streq(cfg->log_format, "text") && !fy_streq(cfg->log_format, "json"))
        return fy_fail(err, FY_E_CONFIG, "log_format: '%s' is not one of text, json",
                       cfg->log_format);
    if (cfg->state_dir[0] != '/')
        return fy_fail(err, FY_E_CONFIG, "state_dir: '%s' must be an absolute path",
                       cfg->state_dir);
    if (cfg->instances_path[0] != '/')
        return fy_fail(err, FY_E_CONFIG, "instances_path: '%s' must be an absolute path",
                       cfg->instances_path);
    if (strncmp(cfg->image_url, "http://", 7) != 0 && strncmp(cfg->image_url, "https://", 8) != 0)
        return fy_fail(err, FY_E_CONFIG, "image_url: '%s' is not an http(s) URL", cfg->image_url);
    if (check_ratio("cpu_allocation_ratio", cfg->cpu_allocation_ratio, err) ||
        check_ratio("ram_allocation_ratio", cfg->ram_allocation_ratio, err) ||
        check_ratio("disk_allocation_ratio", cfg->disk_allocation_ratio, err))
        return err->code;
    if (strlen(cfg->host) > 255)
        return fy_fail(err, FY_E_CONFIG, "host: longer than 255 characters");
    return FY_E_OK;
}

fy_code compute_config_load(compute_config *cfg, const char *file, fy_err *err)
{
    memset(cfg, 0, sizeof(*cfg));
    if (fy_config_load(compute_opts, ELEMENTSOF(compute_opts), cfg, file, err))
        return err->code;
    if (fill_derived(cfg, err) || validate(cfg, err))
        return err->code;
    return FY_E_OK;
}

void compute_config_free(compute_config *cfg)
{
    fy_config_free(compute_opts, ELEMENTSOF(compute_opts), cfg);
}

void compute_config_dump(const compute_config *cfg, FILE *out)
{
    fy_config_dump(compute_opts, ELEMENTSOF(compute_opts), cfg, out);
}

void compute_config_help(FILE *out)
{
    for (size_t i = 0; i < ELEMENTSOF(compute_opts); i++) {
        const fy_cfg_opt *o = &compute_opts[i];
        fprintf(out, "  %-22s %s%s%s%s\n", o->key, o->help,
                o->def ? " [default " : "", o->def ? o->def : "", o->def ? "]" : "");
    }
}
