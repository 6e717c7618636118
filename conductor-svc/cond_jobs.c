/* Waiting for migration jobs: one LISTEN 'ferry_jobs' thread wakes the task
 * threads that watch the migration named in a notification.  The agents
 * notify when a job ends; the API notifies when it records an abort or a
 * force-complete request.  A watcher re-reads the records on every wake-up;
 * the wait's time limit is only a safety net for a lost notification. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include "cond.h"
#include "fy_log.h"

#define JOBS_LISTEN_WAIT_MS 500
#define JOBS_RETRY_MS 1000

static struct {
    pthread_once_t once;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    cond_jobs_watch *head;
    atomic_bool stop;
    bool started;
    pthread_t thread;
} J = {.once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER};

static void jobs_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&J.cond, &ca);
    pthread_condattr_destroy(&ca);
}

/* Wakes the watchers of uuid (every watcher when uuid is NULL). */
static void jobs_wake(const char *uuid)
{
    pthread_mutex_lock(&J.lock);
    bool any = false;
    for (cond_jobs_watch *w = J.head; w; w = w->next)
        if (!uuid || strcasecmp(w->migration_uuid, uuid) == 0) {
            w->hits++;
            any = true;
        }
    if (any)
        pthread_cond_broadcast(&J.cond);
    pthread_mutex_unlock(&J.lock);
}

static void *jobs_main(void *arg)
{
    (void)arg;
    fy_db_listener *l = NULL;
    while (!atomic_load(&J.stop)) {
        if (!l) {
            fy_err err = {0};
            if (fy_db_listen("ferry_jobs", &l, &err)) {
                fy_debug("LISTEN ferry_jobs failed: %s", err.msg);
                struct timespec ts = {JOBS_RETRY_MS / 1000, 0};
                nanosleep(&ts, NULL);
                continue;
            }
            /* Anything notified while not listening is found by a re-read. */
            jobs_wake(NULL);
        }
        char payload[128];
        if (fy_db_wait_notify(l, JOBS_LISTEN_WAIT_MS, payload, sizeof(payload)))
            jobs_wake(payload);
    }
    fy_db_listener_free(l);
    fy_db_thread_cleanup();
    return NULL;
}

fy_code cond_jobs_start(fy_err *err)
{
    pthread_once(&J.once, jobs_init);
    if (J.started)
        return FY_E_OK;
    atomic_store(&J.stop, false);
    if (pthread_create(&J.thread, NULL, jobs_main, NULL) != 0)
        return fy_fail(err, FY_E_INTERNAL, "cannot start the ferry_jobs listener");
    J.started = true;
    return FY_E_OK;
}

void cond_jobs_stop(void)
{
    pthread_once(&J.once, jobs_init);
    atomic_store(&J.stop, true);
    pthread_mutex_lock(&J.lock);
    pthread_cond_broadcast(&J.cond);
    pthread_mutex_unlock(&J.lock);
    if (J.started) {
        pthread_join(J.thread, NULL);
        J.started = false;
    }
}

void cond_jobs_watch_start(cond_jobs_watch *w, const char *migration_uuid)
{
    pthread_once(&J.once, jobs_init);
    memset(w, 0, sizeof(*w));
    snprintf(w->migration_uuid, sizeof(w->migration_uuid), "%s", migration_uuid);
    pthread_mutex_lock(&J.lock);
    w->next = J.head;
    J.head = w;
    pthread_mutex_unlock(&J.lock);
}

void cond_jobs_watch_end(cond_jobs_watch *w)
{
    pthread_mutex_lock(&J.lock);
    for (cond_jobs_watch **pp = &J.head; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    pthread_mutex_unlock(&J.lock);
    w->next = NULL;
}

bool cond_jobs_wait(cond_jobs_watch *w, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&J.lock);
    while (w->hits == w->seen && !atomic_load(&J.stop))
        if (pthread_cond_timedwait(&J.cond, &J.lock, &ts) == ETIMEDOUT)
            break;
    bool hit = w->hits != w->seen;
    w->seen = w->hits;
    pthread_mutex_unlock(&J.lock);
    return hit;
}

bool cond_jobs_stopping(void)
{
    return atomic_load(&J.stop);
}
