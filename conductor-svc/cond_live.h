/* cond_live — the live-migration task ("live_migrate"): the seed's Live
 * Migration Flow as docs/migrations.md maps it.  cond_live.c runs the steps,
 * cond_live_checks.c the pre-checks and the choice of destination,
 * cond_live_rollback.c the undo (_rollback_live_migration) and the end of a
 * failed pre-check. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include "cond.h"
#include "cond_migration.h"

/* Nova's power states a live migration accepts. */
enum { LIVE_POWER_RUNNING = 1, LIVE_POWER_PAUSED = 3 };

/* One run of the task: what was loaded and what has been decided. */
typedef struct live_ctx {
    cond_run *run;
    const cond_ctx *ctx;
    cond_instance inst;
    cond_migration mig;
    char source[COND_HOST_MAX];     /* the instance's host when the move began */
    char source_node[COND_HOST_MAX];
    char dest[COND_HOST_MAX];       /* "" until chosen */
    char dest_node[COND_HOST_MAX];
    const char *req_host;           /* params.host (in req_host_buf), NULL = scheduler */
    char req_host_buf[COND_HOST_MAX];   /* a copy: params change while the task runs */
    const json_t *req_block;        /* params.block_migration: true, false or "auto" */
    bool force;
    bool block_migration, shared_path, volume_backed;
    cond_resources res;
    long timeout_ms;
    bool transient;     /* the failure at hand is ours (database, stopping), not the move's */
} live_ctx;

/* ---- pure rules (unit-tested) ---- */

/* What is known of a compute host for the checks on a given destination. */
typedef struct live_host_facts {
    bool exists;                    /* a compute service and node are registered */
    bool up;                        /* heartbeat fresh, not forced down */
    const char *hypervisor_type;
    long long hypervisor_version;
    long long memory_mb, memory_mb_used;
    double ram_ratio;
} live_host_facts;

/* The seed's checks of a given destination, in its order: differs from the
 * source, exists, is up, has the memory, same hypervisor type, version >= the
 * source's.  FY_E_OK or the first failure with Nova's message. */
fy_code live_check_given_dest(const char *instance_uuid, const char *source, const char *dest,
                              const live_host_facts *src, const live_host_facts *dst,
                              long long need_mb, fy_err *err);
/* Hypervisor compatibility alone (a scheduler candidate). */
fy_code live_check_hypervisor(const live_host_facts *src, const live_host_facts *dst,
                              fy_err *err);
/* Nova: free = memory_mb * ram_allocation_ratio - used must cover the flavor. */
bool live_dest_has_memory(const live_host_facts *dst, long long need_mb);

/* What rollback_live_migration_at_destination is asked to do.  It is always
 * called (idempotent; it also removes a guest the job may have started on
 * the destination); the seed's rule decides whether the disks go with it. */
typedef struct live_rollback_plan {
    bool nova_cleanup;              /* block migration, or volume-backed without shared storage */
    bool destroy_disks;             /* block migration or no shared instance path */
} live_rollback_plan;
live_rollback_plan live_rollback_plan_for(bool block_migration, bool shared_path,
                                          bool volume_backed);
/* post_live_migration_source's destroy_disks. */
bool live_post_destroy_disks(bool block_migration, bool shared_path);
/* May another scheduler candidate be tried after `tried` failed ones? */
bool live_may_retry(int tried, long long retries);

/* ---- steps shared by the files ---- */

/* The agent step body: migration, instance, migrate_data, block_migration,
 * source/dest hosts.  NULL when out of memory. */
json_t *live_body(const live_ctx *lc);
/* Calls step on host with the standard body plus extra's members (may be NULL);
 * records the answer's migrate_data into lc->mig.migrate_data. */
fy_code live_agent(live_ctx *lc, const char *host, const char *step, const json_t *extra,
                   json_t **ret_json, fy_err *err);
/* Marks the failure as ours (a database or stop problem) and returns its code. */
fy_code live_transient(live_ctx *lc, fy_err *err);

/* Events of another action of the instance (abort / force-complete), the
 * newest with that name; best effort. */
void live_named_event_start(const live_ctx *lc, const char *action, const char *event,
                            const char *host);
void live_named_event_finish(const live_ctx *lc, const char *action, const char *event, bool ok,
                             const char *tb);

/* cond_live_checks.c: chooses and checks the destination and claims it (the
 * source allocation moved to the migration first).  A failure that is not
 * transient is a failed pre-check: its message is the migration's error. */
fy_code live_checks(live_ctx *lc, fy_err *err);
/* Undoes the claims of the checks: the instance's allocation off every
 * destination, the migration's allocation back to the instance. */
fy_code live_allocations_back(live_ctx *lc, fy_err *err);

/* The first step of the post-migration part of the task: where a rollback
 * that finds the guest on the destination sends the task instead. */
#define LIVE_STEP_POST "post_terminate_source_connections"

/* cond_live_rollback.c */
/* A failed pre-check or a refusal before any action step: migration `to`
 * (error or cancelled) with message, instance back, allocations back. */
fy_code live_precheck_failed(live_ctx *lc, fy_mig_status to, const char *message, fy_err *err);
/* _rollback_live_migration: everything back on the source; migration `to`
 * (failed or cancelled) with message.  Resume-safe (every part idempotent). */
fy_code live_rollback(live_ctx *lc, fy_mig_status to, const char *message, fy_err *err);

/* ---- SQL (cond_live_sql.c) ---- */
extern const fy_sql cond_live_sql_host_facts, cond_live_sql_job_get, cond_live_sql_instance_moved,
    cond_live_sql_instance_back, cond_live_sql_named_event_start,
    cond_live_sql_named_event_finish, cond_live_sql_source_lost;
