/* fy_schema — versioned migrations from common/schema/NNN_*.sql, applied in order. */
#include <stdio.h>
#include "fy_db.h"
#include "fy_schema_sql.h"

/* Serialises concurrent `db sync` runs (an arbitrary fixed key). */
static const fy_sql sql_lock = {"fy_schema_lock", "SELECT pg_advisory_xact_lock(7305942201)", 0};
static const fy_sql sql_present = {
    "fy_schema_present", "SELECT to_regclass('schema_version') IS NOT NULL AS present", 0};
static const fy_sql sql_create = {
    "fy_schema_create",
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version integer PRIMARY KEY, name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())",
    0};
static const fy_sql sql_max = {
    "fy_schema_max", "SELECT coalesce(max(version), 0) AS version FROM schema_version", 0};
static const fy_sql sql_has = {
    "fy_schema_has", "SELECT 1 FROM schema_version WHERE version = $1::integer", 1};
static const fy_sql sql_record = {
    "fy_schema_record", "INSERT INTO schema_version (version, name) VALUES ($1::integer, $2)", 2};

int fy_schema_latest(void)
{
    int v = 0;
    for (unsigned i = 0; i < fy_schema_nsteps; i++)
        if (fy_schema_steps[i].version > v)
            v = fy_schema_steps[i].version;
    return v;
}

static fy_code read_max(int *ret, fy_err *err)
{
    _cleanup_pgres_ PGresult *r = NULL;
    fy_code rc = fy_db_exec_one(&sql_max, NULL, &r, err);
    if (rc == FY_E_OK)
        *ret = (int)fy_db_ll(r, 0, "version", 0);
    return rc;
}

fy_code fy_schema_current(int *ret, fy_err *err)
{
    _cleanup_pgres_ PGresult *r = NULL;
    fy_code rc = fy_db_exec_one(&sql_present, NULL, &r, err);
    if (rc != FY_E_OK)
        return rc;
    if (!fy_db_bool(r, 0, "present")) {
        *ret = 0;
        return FY_E_OK;
    }
    return read_max(ret, err);
}

static fy_code newer_error(int current, fy_err *err)
{
    return fy_fail(err, FY_E_SCHEMA, "database schema version %d is newer than this binary (%d)",
                   current, fy_schema_latest());
}

/* Under the lock: make sure the version table exists and is not ahead of us. */
static fy_code prepare_txn(void *arg, fy_err *err)
{
    (void)arg;
    fy_code rc = fy_db_exec(&sql_lock, NULL, NULL, err);
    if (rc == FY_E_OK)
        rc = fy_db_exec(&sql_create, NULL, NULL, err);
    int current = 0;
    if (rc == FY_E_OK)
        rc = read_max(&current, err);
    if (rc == FY_E_OK && current > fy_schema_latest())
        return newer_error(current, err);
    return rc;
}

static fy_code step_txn(void *arg, fy_err *err)
{
    const fy_schema_step *s = arg;
    char ver[16];
    snprintf(ver, sizeof(ver), "%d", s->version);
    const char *const p[] = {ver, s->name};

    fy_code rc = fy_db_exec(&sql_lock, NULL, NULL, err);
    if (rc != FY_E_OK)
        return rc;
    _cleanup_pgres_ PGresult *r = NULL;
    rc = fy_db_exec(&sql_has, p, &r, err);
    if (rc != FY_E_OK || PQntuples(r) > 0)
        return rc;   /* another process applied it meanwhile */
    rc = fy_db_exec_script(s->sql, err);
    if (rc != FY_E_OK) {
        if (err)
            fy_err_prefix(err, "schema step %s", s->name);
        return rc;
    }
    return fy_db_exec(&sql_record, p, NULL, err);
}

fy_code fy_schema_sync(fy_err *err)
{
    fy_code rc = fy_db_txn(prepare_txn, NULL, false, err);
    if (rc != FY_E_OK)
        return rc;
    /* Steps in version order, whatever the table's order. */
    int done = 0;
    for (;;) {
        const fy_schema_step *next = NULL;
        for (unsigned i = 0; i < fy_schema_nsteps; i++) {
            const fy_schema_step *s = &fy_schema_steps[i];
            if (s->version > done && (!next || s->version < next->version))
                next = s;
        }
        if (!next)
            return FY_E_OK;
        rc = fy_db_txn(step_txn, (void *)next, false, err);
        if (rc != FY_E_OK)
            return rc;
        done = next->version;
    }
}

fy_code fy_schema_check(fy_err *err)
{
    int current = 0;
    fy_code rc = fy_schema_current(&current, err);
    if (rc != FY_E_OK)
        return rc;
    int latest = fy_schema_latest();
    if (current == 0)
        return fy_fail(err, FY_E_SCHEMA, "database not initialised; run ferry-manage db sync");
    if (current > latest)
        return newer_error(current, err);
    if (current < latest)
        return fy_fail(err, FY_E_SCHEMA,
                       "database schema version %d is older than this binary (%d); "
                       "run ferry-manage db sync",
                       current, latest);
    return FY_E_OK;
}
