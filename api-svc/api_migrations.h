/* api_migrations — the public API of moves: os-migrateLive, migrate, resize,
 * confirmResize / revertResize, server migrations (force_complete, abort),
 * os-migrations, os-instance-actions, and the quota pieces they share
 * (limits, os-quota-sets).  Contract: docs/migrations.md. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "api_servers.h"

static inline void api_json_decrefp(json_t **j)
{
    if (*j)
        json_decref(*j);
}
#define _cleanup_json_ __attribute__((cleanup(api_json_decrefp)))

/* ---- pure parsing (api_live_migrate.c; unit-tested) ---- */

/* Python's repr() of a JSON value, as Nova's validation messages print it
 * ({'host': 'h', 'force': True}); truncated to size. */
void api_pyrepr(const json_t *v, char *out, size_t size);

typedef enum { API_BM_FALSE, API_BM_TRUE, API_BM_AUTO } api_block_migration;

typedef struct api_live_args {
    const char *host; /* NULL = let the scheduler choose (borrowed) */
    api_block_migration block_migration;
    bool force;
} api_live_args;

/* Validates an os-migrateLive member against Nova's schema of the microversion
 * (mv_minor of 2.x) and fills *ret; FY_E_BAD_REQUEST with Nova's text. */
fy_code api_live_args_parse(const json_t *arg, int mv_minor, api_live_args *ret, fy_err *err);

/* Nova's query datetime ("2026-11-27T14:37:55Z", "...55.123456+01:00", "...55"):
 * writes a PostgreSQL timestamptz literal (UTC assumed when no offset). */
bool api_parse_iso_time(const char *s, char *out, size_t size);

/* ---- actions (POST /servers/{id}/action) ---- */
fy_code api_action_live_migrate(fy_req *, fy_resp *, const char *, json_t *, fy_err *);
fy_code api_action_migrate(fy_req *, fy_resp *, const char *, json_t *, fy_err *);
fy_code api_action_resize(fy_req *, fy_resp *, const char *, json_t *, fy_err *);
fy_code api_action_confirm_resize(fy_req *, fy_resp *, const char *, json_t *, fy_err *);
fy_code api_action_revert_resize(fy_req *, fy_resp *, const char *, json_t *, fy_err *);

/* ---- shared inside one transaction ---- */

typedef struct api_mig_row {
    const char *uuid, *instance_uuid, *migration_type, *status;
    const char *source_compute, *source_node, *dest_compute;
    const char *old_flavorid, *new_flavorid; /* flavors.flavorid */
    const char *user_id, *project_id;
} api_mig_row;

/* Inserts a migrations row (instance-type ids looked up from the flavor ids). */
fy_code api_migration_insert(const api_mig_row *m, fy_err *err);

/* Quota for a move: checks headroom for the positive deltas of cores and ram
 * (FY_E_QUOTA_EXCEEDED with Nova's message; nothing written) and records the
 * non-zero deltas as reservations for consumer (expiring in an hour).  Takes the
 * project's quota lock, so call it inside the transaction of the move. */
fy_code api_quota_reserve(const char *project_id, const char *consumer_uuid, long long d_cores,
                          long long d_ram, fy_err *err);

/* Flavor sizes out of an instances.flavor snapshot (text). */
typedef struct api_flavor_size {
    long long vcpus, memory_mb, root_gb;
} api_flavor_size;
bool api_flavor_size_of(const char *snapshot_json, api_flavor_size *ret);

/* ---- list helpers (api_migrations.c) ---- */

/* Nova's next link: base/v2.1/<path>?<the query sorted by key, without marker>&marker=last */
json_t *api_next_link(const fy_req *req, const char *base, const char *path, const char *last);
/* 400 "The value of changes-since must be less than or equal to changes-before." */
fy_code api_check_time_order(const char *since, const char *before, fy_err *err);

/* Route handlers are declared in api.h. */

/* ---- SQL (api_migrations_sql.c) ---- */
extern const fy_sql api_sql_mig_insert;
extern const fy_sql api_sql_mig_instance_new_flavor;
extern const fy_sql api_sql_mig_status;
extern const fy_sql api_sql_mig_get;
extern const fy_sql api_sql_mig_finished;
extern const fy_sql api_sql_mig_set_status;
extern const fy_sql api_sql_mig_flag;
extern const fy_sql api_sql_mig_jobs_notify;
extern const fy_sql api_sql_mig_server_list;
extern const fy_sql api_sql_mig_list;
extern const fy_sql api_sql_mig_marker;
extern const fy_sql api_sql_reservation_insert;
extern const fy_sql api_sql_actions_list;
extern const fy_sql api_sql_action_marker;
extern const fy_sql api_sql_action_get;
extern const fy_sql api_sql_action_events;
extern const fy_sql api_sql_quota_get;
extern const fy_sql api_sql_quota_in_use;
extern const fy_sql api_sql_quota_set;
extern const fy_sql api_sql_quota_clear;
extern const fy_sql api_sql_time_after;
