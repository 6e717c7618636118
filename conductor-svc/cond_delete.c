/* Task "delete": destroy the guest on its host (when it has one), give back
 * its allocations, free its ports and volumes, mark the instance deleted.
 * Every step may run again after a crash. */
#include <stdio.h>
#include <string.h>
#include "cond.h"
#include "cond_cold.h"
#include "cond_migration.h"
#include "fy_cleanup.h"
#include "fy_log.h"
#include "fy_util.h"

#define EV_TERMINATE "compute_terminate_instance"
/* An unreachable agent is retried this long before the task fails (the
 * instance stays 'deleting'; the next conductor start queues it again). */
#define DESTROY_DEADLINE_MS 30000
#define DESTROY_CALL_TIMEOUT_MS 10000L
#define DESTROY_BACKOFF_MAX_MS 5000L

enum { STEP_CONFIRM, STEP_DESTROY, STEP_RELEASE, STEP_CLEANUP };
static const char *const delete_steps[] = {"confirm_move", "destroy", "release", "cleanup"};

/* As Nova, a server deleted while it waits in VERIFY_RESIZE is confirmed first:
 * the source still keeps a copy of the guest, and the migration still holds the
 * source's resources and the quota the move reserved. */
static fy_code confirm_pending_move(cond_run *run, const cond_instance *inst, fy_err *err)
{
    static const fy_mig_status from[] = {FY_MIG_FINISHED, FY_MIG_CONFIRMING};
    char mig[37];
    fy_code rc = cond_instance_pending_move(inst->uuid, mig, err);
    if (rc == FY_E_NOT_FOUND)
        return FY_E_OK;
    if (rc)
        return rc;
    cond_migration m = {0};
    if (cond_mig_load(mig, &m, err))
        return err->code;
    json_t *body = json_pack("{s:o, s:o}", "migration", cond_mig_body_migration(&m), "instance",
                             cond_mig_body_instance(inst));
    rc = body ? cond_mig_agent_step(run->ctx, m.source_compute, mig, "confirm_migration", body, 3,
                                    DESTROY_CALL_TIMEOUT_MS, NULL, err)
              : fy_fail(err, FY_E_NOMEM, NULL);
    json_decref(body);
    if (rc == FY_E_OK)
        rc = cond_sched_release(run->ctx, mig, NULL, err);
    if (rc == FY_E_OK)
        rc = cond_quota_rollback(mig, err);
    /* finished -> confirming -> confirmed, as a confirm request would move it. */
    if (rc == FY_E_OK)
        rc = cond_mig_set_status_any(mig, from, ELEMENTSOF(from), FY_MIG_CONFIRMING, err);
    if (rc == FY_E_OK)
        rc = cond_mig_set_status(mig, FY_MIG_CONFIRMING, FY_MIG_CONFIRMED, NULL, err);
    cond_mig_clear(&m);
    return rc;
}

static fy_code destroy_on_host(cond_run *run, const char *host, fy_err *err)
{
    uint64_t deadline = fy_now_ms() + DESTROY_DEADLINE_MS;
    long backoff = 250;
    for (;;) {
        fy_code rc = cond_agent_post(run->ctx, host, run->task.instance_uuid, "destroy", NULL, 0,
                                     DESTROY_CALL_TIMEOUT_MS, NULL, err);
        /* No agent registered there, or it has no such guest: nothing to destroy. */
        if (rc == FY_E_OK || rc == FY_E_NOT_FOUND)
            return FY_E_OK;
        if (fy_now_ms() + (uint64_t)backoff > deadline)
            return fy_err_prefix(err, "destroy on %s", host);
        fy_warn("instance %s: destroy on %s failed, retrying: %s", run->task.instance_uuid, host,
                err->msg);
        if (!cond_sleep(run, backoff)) {
            run->release = true;
            return err->code;
        }
        backoff = backoff * 2 > DESTROY_BACKOFF_MAX_MS ? DESTROY_BACKOFF_MAX_MS : backoff * 2;
    }
}

static fy_code cleanup_txn(void *arg, fy_err *err)
{
    const char *p[] = {arg};
    static const fy_sql *const stmts[] = {
        &cond_sql_bindings_drop_all, &cond_sql_ports_delete_owned, &cond_sql_ports_detach,
        &cond_sql_volumes_free,      &cond_sql_attachments_drop,   &cond_sql_instance_deleted,
    };
    for (size_t i = 0; i < ELEMENTSOF(stmts); i++) {
        _cleanup_pgres_ PGresult *res = NULL;
        if (fy_db_exec(stmts[i], p, &res, err))
            return err->code;
    }
    return FY_E_OK;
}

static fy_code delete_run(cond_run *run, const cond_instance *inst, fy_err *err)
{
    size_t at = cond_step_index(run, delete_steps, ELEMENTSOF(delete_steps));
    const char *uuid = run->task.instance_uuid;
    if (at <= STEP_CONFIRM && fy_streq(inst->vm_state, "resized")) {
        if (cond_step(run, delete_steps[STEP_CONFIRM], NULL, err))
            return err->code;
        if (confirm_pending_move(run, inst, err)) {
            fy_err_prefix(err, "confirming the pending resize");
            return cond_retry_later(run, err);
        }
    }
    if (at <= STEP_DESTROY && inst->host) {
        if (cond_step(run, delete_steps[STEP_DESTROY], NULL, err))
            return err->code;
        cond_event_start_q(run, EV_TERMINATE, inst->host);
        if (destroy_on_host(run, inst->host, err)) {
            if (!run->release) {
                cond_event_finish_q(run, EV_TERMINATE, false, err->msg);
                cond_action_finish_q(run, false);
            }
            return err->code;
        }
    }
    if (at <= STEP_RELEASE) {
        if (cond_step(run, delete_steps[STEP_RELEASE], NULL, err))
            return err->code;
        if (cond_sched_release(run->ctx, uuid, NULL, err))
            return fy_err_prefix(err, "releasing allocations");
    }
    if (cond_step(run, delete_steps[STEP_CLEANUP], NULL, err))
        return err->code;
    if (fy_db_txn(cleanup_txn, (void *)uuid, false, err))
        return cond_retry_later(run, err);
    if (inst->host)
        cond_event_finish_q(run, EV_TERMINATE, true, NULL);
    cond_action_finish_q(run, true);
    fy_info("instance %s deleted", uuid);
    return FY_E_OK;
}

fy_code cond_delete_run(cond_run *run, fy_err *err)
{
    cond_instance inst = {0};
    fy_code rc = cond_instance_load(run->task.instance_uuid, &inst, err);
    if (rc == FY_E_NOT_FOUND)
        return FY_E_OK;
    if (rc)
        return cond_retry_later(run, err);
    rc = inst.deleted ? FY_E_OK : delete_run(run, &inst, err);
    cond_instance_clear(&inst);
    return rc;
}
