/* The periodic auto-confirm (Nova's _poll_unconfirmed_resizes): every second,
 * a move that has waited in VERIFY_RESIZE longer than resize_confirm_window
 * gets a confirm task.  The record moves finished -> confirming in the same
 * transaction as the task insert, so every conductor may run the timer and a
 * move is still confirmed exactly once (and never against a user's confirm
 * or revert, which need the same status). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "cond_cold.h"
#include "fy_cleanup.h"
#include "fy_log.h"
#include "fy_util.h"

#define AUTOCONFIRM_PERIOD_MS 1000L

struct cond_autoconfirm {
    long long window_s;
    atomic_bool stop;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
};

typedef struct due_args {
    const char *window;
    long count;
} due_args;

static fy_code queue_one(PGresult *due, int row, fy_err *err)
{
    const char *mig = fy_db_str(due, row, "uuid");
    const char *inst = fy_db_str(due, row, "instance_uuid");
    const char *pm[] = {mig};
    _cleanup_pgres_ PGresult *r1 = NULL;
    if (fy_db_exec(&cond_sql_cold_confirming, pm, &r1, err))
        return err->code;
    if (fy_db_affected(r1) != 1)
        return FY_E_OK;
    char req[48], task[FY_UUID_LEN + 1];
    fy_request_id_new(req);
    fy_uuid_v4(task);
    const char *pa[] = {inst, req, fy_db_str(due, row, "user_id"),
                        fy_db_str(due, row, "project_id")};
    const char *pt[] = {task, inst, mig, req};
    const char *pn[] = {task};
    _cleanup_pgres_ PGresult *r2 = NULL, *r3 = NULL, *r4 = NULL;
    if (fy_db_exec(&cond_sql_cold_action_add, pa, &r2, err) ||
        fy_db_exec(&cond_sql_cold_task_add, pt, &r3, err) ||
        fy_db_exec(&cond_sql_cold_notify, pn, &r4, err))
        return err->code;
    fy_info("migration %s: confirm window passed, confirming (task %s)", mig, task);
    return FY_E_OK;
}

static fy_code due_txn(void *arg, fy_err *err)
{
    due_args *a = arg;
    a->count = 0;
    const char *p[] = {a->window};
    _cleanup_pgres_ PGresult *due = NULL;
    if (fy_db_exec(&cond_sql_cold_due, p, &due, err))
        return err->code;
    for (int i = 0; i < PQntuples(due); i++) {
        if (queue_one(due, i, err))
            return err->code;
        a->count++;
    }
    return FY_E_OK;
}

fy_code cond_autoconfirm_once(long long window_s, long *ret_count, fy_err *err)
{
    char window[32];
    snprintf(window, sizeof(window), "%lld seconds", window_s);
    due_args a = {.window = window};
    if (fy_db_txn(due_txn, &a, false, err))
        return err->code;
    if (ret_count)
        *ret_count = a.count;
    return FY_E_OK;
}

static void *autoconfirm_main(void *arg)
{
    cond_autoconfirm *ac = arg;
    while (!atomic_load(&ac->stop)) {
        fy_err err = {0};
        if (cond_autoconfirm_once(ac->window_s, NULL, &err))
            fy_warn("auto-confirm pass failed: %s", err.msg);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += AUTOCONFIRM_PERIOD_MS / 1000;
        pthread_mutex_lock(&ac->lock);
        while (!atomic_load(&ac->stop))
            if (pthread_cond_timedwait(&ac->wake, &ac->lock, &ts) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&ac->lock);
    }
    fy_db_thread_cleanup();
    return NULL;
}

fy_code cond_autoconfirm_start(const cond_ctx *ctx, cond_autoconfirm **ret, fy_err *err)
{
    *ret = NULL;
    if (ctx->cfg.resize_confirm_window <= 0)
        return FY_E_OK;
    cond_autoconfirm *ac = calloc(1, sizeof(*ac));
    if (!ac)
        return fy_fail(err, FY_E_NOMEM, NULL);
    ac->window_s = ctx->cfg.resize_confirm_window;
    atomic_init(&ac->stop, false);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ac->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&ac->lock, NULL);
    int e = pthread_create(&ac->thread, NULL, autoconfirm_main, ac);
    if (e) {
        pthread_cond_destroy(&ac->wake);
        pthread_mutex_destroy(&ac->lock);
        free(ac);
        return fy_fail(err, FY_E_INTERNAL, "auto-confirm thread: error %d", e);
    }
    fy_info("auto-confirm of resized servers after %lld s", ac->window_s);
    *ret = ac;
    return FY_E_OK;
}

void cond_autoconfirm_stop(cond_autoconfirm *ac)
{
    if (!ac)
        return;
    pthread_mutex_lock(&ac->lock);
    atomic_store(&ac->stop, true);
    pthread_cond_broadcast(&ac->wake);
    pthread_mutex_unlock(&ac->lock);
    pthread_join(ac->thread, NULL);
    pthread_cond_destroy(&ac->wake);
    pthread_mutex_destroy(&ac->lock);
    free(ac);
}
