/* The SQL of the cold-migration tasks.  Instance writes are guarded by the
 * state the step expects, so a resumed step cannot apply a change twice. */
#include "cond_cold.h"

/* ---- quota ---- */

const fy_sql cond_sql_cold_quota_delete = {
    "cond_cold_quota_delete",
    "DELETE FROM quota_reservations WHERE consumer_uuid = $1::uuid",
    1,
};

/* A downsize keeps the project charged for the old flavor until the confirm:
 * the difference is held by the migration (Nova frees it at confirm). */
const fy_sql cond_sql_cold_quota_hold = {
    "cond_cold_quota_hold",
    "INSERT INTO quota_reservations (uuid, project_id, resource, delta, consumer_uuid,"
    "                                expires_at)"
    " SELECT gen_random_uuid(), i.project_id, r.resource, r.delta, $2::uuid, 'infinity'"
    "   FROM instances i,"
    "        LATERAL (VALUES ('cores', (i.old_flavor->>'vcpus')::bigint"
    "                                  - (i.flavor->>'vcpus')::bigint),"
    "                        ('ram', (i.old_flavor->>'memory_mb')::bigint"
    "                                - (i.flavor->>'memory_mb')::bigint)) AS r(resource, delta)"
    "  WHERE i.uuid = $1 AND i.old_flavor IS NOT NULL AND r.delta > 0",
    2,
};

/* ---- instances ---- */

const fy_sql cond_sql_cold_task_state = {
    "cond_cold_task_state",
    "UPDATE instances SET task_state = $3, updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted"
    "   AND coalesce(task_state, '') = ANY ($2::text[])",
    3,
};

/* No valid host: the server is back as it was (vm_state never changed). */
const fy_sql cond_sql_cold_instance_unprep = {
    "cond_cold_instance_unprep",
    "UPDATE instances SET task_state = NULL, updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted AND task_state = 'resize_prep'",
    1,
};

/* finish_resize: the new flavor, the previous one kept for a revert. */
const fy_sql cond_sql_cold_apply_flavor = {
    "cond_cold_apply_flavor",
    "UPDATE instances SET old_flavor = flavor, flavor = $2::jsonb, new_flavor = $2::jsonb,"
    "       updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted AND task_state = 'resize_migrated'"
    "   AND old_flavor IS NULL",
    2,
};

/* A failed move puts the flavor back (the source allocation is the old one). */
const fy_sql cond_sql_cold_restore_flavor = {
    "cond_cold_restore_flavor",
    "UPDATE instances SET flavor = old_flavor, old_flavor = NULL, new_flavor = NULL,"
    "       updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted AND old_flavor IS NOT NULL AND vm_state <> 'resized'",
    1,
};

const fy_sql cond_sql_cold_power = {
    "cond_cold_power",
    "UPDATE instances SET power_state = $2, updated_at = now() WHERE uuid = $1 AND NOT deleted",
    2,
};

const fy_sql cond_sql_cold_resized = {
    "cond_cold_resized",
    "UPDATE instances SET vm_state = 'resized', task_state = NULL, host = $2, node = $3,"
    "       power_state = $4, updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted AND task_state = 'resize_finish'",
    4,
};

const fy_sql cond_sql_cold_confirmed = {
    "cond_cold_confirmed",
    "UPDATE instances SET vm_state = $2, task_state = NULL, old_flavor = NULL,"
    "       new_flavor = NULL, updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted AND vm_state = 'resized'",
    2,
};

/* finish_revert_migration: back to the old flavor, on the source. */
const fy_sql cond_sql_cold_revert_flavor = {
    "cond_cold_revert_flavor",
    "UPDATE instances SET flavor = old_flavor, old_flavor = NULL, new_flavor = NULL,"
    "       host = $2, node = $3, updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted AND task_state = 'resize_reverting'"
    "   AND old_flavor IS NOT NULL",
    3,
};

const fy_sql cond_sql_cold_reverted = {
    "cond_cold_reverted",
    "UPDATE instances SET vm_state = $2, task_state = NULL, power_state = $3,"
    "       updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted AND task_state = 'resize_reverting'",
    3,
};

const fy_sql cond_sql_cold_old_flavor = {
    "cond_cold_old_flavor",
    "SELECT old_flavor::text AS old_flavor FROM instances WHERE uuid = $1",
    1,
};

/* ---- auto-confirm ---- */

/* Moves waiting for a confirm longer than the window; locked so that two
 * conductors never queue the same confirm. */
const fy_sql cond_sql_cold_due = {
    "cond_cold_due",
    "SELECT m.uuid, m.instance_uuid, i.user_id, i.project_id"
    "  FROM migrations m JOIN instances i ON i.uuid = m.instance_uuid"
    " WHERE m.status = 'finished' AND m.migration_type IN ('migration', 'resize')"
    "   AND m.updated_at < now() - $1::interval"
    "   AND NOT i.deleted AND i.vm_state = 'resized' AND i.task_state IS NULL"
    " ORDER BY m.id LIMIT 50"
    " FOR UPDATE OF m SKIP LOCKED",
    1,
};

const fy_sql cond_sql_cold_confirming = {
    "cond_cold_confirming",
    "UPDATE migrations SET status = 'confirming', updated_at = now()"
    " WHERE uuid = $1 AND status = 'finished'",
    1,
};

const fy_sql cond_sql_cold_action_add = {
    "cond_cold_action_add",
    "INSERT INTO instance_actions (instance_uuid, action, request_id, user_id, project_id)"
    " VALUES ($1, 'confirmResize', $2, $3, $4)",
    4,
};

const fy_sql cond_sql_cold_task_add = {
    "cond_cold_task_add",
    "INSERT INTO tasks (uuid, kind, instance_uuid, migration_uuid, request_id, params)"
    " VALUES ($1, 'confirm', $2, $3, $4, '{}'::jsonb)",
    4,
};

const fy_sql cond_sql_cold_notify = {
    "cond_cold_notify",
    "SELECT pg_notify('ferry_tasks', $1)",
    1,
};
