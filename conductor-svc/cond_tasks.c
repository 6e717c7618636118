/* Task rows: claim with a lease, record steps, finish, release, renew. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cond.h"
#include "cond_fault.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_metrics.h"
#include "fy_util.h"

static void interval(char out[32], int seconds)
{
    snprintf(out, 32, "%d seconds", seconds);
}

static void copy_col(char *dst, size_t size, PGresult *res, const char *col)
{
    const char *v = fy_db_str(res, 0, col);
    snprintf(dst, size, "%s", v ? v : "");
}

void cond_task_clear(cond_task *t)
{
    if (!t)
        return;
    json_decref(t->params);
    memset(t, 0, sizeof(*t));
}

void cond_owner_format(char *out, size_t size, const char *host, long pid, int n)
{
    snprintf(out, size, "%s:%ld:%d", host, pid, n);
}

static fy_code task_from_row(PGresult *res, cond_task *ret, fy_err *err)
{
    cond_task t = {.id = fy_db_ll(res, 0, "id", 0)};
    copy_col(t.uuid, sizeof(t.uuid), res, "uuid");
    copy_col(t.kind, sizeof(t.kind), res, "kind");
    copy_col(t.instance_uuid, sizeof(t.instance_uuid), res, "instance_uuid");
    copy_col(t.migration_uuid, sizeof(t.migration_uuid), res, "migration_uuid");
    copy_col(t.request_id, sizeof(t.request_id), res, "request_id");
    copy_col(t.step, sizeof(t.step), res, "step");
    t.attempts = (int)fy_db_ll(res, 0, "attempts", 0);
    const char *params = fy_db_str(res, 0, "params");
    json_error_t jerr;
    t.params = params ? json_loads(params, 0, &jerr) : NULL;
    if (!t.params || !json_is_object(t.params)) {
        json_decref(t.params);
        t.params = json_object();
        if (!t.params)
            return fy_fail(err, FY_E_NOMEM, NULL);
    }
    *ret = t;
    return FY_E_OK;
}

fy_code cond_task_claim(const char *owner, int lease_s, cond_task *ret, bool *ret_found,
                        fy_err *err)
{
    char iv[32];
    interval(iv, lease_s);
    const char *p[] = {owner, iv};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_sql_task_claim, p, &res, err))
        return err->code;
    if (PQntuples(res) == 0) {
        *ret_found = false;
        return FY_E_OK;
    }
    if (task_from_row(res, ret, err))
        return err->code;
    *ret_found = true;
    return FY_E_OK;
}

/* The run's pending event writes (q, may be NULL) go out in the same round trip. */
static fy_code exec_owned(cond_pending *q, const fy_sql *stmt, const char *const *p,
                          fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL;
    if (cond_pending_flush(q, stmt, p, &res, err))
        return err->code;
    if (fy_db_affected(res) != 1)
        return fy_fail(err, FY_E_CONFLICT, "task lease lost to another conductor");
    return FY_E_OK;
}

static fy_code task_finish(cond_pending *q, const cond_task *t, const char *owner, bool ok,
                           const char *error, fy_err *err)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", t->id);
    const char *p[] = {id, owner, ok ? "done" : "failed", error};
    return exec_owned(q, &cond_sql_task_finish, p, err);
}

fy_code cond_task_finish(const cond_task *t, const char *owner, bool ok, const char *error,
                         fy_err *err)
{
    return task_finish(NULL, t, owner, ok, error, err);
}

static fy_code task_release(cond_pending *q, const cond_task *t, const char *owner,
                            int delay_s, const char *why, fy_err *err)
{
    char id[24], iv[32];
    snprintf(id, sizeof(id), "%lld", t->id);
    interval(iv, delay_s);
    const char *p[] = {id, owner, iv, why};
    return exec_owned(q, &cond_sql_task_release, p, err);
}

fy_code cond_task_release(const cond_task *t, const char *owner, int delay_s, const char *why,
                          fy_err *err)
{
    return task_release(NULL, t, owner, delay_s, why, err);
}

fy_code cond_task_renew(const char *owner_prefix, int lease_s, long *ret_renewed, fy_err *err)
{
    char iv[32];
    interval(iv, lease_s);
    const char *p[] = {owner_prefix, iv};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_sql_task_renew, p, &res, err))
        return err->code;
    if (ret_renewed)
        *ret_renewed = fy_db_affected(res);
    return FY_E_OK;
}

fy_code cond_task_requeue_deletes(long *ret_count, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_sql_task_requeue_deletes, NULL, &res, err))
        return err->code;
    if (ret_count)
        *ret_count = fy_db_affected(res);
    return FY_E_OK;
}

fy_code cond_step(cond_run *run, const char *step, const json_t *params, fy_err *err)
{
    if (cond_stopping(run)) {
        run->release = true;
        return fy_fail(err, FY_E_UNAVAILABLE, "conductor stopping before step %s", step);
    }
    char id[24], iv[32];
    snprintf(id, sizeof(id), "%lld", run->task.id);
    interval(iv, run->lease_s);
    _cleanup_free_ char *text = params ? fy_json_dump(params) : NULL;
    if (params && !text)
        return fy_fail(err, FY_E_NOMEM, NULL);
    const char *p[] = {id, run->owner, step, iv, text};
    fy_code rc = exec_owned(run->pending, params ? &cond_sql_task_step_params : &cond_sql_task_step,
                            p, err);
    if (rc == FY_E_CONFLICT) {
        run->lost = true;
        return rc;
    }
    if (rc)
        return cond_retry_later(run, err);
    snprintf(run->task.step, sizeof(run->task.step), "%s", step);
    fy_debug("task %s: step %s", run->task.uuid, step);
    cond_fault_check(step);
    return FY_E_OK;
}

size_t cond_step_index(const cond_run *run, const char *const *steps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(run->task.step, steps[i]) == 0)
            return i;
    return 0;
}

fy_code cond_retry_later(cond_run *run, fy_err *err)
{
    run->release = true;
    return err->code;
}

const cond_kind *cond_kind_find(const char *kind)
{
    for (size_t i = 0; i < cond_nkinds; i++)
        if (strcmp(cond_kinds[i].kind, kind) == 0)
            return &cond_kinds[i];
    return NULL;
}

/* A transient failure is retried after this long rather than at once. */
#define COND_RETRY_DELAY_S 2

static const fy_metric_def m_running = {
    "ferry_conductor_tasks_running", "Tasks this conductor is working on, by kind.",
    FY_METRIC_GAUGE, {"kind", NULL}, {0}};
static const fy_metric_def m_retried = {
    "ferry_conductor_tasks_retried_total",
    "Tasks claimed again after an earlier claim (released, lease expired), by kind.",
    FY_METRIC_COUNTER, {"kind", NULL}, {0}};
static const fy_metric_def m_runs = {
    "ferry_conductor_task_runs_total",
    "Task runs by kind and outcome (done, failed, released, lost).", FY_METRIC_COUNTER,
    {"kind", "outcome", NULL}, {0}};
static const fy_metric_def m_seconds = {
    "ferry_conductor_task_run_duration_seconds", "Duration of one task run, by kind.",
    FY_METRIC_HISTOGRAM, {"kind", NULL}, {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900}};

static void task_metrics_end(const cond_task *t, const char *outcome, uint64_t start_us)
{
    fy_metric_inc(&m_running, FY_LV(t->kind), -1);
    fy_metric_inc(&m_runs, FY_LV(t->kind, outcome), 1);
    fy_metric_observe(&m_seconds, FY_LV(t->kind), (double)(fy_now_us() - start_us) / 1e6);
}

/* How long a task's outcome write is retried while the database is away. */
#define COND_OUTCOME_RETRY_MS 120000

/* The lease thread renews every running task of this conductor, so an outcome
 * lost to a database restart would strand the task: the write is retried until
 * the database is back (or the lease turns out to be someone else's). */
static fy_code write_outcome(cond_run *run, bool release, bool ok, int delay_s, const char *msg,
                             fy_err *werr)
{
    long wait_ms = 200;
    uint64_t deadline = fy_now_ms() + COND_OUTCOME_RETRY_MS;
    for (;;) {
        fy_err_clear(werr);
        fy_code rc = release ? task_release(run->pending, &run->task, run->owner, delay_s, msg, werr)
                             : task_finish(run->pending, &run->task, run->owner, ok, msg, werr);
        if (rc == FY_E_OK || rc == FY_E_CONFLICT || fy_now_ms() >= deadline)
            return rc;
        fy_warn("task %s: outcome not recorded yet: %s", run->task.uuid, werr->msg);
        if (!cond_sleep(run, wait_ms))
            return rc;
        wait_ms = wait_ms * 2 > 5000 ? 5000 : wait_ms * 2;
    }
}

void cond_task_execute(cond_run *run)
{
    cond_task *t = &run->task;
    uint64_t start_us = fy_now_us();
    fy_metric_inc(&m_running, FY_LV(t->kind), 1);
    if (t->attempts > 1)
        fy_metric_inc(&m_retried, FY_LV(t->kind), 1);
    fy_log_set_request_id(t->request_id);
    fy_log_set_migration_id(t->migration_uuid[0] ? t->migration_uuid : NULL);
    fy_info("task %s: %s of %s (step '%s', claim %d)", t->uuid, t->kind,
            t->instance_uuid[0] ? t->instance_uuid : "-", t->step, t->attempts);

    fy_err err = {0};
    fy_code rc;
    run->pending = cond_pending_new();   /* without it events are written at once */
    const cond_kind *k = cond_kind_find(t->kind);
    if (!k)
        rc = fy_fail(&err, FY_E_INTERNAL, "unknown task kind '%s'", t->kind);
    else
        rc = k->run(run, &err);

    fy_err werr = {0};
    task_metrics_end(t, run->lost ? "lost" : rc && run->release ? "released" : rc ? "failed" : "done",
                     start_us);
    if (run->lost) {
        fy_warn("task %s: lease lost, another conductor has it", t->uuid);
    } else if (rc && run->release) {
        int delay = cond_stopping(run) ? 0 : COND_RETRY_DELAY_S;
        fy_info("task %s: released at step '%s': %s", t->uuid, t->step, err.msg);
        if (write_outcome(run, true, false, delay, err.msg, &werr))
            fy_warn("task %s: release failed (lease will expire): %s", t->uuid, werr.msg);
    } else {
        if (rc)
            fy_warn("task %s: %s failed: %s", t->uuid, t->kind, err.msg);
        else
            fy_info("task %s: %s done", t->uuid, t->kind);
        if (write_outcome(run, false, rc == FY_E_OK, 0, rc ? err.msg : NULL, &werr))
            fy_warn("task %s: could not record the outcome (lease will expire): %s", t->uuid,
                    werr.msg);
    }
    cond_pending_free(run->pending);
    run->pending = NULL;
    fy_log_set_migration_id(NULL);
    fy_log_set_request_id(NULL);
}
