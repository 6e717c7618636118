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
    pthread_cond_t wake;
    unsigned long generation;   /* bumped by every notification */
    cond_worker *workers;
    size_t nworkers;
    pthread_t listener, renewer;
    bool listener_started, renewer_started;
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

/* Waits until the generation moves past seen, stop, or ms elapse. */
static void engine_wait(cond_engine *eng, unsigned long seen, long ms)
{
    struct timespec ts;
    deadline_in(&ts, ms);
    pthread_mutex_lock(&eng->lock);
    while (eng->generation == seen && !atomic_load(&eng->stopping))
        if (pthread_cond_timedwait(&eng->wake, &eng->lock, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&eng->lock);
}

static unsigned long engine_generation(cond_engine *eng)
{
    pthread_mutex_lock(&eng->lock);
    unsigned long g = eng->generation;
    pthread_mutex_unlock(&eng->lock);
    return g;
}

static void engine_kick(cond_engine *eng)
{
    pthread_mutex_lock(&eng->lock);
    eng->generation++;
    pthread_cond_broadcast(&eng->wake);
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

static void *worker_main(void *arg)
{
    cond_worker *w = arg;
    cond_engine *eng = w->eng;
    char owner[320];
    cond_owner_format(owner, sizeof(owner), eng->ctx->cfg.host, (long)getpid(), w->n);
    int lease_s = (int)eng->ctx->cfg.lease_seconds;

    while (!atomic_load(&eng->stopping)) {
        unsigned long seen = engine_generation(eng);
        cond_run run = {.ctx = eng->ctx, .eng = eng, .lease_s = lease_s};
        snprintf(run.owner, sizeof(run.owner), "%s", owner);
        bool found = false;
        fy_err err = {0};
        if (cond_task_claim(owner, lease_s, &run.task, &found, &err)) {
            fy_warn("task claim failed: %s", err.msg);
            engine_wait(eng, seen, COND_POLL_MS);
            continue;
        }
        if (!found) {
            engine_wait(eng, seen, COND_POLL_MS);
            continue;
        }
        cond_task_execute(&run);
        cond_task_clear(&run.task);
    }
    fy_db_thread_cleanup();
    return NULL;
}

static void *listener_main(void *arg)
{
    cond_engine *eng = arg;
    fy_db_listener *l = NULL;
    while (!atomic_load(&eng->stopping)) {
        if (!l) {
            fy_err err = {0};
            if (fy_db_listen("ferry_tasks", &l, &err)) {
                fy_debug("LISTEN ferry_tasks failed, polling: %s", err.msg);
                engine_wait(eng, engine_generation(eng), COND_POLL_MS);
                continue;
            }
            /* Work queued while not listening is found by the next claim. */
            engine_kick(eng);
        }
        char payload[128];
        if (fy_db_wait_notify(l, COND_LISTEN_WAIT_MS, payload, sizeof(payload)))
            engine_kick(eng);
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
    engine_kick(eng);
    cond_jobs_stop();   /* wakes tasks waiting for a migration job */
    for (size_t i = 0; i < eng->nworkers; i++)
        if (eng->workers[i].started)
            pthread_join(eng->workers[i].thread, NULL);
    if (eng->listener_started)
        pthread_join(eng->listener, NULL);
    atomic_store(&eng->renew_stop, true);
    engine_kick(eng);
    if (eng->renewer_started)
        pthread_join(eng->renewer, NULL);
    pthread_cond_destroy(&eng->wake);
    pthread_mutex_destroy(&eng->lock);
    free(eng->workers);
    free(eng);
}
