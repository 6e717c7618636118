/* cond_migration — the conductor's writes to `migrations` rows, shared by the
 * live and cold migration tasks (docs/migrations.md).
 *
 * Every status write is checked against fy_mig_can_transition() and guarded in
 * SQL by the expected "from" status, so two writers can never both move a
 * record.  A write whose target status is already recorded counts as done: a
 * resumed task repeats its last step without tripping over its own write. */
#pragma once
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include "cond.h"
#include "fy_err.h"
#include "fy_migration.h"

typedef struct cond_migration {
    PGresult *res;              /* owns every string below */
    long long id;
    const char *uuid, *instance_uuid, *migration_type, *source_compute, *source_node;
    const char *dest_compute, *dest_node, *dest_host, *old_flavor_id, *new_flavor_id;
    fy_mig_status status;
    bool block_migration;       /* false when NULL */
    bool shared_storage;        /* false when NULL */
    json_t *migrate_data;       /* owned; always an object */
} cond_migration;

/* FY_E_NOT_FOUND when there is no such migration. */
fy_code cond_mig_load(const char *uuid, cond_migration *ret, fy_err *err);
void cond_mig_clear(cond_migration *m);

/* Moves the status from -> to.  FY_E_INTERNAL when the table forbids the pair;
 * FY_E_CONFLICT when the record is neither at `from` nor already at `to`
 * (*ret_status, if non-NULL, receives the status found: FY_MIG_INVALID when
 * the row is gone). */
fy_code cond_mig_set_status(const char *uuid, fy_mig_status from, fy_mig_status to,
                            fy_mig_status *ret_status, fy_err *err);
/* As cond_mig_set_status, from any of the statuses in from[] (the current one
 * is read first).  Used by failure paths that may start from several points. */
fy_code cond_mig_set_status_any(const char *uuid, const fy_mig_status *from, size_t nfrom,
                                fy_mig_status to, fy_err *err);
/* Status change plus migrate_data.error = message, in one statement. */
fy_code cond_mig_fail(const char *uuid, const fy_mig_status *from, size_t nfrom,
                      fy_mig_status to, const char *message, fy_err *err);
/* migrate_data = migrate_data || data (top-level keys of data win). */
fy_code cond_mig_merge_data(const char *uuid, const json_t *data, fy_err *err);
/* Records the chosen destination (dest_compute, dest_node, dest_host). */
fy_code cond_mig_set_dest(const char *uuid, const char *host, const char *node, fy_err *err);
/* Records block_migration / shared_storage (a NULL pointer leaves the column). */
fy_code cond_mig_set_storage(const char *uuid, const bool *block_migration,
                             const bool *shared_storage, fy_err *err);
/* The destination, the storage facts and migrate_data, in one round trip. */
fy_code cond_mig_record_decision(const char *uuid, const char *host, const char *node,
                                 bool block_migration, bool shared_storage,
                                 const json_t *data, fy_err *err);

/* The "migration" member of an agent step body (docs/migrations.md). */
json_t *cond_mig_body_migration(const cond_migration *m);
/* The "instance" member of an agent step body. */
json_t *cond_mig_body_instance(const cond_instance *inst);

/* POST <agent of host>/internal/v1/migrations/<migration_uuid>/<step>.
 * Steps are idempotent at the agent, so retries > 0 is safe for any of them.
 * *ret_json (may be NULL) receives the answer, owned by the caller. */
fy_code cond_mig_agent_step(const cond_ctx *ctx, const char *host, const char *migration_uuid,
                            const char *step, const json_t *body, int retries, long timeout_ms,
                            json_t **ret_json, fy_err *err);

/* ---- SQL (cond_migration_sql.c) ---- */
extern const fy_sql cond_mig_sql_get, cond_mig_sql_status, cond_mig_sql_status_get,
    cond_mig_sql_status_error, cond_mig_sql_merge, cond_mig_sql_dest, cond_mig_sql_storage;
