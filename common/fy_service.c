/* fy_service — registration and the heartbeat thread. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include "fy_db.h"
#include "fy_log.h"
#include "fy_service.h"
#include "fy_util.h"

static const fy_sql sql_register = {
    "fy_service_register",
    "INSERT INTO services (uuid, host, \"binary\", url, zone, last_seen_up, report_count)"
    " VALUES ($1::uuid, $2, $3, $4, coalesce($5, 'nova'), now(), 1)"
    " ON CONFLICT (host, \"binary\") DO UPDATE SET url = EXCLUDED.url, last_seen_up = now(),"
    " report_count = services.report_count + 1"
    " RETURNING id",
    5};
static const fy_sql sql_heartbeat = {
    "fy_service_heartbeat",
    "UPDATE services SET last_seen_up = now(), report_count = report_count + 1"
    " WHERE id = $1::integer",
    1};

fy_code fy_service_register(const char *host, const char *binary, const char *url,
                            const char *zone, int *ret_service_id, fy_err *err)
{
    if (!host || !*host || !binary || !*binary)
        return fy_fail(err, FY_E_BAD_REQUEST, "service host and binary are required");
    char uuid[FY_UUID_LEN + 1];
    fy_uuid_v4(uuid);
    const char *const p[] = {uuid, host, binary, url, zone};
    _cleanup_pgres_ PGresult *r = NULL;
    fy_code rc = fy_db_exec_one(&sql_register, p, &r, err);
    if (rc != FY_E_OK) {
        if (err)
            fy_err_prefix(err, "registering %s on %s", binary, host);
        return rc;
    }
    if (ret_service_id)
        *ret_service_id = (int)fy_db_ll(r, 0, "id", 0);
    return FY_E_OK;
}

fy_code fy_service_heartbeat(int service_id, fy_err *err)
{
    char id[16];
    snprintf(id, sizeof(id), "%d", service_id);
    const char *const p[] = {id};
    _cleanup_pgres_ PGresult *r = NULL;
    fy_code rc = fy_db_exec(&sql_heartbeat, p, &r, err);
    if (rc != FY_E_OK)
        return rc;
    if (fy_db_affected(r) == 0)
        return fy_fail(err, FY_E_NOT_FOUND, "service %d is not registered", service_id);
    return FY_E_OK;
}

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running;
    bool stop;
    int service_id;
    int interval_s;
} hb = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Waits one interval or until stopped; true when stopping. */
static bool hb_wait(int interval_s)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += interval_s;
    pthread_mutex_lock(&hb.lock);
    while (!hb.stop && pthread_cond_timedwait(&hb.cond, &hb.lock, &until) == 0)
        ;
    bool stop = hb.stop;
    pthread_mutex_unlock(&hb.lock);
    return stop;
}

static void *hb_main(void *arg)
{
    (void)arg;
    bool outage = false;
    while (!hb_wait(hb.interval_s)) {
        fy_err e;
        if (fy_service_heartbeat(hb.service_id, &e) == FY_E_OK) {
            if (outage)
                fy_info("heartbeat of service %d recovered", hb.service_id);
            outage = false;
        } else if (!outage) {
            fy_warn("heartbeat of service %d failed: %s", hb.service_id, e.msg);
            outage = true;
        }
    }
    fy_db_thread_cleanup();
    return NULL;
}

fy_code fy_service_heartbeat_start(int service_id, int interval_s, fy_err *err)
{
    if (interval_s <= 0)
        return fy_fail(err, FY_E_CONFIG, "heartbeat interval must be positive");
    fy_code rc = FY_E_OK;
    pthread_mutex_lock(&hb.lock);
    if (hb.running) {
        rc = fy_fail(err, FY_E_CONFLICT, "heartbeat already running");
        goto out;
    }
    /* The condition waits on CLOCK_MONOTONIC so clock changes do not stall it. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int e = pthread_cond_init(&hb.cond, &ca);
    pthread_condattr_destroy(&ca);
    if (e != 0) {
        rc = fy_fail(err, FY_E_INTERNAL, "cannot create condition variable");
        goto out;
    }
    hb.service_id = service_id;
    hb.interval_s = interval_s;
    hb.stop = false;
    if (pthread_create(&hb.thread, NULL, hb_main, NULL) != 0) {
        pthread_cond_destroy(&hb.cond);
        rc = fy_fail(err, FY_E_INTERNAL, "cannot start the heartbeat thread");
        goto out;
    }
    hb.running = true;
out:
    pthread_mutex_unlock(&hb.lock);
    return rc;
}

void fy_service_heartbeat_stop(void)
{
    pthread_mutex_lock(&hb.lock);
    if (!hb.running) {
        pthread_mutex_unlock(&hb.lock);
        return;
    }
    hb.stop = true;
    pthread_cond_signal(&hb.cond);
    pthread_mutex_unlock(&hb.lock);
    pthread_join(hb.thread, NULL);
    pthread_mutex_lock(&hb.lock);
    hb.running = false;
    pthread_cond_destroy(&hb.cond);
    pthread_mutex_unlock(&hb.lock);
}
