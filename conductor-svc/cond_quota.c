/* Quota reservations of a move (consumer_uuid = the migration).  Usage is
 * counted from the instances' flavors plus live reservations, so both a
 * commit (the flavor now carries the change) and a rollback (the change is
 * abandoned) remove the rows; they differ in where the caller runs them. */
#include "cond_cold.h"
#include "fy_cleanup.h"
#include "fy_log.h"

static fy_code drop(const char *migration_uuid, const char *what, fy_err *err)
{
    const char *p[] = {migration_uuid};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_sql_cold_quota_delete, p, &res, err))
        return err->code;
    fy_debug("migration %s: %ld quota reservation(s) %s", migration_uuid, fy_db_affected(res),
             what);
    return FY_E_OK;
}

fy_code cond_quota_commit(const char *migration_uuid, fy_err *err)
{
    return drop(migration_uuid, "committed", err);
}

fy_code cond_quota_rollback(const char *migration_uuid, fy_err *err)
{
    return drop(migration_uuid, "rolled back", err);
}

fy_code cond_quota_commit_hold(const char *migration_uuid, const char *instance_uuid,
                               fy_err *err)
{
    if (drop(migration_uuid, "committed", err))
        return err->code;
    const char *p[] = {instance_uuid, migration_uuid};
    _cleanup_pgres_ PGresult *res = NULL;
    return fy_db_exec(&cond_sql_cold_quota_hold, p, &res, err);
}
