/* compute_fake_priv — the fake driver's state and file helpers, shared by its
 * guest operations (compute_fake.c) and its migration operations
 * (compute_fake_mig.c).
 *
 * A guest is its definition state_dir/domains/<uuid>.json (per host) plus its
 * directory instances_path/<uuid>/ holding the disk (instances_path may be
 * shared between hosts).  The definition is written last and atomically, so
 * its presence means the guest exists. */
#pragma once
#include <jansson.h>
#include <pthread.h>
#include "compute_driver.h"

#define FAKE_LOCK_STRIPES 64

typedef struct fake_priv {
    char *instances_path;
    char *domains_path;
    long long spawn_delay_ms;
    pthread_mutex_t locks[FAKE_LOCK_STRIPES];
} fake_priv;

/* Operations on one guest are serialised by a lock picked by uuid hash. */
pthread_mutex_t *fake_lock_guest(fake_priv *p, const char *uuid);
void fake_unlockp(pthread_mutex_t **m);
#define _cleanup_fake_unlock_ _cleanup_(fake_unlockp)

fy_code fake_check_uuid(const char *uuid, fy_err *err);
/* instances_path/<uuid>[suffix][/file]; NULL on ENOMEM. */
char *fake_guest_path(const fake_priv *p, const char *uuid, const char *file);
char *fake_guest_path_sfx(const fake_priv *p, const char *uuid, const char *suffix,
                          const char *file);
/* domains_path/<uuid><suffix>.json, suffix "" for the live definition. */
char *fake_domain_path(const fake_priv *p, const char *uuid, const char *suffix);

/* FY_E_NOT_FOUND when the definition does not exist. */
fy_code fake_read_domain(const fake_priv *p, const char *uuid, const char *suffix, json_t **ret,
                         fy_err *err);
fy_code fake_write_domain(const fake_priv *p, const char *uuid, const char *suffix,
                          const json_t *dom, fy_err *err);
/* Removes a definition; FY_E_OK when absent. */
fy_code fake_remove_domain(const fake_priv *p, const char *uuid, const char *suffix,
                           fy_err *err);
/* The info object every operation answers with. */
fy_code fake_make_info(const fake_priv *p, const char *uuid, const json_t *dom, json_t **ret,
                       fy_err *err);
/* Removes a directory of plain files; FY_E_OK when absent. */
fy_code fake_remove_dir(const char *dir, fy_err *err);
/* A fresh definition (power_state running, no volumes). */
json_t *fake_new_domain(const char *uuid, long long instance_id, const json_t *flavor,
                        const char *image_id, long long root_gb, const json_t *vifs);

/* The fake's live-migration model: where the RAM copy stands wall_ms after it
 * began.  The copy runs at bandwidth while the guest dirties memory at
 * dirty × bandwidth; copy_ms stretches one pass over the RAM to that much wall
 * time (0: the fake does not wait). */
void fake_lm_sim(long long total, double bw_mbps, double dirty, long long copy_ms,
                 double wall_ms, long long *processed, long long *remaining);
/* Milliseconds needed to copy bytes at bw_mbps (rounded up). */
long long fake_lm_copy_ms(long long bytes, double bw_mbps);

/* Migration operations (compute_fake_mig.c). */
fy_code fake_check_dest(compute_driver *drv, const compute_mig_spec *spec, json_t **ret,
                        fy_err *err);
fy_code fake_check_source(compute_driver *drv, const compute_mig_spec *spec, json_t **ret,
                          fy_err *err);
fy_code fake_check_dest_cleanup(compute_driver *drv, const compute_mig_spec *spec, fy_err *err);
fy_code fake_pre_live_migration(compute_driver *drv, const compute_mig_spec *spec, json_t **ret,
                                fy_err *err);
fy_code fake_lm_start(compute_driver *drv, const compute_mig_spec *spec,
                      const compute_lm_params *params, compute_lm_job **ret, fy_err *err);
fy_code fake_lm_stats(compute_driver *drv, compute_lm_job *job, compute_lm_stats *ret,
                      fy_err *err);
fy_code fake_lm_set_downtime(compute_driver *drv, compute_lm_job *job, long long ms,
                             fy_err *err);
fy_code fake_lm_abort(compute_driver *drv, compute_lm_job *job, fy_err *err);
fy_code fake_lm_force(compute_driver *drv, compute_lm_job *job, fy_err *err);
void fake_lm_release(compute_driver *drv, compute_lm_job *job);
fy_code fake_post_lm_source(compute_driver *drv, const compute_mig_spec *spec, fy_err *err);
fy_code fake_post_lm_dest(compute_driver *drv, const compute_mig_spec *spec, json_t **ret,
                          fy_err *err);
fy_code fake_rollback_lm_dest(compute_driver *drv, const compute_mig_spec *spec, fy_err *err);
fy_code fake_plug_vifs(compute_driver *drv, const char *uuid, const json_t *vifs, fy_err *err);
fy_code fake_unplug_vifs(compute_driver *drv, const char *uuid, fy_err *err);
fy_code fake_attach_volume(compute_driver *drv, const char *uuid, const json_t *bdm,
                           fy_err *err);
fy_code fake_detach_volume(compute_driver *drv, const char *uuid, const char *volume_id,
                           fy_err *err);
fy_code fake_migrate_disk(compute_driver *drv, const compute_mig_spec *spec, json_t **ret,
                          fy_err *err);
fy_code fake_finish_migration(compute_driver *drv, const compute_mig_spec *spec, json_t **ret,
                              fy_err *err);
fy_code fake_confirm_migration(compute_driver *drv, const compute_mig_spec *spec, fy_err *err);
fy_code fake_revert_dest(compute_driver *drv, const compute_mig_spec *spec, fy_err *err);
fy_code fake_finish_revert(compute_driver *drv, const compute_mig_spec *spec, json_t **ret,
                           fy_err *err);

#define COMPUTE_FAKE_MIG_OPS                                          \
    .check_can_live_migrate_destination = fake_check_dest,            \
    .check_can_live_migrate_source = fake_check_source,               \
    .check_can_live_migrate_destination_cleanup = fake_check_dest_cleanup, \
    .pre_live_migration = fake_pre_live_migration,                    \
    .live_migration_start = fake_lm_start,                            \
    .live_migration_stats = fake_lm_stats,                            \
    .live_migration_set_max_downtime = fake_lm_set_downtime,          \
    .live_migration_abort = fake_lm_abort,                            \
    .live_migration_force_complete = fake_lm_force,                   \
    .live_migration_release = fake_lm_release,                        \
    .post_live_migration_source = fake_post_lm_source,                \
    .post_live_migration_at_destination = fake_post_lm_dest,          \
    .rollback_live_migration_at_destination = fake_rollback_lm_dest,  \
    .plug_vifs = fake_plug_vifs,                                      \
    .unplug_vifs = fake_unplug_vifs,                                  \
    .attach_volume = fake_attach_volume,                              \
    .detach_volume = fake_detach_volume,                              \
    .migrate_disk_and_power_off = fake_migrate_disk,                  \
    .finish_migration = fake_finish_migration,                        \
    .confirm_migration = fake_confirm_migration,                      \
    .revert_migration_dest = fake_revert_dest,                        \
    .finish_revert_migration = fake_finish_revert,
