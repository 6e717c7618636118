/* Several prepared statements in one round trip, with libpq's pipeline mode.
 * The statements up to the Sync are one implicit transaction on the server,
 * so a batch that never reached its Sync committed nothing and can be sent
 * again on a new connection. */
#include <stdlib.h>
#include "fy_cleanup.h"
#include "fy_db_int.h"
#include "fy_log.h"
#include "fy_metrics.h"
#include "fy_util.h"

static bool result_ok(const PGresult *r)
{
    ExecStatusType s = PQresultStatus(r);
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY;
}

static fy_code send_all(fy_db_tls *t, const fy_db_op *ops, size_t n, bool *retry, fy_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (fy_db__prepare(t, ops[i].stmt, retry, err))
            return err->code;
    if (!PQenterPipelineMode(t->conn))
        return fy_db__map_error(t, "batch", NULL, err);
    for (size_t i = 0; i < n; i++)
        if (!PQsendQueryPrepared(t->conn, ops[i].stmt->name, ops[i].stmt->nparams,
                                 ops[i].params, NULL, NULL, 0))
            goto broken;
    if (!PQpipelineSync(t->conn))
        goto broken;
    return FY_E_OK;
broken:
    /* No Sync reached the server: nothing was committed. */
    *retry = !t->in_txn;
    fy_db__reset(t);
    return fy_fail(err, FY_E_UNAVAILABLE, "database connection lost sending a batch");
}

/* Reads one result per statement (the first failure kept in *first_err),
 * then the Sync.  False when the connection broke on the way. */
static bool read_all(fy_db_tls *t, const fy_db_op *ops, size_t n, PGresult **got,
                     PGresult **first_err, size_t *err_at)
{
    for (size_t i = 0; i < n; i++) {
        PGresult *r = PQgetResult(t->conn);
        if (!r)
            return false;
        if (!result_ok(r) && PQresultStatus(r) != PGRES_PIPELINE_ABORTED && !*first_err) {
            *first_err = r;
            *err_at = i;
        } else if (result_ok(r) && ops[i].res) {
            got[i] = r;
        } else {
            PQclear(r);
        }
        PGresult *extra;
        while ((extra = PQgetResult(t->conn)))   /* the NULL that ends each statement */
            PQclear(extra);
    }
    PGresult *sync = PQgetResult(t->conn);
    bool ok = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    return ok && PQexitPipelineMode(t->conn);
}

static fy_code batch_once(fy_db_tls *t, const fy_db_op *ops, size_t n, PGresult **got,
                          bool *retry, fy_err *err)
{
    *retry = false;
    if (fy_db__ensure_conn(t, err) || send_all(t, ops, n, retry, err))
        return err->code;
    PGresult *first_err = NULL;
    size_t at = 0;
    if (!read_all(t, ops, n, got, &first_err, &at)) {
        PQclear(first_err);
        fy_db__reset(t);
        return fy_fail(err, FY_E_UNAVAILABLE, "database connection lost in a batch");
    }
    if (first_err) {
        fy_code rc = fy_db__map_error(t, ops[at].stmt->name, first_err, err);
        PQclear(first_err);
        return rc;
    }
    return FY_E_OK;
}

fy_code fy_db_batch(const fy_db_op *ops, size_t n, fy_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const fy_sql *s = ops[i].stmt;
        if (!s || !s->name || !s->text || s->nparams < 0 || (s->nparams && !ops[i].params))
            return fy_fail(err, FY_E_INTERNAL, "bad statement or parameters in a batch");
    }
    fy_db_tls *t = fy_db__tls();
    _cleanup_free_ PGresult **got = calloc(n ? n : 1, sizeof(*got));
    if (!t || !got)
        return fy_fail(err, FY_E_NOMEM, NULL);
    uint64_t start = fy_now_us();
    bool retry = false;
    fy_code rc = batch_once(t, ops, n, got, &retry, err);
    if (rc && retry) {
        fy_debug("db: connection lost before a batch was committed, retrying");
        for (size_t i = 0; i < n; i++) {
            PQclear(got[i]);
            got[i] = NULL;
        }
        rc = batch_once(t, ops, n, got, &retry, err);
    }
    fy_metrics_db_done("batch", rc, (double)(fy_now_us() - start) / 1e6);
    for (size_t i = 0; i < n; i++) {
        if (rc == FY_E_OK && ops[i].res)
            *ops[i].res = got[i];
        else
            PQclear(got[i]);
    }
    return rc;
}
