/* Instance-action event writes ride along with the task's next step write:
 * a live migration records a dozen events, and each on its own would cost a
 * round trip to the database.  The events carry the time they happened, so a
 * late write changes nothing a reader sees; a conductor that dies before the
 * write loses only events of a step it will run again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cond.h"
#include "fy_log.h"

#define PENDING_MAX 16
#define PENDING_PARAMS 8

typedef struct pending_op {
    const fy_sql *stmt;
    char *p[PENDING_PARAMS];
    int n;
} pending_op;

struct cond_pending {
    pending_op ops[PENDING_MAX];
    size_t n;
};

cond_pending *cond_pending_new(void)
{
    return calloc(1, sizeof(cond_pending));
}

static void clear_ops(cond_pending *q)
{
    for (size_t i = 0; i < q->n; i++)
        for (int k = 0; k < q->ops[i].n; k++)
            free(q->ops[i].p[k]);
    q->n = 0;
}

void cond_pending_free(cond_pending *q)
{
    if (!q)
        return;
    clear_ops(q);
    free(q);
}

static char *now_text(void)
{
    struct timespec ts;
    struct tm tm;
    char buf[48];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t len = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + len, sizeof(buf) - len, ".%06ldZ", ts.tv_nsec / 1000);
    return strdup(buf);
}

bool cond_pending_add(cond_pending *q, const fy_sql *stmt, const char *const *p, int n,
                      int time_at)
{
    if (!q || q->n >= PENDING_MAX || n > PENDING_PARAMS || n != stmt->nparams)
        return false;
    pending_op *op = &q->ops[q->n];
    *op = (pending_op){.stmt = stmt, .n = n};
    bool ok = true;
    for (int k = 0; k < n; k++) {
        if (k == time_at)
            op->p[k] = now_text();
        else if (p[k])
            op->p[k] = strdup(p[k]);
        if ((k == time_at || p[k]) && !op->p[k])
            ok = false;
    }
    if (!ok) {
        for (int k = 0; k < n; k++)
            free(op->p[k]);
        return false;
    }
    q->n++;
    return true;
}

static fy_code run_batch(cond_pending *q, const fy_sql *then, const char *const *then_p,
                         PGresult **then_res, fy_err *err)
{
    fy_db_op ops[PENDING_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; q && i < q->n; i++, n++)
        ops[n] = (fy_db_op){q->ops[i].stmt, (const char *const *)q->ops[i].p, NULL};
    if (then)
        ops[n++] = (fy_db_op){then, then_p, then_res};
    return n ? fy_db_batch(ops, n, err) : FY_E_OK;
}

fy_code cond_pending_flush(cond_pending *q, const fy_sql *then, const char *const *then_p,
                           PGresult **then_res, fy_err *err)
{
    if (!q || q->n == 0) {
        if (!then)
            return FY_E_OK;
        return fy_db_exec(then, then_p, then_res, err);
    }
    fy_code rc = run_batch(q, then, then_p, then_res, err);
    if (rc == FY_E_DB) {
        /* A bad event write must not hold the task's own write back. */
        fy_warn("%zu event write(s) dropped: %s", q->n, err->msg);
        clear_ops(q);
        fy_err_clear(err);
        return then ? fy_db_exec(then, then_p, then_res, err) : FY_E_OK;
    }
    if (rc == FY_E_OK)
        clear_ops(q);
    return rc;
}
