/* fy_db_txn — the transaction runner: BEGIN, callback, COMMIT, retry. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fy_db_int.h"
#include "fy_log.h"

#define TXN_ATTEMPTS 5

static void rollback(void)
{
    fy_err ignored;
    _cleanup_pgres_ PGresult *r = NULL;
    /* A failed ROLLBACK leaves nothing to undo: the server drops the transaction
     * with the connection, and map_error resets the connection. */
    fy_db__simple("ROLLBACK", &r, NULL, &ignored);
}

static fy_code commit(bool *retryable, fy_err *err)
{
    _cleanup_pgres_ PGresult *r = NULL;
    bool sent = false;
    fy_code rc = fy_db__simple("COMMIT", &r, &sent, err);
    if (rc == FY_E_OK) {
        /* COMMIT of a transaction that already failed answers ROLLBACK. */
        if (strcmp(PQcmdStatus(r), "ROLLBACK") == 0)
            return fy_fail(err, FY_E_DB, "transaction aborted by an earlier error; rolled back");
        return FY_E_OK;
    }
    if (rc == FY_E_DB_RETRY) {
        *retryable = true;
    } else if (rc == FY_E_UNAVAILABLE) {
        *retryable = !sent;
        if (sent && err)
            fy_err_prefix(err, "outcome of COMMIT unknown");
    }
    return rc;
}

static fy_code attempt(fy_db_tls *t, fy_db_txn_fn fn, void *arg, bool serializable,
                       bool *retryable, fy_err *err)
{
    *retryable = false;
    _cleanup_pgres_ PGresult *b = NULL;
    fy_code rc = fy_db__simple(serializable ? "BEGIN ISOLATION LEVEL SERIALIZABLE" : "BEGIN",
                               &b, NULL, err);
    if (rc != FY_E_OK) {
        *retryable = rc == FY_E_UNAVAILABLE || rc == FY_E_DB_RETRY;
        return rc;
    }
    t->in_txn = true;
    rc = fn(arg, err);
    if (rc == FY_E_OK) {
        rc = commit(retryable, err);
    } else {
        rollback();
        *retryable = rc == FY_E_UNAVAILABLE || rc == FY_E_DB_RETRY;
    }
    t->in_txn = false;
    return rc;
}

static void backoff(fy_db_tls *t, int n)
{
    long lo = 10L << (n - 1);
    if (lo > 100)
        lo = 100;
    long hi = lo * 2 > 100 ? 100 : lo * 2;
    long ms = lo + (long)(rand_r(&t->rng) % (unsigned)(hi - lo + 1));
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

fy_code fy_db_txn(fy_db_txn_fn fn, void *arg, bool serializable, fy_err *err)
{
    fy_db_tls *t = fy_db__tls();
    if (!t)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (t->in_txn)
        return fn(arg, err);   /* nested: part of the caller's transaction */
    fy_code rc = FY_E_OK;
    for (int n = 1; n <= TXN_ATTEMPTS; n++) {
        bool retryable = false;
        rc = attempt(t, fn, arg, serializable, &retryable, err);
        if (rc == FY_E_OK || !retryable)
            return rc;
        if (n < TXN_ATTEMPTS) {
            fy_debug("db: transaction attempt %d failed (%s), retrying", n,
                     err ? err->msg : fy_code_name(rc));
            backoff(t, n);
        }
    }
    if (err)
        fy_err_prefix(err, "after %d attempts", TXN_ATTEMPTS);
    return rc;
}
