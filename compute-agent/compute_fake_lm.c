/* The fake driver's live-migration job: the disk (block migration) really goes
 * to the destination's transfer endpoint on a thread of its own, then the RAM
 * copy follows the model of fake_lm_sim in wall time.  Polled by the monitor. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include "compute_fake_priv.h"
#include "compute_mig.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

enum { DISK_NONE, DISK_RUNNING, DISK_DONE, DISK_FAILED };

struct compute_lm_job {
    pthread_mutex_t lock;
    char migration[FY_UUID_LEN + 1];
    char uuid[FY_UUID_LEN + 1];
    char *disk_path, *dest_url, *secret;
    compute_lm_params params;
    long long memory_total;
    long long disk_total;
    atomic_llong disk_done;
    atomic_bool cancel;
    atomic_int disk_state;
    fy_err disk_err;
    pthread_t pusher;
    bool pusher_started;
    uint64_t started_us;        /* of the RAM copy (after the disk) */
    bool forced, aborted, ended;
    compute_lm_stats final;
};

static void *push_disk(void *arg)
{
    compute_lm_job *j = arg;
    compute_xfer x = {
        .dest_url = j->dest_url, .service_secret = j->secret, .migration_uuid = j->migration,
        .instance_uuid = j->uuid, .path = j->disk_path, .done = &j->disk_done,
        .cancel = &j->cancel,
    };
    fy_err err = {0};
    fy_code rc = compute_transfer_push(&x, NULL, &err);
    pthread_mutex_lock(&j->lock);
    if (rc)
        j->disk_err = err;
    j->started_us = fy_now_us();
    atomic_store(&j->disk_state, rc ? DISK_FAILED : DISK_DONE);
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

static void job_free(compute_lm_job *j)
{
    if (!j)
        return;
    if (j->pusher_started) {
        atomic_store(&j->cancel, true);
        pthread_join(j->pusher, NULL);
    }
    pthread_mutex_destroy(&j->lock);
    free(j->disk_path);
    free(j->dest_url);
    free(j->secret);
    free(j);
}

static bool needs_disk_copy(const compute_mig_spec *s)
{
    bool block = fy_streq(s->block_migration, "true") ||
                 (!fy_streq(s->block_migration, "false") &&
                  compute_md_bool(s->migrate_data, "block_migration", false));
    return block && !compute_md_bool(s->migrate_data, "is_shared_instance_path", false);
}

static fy_code start_disk(compute_lm_job *j, const fake_priv *p, const compute_mig_spec *spec,
                          fy_err *err)
{
    if (!spec->peer_url)
        return fy_fail(err, FY_E_BAD_REQUEST, "dest_url is needed for a block migration");
    j->disk_path = fake_guest_path(p, spec->uuid, "disk");
    j->dest_url = strdup(spec->peer_url);
    j->secret = strdup(spec->service_secret ? spec->service_secret : "");
    if (!j->disk_path || !j->dest_url || !j->secret)
        return fy_fail(err, FY_E_NOMEM, NULL);
    struct stat st;
    if (stat(j->disk_path, &st) < 0)
        return fy_fail(err, FY_E_DRIVER, "disk of %s: %s", spec->uuid, strerror(errno));
    j->disk_total = st.st_size;
    atomic_store(&j->disk_state, DISK_RUNNING);
    int r = pthread_create(&j->pusher, NULL, push_disk, j);
    if (r)
        return fy_fail(err, FY_E_INTERNAL, "cannot start the disk copy: %s", strerror(r));
    j->pusher_started = true;
    return FY_E_OK;
}

fy_code fake_lm_start(compute_driver *drv, const compute_mig_spec *spec,
                      const compute_lm_params *params, compute_lm_job **ret, fy_err *err)
{
    fake_priv *p = drv->priv;
    json_t *dom = NULL;
    if (fake_check_uuid(spec->uuid, err) || fake_read_domain(p, spec->uuid, "", &dom, err))
        return err->code;
    long long mem_mb = fy_json_int(json_object_get(dom, "flavor"), "memory_mb", 0);
    json_decref(dom);
    compute_lm_job *j = calloc(1, sizeof(*j));
    if (!j)
        return fy_fail(err, FY_E_NOMEM, NULL);
    pthread_mutex_init(&j->lock, NULL);
    snprintf(j->migration, sizeof(j->migration), "%s", spec->migration_uuid);
    snprintf(j->uuid, sizeof(j->uuid), "%s", spec->uuid);
    j->params = *params;
    if (j->params.fake_bandwidth_mbps <= 0)
        j->params.fake_bandwidth_mbps = 1000;
    j->memory_total = mem_mb << 20;
    j->started_us = fy_now_us();
    if (needs_disk_copy(spec) && start_disk(j, p, spec, err)) {
        job_free(j);
        return err->code;
    }
    *ret = j;
    return FY_E_OK;
}

static void end(compute_lm_job *j, compute_lm_state state, compute_lm_stats *s)
{
    s->state = state;
    j->final = *s;
    j->ended = true;
}

/* The RAM phase at this moment, ending it when it converges. */
static void ram_phase(compute_lm_job *j, compute_lm_stats *s)
{
    const compute_lm_params *pa = &j->params;
    double wall_ms = (double)(fy_now_us() - j->started_us) / 1000.0;
    long long processed, remaining;
    fake_lm_sim(j->memory_total, pa->fake_bandwidth_mbps, pa->fake_dirty_rate, pa->fake_copy_ms,
                wall_ms, &processed, &remaining);
    s->memory_processed = processed;
    s->memory_remaining = remaining;
    if (pa->fail_half_way && processed * 2 >= j->memory_total) {
        fy_fail(&s->error, FY_E_DRIVER, "injected fault at live_migration_job");
        end(j, COMPUTE_LM_FAILED, s);
        return;
    }
    long long pause_ms = fake_lm_copy_ms(remaining, pa->fake_bandwidth_mbps);
    bool converged = pause_ms <= pa->max_downtime_ms && wall_ms >= (double)pa->fake_copy_ms;
    if (!converged && !j->forced)
        return;
    /* Switch-over: the guest pauses while the rest is copied. */
    s->memory_processed += remaining;
    s->memory_remaining = 0;
    s->downtime_ms = pause_ms;
    end(j, COMPUTE_LM_COMPLETED, s);
}

fy_code fake_lm_stats(compute_driver *drv, compute_lm_job *j, compute_lm_stats *s, fy_err *err)
{
    (void)drv;
    (void)err;
    pthread_mutex_lock(&j->lock);
    if (j->ended) {
        *s = j->final;
        pthread_mutex_unlock(&j->lock);
        return FY_E_OK;
    }
    memset(s, 0, sizeof(*s));
    s->state = COMPUTE_LM_RUNNING;
    s->memory_total = j->memory_total;
    s->memory_remaining = j->memory_total;
    s->disk_total = j->disk_total;
    s->disk_processed = atomic_load(&j->disk_done);
    if (s->disk_processed > s->disk_total)
        s->disk_processed = s->disk_total;
    s->disk_remaining = s->disk_total - s->disk_processed;
    int ds = atomic_load(&j->disk_state);
    if (j->aborted) {
        end(j, COMPUTE_LM_CANCELLED, s);
    } else if (ds == DISK_FAILED) {
        s->error = j->disk_err;
        end(j, COMPUTE_LM_FAILED, s);
    } else if (ds != DISK_RUNNING) {
        ram_phase(j, s);
    }
    pthread_mutex_unlock(&j->lock);
    return FY_E_OK;
}

fy_code fake_lm_set_downtime(compute_driver *drv, compute_lm_job *j, long long ms, fy_err *err)
{
    (void)drv;
    if (ms <= 0)
        return fy_fail(err, FY_E_BAD_REQUEST, "max downtime must be positive");
    pthread_mutex_lock(&j->lock);
    j->params.max_downtime_ms = ms;
    pthread_mutex_unlock(&j->lock);
    return FY_E_OK;
}

static fy_code act(compute_lm_job *j, bool abort_it, fy_err *err)
{
    pthread_mutex_lock(&j->lock);
    bool ended = j->ended;
    if (!ended && abort_it) {
        j->aborted = true;
        atomic_store(&j->cancel, true);
    } else if (!ended) {
        j->forced = true;
    }
    pthread_mutex_unlock(&j->lock);
    if (ended)
        return fy_fail(err, FY_E_CONFLICT, "live migration of %s is no longer running", j->uuid);
    return FY_E_OK;
}

fy_code fake_lm_abort(compute_driver *drv, compute_lm_job *j, fy_err *err)
{
    (void)drv;
    return act(j, true, err);
}

fy_code fake_lm_force(compute_driver *drv, compute_lm_job *j, fy_err *err)
{
    (void)drv;
    return act(j, false, err);
}

void fake_lm_release(compute_driver *drv, compute_lm_job *j)
{
    (void)drv;
    job_free(j);
}
