/* The live-migration job: a monitor thread per running migration polls the
 * driver (soon after the start, then every 100 ms), reports progress into the
 * migrations row, and applies the convergence policy (downtime ramp,
 * completion timeout, stall detection).  Its end goes to migration_jobs with
 * a 'ferry_jobs' notification.  Monitor threads are kept for the next job
 * once theirs ends: each holds a database connection, which is dear to open. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include "compute_fault.h"
#include "compute_mig.h"
#include "compute_sql.h"
#include "fy_cleanup.h"
#include "fy_db.h"
#include "fy_httpc.h"
#include "fy_log.h"
#include "fy_util.h"

#define POLL_MS 100
/* The first polls come quickly (doubling from 1 ms): a short migration, such
 * as a small disk copied before an instant RAM copy, ends within them. */
#define POLL_FIRST_MS 1
#define JOB_KIND "live_migration"
/* How long the end of a job is retried while the database is unreachable. */
#define JOB_END_RETRY_MS 120000

/* ---- policy, as pure functions ---- */

long long compute_lm_downtime_at(long long downtime_ms, long long steps, long long delay_s,
                                 double elapsed_s)
{
    if (steps <= 0)
        return downtime_ms;
    long long base = downtime_ms / steps;
    long long offset = (downtime_ms - base) / steps;
    long long step = delay_s > 0 ? (long long)(elapsed_s / (double)delay_s) : steps;
    if (step > steps)
        step = steps;
    return step == steps ? downtime_ms : base + offset * step;
}

compute_lm_act compute_lm_timeout_action(long long timeout_s, bool force, double elapsed_s)
{
    if (timeout_s <= 0 || elapsed_s <= (double)timeout_s)
        return COMPUTE_LM_ACT_NONE;
    return force ? COMPUTE_LM_ACT_FORCE : COMPUTE_LM_ACT_ABORT;
}

void compute_lm_stall_init(compute_lm_stall *s, double now_s)
{
    s->watermark = -1;
    s->since_s = now_s;
}

bool compute_lm_stall_check(compute_lm_stall *s, long long remaining, double now_s,
                            long long timeout_s)
{
    if (s->watermark < 0 || remaining < s->watermark) {
        s->watermark = remaining;
        s->since_s = now_s;
        return false;
    }
    return timeout_s > 0 && now_s - s->since_s > (double)timeout_s;
}

/* ---- the registry of running jobs ---- */

typedef struct lm_job {
    struct lm_job *next;
    char migration[FY_UUID_LEN + 1];
    char uuid[FY_UUID_LEN + 1];
    compute_driver *drv;
    char *host;
    compute_lm_job *handle;
    bool abort_req, force_req;   /* under jobs_lock */
    bool finished;
    const char *end_reason;      /* why the monitor aborted (timeout, stall) */
    fy_code end_code;
} lm_job;

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cond = PTHREAD_COND_INITIALIZER;
static lm_job *jobs;

static lm_job *find_locked(const char *migration)
{
    for (lm_job *j = jobs; j; j = j->next)
        if (!strcmp(j->migration, migration))
            return j;
    return NULL;
}

/* Bumped (under jobs_lock) when a driver's migration ended: the monitors look
 * at once instead of at their next poll. */
static unsigned long ended_gen;

void compute_live_job_kick(void)
{
    pthread_mutex_lock(&jobs_lock);
    ended_gen++;
    pthread_cond_broadcast(&jobs_cond);
    pthread_mutex_unlock(&jobs_lock);
}

/* Sleeps up to ms unless a request for this job arrives or a migration ends. */
static void wait_poll(lm_job *j, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&jobs_lock);
    unsigned long gen = ended_gen;
    while (!j->abort_req && !j->force_req && gen == ended_gen) {
        if (pthread_cond_timedwait(&jobs_cond, &jobs_lock, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&jobs_lock);
}

/* ---- reporting ---- */

static void report_progress(const lm_job *j, const compute_lm_stats *s)
{
    char v[6][24];
    long long vals[6] = {s->memory_total, s->memory_processed, s->memory_remaining,
                         s->disk_total, s->disk_processed, s->disk_remaining};
    for (int i = 0; i < 6; i++)
        snprintf(v[i], sizeof(v[i]), "%lld", vals[i]);
    const char *params[] = {j->migration, v[0], v[1], v[2], v[3], v[4], v[5]};
    fy_err err = {0};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&compute_sql_mig_progress, params, &res, &err))
        fy_warn("migration %s: cannot record progress: %s", j->migration, err.msg);
}

static const char *state_name(compute_lm_state st)
{
    switch (st) {
    case COMPUTE_LM_COMPLETED: return "completed";
    case COMPUTE_LM_CANCELLED: return "cancelled";
    case COMPUTE_LM_FAILED: return "failed";
    default: return "running";
    }
}

static void report_end(const lm_job *j, const compute_lm_stats *s)
{
    char downtime[24];
    snprintf(downtime, sizeof(downtime), "%lld", s->downtime_ms);
    bool failed = s->state == COMPUTE_LM_FAILED;
    const char *params[] = {j->migration, JOB_KIND, j->host, state_name(s->state),
                            failed ? s->error.msg : NULL,
                            failed ? fy_code_name(s->error.code) : NULL,
                            s->state == COMPUTE_LM_COMPLETED ? downtime : NULL};
    /* The conductor waits for this record: a database restart must not lose it,
     * so it is retried with backoff for as long as a restart may take. */
    long delay_ms = 200;
    for (uint64_t deadline = fy_now_ms() + JOB_END_RETRY_MS;;) {
        fy_err err = {0};
        _cleanup_pgres_ PGresult *res = NULL;
        if (fy_db_exec(&compute_sql_job_end, params, &res, &err) == FY_E_OK)
            return;
        if (fy_now_ms() >= deadline) {
            fy_error("migration %s: the job's end was not recorded: %s", j->migration, err.msg);
            return;
        }
        fy_warn("migration %s: cannot record the job's end: %s", j->migration, err.msg);
        struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        delay_ms = delay_ms * 2 > 5000 ? 5000 : delay_ms * 2;
    }
}

/* ---- the monitor ---- */

typedef struct monitor {
    uint64_t start_ms;
    long long downtime_set;
    compute_lm_stall stall;
    uint64_t last_report_ms;
} monitor;

/* Applies the policy to one sample; may ask the driver to abort or force. */
static void apply_policy(lm_job *j, monitor *m, const compute_lm_stats *s)
{
    compute_settings cs;
    compute_settings_get(&cs);
    double elapsed = (double)(fy_now_ms() - m->start_ms) / 1000.0;
    fy_err err = {0};
    long long dt = compute_lm_downtime_at(cs.lm_downtime_ms, cs.lm_downtime_steps,
                                          cs.lm_downtime_delay_s, elapsed);
    if (dt != m->downtime_set &&
        j->drv->ops->live_migration_set_max_downtime(j->drv, j->handle, dt, &err) == FY_E_OK) {
        fy_debug("migration %s: max downtime %lld ms", j->migration, dt);
        m->downtime_set = dt;
    }
    compute_lm_act act = compute_lm_timeout_action(cs.lm_completion_timeout_s,
                                                   cs.lm_timeout_force, elapsed);
    bool stalled = compute_lm_stall_check(&m->stall, s->memory_remaining + s->disk_remaining,
                                          elapsed, cs.lm_progress_timeout_s);
    if (act == COMPUTE_LM_ACT_FORCE) {
        fy_warn("migration %s: not complete after %lld s, forcing completion", j->migration,
                cs.lm_completion_timeout_s);
        j->drv->ops->live_migration_force_complete(j->drv, j->handle, &err);
    } else if (act == COMPUTE_LM_ACT_ABORT || stalled) {
        j->end_reason = stalled ? "stalled: no progress" : "not complete in time";
        j->end_code = FY_E_TIMEOUT;
        fy_warn("migration %s: live migration %s, aborting", j->migration, j->end_reason);
        j->drv->ops->live_migration_abort(j->drv, j->handle, &err);
    }
}

/* Requests from the API (abort, force-complete) reach the driver here. */
static void take_requests(lm_job *j)
{
    pthread_mutex_lock(&jobs_lock);
    bool ab = j->abort_req, fc = j->force_req;
    j->abort_req = j->force_req = false;
    pthread_mutex_unlock(&jobs_lock);
    fy_err err = {0};
    if (ab)
        j->drv->ops->live_migration_abort(j->drv, j->handle, &err);
    else if (fc)
        j->drv->ops->live_migration_force_complete(j->drv, j->handle, &err);
}

static void run_monitor(lm_job *j, compute_lm_stats *s)
{
    monitor m = {.start_ms = fy_now_ms(), .downtime_set = -1};
    compute_lm_stall_init(&m.stall, 0);
    long poll_ms = POLL_FIRST_MS;
    for (;;) {
        take_requests(j);
        fy_err err = {0};
        if (j->drv->ops->live_migration_stats(j->drv, j->handle, s, &err)) {
            s->state = COMPUTE_LM_FAILED;
            s->error = err;
        }
        if (s->state != COMPUTE_LM_RUNNING)
            return;
        uint64_t now = fy_now_ms();
        if (now - m.last_report_ms >= POLL_MS) {
            report_progress(j, s);
            m.last_report_ms = now;
        }
        apply_policy(j, &m, s);
        wait_poll(j, poll_ms);
        poll_ms = poll_ms * 2 > POLL_MS ? POLL_MS : poll_ms * 2;
    }
}

static void job_body(lm_job *j)
{
    fy_log_set_migration_id(j->migration);
    compute_lm_stats s = {0};
    run_monitor(j, &s);
    if (s.state == COMPUTE_LM_CANCELLED && j->end_reason) {
        s.state = COMPUTE_LM_FAILED;
        fy_fail(&s.error, j->end_code, "Live migration %s; aborted", j->end_reason);
    }
    report_progress(j, &s);
    report_end(j, &s);
    fy_info("migration %s: live migration job %s%s%s", j->migration, state_name(s.state),
            s.state == COMPUTE_LM_FAILED ? ": " : "",
            s.state == COMPUTE_LM_FAILED ? s.error.msg : "");
    j->drv->ops->live_migration_release(j->drv, j->handle);
    pthread_mutex_lock(&jobs_lock);
    j->finished = true;
    pthread_cond_broadcast(&jobs_cond);
    pthread_mutex_unlock(&jobs_lock);
    fy_log_set_migration_id(NULL);
}

/* ---- the monitor threads ---- */

typedef struct monitor_thread {
    struct monitor_thread *next;
    pthread_t thread;
} monitor_thread;

/* Under jobs_lock: jobs waiting for a thread, the threads, the idle ones. */
static lm_job *pending[64];
static size_t npending;
static monitor_thread *threads;
static size_t idle;
static bool threads_stop;

static void *monitor_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&jobs_lock);
    for (;;) {
        while (npending == 0 && !threads_stop)
            pthread_cond_wait(&jobs_cond, &jobs_lock);
        if (npending == 0)
            break;
        lm_job *j = pending[--npending];
        idle--;
        pthread_mutex_unlock(&jobs_lock);
        job_body(j);
        pthread_mutex_lock(&jobs_lock);
        idle++;
    }
    idle--;
    pthread_mutex_unlock(&jobs_lock);
    fy_db_thread_cleanup();
    return NULL;
}

/* Under jobs_lock: hands j to an idle monitor thread, or to a new one. */
static fy_code dispatch_locked(lm_job *j, fy_err *err)
{
    if (npending >= ELEMENTSOF(pending))
        return fy_fail(err, FY_E_UNAVAILABLE, "too many live migrations starting at once");
    if (idle <= npending) {
        monitor_thread *t = calloc(1, sizeof(*t));
        if (!t)
            return fy_fail(err, FY_E_NOMEM, NULL);
        int r = pthread_create(&t->thread, NULL, monitor_main, NULL);
        if (r) {
            free(t);
            return fy_fail(err, FY_E_INTERNAL, "cannot start the job thread: %s", strerror(r));
        }
        t->next = threads;
        threads = t;
        idle++;
    }
    pending[npending++] = j;
    pthread_cond_broadcast(&jobs_cond);
    return FY_E_OK;
}

/* A migration with nothing to wait for (the fake without copy time) ends
 * within its start: it is recorded on the calling thread, whose database
 * connection is already open, without a job thread. */
static bool finished_at_once(lm_job *j)
{
    compute_lm_stats s = {0};
    fy_err err = {0};
    if (j->drv->ops->live_migration_stats(j->drv, j->handle, &s, &err) ||
        s.state == COMPUTE_LM_RUNNING)
        return false;
    report_progress(j, &s);
    report_end(j, &s);
    fy_info("migration %s: live migration job %s%s%s", j->migration, state_name(s.state),
            s.state == COMPUTE_LM_FAILED ? ": " : "",
            s.state == COMPUTE_LM_FAILED ? s.error.msg : "");
    j->drv->ops->live_migration_release(j->drv, j->handle);
    free(j->host);
    free(j);
    return true;
}

/* Finished jobs are reaped by the next start or at shutdown. */
static void reap_locked(void)
{
    for (lm_job **pp = &jobs; *pp;) {
        lm_job *j = *pp;
        if (!j->finished) {
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        free(j->host);
        free(j);
    }
}

/* Claims the job in migration_jobs: false when it already exists. */
static fy_code claim(const char *migration, const char *host, bool *ret, fy_err *err)
{
    const char *params[] = {migration, JOB_KIND, host};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&compute_sql_job_begin, params, &res, err))
        return err->code;
    *ret = PQntuples(res) == 1;
    return FY_E_OK;
}

static lm_job *job_new(compute_ctx *ctx, const compute_mig_spec *spec)
{
    lm_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->host = strdup(ctx->cfg->host))) {
        free(j);
        return NULL;
    }
    snprintf(j->migration, sizeof(j->migration), "%s", spec->migration_uuid);
    snprintf(j->uuid, sizeof(j->uuid), "%s", spec->uuid);
    j->drv = ctx->driver;
    return j;
}

static fy_code launch(compute_ctx *ctx, const compute_mig_spec *spec, fy_err *err)
{
    compute_settings cs;
    compute_settings_get(&cs);
    fy_err fe = {0};
    compute_lm_params params = {
        .max_downtime_ms = compute_lm_downtime_at(cs.lm_downtime_ms, cs.lm_downtime_steps,
                                                  cs.lm_downtime_delay_s, 0),
        .fake_copy_ms = cs.fake_memory_copy_ms,
        .fake_dirty_rate = cs.fake_dirty_rate,
        .fake_bandwidth_mbps = (double)cs.fake_bandwidth_mbps,
        .fail_half_way = compute_fault_check("live_migration_job", &fe) != FY_E_OK,
        .bandwidth_mibps = cs.lm_bandwidth_mibps,
    };
    lm_job *j = job_new(ctx, spec);
    if (!j)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (ctx->driver->ops->live_migration_start(ctx->driver, spec, &params, &j->handle, err)) {
        free(j->host);
        free(j);
        return err->code;
    }
    if (finished_at_once(j))
        return FY_E_OK;
    if (dispatch_locked(j, err)) {
        ctx->driver->ops->live_migration_release(ctx->driver, j->handle);
        free(j->host);
        free(j);
        return err->code;
    }
    j->next = jobs;
    jobs = j;
    return FY_E_OK;
}

fy_code compute_live_job_start(compute_ctx *ctx, const compute_mig_spec *spec, fy_err *err)
{
    pthread_mutex_lock(&jobs_lock);
    reap_locked();
    fy_code rc = FY_E_OK;
    bool fresh = false;
    if (!find_locked(spec->migration_uuid) &&
        (rc = claim(spec->migration_uuid, ctx->cfg->host, &fresh, err)) == FY_E_OK && fresh)
        rc = launch(ctx, spec, err);
    pthread_mutex_unlock(&jobs_lock);
    if (rc && fresh) {
        /* The claim must not outlive a job that never started. */
        compute_lm_stats s = {.state = COMPUTE_LM_FAILED, .error = *err};
        lm_job tmp = {.host = ctx->cfg->host};
        snprintf(tmp.migration, sizeof(tmp.migration), "%s", spec->migration_uuid);
        report_end(&tmp, &s);
    }
    return rc;
}

/* The recorded state of a job that is not running here. */
static fy_code recorded_state(const char *migration, const char **ret, fy_err *err)
{
    const char *params[] = {migration, JOB_KIND};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&compute_sql_job_get, params, &res, err))
        return err->code;
    if (PQntuples(res) == 0)
        return fy_fail(err, FY_E_NOT_FOUND, "No live migration job for migration %s", migration);
    const char *st = fy_db_str(res, 0, "state");
    *ret = fy_streq(st, "completed")   ? "completed"
           : fy_streq(st, "cancelled") ? "cancelled"
           : fy_streq(st, "running")   ? "running"
                                       : "failed";
    return FY_E_OK;
}

static fy_code request(const char *migration, bool abort_it, const char **ret, fy_err *err)
{
    if (!fy_uuid_valid(migration))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid migration uuid");
    pthread_mutex_lock(&jobs_lock);
    lm_job *j = find_locked(migration);
    if (j && !j->finished) {
        if (abort_it)
            j->abort_req = true;
        else
            j->force_req = true;
        pthread_cond_broadcast(&jobs_cond);
    }
    bool running = j && !j->finished;
    pthread_mutex_unlock(&jobs_lock);
    if (running) {
        *ret = "running";
        return FY_E_OK;
    }
    return recorded_state(migration, ret, err);
}

fy_code compute_live_job_abort(const char *migration_uuid, const char **ret_state, fy_err *err)
{
    return request(migration_uuid, true, ret_state, err);
}

fy_code compute_live_job_force_complete(const char *migration_uuid, const char **ret_state,
                                        fy_err *err)
{
    return request(migration_uuid, false, ret_state, err);
}

/* ---- after a restart ---- */

/* A migration the hypervisor went on with while the agent was away: it gets
 * a monitor again (progress, policy, abort and force-complete), and its end is
 * recorded as that of any job.  Takes handle in every case. */
fy_code compute_live_job_adopt(compute_driver *drv, const char *host, const char *migration_uuid,
                               const char *instance_uuid, compute_lm_job *handle, bool abort_it,
                               bool force_it, fy_err *err)
{
    lm_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->host = strdup(host))) {
        free(j);
        drv->ops->live_migration_release(drv, handle);
        return fy_fail(err, FY_E_NOMEM, NULL);
    }
    snprintf(j->migration, sizeof(j->migration), "%s", migration_uuid);
    snprintf(j->uuid, sizeof(j->uuid), "%s", instance_uuid);
    j->drv = drv;
    j->handle = handle;
    j->abort_req = abort_it;
    j->force_req = force_it && !abort_it;
    pthread_mutex_lock(&jobs_lock);
    reap_locked();
    fy_code rc = find_locked(migration_uuid)
                     ? fy_fail(err, FY_E_CONFLICT, "migration %s already has a job here",
                               migration_uuid)
                     : dispatch_locked(j, err);
    if (rc == FY_E_OK) {
        j->next = jobs;
        jobs = j;
    }
    pthread_mutex_unlock(&jobs_lock);
    if (rc) {
        drv->ops->live_migration_release(drv, handle);
        free(j->host);
        free(j);
        return rc;
    }
    const char *params[] = {migration_uuid, JOB_KIND, host};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_err e = {0};
    if (fy_db_exec(&compute_sql_job_adopted, params, &res, &e))
        fy_warn("migration %s: job not marked as taken over: %s", migration_uuid, e.msg);
    fy_info("migration %s: live migration job taken over after a restart", migration_uuid);
    return FY_E_OK;
}

/* '{uuid,...}' of the jobs running here, for a uuid[] parameter. */
static char *running_uuids(void)
{
    pthread_mutex_lock(&jobs_lock);
    size_t n = 0;
    for (lm_job *j = jobs; j; j = j->next)
        n++;
    size_t size = 3 + n * (FY_UUID_LEN + 1);
    char *out = malloc(size);
    if (out) {
        size_t at = 0;
        out[at++] = '{';
        for (lm_job *j = jobs; j; j = j->next)
            if (!j->finished)
                at += (size_t)snprintf(out + at, size - at, "%s%s", at > 1 ? "," : "",
                                       j->migration);
        snprintf(out + at, size - at, "}");
    }
    pthread_mutex_unlock(&jobs_lock);
    return out;
}

fy_code compute_live_job_recover(const char *host, fy_err *err)
{
    _cleanup_free_ char *adopted = running_uuids();
    if (!adopted)
        return fy_fail(err, FY_E_NOMEM, NULL);
    const char *params[] = {host, "The compute agent restarted during the live migration",
                            adopted};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&compute_sql_job_recover, params, &res, err))
        return err->code;
    if (PQntuples(res) > 0)
        fy_warn("%d live migration job(s) interrupted by a restart marked failed",
                PQntuples(res));
    return FY_E_OK;
}

void compute_live_job_shutdown(void)
{
    pthread_mutex_lock(&jobs_lock);
    for (lm_job *j = jobs; j; j = j->next)
        j->abort_req = true;
    pthread_cond_broadcast(&jobs_cond);
    for (;;) {
        bool busy = false;
        for (lm_job *j = jobs; j; j = j->next)
            busy |= !j->finished;
        if (!busy)
            break;
        pthread_cond_wait(&jobs_cond, &jobs_lock);
    }
    reap_locked();
    threads_stop = true;
    pthread_cond_broadcast(&jobs_cond);
    monitor_thread *t = threads;
    threads = NULL;
    pthread_mutex_unlock(&jobs_lock);
    while (t) {
        monitor_thread *next = t->next;
        pthread_join(t->thread, NULL);
        free(t);
        t = next;
    }
    pthread_mutex_lock(&jobs_lock);
    threads_stop = false;
    pthread_mutex_unlock(&jobs_lock);
}
