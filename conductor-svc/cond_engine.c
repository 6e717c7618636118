/* The task engine's threads: workers that claim and run tasks, one LISTEN
 * thread that wakes them, one thread that renews this process's leases. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cond.h"
#include "fy_cleanup.h"
#include "fy_log.h"
#include "fy_util.h"

/* Fallback poll when no notification arrives (internals.md: 2 s). */
#define COND_POLL_MS 2000
#define COND_LISTEN_WAIT_MS 500

typedef struct cond_worker {
    cond_engine *eng;
    int n;
    pthread_t thread;
    bool started;
} cond_worker;

struct cond_engine {
    const cond_ctx *ctx;
    char owner_prefix[300];
    atomic_bool stopping;
    atomic_bool renew_stop;     /* leases are renewed until the workers are gone */
    pthread_mutex_t lock;
    pthread_cond_t wake;        /* stop, and the lease thread's period */
    pthread_cond_t work;        /* one idle worker per token */
    unsigned long tokens;       /* notifications not yet taken by a worker */
    cond_worker *workers;
    size_t nworkers;
    pthread_t listener, renewer;
    bool listener_started, renewer_started;
    atomic_ullong leases_ok_ms; /* last successful lease renewal (fy_now_ms) */
};

bool cond_stopping(const cond_run *run)
{
    return run->eng && atomic_load(&run->eng->stopping);
}

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* A notification wakes one idle worker, not all of them: sixteen workers
 * racing for one task cost sixteen claims.  Tokens are capped at the worker
 * count; an idle worker that finds no task waits for the next token. */
static void engine_wait_token(cond_engine *eng)
{
    pthread_mutex_lock(&eng->lock);
    while (eng->tokens == 0 && !atomic_load(&eng->stopping))
        pthread_cond_wait(&eng->work, &eng->lock);
    if (eng->tokens > 0)
        eng->tokens--;
    pthread_mutex_unlock(&eng->lock);
}

static void engine_kick_one(cond_engine *eng)
{
    pthread_mutex_lock(&eng->lock);
    if (eng->tokens < eng->nworkers)
        eng->tokens++;
    pthread_cond_signal(&eng->work);
    pthread_mutex_unlock(&eng->lock);
}

/* After a claim: when no token is pending, one more worker looks for work,
 * so a backlog found by a poll (no notifications) is spread over workers. */
static void engine_chain(cond_engine *eng)
{
    pthread_mutex_lock(&eng->lock);
    bool idle = eng->tokens == 0;
    pthread_mutex_unlock(&eng->lock);
    if (idle)
        engine_kick_one(eng);
}

static void engine_kick_all(cond_engine *eng)
{
    pthread_mutex_lock(&eng->lock);
    pthread_cond_broadcast(&eng->wake);
    pthread_cond_broadcast(&eng->work);
    pthread_mutex_unlock(&eng->lock);
}

bool cond_sleep(const cond_run *run, long ms)
{
    if (!run->eng) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        return true;
    }
    cond_engine *eng = run->eng;
    struct timespec ts;
    deadline_in(&ts, ms);
    pthread_mutex_lock(&eng->lock);
    while (!atomic_load(&eng->stopping))
        if (pthread_cond_timedwait(&eng->wake, &eng->lock, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&eng->lock);
    return !atomic_load(&eng->stopping);
}

/* Leases not renewed for a while (the database was away) may have run out:
 * they are renewed before the next claim, or this process could claim a task
 * one of its own workers is still running.  Nothing to do while the lease
 * thread keeps up. */
static fy_code leases_fresh(cond_engine *eng, int lease_s, fy_err *err)
{
    unsigned long long period_ms = (unsigned long long)lease_s * 1000ULL / 3;
    if (fy_now_ms() - atomic_load(&eng->leases_ok_ms) <= period_ms + period_ms / 2)
        return FY_E_OK;
    if (cond_task_renew(eng->owner_prefix, lease_s, NULL, err))
        return err->code;
    atomic_store(&eng->leases_ok_ms, fy_now_ms());
    return FY_E_OK;
}

static void *worker_main(void *arg)
{
    cond_worker *w = arg;
    cond_engine *eng = w->eng;
    char owner[320];
    cond_owner_format(owner, sizeof(owner), eng->ctx->cfg.host, (long)getpid(), w->n);
    int lease_s = (int)eng->ctx->cfg.lease_seconds;

    while (!atomic_load(&eng->stopping)) {
        cond_run run = {.ctx = eng->ctx, .eng = eng, .lease_s = lease_s};
        snprintf(run.owner, sizeof(run.owner), "%s", owner);
        bool found = false;
        fy_err err = {0};
        if (leases_fresh(eng, lease_s, &err) ||
            cond_task_claim(owner, lease_s, &run.task, &found, &err))
            fy_warn("task claim failed: %s", err.msg);
        if (!found) {
            engine_wait_token(eng);
            continue;
        }
        engine_chain(eng);
        cond_task_execute(&run);
        cond_task_clear(&run.task);
    }
    fy_db_thread_cleanup();
    return NULL;
}

/* Also the fallback poll: one worker every COND_POLL_MS without a
 * notification (a released task comes due, a notification was missed). */
static void *listener_main(void *arg)
{
    cond_engine *eng = arg;
    fy_db_listener *l = NULL;
    uint64_t last_kick = fy_now_ms();
    while (!atomic_load(&eng->stopping)) {
        if (!l) {
            fy_err err = {0};
            if (fy_db_listen("ferry_tasks", &l, &err)) {
                fy_debug("LISTEN ferry_tasks failed, polling: %s", err.msg);
                engine_kick_one(eng);
                struct timespec ts;
                deadline_in(&ts, COND_POLL_MS);
                pthread_mutex_lock(&eng->lock);
                while (!atomic_load(&eng->stopping))
                    if (pthread_cond_timedwait(&eng->wake, &eng->lock, &ts) == ETIMEDOUT)
                        break;
                pthread_mutex_unlock(&eng->lock);
                continue;
            }
            /* Work queued while not listening is found by the next claim. */
            engine_kick_one(eng);
            last_kick = fy_now_ms();
        }
        char payload[128];
        if (fy_db_wait_notify(l, COND_LISTEN_WAIT_MS, payload, sizeof(payload)) ||
            fy_now_ms() - last_kick >= COND_POLL_MS) {
            engine_kick_one(eng);
            last_kick = fy_now_ms();
        }
    }
    fy_db_listener_free(l);
    fy_db_thread_cleanup();
    return NULL;
}

static void *renewer_main(void *arg)
{
    cond_engine *eng = arg;
    int lease_s = (int)eng->ctx->cfg.lease_seconds;
    long period_ms = lease_s * 1000L / 3;
    while (!atomic_load(&eng->renew_stop)) {
        struct timespec ts;
        deadline_in(&ts, period_ms);
        pthread_mutex_lock(&eng->lock);
        while (!atomic_load(&eng->renew_stop))
            if (pthread_cond_timedwait(&eng->wake, &eng->lock, &ts) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&eng->lock);
        if (atomic_load(&eng->renew_stop))
            break;
        fy_err err = {0};
        if (cond_task_renew(eng->owner_prefix, lease_s, NULL, &err))
            fy_warn("lease renewal failed: %s", err.msg);
        else
            atomic_store(&eng->leases_ok_ms, fy_now_ms());
    }
    fy_db_thread_cleanup();
    return NULL;
}

static fy_code engine_threads_start(cond_engine *eng, fy_err *err)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&eng->wake, &ca);
    pthread_cond_init(&eng->work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&eng->lock, NULL);

    if (pthread_create(&eng->listener, NULL, listener_main, eng) != 0)
        return fy_fail(err, FY_E_INTERNAL, "cannot start the listener thread");
    eng->listener_started = true;
    if (pthread_create(&eng->renewer, NULL, renewer_main, eng) != 0)
        return fy_fail(err, FY_E_INTERNAL, "cannot start the lease thread");
    eng->renewer_started = true;
    if (cond_jobs_start(err))
        return err->code;
    for (size_t i = 0; i < eng->nworkers; i++) {
        cond_worker *w = &eng->workers[i];
        w->eng = eng;
        w->n = (int)i;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            return fy_fail(err, FY_E_INTERNAL, "cannot start task worker %zu", i);
        w->started = true;
    }
    return FY_E_OK;
}

fy_code cond_engine_start(const cond_ctx *ctx, cond_engine **ret, fy_err *err)
{
    long requeued = 0;
    if (cond_task_requeue_deletes(&requeued, err))
        return fy_err_prefix(err, "requeueing failed deletes");
    if (requeued > 0)
        fy_info("queued %ld failed delete task(s) again", requeued);

    cond_engine *eng = calloc(1, sizeof(*eng));
    if (!eng)
        return fy_fail(err, FY_E_NOMEM, NULL);
    eng->ctx = ctx;
    snprintf(eng->owner_prefix, sizeof(eng->owner_prefix), "%s:%ld:", ctx->cfg.host,
             (long)getpid());
    atomic_init(&eng->stopping, false);
    atomic_init(&eng->renew_stop, false);
    atomic_init(&eng->leases_ok_ms, fy_now_ms());
    eng->nworkers = (size_t)ctx->cfg.workers;
    eng->workers = calloc(eng->nworkers, sizeof(*eng->workers));
    if (!eng->workers) {
        free(eng);
        return fy_fail(err, FY_E_NOMEM, NULL);
    }
    if (engine_threads_start(eng, err)) {
        cond_engine_stop(eng);
        return err->code;
    }
    fy_info("task engine: %zu workers, lease %lld s", eng->nworkers, ctx->cfg.lease_seconds);
    *ret = eng;
    return FY_E_OK;
}

void cond_engine_stop(cond_engine *eng)
{
    if (!eng)
        return;
    atomic_store(&eng->stopping, true);
    engine_kick_all(eng);
    cond_jobs_stop();   /* wakes tasks waiting for a migration job */
    for (size_t i = 0; i < eng->nworkers; i++)
        if (eng->workers[i].started)
            pthread_join(eng->workers[i].thread, NULL);
    if (eng->listener_started)
        pthread_join(eng->listener, NULL);
    atomic_store(&eng->renew_stop, true);
    engine_kick_all(eng);
    if (eng->renewer_started)
        pthread_join(eng->renewer, NULL);
    pthread_cond_destroy(&eng->wake);
    pthread_cond_destroy(&eng->work);
    pthread_mutex_destroy(&eng->lock);
    free(eng->workers);
    free(eng);
}
