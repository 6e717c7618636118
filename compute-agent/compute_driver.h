/* compute_driver — the virt-driver interface.
 *
 * A driver is a table of operations plus private state.  Every operation is
 * idempotent with respect to the guest's end state: spawning a guest that
 * exists returns its info, destroying a missing guest succeeds.  Operations on
 * one guest are serialised by the driver; different guests run in parallel.
 *
 * Guest info is a JSON object:
 *   {"uuid", "name", "power_state" (Nova's numbers), "state" ("running", ...),
 *    "disk_path", "disk_size", "vifs": [{"port_id", "mac_address"}], "flavor", ...}
 */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include "fy_cleanup.h"
#include "fy_err.h"

/* Nova's power states. */
enum {
    COMPUTE_POWER_NOSTATE = 0,
    COMPUTE_POWER_RUNNING = 1,
    COMPUTE_POWER_PAUSED = 3,
    COMPUTE_POWER_SHUTDOWN = 4,
    COMPUTE_POWER_CRASHED = 6,
    COMPUTE_POWER_SUSPENDED = 7,
};
const char *compute_power_state_name(int power_state);   /* "running", ... */

typedef struct compute_driver_conf {
    const char *instances_path;
    const char *state_dir;       /* per-host state (guest definitions); NULL = parent of
                                  * instances_path */
    long long spawn_delay_ms;    /* fake driver: artificial delay of spawn */
    const char *host;            /* this host's name */
    const char *libvirt_uri;     /* libvirt: the hypervisor's connection URI */
    const char *libvirt_images_dir;   /* libvirt: instances_path as the hypervisor sees it
                                       * (NULL = the same path) */
    bool lm_permit_post_copy;         /* libvirt: force-complete switches to post-copy */
} compute_driver_conf;

/* What spawn needs, already validated by the caller. */
typedef struct compute_spawn_spec {
    const char *uuid;
    long long instance_id;       /* instances.id, for the "instance-%08x" name */
    const json_t *flavor;        /* flavor snapshot (object), copied into the guest */
    long long root_gb;
    const char *image_id;        /* NULL when there is no image */
    const char *image_path;      /* cached image file, NULL when there is no image */
    const json_t *vifs;          /* array of {"port_id", "mac_address"} */
} compute_spawn_spec;

/* What a migration step needs, already validated by the caller.  The same spec
 * serves every step; a step reads the members it needs. */
typedef struct compute_mig_spec {
    const char *migration_uuid;
    const char *uuid;             /* the instance */
    long long instance_id;
    const json_t *flavor;         /* the flavor the guest has after this step */
    const char *image_id;         /* NULL when volume-backed */
    const json_t *vifs;           /* [{"port_id", "mac_address"}] */
    const json_t *volumes;        /* block_device_info: [{"volume_id", "connection_info", ...}] */
    const json_t *migrate_data;   /* accumulated answers of earlier steps (object) */
    const char *block_migration;  /* "true", "false" or "auto" (live) */
    bool shared_storage;          /* cold: the caller knows storage is shared */
    bool same_host;               /* cold: source and destination are this host */
    bool destroy_disks;
    bool power_on;
    const char *host;             /* this host's name (for messages) */
    const char *peer_url;         /* the other agent: where disks are pushed */
    const char *service_secret;   /* credential for the data plane */
    long long disk_available_mb;  /* free space in instances_path */
    long long host_memory_mb;     /* the host's RAM (inventory) */
} compute_mig_spec;

/* How the hypervisor should run a live migration (tunables of the fake). */
typedef struct compute_lm_params {
    long long max_downtime_ms;    /* initial allowed pause at switch-over */
    long long fake_copy_ms;       /* fake: minimum duration of the RAM copy */
    double fake_dirty_rate;       /* fake: dirtying speed as a fraction of bandwidth */
    double fake_bandwidth_mbps;   /* fake: copy speed */
    bool fail_half_way;           /* fake: the job fails once half the RAM is copied */
    long long bandwidth_mibps;    /* hypervisor: migration bandwidth cap, 0 = none */
} compute_lm_params;

typedef enum {
    COMPUTE_LM_RUNNING,
    COMPUTE_LM_COMPLETED,
    COMPUTE_LM_FAILED,
    COMPUTE_LM_CANCELLED,
} compute_lm_state;

typedef struct compute_lm_stats {
    compute_lm_state state;
    long long memory_total, memory_processed, memory_remaining;
    long long disk_total, disk_processed, disk_remaining;
    long long downtime_ms;        /* when completed: the pause at switch-over */
    fy_err error;                 /* when failed */
} compute_lm_stats;

/* A running live migration, owned by the driver until live_migration_release. */
typedef struct compute_lm_job compute_lm_job;

typedef struct compute_driver compute_driver;

typedef struct compute_driver_ops {
    const char *name;
    fy_code (*init)(compute_driver *drv, const compute_driver_conf *conf, fy_err *err);
    void (*cleanup)(compute_driver *drv);
    fy_code (*spawn)(compute_driver *drv, const compute_spawn_spec *spec, json_t **ret_info,
                     fy_err *err);
    /* Stops and removes the guest and its disk; FY_E_OK when absent. */
    fy_code (*destroy)(compute_driver *drv, const char *uuid, fy_err *err);
    fy_code (*power_on)(compute_driver *drv, const char *uuid, json_t **ret_info, fy_err *err);
    fy_code (*power_off)(compute_driver *drv, const char *uuid, json_t **ret_info, fy_err *err);
    /* FY_E_NOT_FOUND when the guest does not exist. */
    fy_code (*get_info)(compute_driver *drv, const char *uuid, json_t **ret_info, fy_err *err);
    /* Array of guest infos, ordered by uuid. */
    fy_code (*list)(compute_driver *drv, json_t **ret_list, fy_err *err);

    /* Live migration.  The checks answer migrate_data members; a refused check
     * is FY_E_MIGRATION_PRECHECK with the reason. */
    fy_code (*check_can_live_migrate_destination)(compute_driver *drv,
                                                  const compute_mig_spec *spec,
                                                  json_t **ret_md, fy_err *err);
    fy_code (*check_can_live_migrate_source)(compute_driver *drv, const compute_mig_spec *spec,
                                             json_t **ret_md, fy_err *err);
    fy_code (*check_can_live_migrate_destination_cleanup)(compute_driver *drv,
                                                          const compute_mig_spec *spec,
                                                          fy_err *err);
    /* Destination: prepares disks, volumes and VIFs, defines the incoming guest. */
    fy_code (*pre_live_migration)(compute_driver *drv, const compute_mig_spec *spec,
                                  json_t **ret_md, fy_err *err);
    /* Source: starts the migration; the caller polls live_migration_stats. */
    fy_code (*live_migration_start)(compute_driver *drv, const compute_mig_spec *spec,
                                    const compute_lm_params *params, compute_lm_job **ret,
                                    fy_err *err);
    fy_code (*live_migration_stats)(compute_driver *drv, compute_lm_job *job,
                                    compute_lm_stats *ret, fy_err *err);
    fy_code (*live_migration_set_max_downtime)(compute_driver *drv, compute_lm_job *job,
                                               long long ms, fy_err *err);
    /* Stops the migration; the guest keeps running on the source. */
    fy_code (*live_migration_abort)(compute_driver *drv, compute_lm_job *job, fy_err *err);
    /* Pauses the guest so the copy converges at once. */
    fy_code (*live_migration_force_complete)(compute_driver *drv, compute_lm_job *job,
                                             fy_err *err);
    void (*live_migration_release)(compute_driver *drv, compute_lm_job *job);
    fy_code (*post_live_migration_source)(compute_driver *drv, const compute_mig_spec *spec,
                                          fy_err *err);
    fy_code (*post_live_migration_at_destination)(compute_driver *drv,
                                                  const compute_mig_spec *spec,
                                                  json_t **ret_info, fy_err *err);
    fy_code (*rollback_live_migration_at_destination)(compute_driver *drv,
                                                      const compute_mig_spec *spec,
                                                      fy_err *err);

    /* Guest devices.  FY_E_NOT_FOUND when the guest does not exist. */
    fy_code (*plug_vifs)(compute_driver *drv, const char *uuid, const json_t *vifs,
                         fy_err *err);
    fy_code (*unplug_vifs)(compute_driver *drv, const char *uuid, fy_err *err);
    fy_code (*attach_volume)(compute_driver *drv, const char *uuid, const json_t *bdm,
                             fy_err *err);
    /* Succeeds when the volume is not attached. */
    fy_code (*detach_volume)(compute_driver *drv, const char *uuid, const char *volume_id,
                             fy_err *err);

    /* Cold migration / resize. */
    fy_code (*migrate_disk_and_power_off)(compute_driver *drv, const compute_mig_spec *spec,
                                          json_t **ret_disk_info, fy_err *err);
    fy_code (*finish_migration)(compute_driver *drv, const compute_mig_spec *spec,
                                json_t **ret_info, fy_err *err);
    fy_code (*confirm_migration)(compute_driver *drv, const compute_mig_spec *spec,
                                 fy_err *err);
    fy_code (*revert_migration_dest)(compute_driver *drv, const compute_mig_spec *spec,
                                     fy_err *err);
    fy_code (*finish_revert_migration)(compute_driver *drv, const compute_mig_spec *spec,
                                       json_t **ret_info, fy_err *err);

    /* At start-up, before any request: brings the database in line with the
     * hypervisor (guests' power states, live-migration jobs this host left
     * running) and records the outcome of those jobs.  NULL when the driver
     * keeps nothing across a restart. */
    fy_code (*reconcile)(compute_driver *drv, const char *host, fy_err *err);
} compute_driver_ops;

struct compute_driver {
    const compute_driver_ops *ops;
    void *priv;
};

extern const compute_driver_ops compute_fake_ops;
extern const compute_driver_ops compute_libvirt_ops;

/* Looks a driver up by name ("fake") and initialises it.  FY_E_CONFIG for an
 * unknown name. */
fy_code compute_driver_new(const char *name, const compute_driver_conf *conf,
                           compute_driver **ret, fy_err *err);
void compute_driver_free(compute_driver *drv);
FY_DEFINE_FREEP(compute_driver, compute_driver_free)
