/* SQL of the conductor's migration record writes (cond_migration.c). */
#include "cond_migration.h"

const fy_sql cond_mig_sql_get = {
    "cond_mig_get",
    "SELECT id, uuid, instance_uuid, migration_type, status, source_compute, source_node,"
    "       dest_compute, dest_node, dest_host, old_flavor_id, new_flavor_id,"
    "       block_migration, shared_storage, migrate_data::text AS migrate_data"
    "  FROM migrations WHERE uuid = $1",
    1,
};

/* The guard: only a record still at the expected status moves. */
const fy_sql cond_mig_sql_status = {
    "cond_mig_status",
    "UPDATE migrations SET status = $3, updated_at = now()"
    " WHERE uuid = $1 AND status = $2",
    3,
};

const fy_sql cond_mig_sql_status_get = {
    "cond_mig_status_get",
    "SELECT status FROM migrations WHERE uuid = $1",
    1,
};

const fy_sql cond_mig_sql_status_error = {
    "cond_mig_status_error",
    "UPDATE migrations SET status = $3,"
    "       migrate_data = migrate_data || jsonb_build_object('error', $4::text),"
    "       updated_at = now()"
    " WHERE uuid = $1 AND status = $2",
    4,
};

const fy_sql cond_mig_sql_merge = {
    "cond_mig_merge",
    "UPDATE migrations SET migrate_data = migrate_data || $2::jsonb, updated_at = now()"
    " WHERE uuid = $1",
    2,
};

const fy_sql cond_mig_sql_dest = {
    "cond_mig_dest",
    "UPDATE migrations SET dest_compute = $2, dest_node = $3, updated_at = now()"
    " WHERE uuid = $1",
    3,
};

const fy_sql cond_mig_sql_storage = {
    "cond_mig_storage",
    "UPDATE migrations SET block_migration = COALESCE($2::boolean, block_migration),"
    "       shared_storage = COALESCE($3::boolean, shared_storage), updated_at = now()"
    " WHERE uuid = $1",
    3,
};
