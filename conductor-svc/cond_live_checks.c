/* The live migration's pre-checks (Nova's LiveMigrationTask): the instance
 * and its host, the destination (given, or scheduler candidates tried in
 * order), the resource claim, and the compute checks on both hosts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cond_live.h"
#include "cond_netvol.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

/* ---- pure rules ---- */

bool live_dest_has_memory(const live_host_facts *dst, long long need_mb)
{
    double avail = (double)dst->memory_mb * dst->ram_ratio - (double)dst->memory_mb_used;
    return need_mb > 0 && avail >= (double)need_mb;
}

fy_code live_check_hypervisor(const live_host_facts *src, const live_host_facts *dst,
                              fy_err *err)
{
    if (!fy_streq(src->hypervisor_type, dst->hypervisor_type))
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "The supplied hypervisor type of is invalid.");
    if (src->hypervisor_version > dst->hypervisor_version)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "The instance requires a newer hypervisor version than has been "
                       "provided.");
    return FY_E_OK;
}

fy_code live_check_given_dest(const char *instance_uuid, const char *source, const char *dest,
                              const live_host_facts *src, const live_host_facts *dst,
                              long long need_mb, fy_err *err)
{
    if (fy_streq(source, dest))
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "Unable to migrate instance (%s) to current host (%s).", instance_uuid,
                       dest);
    if (!dst->exists)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK, "Compute host %s could not be found.",
                       dest);
    if (!dst->up)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "Compute service of %s is unavailable at this time.", dest);
    if (!live_dest_has_memory(dst, need_mb)) {
        long long avail = (long long)((double)dst->memory_mb * dst->ram_ratio) -
                          dst->memory_mb_used;
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "Unable to migrate %s to %s: Lack of memory(host:%lld <= instance:%lld)",
                       instance_uuid, dest, avail, need_mb);
    }
    return live_check_hypervisor(src, dst, err);
}

bool live_may_retry(int tried, long long retries)
{
    return tried < retries;
}

/* ---- host facts ---- */

typedef struct host_facts {
    live_host_facts f;
    char type[64];
} host_facts;

static fy_code facts_load(live_ctx *lc, const char *host, host_facts *ret, fy_err *err)
{
    char iv[32];
    snprintf(iv, sizeof(iv), "%lld seconds", lc->ctx->cfg.service_down_time);
    const char *p[] = {host, iv};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_live_sql_host_facts, p, &res, err))
        return live_transient(lc, err);
    memset(ret, 0, sizeof(*ret));
    if (PQntuples(res) != 1 || !fy_db_bool(res, 0, "has_node"))
        return FY_E_OK;
    snprintf(ret->type, sizeof(ret->type), "%s", fy_db_str(res, 0, "hypervisor_type"));
    ret->f = (live_host_facts){
        .exists = true,
        .up = fy_db_bool(res, 0, "up"),
        .hypervisor_type = ret->type,
        .hypervisor_version = fy_db_ll(res, 0, "hypervisor_version", 0),
        .memory_mb = fy_db_ll(res, 0, "memory_mb", 0),
        .memory_mb_used = fy_db_ll(res, 0, "memory_mb_used", 0),
        .ram_ratio = fy_db_double(res, 0, "ram_allocation_ratio", 1.0),
    };
    return FY_E_OK;
}

/* ---- the compute checks on a chosen destination ---- */

/* Nova's check_can_live_migrate_source gets the instance's block device info
 * and decides from it whether the instance is volume-backed (its root on a
 * volume): such an instance has no local disk to copy and moves without
 * shared storage and without block migration.  The source's own connections
 * are sent, the root mapping (boot_index 0) first. */
static fy_code check_source(live_ctx *lc, const json_t *extra, fy_err *err)
{
    json_auto_t *bdi = NULL;
    if (cond_vol_block_device_info(lc->inst.uuid, lc->source, &bdi, err))
        return live_transient(lc, err);
    json_auto_t *body = json_deep_copy(extra);
    if (!body || json_object_set(body, "block_device_info", bdi) != 0)
        return fy_fail(err, FY_E_NOMEM, NULL);
    cond_event_start_q(lc->run, "compute_check_can_live_migrate_source", lc->source);
    fy_code rc = live_agent(lc, lc->source, "check_can_live_migrate_source", body, NULL, err);
    cond_event_finish_q(lc->run, "compute_check_can_live_migrate_source", rc == FY_E_OK,
                        err->msg);
    return rc;
}

/* Nova's check_can_live_migrate_destination: the driver check on the
 * destination, the source check inside it, then the destination cleanup. */
static fy_code compute_checks(live_ctx *lc, fy_err *err)
{
    json_auto_t *extra = json_pack("{s:O}", "block_migration", lc->req_block);
    if (!extra)
        return fy_fail(err, FY_E_NOMEM, NULL);
    const char *ev = "compute_check_can_live_migrate_destination";
    cond_event_start_q(lc->run, ev, lc->dest);
    fy_code rc = live_agent(lc, lc->dest, "check_can_live_migrate_destination", extra, NULL, err);
    if (rc == FY_E_OK) {
        rc = check_source(lc, extra, err);
        fy_err cerr = {0};
        if (live_agent(lc, lc->dest, "check_can_live_migrate_destination_cleanup", NULL, NULL,
                       &cerr))
            fy_warn("migration %s: destination check cleanup on %s failed: %s", lc->mig.uuid,
                    lc->dest, cerr.msg);
    }
    cond_event_finish_q(lc->run, ev, rc == FY_E_OK, err->msg);
    if (rc)
        return rc;
    const json_t *md = lc->mig.migrate_data;
    lc->block_migration = fy_json_bool(md, "block_migration", json_is_true(lc->req_block));
    lc->shared_path = fy_json_bool(md, "is_shared_instance_path", false);
    lc->volume_backed = fy_json_bool(md, "is_volume_backed", false);
    return FY_E_OK;
}

static void dest_set(live_ctx *lc, const cond_dest *d)
{
    snprintf(lc->dest, sizeof(lc->dest), "%s", d->host);
    snprintf(lc->dest_node, sizeof(lc->dest_node), "%s", d->node[0] ? d->node : d->host);
}

static void dest_forget(live_ctx *lc)
{
    fy_err rerr = {0};
    if (lc->dest[0] && cond_sched_release(lc->ctx, lc->inst.uuid, lc->dest, &rerr))
        fy_warn("migration %s: releasing the claim on %s failed: %s", lc->mig.uuid, lc->dest,
                rerr.msg);
    lc->dest[0] = lc->dest_node[0] = '\0';
}

/* ---- a given destination ---- */

static fy_code claim_given(live_ctx *lc, fy_err *err)
{
    if (lc->force) {
        fy_code rc = cond_sched_claim(lc->ctx, lc->inst.uuid, lc->inst.project_id, lc->req_host,
                                      &lc->res, err);
        if (rc == FY_E_CONFLICT)
            return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                           "Unable to move instance %s to host %s. There is not enough "
                           "capacity on the host for the instance.",
                           lc->inst.uuid, lc->req_host);
        cond_dest d = {0};
        snprintf(d.host, sizeof(d.host), "%s", lc->req_host);
        if (rc == FY_E_OK)
            dest_set(lc, &d);
        return rc;
    }
    /* Without force the scheduler validates the host with all its filters. */
    const char *ignore[] = {lc->source};
    cond_select req = {
        .consumer_uuid = lc->inst.uuid,
        .project_id = lc->inst.project_id,
        .res = lc->res,
        .force_host = lc->req_host,
        .ignore_hosts = ignore,
        .n_ignore_hosts = 1,
    };
    cond_selection sel = {0};
    if (cond_sched_select(lc->ctx, &req, &sel, err))
        return err->code;
    dest_set(lc, &sel.dest);
    return FY_E_OK;
}

static fy_code given_dest(live_ctx *lc, const host_facts *src, fy_err *err)
{
    host_facts dst;
    if (facts_load(lc, lc->req_host, &dst, err))
        return err->code;
    if (live_check_given_dest(lc->inst.uuid, lc->source, lc->req_host, &src->f, &dst.f,
                              lc->res.memory_mb, err) ||
        claim_given(lc, err))
        return err->code;
    if (compute_checks(lc, err)) {
        fy_err cause = *err;
        dest_forget(lc);
        *err = cause;
        return err->code;
    }
    return FY_E_OK;
}

/* ---- scheduler candidates ---- */

typedef struct tried_hosts {
    char (*host)[COND_HOST_MAX];
    const char **ignore;        /* source + tried hosts */
    int n;
} tried_hosts;

/* *ret_final: the scheduler itself failed (no host left, or unreachable). */
static fy_code one_candidate(live_ctx *lc, const host_facts *src, tried_hosts *t,
                             bool *ret_final, fy_err *err)
{
    *ret_final = true;
    cond_select req = {
        .consumer_uuid = lc->inst.uuid,
        .project_id = lc->inst.project_id,
        .res = lc->res,
        .ignore_hosts = t->ignore,
        .n_ignore_hosts = (size_t)t->n + 1,
    };
    cond_selection sel = {0};
    if (cond_sched_select(lc->ctx, &req, &sel, err))
        return err->code;
    *ret_final = false;
    dest_set(lc, &sel.dest);
    snprintf(t->host[t->n], COND_HOST_MAX, "%s", sel.dest.host);
    t->ignore[t->n + 1] = t->host[t->n];
    t->n++;
    host_facts dst;
    if (facts_load(lc, lc->dest, &dst, err))
        return err->code;
    if (live_check_hypervisor(&src->f, &dst.f, err) || compute_checks(lc, err)) {
        fy_err cause = *err;
        dest_forget(lc);
        *err = cause;
        return err->code;
    }
    return FY_E_OK;
}

static fy_code scheduled_dest(live_ctx *lc, const host_facts *src, fy_err *err)
{
    long long retries = lc->ctx->cfg.live_migration_retries;
    tried_hosts t = {
        .host = calloc((size_t)retries, COND_HOST_MAX),
        .ignore = calloc((size_t)retries + 1, sizeof(char *)),
    };
    fy_code rc = FY_E_OK;
    if (!t.host || !t.ignore) {
        rc = fy_fail(err, FY_E_NOMEM, NULL);
        goto out;
    }
    t.ignore[0] = lc->source;
    for (;;) {
        if (!live_may_retry(t.n, retries)) {
            rc = fy_fail(err, FY_E_MIGRATION_PRECHECK,
                         "Exceeded max scheduling retries %lld for instance %s during live "
                         "migration",
                         retries, lc->inst.uuid);
            break;
        }
        bool final = false;
        rc = one_candidate(lc, src, &t, &final, err);
        if (rc == FY_E_OK || final || lc->transient)
            break;
        fy_info("migration %s: candidate %s refused: %s", lc->mig.uuid, t.host[t.n - 1],
                err->msg);
    }
out:
    free(t.host);
    free(t.ignore);
    return rc;
}

/* ---- allocations ---- */

fy_code live_allocations_back(live_ctx *lc, fy_err *err)
{
    /* Never on the source: there the instance may still hold its own allocation. */
    if (lc->dest[0] && !fy_streq(lc->dest, lc->source) &&
        cond_sched_release(lc->ctx, lc->inst.uuid, lc->dest, err))
        return live_transient(lc, err);
    if (cond_sched_move(lc->ctx, lc->mig.uuid, lc->inst.uuid, lc->source, err))
        return live_transient(lc, err);
    return FY_E_OK;
}

/* The source allocation becomes the migration's (Nova's model); a resumed run
 * also drops a claim an interrupted run may have made for the instance. */
static fy_code allocations_to_migration(live_ctx *lc, fy_err *err)
{
    if (cond_sched_move(lc->ctx, lc->inst.uuid, lc->mig.uuid, lc->source, err))
        return live_transient(lc, err);
    if (lc->run->task.attempts > 1 && cond_sched_release(lc->ctx, lc->inst.uuid, NULL, err))
        return live_transient(lc, err);
    return FY_E_OK;
}

fy_code live_checks(live_ctx *lc, fy_err *err)
{
    if (lc->inst.power_state != LIVE_POWER_RUNNING && lc->inst.power_state != LIVE_POWER_PAUSED)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK, "Instance %s is not running.",
                       lc->inst.uuid);
    host_facts src;
    if (facts_load(lc, lc->source, &src, err))
        return err->code;
    if (!src.f.up)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "Compute service of %s is unavailable at this time.", lc->source);
    if (allocations_to_migration(lc, err))
        return err->code;
    return lc->req_host ? given_dest(lc, &src, err) : scheduled_dest(lc, &src, err);
}
