/* fy_db — PostgreSQL access on libpq.
 *
 * One connection per thread, opened lazily from the URL given to fy_db_init(),
 * re-opened after a broken connection.  Statements are declared as static
 * fy_sql objects (kept together per service in *_sql.c) and prepared once per
 * connection on first use.  Parameters are text; NULL pointers are SQL NULL.
 *
 * Transactions go through fy_db_txn(): the callback runs between BEGIN and
 * COMMIT and is retried (with jitter, up to 5 times) on SQLSTATE 40001/40P01
 * and on a lost connection.  A callback must do no network I/O besides SQL. */
#pragma once
#include <libpq-fe.h>
#include <stdbool.h>
#include "fy_err.h"

typedef struct fy_sql {
    const char *name;   /* unique statement name, e.g. "api_server_get" */
    const char *text;   /* SQL with $1.. placeholders */
    int nparams;
} fy_sql;

/* url: libpq conninfo or postgresql:// URL.  app_name shows in pg_stat_activity. */
fy_code fy_db_init(const char *url, const char *app_name, fy_err *err);
void fy_db_shutdown(void);            /* closes the calling thread's connection */
void fy_db_thread_cleanup(void);      /* call at thread exit */

/* The calling thread's connection (connecting if needed). */
fy_code fy_db_conn(PGconn **ret, fy_err *err);

/* Executes a prepared statement.  On success *ret (if ret != NULL) owns the result
 * (PQclear it; or use _cleanup_pgres_).  Errors map: unique violation -> FY_E_CONFLICT,
 * 40001/40P01 -> FY_E_DB_RETRY, connection loss -> FY_E_UNAVAILABLE, else FY_E_DB. */
fy_code fy_db_exec(const fy_sql *stmt, const char *const *params, PGresult **ret, fy_err *err);
/* Convenience: exec and require exactly one row (FY_E_NOT_FOUND when zero). */
fy_code fy_db_exec_one(const fy_sql *stmt, const char *const *params, PGresult **ret, fy_err *err);
/* Runs trusted SQL text (several statements, no parameters) with the simple query
 * protocol, e.g. a schema migration.  Never pass text built from input. */
fy_code fy_db_exec_script(const char *sql, fy_err *err);
/* Rows affected by the last command in res (UPDATE/DELETE/INSERT). */
long fy_db_affected(PGresult *res);

/* One statement of a batch; res (may be NULL) receives its result on success. */
typedef struct fy_db_op {
    const fy_sql *stmt;
    const char *const *params;
    PGresult **res;
} fy_db_op;
/* Sends ops in one round trip (libpq pipeline mode).  Outside fy_db_txn() they
 * run as one implicit transaction: all or nothing; inside, as part of it.  On
 * failure no result is handed out.  Errors map as fy_db_exec's. */
fy_code fy_db_batch(const fy_db_op *ops, size_t n, fy_err *err);

typedef fy_code (*fy_db_txn_fn)(void *arg, fy_err *err);
/* serializable=false runs READ COMMITTED (use FOR UPDATE / conditional updates). */
fy_code fy_db_txn(fy_db_txn_fn fn, void *arg, bool serializable, fy_err *err);
bool fy_db_in_txn(void);   /* true if this thread has an open transaction (for asserts) */

/* Column getters by name: NULL / def when the column is NULL or absent. */
const char *fy_db_str(PGresult *res, int row, const char *col);
long long fy_db_ll(PGresult *res, int row, const char *col, long long def);
bool fy_db_bool(PGresult *res, int row, const char *col);
double fy_db_double(PGresult *res, int row, const char *col, double def);

static inline void fy_pgresult_freep(PGresult **r) { if (*r) PQclear(*r); }
#define _cleanup_pgres_ __attribute__((cleanup(fy_pgresult_freep)))

/* LISTEN on channel with a dedicated connection; fy_db_wait_notify() blocks up to
 * timeout_ms and returns true when a notification arrived (payload copied). */
typedef struct fy_db_listener fy_db_listener;
fy_code fy_db_listen(const char *channel, fy_db_listener **ret, fy_err *err);
bool fy_db_wait_notify(fy_db_listener *l, int timeout_ms, char *payload, size_t payload_size);
void fy_db_listener_free(fy_db_listener *l);

/* Schema: versioned migrations embedded from common/schema/NNN_*.sql. */
int fy_schema_latest(void);                           /* highest version this binary knows */
fy_code fy_schema_current(int *ret, fy_err *err);     /* 0 when no schema yet */
fy_code fy_schema_sync(fy_err *err);                  /* apply missing, idempotent, locked */
/* Refuses (FY_E_SCHEMA) when the database is newer than this binary or not yet synced. */
fy_code fy_schema_check(fy_err *err);
