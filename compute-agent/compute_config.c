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
    {"driver", FY_CFG_STR, "fake", 0, 0, O(driver), 0, "virt driver: fake or libvirt"},
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
    {"live_migration_downtime_ms", FY_CFG_INT, "500", 10, 3600000,
     O(live_migration_downtime_ms), 0, "live migration: largest pause at switch-over (ms)"},
    {"live_migration_downtime_steps", FY_CFG_INT, "10", 1, 1000,
     O(live_migration_downtime_steps), 0, "live migration: steps of the downtime ramp"},
    {"live_migration_downtime_delay_s", FY_CFG_INT, "75", 0, 86400,
     O(live_migration_downtime_delay_s), 0, "live migration: seconds between ramp steps"},
    {"live_migration_completion_timeout_s", FY_CFG_INT, "800", 0, 864000,
     O(live_migration_completion_timeout_s), 0,
     "live migration: act after this many seconds (0 = never)"},
    {"live_migration_timeout_action", FY_CFG_STR, "abort", 0, 0,
     O(live_migration_timeout_action), 0, "on completion timeout: abort or force_complete"},
    {"live_migration_progress_timeout_s", FY_CFG_INT, "0", 0, 864000,
     O(live_migration_progress_timeout_s), 0,
     "live migration: abort when remaining data has not shrunk for this long (0 = never)"},
    {"fault_inject", FY_CFG_STR, "", 0, 0, O(fault_inject), 0,
     "testing: faults armed at start, step:action[,step:action...]"},
    {"fake_memory_copy_ms", FY_CFG_INT, "0", 0, 3600000, O(fake_memory_copy_ms), 0,
     "fake driver: minimum duration of a live migration's RAM copy (ms)"},
    {"fake_dirty_rate", FY_CFG_DOUBLE, "0.0", 0, 0, O(fake_dirty_rate), 0,
     "fake driver: guest dirtying speed as a fraction of the bandwidth"},
    {"fake_bandwidth_mbps", FY_CFG_INT, "1000", 1, 100000000, O(fake_bandwidth_mbps), 0,
     "fake driver: live-migration bandwidth (Mbit/s)"},
    {"libvirt_uri", FY_CFG_STR, "qemu:///system", 0, 0, O(libvirt_uri), 0,
     "libvirt driver: the hypervisor's connection URI"},
    {"libvirt_images_dir", FY_CFG_STR, NULL, 0, 0, O(libvirt_images_dir), 0,
     "libvirt driver: instances_path as the hypervisor sees it (default instances_path)"},
    {"live_migration_bandwidth_mibps", FY_CFG_INT, "0", 0, 1000000,
     O(live_migration_bandwidth_mibps), 0, "libvirt driver: migration bandwidth cap (MiB/s, 0 = none)"},
    {"live_migration_permit_post_copy", FY_CFG_BOOL, "false", 0, 0,
     O(live_migration_permit_post_copy), 0, "libvirt driver: force-complete switches to post-copy"},
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
    if (!fy_streq(cfg->driver, "fake") && !fy_streq(cfg->driver, "libvirt"))
        return fy_fail(err, FY_E_CONFIG,
                       "driver: unknown virt driver '%s' (supported: fake, libvirt)", cfg->driver);
    if (!unset(cfg->libvirt_images_dir) && cfg->libvirt_images_dir[0] != '/')
        return fy_fail(err, FY_E_CONFIG, "libvirt_images_dir: '%s' must be an absolute path",
                       cfg->libvirt_images_dir);
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
    if (!fy_streq(cfg->live_migration_timeout_action, "abort") &&
        !fy_streq(cfg->live_migration_timeout_action, "force_complete"))
        return fy_fail(err, FY_E_CONFIG,
                       "live_migration_timeout_action: '%s' is not one of abort, force_complete",
                       cfg->live_migration_timeout_action);
    if (!(cfg->fake_dirty_rate >= 0.0) || cfg->fake_dirty_rate > 100.0)
        return fy_fail(err, FY_E_CONFIG, "fake_dirty_rate: %g is out of range [0, 100]",
                       cfg->fake_dirty_rate);
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
