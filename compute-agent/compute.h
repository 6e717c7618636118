/* compute-agent — the per-host agent: host-local steps through a virt driver,
 * registration of its services / compute_nodes rows, heartbeats. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "compute_driver.h"
#include "fy_config.h"
#include "fy_httpd.h"

typedef struct compute_config {
    char *db_url;
    char *service_secret;
    char *host;
    char *bind;
    long long port;
    long long threads;
    char *log_level;
    char *log_format;
    long long report_interval;
    long long service_down_time;

    char *state_dir;           /* holds instances/ and _base/ */
    char *instances_path;      /* default <state_dir>/instances */
    char *driver;              /* "fake" */
    long long vcpus;
    long long memory_mb;
    long long disk_gb;
    char *hypervisor_type;
    long long hypervisor_version;
    char *cpu_model;
    double cpu_allocation_ratio;
    double ram_allocation_ratio;
    double disk_allocation_ratio;
    char *availability_zone;
    char *advertise_url;       /* default http://<bind>:<port> */
    char *image_url;           /* base URL of the image API (…/image) */
    long long fake_spawn_delay_ms;

    /* Live-migration convergence (docs/migrations.md); PUT /internal/v1/settings
     * overrides them at run time. */
    long long live_migration_downtime_ms;
    long long live_migration_downtime_steps;
    long long live_migration_downtime_delay_s;
    long long live_migration_completion_timeout_s;   /* 0 = none */
    char *live_migration_timeout_action;             /* abort | force_complete */
    long long live_migration_progress_timeout_s;     /* 0 = no stall detection */
    char *fault_inject;                              /* step:action[,step:action...] */
    long long fake_memory_copy_ms;
    double fake_dirty_rate;
    long long fake_bandwidth_mbps;

    /* libvirt driver */
    char *libvirt_uri;                  /* e.g. qemu+tcp://127.0.0.2/system */
    char *libvirt_images_dir;           /* instances_path inside the hypervisor's view */
    long long live_migration_bandwidth_mibps;   /* 0 = unlimited */
    bool live_migration_permit_post_copy;
} compute_config;

/* Loads defaults -> file -> environment, fills derived defaults (host,
 * instances_path, advertise_url) and checks cross-field rules. */
fy_code compute_config_load(compute_config *cfg, const char *file, fy_err *err);
void compute_config_free(compute_config *cfg);
void compute_config_dump(const compute_config *cfg, FILE *out);
/* Prints the option table (for --help). */
void compute_config_help(FILE *out);

/* Everything a request handler needs; req->svc points here. */
typedef struct compute_ctx {
    const compute_config *cfg;
    compute_driver *driver;
    struct compute_image_cache *images;
} compute_ctx;

/* The whole life of the agent: load config, check the schema, serve, register,
 * heartbeat, until SIGTERM/SIGINT (which the caller has blocked).  Returns the
 * process exit status. */
int compute_agent_run(const char *config_file);

extern const fy_route compute_routes[];
extern const size_t compute_nroutes;

/* Registration (compute_register.c).  The node uuid is created once and kept in
 * <state_dir>/node_uuid so a restart keeps the same compute_nodes identity. */
fy_code compute_node_uuid(const char *state_dir, char out[37], fy_err *err);
/* Upserts services and compute_nodes rows for this host; returns the service id. */
fy_code compute_register(const compute_config *cfg, int *ret_service_id, fy_err *err);
