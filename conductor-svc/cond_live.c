/* Task "live_migrate": the seed's Live Migration Flow as a resumable step
 * machine.  Each step is recorded in tasks.step before it runs and every call
 * it makes is idempotent, so a resumed run repeats the recorded step.  A
 * failure before any action step ends in live_precheck_failed(); one after it
 * in live_rollback(); the step taken and the outcome are kept in task params
 * ("failure") so that a resumed run finishes the same way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cond_live.h"
#include "cond_netvol.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

/* Agent calls are idempotent per migration and step: safe to retry. */
#define LIVE_AGENT_RETRIES 2
/* A failure of ours (database, scheduler unreachable) is retried this often
 * before it counts as the migration's failure. */
#define LIVE_MAX_ATTEMPTS 5
/* Safety net of the job wait: re-read the records when no notification came. */
#define LIVE_WAIT_RECHECK_MS 1000

enum live_step {
    S_CHECKS, S_PRE, S_START, S_WAIT,
    S_POST_VOLUMES, S_POST_NET_START, S_POST_AT_DEST, S_POST_NET_FINISH, S_POST_SOURCE,
    S_POST_DONE,
    S_PRECHECK_FAILED, S_ROLLBACK,
    S__COUNT,
};

static const char *const live_steps[S__COUNT] = {
    [S_CHECKS] = "checks",
    [S_PRE] = "pre_live_migration",
    [S_START] = "live_migration",
    [S_WAIT] = "wait_job",
    [S_POST_VOLUMES] = LIVE_STEP_POST,
    [S_POST_NET_START] = "post_migrate_instance_start",
    [S_POST_AT_DEST] = "post_live_migration_at_destination",
    [S_POST_NET_FINISH] = "post_migrate_instance_finish",
    [S_POST_SOURCE] = "post_live_migration_source",
    [S_POST_DONE] = "post_done",
    [S_PRECHECK_FAILED] = "precheck_failed",
    [S_ROLLBACK] = "rollback",
};

/* ---- shared helpers ---- */

fy_code live_transient(live_ctx *lc, fy_err *err)
{
    lc->transient = true;
    return err->code;
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

json_t *live_body(const live_ctx *lc)
{
    json_t *mig = cond_mig_body_migration(&lc->mig);
    if (mig && lc->dest[0]) {
        json_object_set_new(mig, "dest_compute", json_string(lc->dest));
        json_object_set_new(mig, "dest_node", json_string(lc->dest_node));
    }
    return json_pack("{s:o,s:o,s:O,s:b,s:o,s:o}", "migration", mig, "instance",
                     cond_mig_body_instance(&lc->inst), "migrate_data", lc->mig.migrate_data,
                     "block_migration", lc->block_migration, "source_host",
                     json_string(lc->source), "dest_host", str_or_null(lc->dest));
}

fy_code live_agent(live_ctx *lc, const char *host, const char *step, const json_t *extra,
                   json_t **ret_json, fy_err *err)
{
    json_auto_t *body = live_body(lc);
    if (!body || (extra && json_object_update(body, (json_t *)extra) != 0))
        return fy_fail(err, FY_E_NOMEM, NULL);
    json_auto_t *ans = NULL;
    fy_code rc = cond_mig_agent_step(lc->ctx, host, lc->mig.uuid, step, body, LIVE_AGENT_RETRIES,
                                     lc->timeout_ms, &ans, err);
    if (rc) {
        fy_info("migration %s: %s on %s failed: %s", lc->mig.uuid, step, host, err->msg);
        /* An agent down or restarting did not run the step; its steps are
         * idempotent, so the task comes back for it (a bounded number of times). */
        if (rc == FY_E_UNAVAILABLE && lc->run->task.attempts < LIVE_MAX_ATTEMPTS)
            lc->transient = true;
        return rc;
    }
    json_t *md = json_object_get(ans, "migrate_data");
    if (json_is_object(md))
        json_object_update(lc->mig.migrate_data, md);
    if (ret_json)
        *ret_json = TAKE_PTR(ans);
    return FY_E_OK;
}

void live_named_event_start(const live_ctx *lc, const char *action, const char *event,
                            const char *host)
{
    const char *p[] = {lc->inst.uuid, action, event, host};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_err err = {0};
    if (fy_db_exec(&cond_live_sql_named_event_start, p, &res, &err))
        fy_warn("instance %s: event %s not recorded: %s", lc->inst.uuid, event, err.msg);
}

void live_named_event_finish(const live_ctx *lc, const char *action, const char *event, bool ok,
                             const char *tb)
{
    const char *p[] = {lc->inst.uuid, action, event, ok ? "Success" : "Error", ok ? NULL : tb};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_err err = {0};
    if (fy_db_exec(&cond_live_sql_named_event_finish, p, &res, &err))
        fy_warn("instance %s: event %s not recorded: %s", lc->inst.uuid, event, err.msg);
}

/* A step failed.  Ours and retryable: release the task.  Otherwise the
 * migration's failure: the run goes on at fail_step, ending in status `to`. */
static fy_code step_failed(live_ctx *lc, enum live_step fail_step, fy_mig_status to,
                           int *next, fy_err *err)
{
    cond_run *run = lc->run;
    if (run->lost)
        return err->code;
    if (cond_stopping(run) || (lc->transient && run->task.attempts < LIVE_MAX_ATTEMPTS))
        return cond_retry_later(run, err);
    json_t *f = json_pack("{s:s,s:s}", "status", fy_mig_status_name(to), "error", err->msg);
    if (!f || json_object_set_new(run->task.params, "failure", f) != 0)
        return fy_fail(err, FY_E_NOMEM, NULL);
    lc->transient = false;
    *next = (int)fail_step;
    return FY_E_OK;
}

/* Re-reads the migration (status, abort / force-complete requests). */
static fy_code mig_reload(live_ctx *lc, fy_err *err)
{
    cond_migration m = {0};
    if (cond_mig_load(lc->mig.uuid, &m, err))
        return live_transient(lc, err);
    /* Answers gathered in this run that are not written yet stay. */
    json_object_update_missing(m.migrate_data, lc->mig.migrate_data);
    cond_mig_clear(&lc->mig);
    lc->mig = m;
    return FY_E_OK;
}

static bool abort_requested(const live_ctx *lc)
{
    return fy_json_bool(lc->mig.migrate_data, "abort_requested", false);
}

/* Walks the live chain accepted -> queued -> preparing -> running ->
 * post-migrating up to `to`, one guarded write per link. */
static fy_code advance(live_ctx *lc, fy_mig_status to, fy_err *err)
{
    static const fy_mig_status chain[] = {FY_MIG_ACCEPTED, FY_MIG_QUEUED, FY_MIG_PREPARING,
                                          FY_MIG_RUNNING, FY_MIG_POST_MIGRATING};
    size_t cur = ELEMENTSOF(chain), end = ELEMENTSOF(chain);
    for (size_t i = 0; i < ELEMENTSOF(chain); i++) {
        if (chain[i] == lc->mig.status)
            cur = i;
        if (chain[i] == to)
            end = i;
    }
    if (cur == ELEMENTSOF(chain) || end == ELEMENTSOF(chain))
        return fy_fail(err, FY_E_CONFLICT, "migration %s is %s, cannot move it to %s",
                       lc->mig.uuid, fy_mig_status_name(lc->mig.status), fy_mig_status_name(to));
    for (size_t i = cur; i < end; i++) {
        fy_mig_status now = FY_MIG_INVALID;
        fy_code rc = cond_mig_set_status(lc->mig.uuid, chain[i], chain[i + 1], &now, err);
        if (rc == FY_E_CONFLICT)
            return rc;
        if (rc)
            return live_transient(lc, err);
        lc->mig.status = chain[i + 1];
    }
    return FY_E_OK;
}

/* ---- checks ---- */

static fy_code record_checks(live_ctx *lc, fy_err *err)
{
    if (cond_mig_record_decision(lc->mig.uuid, lc->dest, lc->dest_node, lc->block_migration,
                                 lc->shared_path, lc->mig.migrate_data, err))
        return live_transient(lc, err);
    return FY_E_OK;
}

static fy_code phase_checks(live_ctx *lc, int *next, fy_err *err)
{
    const char *ev = "conductor_live_migrate_instance";
    cond_event_start_q(lc->run, ev, lc->ctx->cfg.host);
    if (live_checks(lc, err) || record_checks(lc, err)) {
        if (!lc->transient || lc->run->task.attempts >= LIVE_MAX_ATTEMPTS)
            cond_event_finish_q(lc->run, ev, false, err->msg);
        return step_failed(lc, S_PRECHECK_FAILED, FY_MIG_ERROR, next, err);
    }
    cond_event_finish_q(lc->run, ev, true, NULL);
    fy_info("migration %s: %s -> %s (block migration %s, shared path %s, volume backed %s)",
            lc->mig.uuid, lc->source, lc->dest, lc->block_migration ? "yes" : "no",
            lc->shared_path ? "yes" : "no", lc->volume_backed ? "yes" : "no");
    *next = S_PRE;
    return FY_E_OK;
}

/* ---- pre_live_migration ---- */

/* block_device_info for the destination, its connections initialized. */
static fy_code dest_block_devices(live_ctx *lc, json_t **ret, fy_err *err)
{
    json_auto_t *bdi = NULL;
    if (cond_vol_block_device_info(lc->inst.uuid, lc->dest, &bdi, err))
        return live_transient(lc, err);
    size_t i;
    json_t *d;
    json_array_foreach(bdi, i, d) {
        json_t *ci = NULL;
        const char *att = fy_json_str(d, "attachment_id");
        if (!att)
            continue;
        if (cond_vol_initialize_connection(att, lc->dest, &ci, err))
            return err->code;
        json_object_set_new(d, "connection_info", ci ? ci : json_null());
    }
    *ret = TAKE_PTR(bdi);
    return FY_E_OK;
}

static fy_code pre_call(live_ctx *lc, fy_err *err)
{
    json_auto_t *net = NULL, *bdi = NULL;
    if (cond_net_info(lc->inst.uuid, &net, err))
        return live_transient(lc, err);
    if (dest_block_devices(lc, &bdi, err))
        return err->code;
    json_auto_t *extra = json_pack("{s:O,s:O}", "network_info", net, "block_device_info", bdi);
    if (!extra)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (live_agent(lc, lc->dest, "pre_live_migration", extra, NULL, err))
        return err->code;
    /* Nova's pre_live_migration sets the networks up on the destination. */
    if (cond_net_setup_on_host(lc->inst.uuid, lc->dest, err) ||
        cond_mig_merge_data(lc->mig.uuid, lc->mig.migrate_data, err))
        return live_transient(lc, err);
    return FY_E_OK;
}

static fy_code phase_pre(live_ctx *lc, int *next, fy_err *err)
{
    if (mig_reload(lc, err))
        return step_failed(lc, S_ROLLBACK, FY_MIG_FAILED, next, err);
    if (abort_requested(lc)) {
        fy_fail(err, FY_E_CONFLICT, "Migration %s was cancelled before it started.",
                lc->mig.uuid);
        return step_failed(lc, S_PRECHECK_FAILED, FY_MIG_CANCELLED, next, err);
    }
    /* Nova's compute live_migration: the request is queued on the source. */
    cond_event_start_q(lc->run, "compute_live_migration", lc->source);
    fy_code rc = advance(lc, FY_MIG_QUEUED, err);
    cond_event_finish_q(lc->run, "compute_live_migration", rc == FY_E_OK, err->msg);
    if (rc || advance(lc, FY_MIG_PREPARING, err))
        return step_failed(lc, S_ROLLBACK, FY_MIG_FAILED, next, err);
    cond_event_start_q(lc->run, "compute_pre_live_migration", lc->dest);
    rc = pre_call(lc, err);
    if (!lc->transient || rc == FY_E_OK)
        cond_event_finish_q(lc->run, "compute_pre_live_migration", rc == FY_E_OK, err->msg);
    if (rc)
        return step_failed(lc, S_ROLLBACK, FY_MIG_FAILED, next, err);
    *next = S_START;
    return FY_E_OK;
}

/* ---- the live migration job ---- */

static fy_code start_call(live_ctx *lc, fy_err *err)
{
    _cleanup_free_ char *src_url = NULL, *dst_url = NULL;
    if (cond_agent_url(lc->source, &src_url, err) || cond_agent_url(lc->dest, &dst_url, err))
        return err->code;
    json_auto_t *extra = json_pack("{s:s,s:s}", "source_url", src_url, "dest_url", dst_url);
    if (!extra)
        return fy_fail(err, FY_E_NOMEM, NULL);
    return live_agent(lc, lc->source, "live_migration", extra, NULL, err);
}

static fy_code phase_start(live_ctx *lc, int *next, fy_err *err)
{
    if (mig_reload(lc, err))
        return step_failed(lc, S_ROLLBACK, FY_MIG_FAILED, next, err);
    if (abort_requested(lc)) {
        fy_fail(err, FY_E_CONFLICT, "Migration %s was cancelled before it started.",
                lc->mig.uuid);
        return step_failed(lc, S_ROLLBACK, FY_MIG_CANCELLED, next, err);
    }
    if (advance(lc, FY_MIG_RUNNING, err) || start_call(lc, err))
        return step_failed(lc, S_ROLLBACK, FY_MIG_FAILED, next, err);
    *next = S_WAIT;
    return FY_E_OK;
}

typedef enum { JOB_RUNNING, JOB_COMPLETED, JOB_FAILED, JOB_CANCELLED } job_state;

static fy_code job_read(live_ctx *lc, job_state *ret, char *msg, size_t size, fy_err *err)
{
    const char *p[] = {lc->mig.uuid};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_live_sql_job_get, p, &res, err))
        return live_transient(lc, err);
    *ret = JOB_RUNNING;
    if (PQntuples(res) != 1)
        return FY_E_OK;     /* not written yet */
    const char *state = fy_db_str(res, 0, "state");
    const char *e = fy_db_str(res, 0, "error");
    snprintf(msg, size, "%s", e && *e ? e : "live migration job failed");
    if (fy_streq(state, "completed"))
        *ret = JOB_COMPLETED;
    else if (fy_streq(state, "failed"))
        *ret = JOB_FAILED;
    else if (fy_streq(state, "cancelled"))
        *ret = JOB_CANCELLED;
    return FY_E_OK;
}

/* Acts once on an abort or force-complete request recorded by the API. */
static void job_request(live_ctx *lc, const char *flag, const char *sent, const char *step,
                        const char *action, const char *event)
{
    const json_t *md = lc->mig.migrate_data;
    if (!fy_json_bool(md, flag, false) || fy_json_bool(md, sent, false))
        return;
    live_named_event_start(lc, action, event, lc->source);
    fy_err err = {0};
    fy_code rc = live_agent(lc, lc->source, step, NULL, NULL, &err);
    live_named_event_finish(lc, action, event, rc == FY_E_OK, err.msg);
    json_object_set_new(lc->mig.migrate_data, sent, json_true());
    json_auto_t *mark = json_pack("{s:b}", sent, 1);
    fy_err werr = {0};
    if (mark && cond_mig_merge_data(lc->mig.uuid, mark, &werr))
        fy_warn("migration %s: %s not recorded: %s", lc->mig.uuid, sent, werr.msg);
}

/* The source host's service went away while its job ran: the job is lost.
 * Not while the agent is merely restarting: it takes the job over from
 * libvirt (which may still be running it) and records the end itself.  So
 * the host counts as lost only when an operator forced its service down, or
 * when neither its heartbeat nor the job record (touched by an agent taking
 * the job over) moved for ten times service_down_time.  Even then phase_wait
 * asks the destination before anything is undone. */
static bool source_lost(live_ctx *lc)
{
    char iv[32];
    snprintf(iv, sizeof(iv), "%lld seconds", lc->ctx->cfg.service_down_time * 10);
    const char *p[] = {lc->source, iv, lc->mig.uuid};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_err err = {0};
    if (fy_db_exec(&cond_live_sql_source_lost, p, &res, &err) || PQntuples(res) != 1)
        return false;
    return fy_db_bool(res, 0, "lost");
}

/* Waits for the job's end; *ret_lost when it is the conductor's guess (the
 * source host is gone) rather than the agent's word. */
static fy_code wait_loop(live_ctx *lc, cond_jobs_watch *w, job_state *ret, bool *ret_lost,
                         char *msg, size_t size, fy_err *err)
{
    bool woken = true;
    *ret_lost = false;
    for (;;) {
        if (mig_reload(lc, err) || job_read(lc, ret, msg, size, err))
            return err->code;
        if (*ret != JOB_RUNNING)
            return FY_E_OK;
        job_request(lc, "abort_requested", "abort_sent", "live_migration_abort",
                    "live_migration_cancel", "compute_live_migration_abort");
        job_request(lc, "force_complete_requested", "force_complete_sent",
                    "live_migration_force_complete", "live_migration_force_complete",
                    "compute_live_migration_force_complete");
        if (!woken && source_lost(lc)) {
            snprintf(msg, size, "Compute service of %s is unavailable at this time.",
                     lc->source);
            *ret = JOB_FAILED;
            *ret_lost = true;
            return FY_E_OK;
        }
        woken = cond_jobs_wait(w, LIVE_WAIT_RECHECK_MS);
        if (cond_stopping(lc->run) || cond_jobs_stopping())
            return fy_fail(err, FY_E_UNAVAILABLE, "conductor stopping while migration %s runs",
                           lc->mig.uuid);
    }
}

static fy_code phase_wait(live_ctx *lc, int *next, fy_err *err)
{
    cond_jobs_watch w;
    cond_jobs_watch_start(&w, lc->mig.uuid);
    job_state st = JOB_RUNNING;
    char msg[FY_ERR_MSG_MAX] = "";
    fy_code rc;
    for (int asked = 0;;) {
        bool lost = false;
        rc = wait_loop(lc, &w, &st, &lost, msg, sizeof(msg), err);
        if (rc || st == JOB_COMPLETED || !lc->dest[0] || fy_streq(lc->dest, lc->source))
            break;
        /* Before anything is undone, the destination settles where the guest
         * runs: it removes a guest still arriving (the move cannot complete any
         * more), or answers CONFLICT when the guest already runs there.  The
         * rollback's own call later finds this one recorded. */
        live_rollback_plan plan =
            live_rollback_plan_for(lc->block_migration, lc->shared_path, lc->volume_backed);
        json_auto_t *extra = json_pack("{s:b}", "destroy_disks", plan.destroy_disks);
        fy_err derr = {0};
        fy_code drc = extra ? live_agent(lc, lc->dest, "rollback_live_migration_at_destination",
                                         extra, NULL, &derr)
                            : fy_fail(&derr, FY_E_NOMEM, NULL);
        lc->transient = false;
        if (drc == FY_E_CONFLICT) {
            fy_warn("migration %s: the job %s, but %s", lc->mig.uuid,
                    lost ? "was lost with its host" : "did not complete", derr.msg);
            st = JOB_COMPLETED;
            break;
        }
        if (drc == FY_E_OK || !lost)
            break;
        /* Without the source's word nor the destination's, nothing is known. */
        if (!asked++)
            fy_warn("migration %s: %s; %s cannot tell where the guest runs (%s): waiting",
                    lc->mig.uuid, msg, lc->dest, derr.msg);
        st = JOB_RUNNING;
    }
    cond_jobs_watch_end(&w);
    if (rc) {
        lc->transient = true;
        return step_failed(lc, S_ROLLBACK, FY_MIG_FAILED, next, err);
    }
    if (st == JOB_COMPLETED) {
        *next = S_POST_VOLUMES;
        return FY_E_OK;
    }
    fy_fail(err, st == JOB_CANCELLED ? FY_E_CONFLICT : FY_E_DRIVER, "%s",
            st == JOB_CANCELLED ? "Migration was cancelled." : msg);
    return step_failed(lc, S_ROLLBACK, st == JOB_CANCELLED ? FY_MIG_CANCELLED : FY_MIG_FAILED,
                       next, err);
}

/* ---- _post_live_migration ---- */

/* A post step could not finish.  The guest already runs on the destination,
 * so there is no going back: retry (ours, or a step that may pass next time)
 * and after that record the problem and carry on cleaning up. */
static fy_code post_problem(live_ctx *lc, enum live_step next_step, int *next, fy_err *err)
{
    cond_run *run = lc->run;
    if (run->lost)
        return err->code;
    if (cond_stopping(run) || run->task.attempts < LIVE_MAX_ATTEMPTS)
        return cond_retry_later(run, err);
    fy_warn("migration %s: %s failed for good: %s", lc->mig.uuid, run->task.step, err->msg);
    if (!json_object_get(run->task.params, "post_error"))
        json_object_set_new(run->task.params, "post_error", json_string(err->msg));
    *next = (int)next_step;
    return FY_E_OK;
}

static fy_code phase_post_volumes(live_ctx *lc, int *next, fy_err *err)
{
    json_auto_t *bdi = NULL;
    if (advance(lc, FY_MIG_POST_MIGRATING, err) ||
        cond_vol_block_device_info(lc->inst.uuid, lc->source, &bdi, err))
        return post_problem(lc, S_POST_NET_START, next, err);
    size_t i;
    json_t *d;
    json_array_foreach(bdi, i, d) {
        const char *att = fy_json_str(d, "attachment_id");
        if (att && cond_vol_terminate_connection(att, lc->source, err))
            return post_problem(lc, S_POST_NET_START, next, err);
    }
    *next = S_POST_NET_START;
    return FY_E_OK;
}

static fy_code phase_post_net_start(live_ctx *lc, int *next, fy_err *err)
{
    if (cond_net_migrate_start(lc->inst.uuid, lc->source, lc->dest, err))
        return post_problem(lc, S_POST_AT_DEST, next, err);
    *next = S_POST_AT_DEST;
    return FY_E_OK;
}

static fy_code at_dest_call(live_ctx *lc, int *ret_power, fy_err *err)
{
    json_auto_t *net = NULL, *bdi = NULL, *ans = NULL;
    if (cond_net_info(lc->inst.uuid, &net, err) ||
        cond_vol_block_device_info(lc->inst.uuid, lc->dest, &bdi, err))
        return live_transient(lc, err);
    json_auto_t *extra = json_pack("{s:O,s:O}", "network_info", net, "block_device_info", bdi);
    if (!extra)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (live_agent(lc, lc->dest, "post_live_migration_at_destination", extra, &ans, err))
        return err->code;
    *ret_power = (int)fy_json_int(json_object_get(ans, "instance"), "power_state", *ret_power);
    return FY_E_OK;
}

/* The instance moves to the destination whatever the destination step
 * answered (Nova updates it in a finally block); a failure marks it ERROR. */
static fy_code instance_moved(live_ctx *lc, int power, const char *failure, fy_err *err)
{
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", power);
    const char *p[] = {lc->inst.uuid, lc->dest, lc->dest_node, ps};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_live_sql_instance_moved, p, &res, err))
        return live_transient(lc, err);
    if (failure && cond_instance_set_error(lc->inst.uuid, 500, failure, lc->dest, err))
        return live_transient(lc, err);
    return FY_E_OK;
}

static fy_code phase_post_at_dest(live_ctx *lc, int *next, fy_err *err)
{
    const char *ev = "compute_post_live_migration_at_destination";
    int power = lc->inst.power_state;
    cond_event_start_q(lc->run, ev, lc->dest);
    fy_code rc = at_dest_call(lc, &power, err);
    if (rc && (cond_stopping(lc->run) || lc->transient))
        return cond_retry_later(lc->run, err);
    cond_event_finish_q(lc->run, ev, rc == FY_E_OK, err->msg);
    fy_err cause = *err;
    if (rc)
        json_object_set_new(lc->run->task.params, "post_error", json_string(cause.msg));
    if (instance_moved(lc, power, rc ? cause.msg : NULL, err))
        return post_problem(lc, S_POST_NET_FINISH, next, err);
    *next = S_POST_NET_FINISH;
    return FY_E_OK;
}

static fy_code phase_post_net_finish(live_ctx *lc, int *next, fy_err *err)
{
    if (cond_net_migrate_finish(lc->inst.uuid, lc->dest, err))
        return post_problem(lc, S_POST_SOURCE, next, err);
    *next = S_POST_SOURCE;
    return FY_E_OK;
}

static fy_code phase_post_source(live_ctx *lc, int *next, fy_err *err)
{
    json_auto_t *extra = json_pack(
        "{s:b}", "destroy_disks", live_post_destroy_disks(lc->block_migration, lc->shared_path));
    if (!extra)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (live_agent(lc, lc->source, "post_live_migration_source", extra, NULL, err) ||
        cond_net_teardown_on_host(lc->inst.uuid, lc->source, err))
        return post_problem(lc, S_POST_DONE, next, err);
    *next = S_POST_DONE;
    return FY_E_OK;
}

static fy_code phase_post_done(live_ctx *lc, int *next, fy_err *err)
{
    const char *post_error = fy_json_str(lc->run->task.params, "post_error");
    if (cond_sched_release(lc->ctx, lc->mig.uuid, NULL, err))
        return cond_retry_later(lc->run, err);
    static const fy_mig_status from[] = {FY_MIG_POST_MIGRATING};
    fy_code rc = post_error
                     ? cond_mig_fail(lc->mig.uuid, from, 1, FY_MIG_ERROR, post_error, err)
                     : cond_mig_set_status_any(lc->mig.uuid, from, 1, FY_MIG_COMPLETED, err);
    if (rc && rc != FY_E_CONFLICT)
        return cond_retry_later(lc->run, err);
    if (rc)
        fy_warn("migration %s: final status not written: %s", lc->mig.uuid, err->msg);
    cond_action_finish_q(lc->run, !post_error);
    fy_info("migration %s: %s on %s", lc->mig.uuid, post_error ? "error" : "completed",
            lc->dest);
    *next = -1;
    return FY_E_OK;
}

/* ---- failure ends ---- */

/* The message is copied: task params are not to be borrowed across steps. */
static void failure_of(const live_ctx *lc, fy_mig_status *to, char *msg, size_t size)
{
    const json_t *f = json_object_get(lc->run->task.params, "failure");
    const char *m = fy_json_str(f, "error");
    *to = fy_mig_status_from_name(fy_json_str(f, "status"));
    if (*to == FY_MIG_INVALID)
        *to = FY_MIG_FAILED;
    snprintf(msg, size, "%s", m ? m : "live migration failed");
}

static fy_code phase_precheck_failed(live_ctx *lc, int *next, fy_err *err)
{
    fy_mig_status to;
    char msg[FY_ERR_MSG_MAX];
    failure_of(lc, &to, msg, sizeof(msg));
    *next = -1;
    return live_precheck_failed(lc, to, msg, err);
}

static fy_code phase_rollback(live_ctx *lc, int *next, fy_err *err)
{
    fy_mig_status to;
    char msg[FY_ERR_MSG_MAX];
    failure_of(lc, &to, msg, sizeof(msg));
    *next = -1;
    return live_rollback(lc, to, msg, err);
}

/* ---- the machine ---- */

typedef fy_code (*live_phase)(live_ctx *lc, int *next, fy_err *err);

static const live_phase live_phases[S__COUNT] = {
    [S_CHECKS] = phase_checks,
    [S_PRE] = phase_pre,
    [S_START] = phase_start,
    [S_WAIT] = phase_wait,
    [S_POST_VOLUMES] = phase_post_volumes,
    [S_POST_NET_START] = phase_post_net_start,
    [S_POST_AT_DEST] = phase_post_at_dest,
    [S_POST_NET_FINISH] = phase_post_net_finish,
    [S_POST_SOURCE] = phase_post_source,
    [S_POST_DONE] = phase_post_done,
    [S_PRECHECK_FAILED] = phase_precheck_failed,
    [S_ROLLBACK] = phase_rollback,
};

static fy_code live_machine(live_ctx *lc, fy_err *err)
{
    int i = (int)cond_step_index(lc->run, live_steps, S__COUNT);
    while (i >= 0 && i < S__COUNT) {
        /* Params go with the step: a resumed run needs the failure it ends in. */
        if (cond_step(lc->run, live_steps[i], lc->run->task.params, err))
            return err->code;
        int next = -1;
        fy_code rc = live_phases[i](lc, &next, err);
        if (rc)
            return rc;
        i = next;
    }
    return FY_E_OK;
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* After the checks the destination and the storage facts are on the record. */
static void decided_from_record(live_ctx *lc)
{
    const char *d = nonempty(lc->mig.dest_compute);
    if (d && strcmp(lc->run->task.step, live_steps[S_CHECKS]) != 0 && lc->run->task.step[0]) {
        snprintf(lc->dest, sizeof(lc->dest), "%s", d);
        snprintf(lc->dest_node, sizeof(lc->dest_node), "%s",
                 nonempty(lc->mig.dest_node) ? lc->mig.dest_node : d);
    }
    lc->block_migration = lc->mig.block_migration;
    lc->shared_path = fy_json_bool(lc->mig.migrate_data, "is_shared_instance_path",
                                   lc->mig.shared_storage);
    lc->volume_backed = fy_json_bool(lc->mig.migrate_data, "is_volume_backed", false);
}

static fy_code live_load(live_ctx *lc, bool *ret_gone, fy_err *err)
{
    cond_run *run = lc->run;
    *ret_gone = true;
    fy_code rc = cond_instance_load(run->task.instance_uuid, &lc->inst, err);
    if (rc == FY_E_NOT_FOUND)
        return FY_E_OK;
    if (rc)
        return cond_retry_later(run, err);
    rc = cond_mig_load(run->task.migration_uuid, &lc->mig, err);
    if (rc == FY_E_NOT_FOUND)
        return FY_E_OK;
    if (rc)
        return cond_retry_later(run, err);
    if (lc->inst.deleted || fy_mig_is_terminal(lc->mig.status))
        return FY_E_OK;
    *ret_gone = false;
    if (cond_flavor_resources(lc->inst.flavor, &lc->res, err))
        return err->code;
    const char *src = nonempty(lc->mig.source_compute) ? lc->mig.source_compute : lc->inst.host;
    if (!src)
        return fy_fail(err, FY_E_CONFLICT, "instance %s is not on any host", lc->inst.uuid);
    snprintf(lc->source, sizeof(lc->source), "%s", src);
    const char *sn = nonempty(lc->mig.source_node) ? lc->mig.source_node : lc->inst.node;
    snprintf(lc->source_node, sizeof(lc->source_node), "%s", sn ? sn : lc->source);
    const json_t *p = run->task.params;
    const char *rh = nonempty(fy_json_str(p, "host"));
    if (rh && strlen(rh) >= sizeof(lc->req_host_buf))
        return fy_fail(err, FY_E_BAD_REQUEST, "host name too long");
    if (rh) {
        snprintf(lc->req_host_buf, sizeof(lc->req_host_buf), "%s", rh);
        lc->req_host = lc->req_host_buf;
    }
    lc->req_block = json_object_get(p, "block_migration");
    if (!lc->req_block)
        lc->req_block = json_false();
    lc->force = fy_json_bool(p, "force", false);
    lc->timeout_ms = lc->ctx->cfg.live_migration_step_timeout_s * 1000L;
    decided_from_record(lc);
    return FY_E_OK;
}

fy_code cond_live_run(cond_run *run, fy_err *err)
{
    if (!run->task.migration_uuid[0] || !run->task.instance_uuid[0])
        return fy_fail(err, FY_E_INTERNAL, "live_migrate task %s names no migration",
                       run->task.uuid);
    live_ctx lc = {.run = run, .ctx = run->ctx};
    bool gone = true;
    fy_code rc = live_load(&lc, &gone, err);
    if (rc == FY_E_OK && !gone)
        rc = live_machine(&lc, err);
    else if (rc == FY_E_OK)
        fy_info("task %s: migration %s already ended or its instance is gone", run->task.uuid,
                run->task.migration_uuid);
    cond_mig_clear(&lc.mig);
    cond_instance_clear(&lc.inst);
    return rc;
}
