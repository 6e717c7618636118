/* The undo of a live migration: Nova's _rollback_live_migration (networks
 * back on the source, volume connections off the destination,
 * rollback_live_migration_at_destination, allocations back) and the end of a
 * migration refused before any action step.  Every part is idempotent, so a
 * resumed run simply does it all again. */
#include <stdio.h>
#include <string.h>
#include "cond_live.h"
#include "cond_netvol.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

/* Unreachable agents are waited for this many task claims before the
 * rollback gives up on them and finishes with what the database holds. */
#define ROLLBACK_MAX_ATTEMPTS 5
/* rollback_live_migration_at_destination: the task claims go on retrying it
 * this many more times (each claim a couple of seconds after the last), the
 * destination's leftovers being worth a longer wait than a detach. */
#define ROLLBACK_DEST_MAX_ATTEMPTS 20
/* Calls within one claim, with backoff from ROLLBACK_BACKOFF_MS. */
#define ROLLBACK_CALLS 4
#define ROLLBACK_BACKOFF_MS 100L
#define ROLLBACK_BACKOFF_MAX_MS 1000L

live_rollback_plan live_rollback_plan_for(bool block_migration, bool shared_path,
                                          bool volume_backed)
{
    return (live_rollback_plan){
        .nova_cleanup = block_migration || (volume_backed && !shared_path),
        .destroy_disks = block_migration || !shared_path,
    };
}

bool live_post_destroy_disks(bool block_migration, bool shared_path)
{
    return block_migration || !shared_path;
}

static fy_code instance_back(live_ctx *lc, fy_err *err)
{
    const char *p[] = {lc->inst.uuid};
    _cleanup_pgres_ PGresult *res = NULL;
    return fy_db_exec(&cond_live_sql_instance_back, p, &res, err);
}

static fy_code final_status(live_ctx *lc, fy_mig_status to, const char *message, fy_err *err)
{
    static const fy_mig_status from[] = {FY_MIG_ACCEPTED, FY_MIG_QUEUED, FY_MIG_PREPARING,
                                         FY_MIG_RUNNING};
    fy_code rc = cond_mig_fail(lc->mig.uuid, from, ELEMENTSOF(from), to, message, err);
    /* 'failed' is for a move that got to preparing; earlier it is an error. */
    if (rc == FY_E_INTERNAL && to == FY_MIG_FAILED)
        rc = cond_mig_fail(lc->mig.uuid, from, ELEMENTSOF(from), FY_MIG_ERROR, message, err);
    if (rc == FY_E_CONFLICT || rc == FY_E_INTERNAL) {
        /* Someone else ended the record; the rest of the undo still stands. */
        fy_warn("migration %s: status %s not written: %s", lc->mig.uuid,
                fy_mig_status_name(to), err->msg);
        return FY_E_OK;
    }
    return rc;
}

fy_code live_precheck_failed(live_ctx *lc, fy_mig_status to, const char *message, fy_err *err)
{
    fy_info("migration %s: %s before it started: %s", lc->mig.uuid, fy_mig_status_name(to),
            message);
    if (instance_back(lc, err) || live_allocations_back(lc, err) ||
        final_status(lc, to, message, err))
        return cond_retry_later(lc->run, err);
    if (to == FY_MIG_ERROR) {
        fy_err ferr = {0};
        if (cond_fault_add(lc->inst.uuid, 400, message, lc->ctx->cfg.host, &ferr))
            fy_warn("instance %s: fault not recorded: %s", lc->inst.uuid, ferr.msg);
    }
    cond_action_finish_q(lc->run, to == FY_MIG_CANCELLED);
    return FY_E_OK;
}

/* An agent that cannot be reached may come back: wait for it a few claims. */
static bool agent_retry_later(const live_ctx *lc, fy_code rc)
{
    return (rc == FY_E_UNAVAILABLE || rc == FY_E_TIMEOUT || rc == FY_E_UPSTREAM) &&
           lc->run->task.attempts < ROLLBACK_MAX_ATTEMPTS;
}

/* remove_volume_connection on the destination, roll_detaching when the
 * detach fails, terminate_connection there either way. */
static fy_code volumes_off_dest(live_ctx *lc, fy_err *err)
{
    json_auto_t *bdi = NULL;
    if (cond_vol_block_device_info(lc->inst.uuid, lc->dest, &bdi, err))
        return err->code;
    size_t i;
    json_t *d;
    json_array_foreach(bdi, i, d) {
        const char *att = fy_json_str(d, "attachment_id");
        const char *vol = fy_json_str(d, "volume_id");
        if (!att)
            continue;
        json_auto_t *extra = json_pack("{s:s,s:o,s:O}", "attachment_id", att, "volume_id",
                                       vol ? json_string(vol) : json_null(), "connection_info",
                                       json_object_get(d, "connection_info"));
        fy_err derr = {0};
        if (!extra || live_agent(lc, lc->dest, "remove_volume_connection", extra, NULL, &derr)) {
            if (agent_retry_later(lc, derr.code)) {
                *err = derr;
                return err->code;
            }
            fy_warn("migration %s: detaching %s on %s failed: %s", lc->mig.uuid, att, lc->dest,
                    derr.msg);
            if (vol && cond_vol_roll_detaching(vol, err))
                return err->code;
        }
        if (cond_vol_terminate_connection(att, lc->dest, err))
            return err->code;
    }
    return FY_E_OK;
}

/* One rollback_live_migration_at_destination, retried at once with backoff:
 * the call is idempotent and a passing failure should not cost a task claim. */
static fy_code rollback_call(live_ctx *lc, const json_t *extra, fy_err *err)
{
    long backoff = ROLLBACK_BACKOFF_MS;
    for (int i = 0;; i++) {
        fy_code rc = live_agent(lc, lc->dest, "rollback_live_migration_at_destination", extra,
                                NULL, err);
        if (rc == FY_E_OK || i + 1 >= ROLLBACK_CALLS)
            return rc;
        fy_info("migration %s: rollback at %s failed, retrying in %ld ms: %s", lc->mig.uuid,
                lc->dest, backoff, err->msg);
        if (!cond_sleep(lc->run, backoff))
            return rc;
        backoff = backoff * 2 > ROLLBACK_BACKOFF_MAX_MS ? ROLLBACK_BACKOFF_MAX_MS : backoff * 2;
    }
}

/* The destination may still hold the guest or its disks: say so on the
 * record (migrate_data.dest_cleanup_pending), so that whoever cleans up later
 * knows where to look. */
static fy_code mark_dest_pending(live_ctx *lc, bool pending, fy_err *err)
{
    json_auto_t *mark = json_pack("{s:o}", "dest_cleanup_pending",
                                  pending ? json_string(lc->dest) : json_null());
    if (!mark)
        return fy_fail(err, FY_E_NOMEM, NULL);
    return cond_mig_merge_data(lc->mig.uuid, mark, err);
}

static fy_code rollback_at_dest(live_ctx *lc, fy_err *err)
{
    live_rollback_plan plan =
        live_rollback_plan_for(lc->block_migration, lc->shared_path, lc->volume_backed);
    const char *ev = "compute_rollback_live_migration_at_destination";
    json_auto_t *extra = json_pack("{s:b}", "destroy_disks", plan.destroy_disks);
    if (!extra)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_debug("migration %s: rollback at %s, destroy_disks %d (Nova's cleanup rule: %d)",
             lc->mig.uuid, lc->dest, plan.destroy_disks, plan.nova_cleanup);
    cond_event_start_q(lc->run, ev, lc->dest);
    fy_err aerr = {0};
    fy_code rc = rollback_call(lc, extra, &aerr);
    /* A destination that does not answer at all gets the shorter wait of the
     * other calls: its leftovers are on the record for when it is back. */
    bool unreachable = rc == FY_E_UNAVAILABLE || rc == FY_E_TIMEOUT || rc == FY_E_UPSTREAM;
    int limit = unreachable ? ROLLBACK_MAX_ATTEMPTS : ROLLBACK_DEST_MAX_ATTEMPTS;
    bool again = rc && lc->run->task.attempts < limit && !lc->run->lost;
    /* The event keeps its first failure open until the rollback is settled. */
    if (!again)
        cond_event_finish_q(lc->run, ev, rc == FY_E_OK, aerr.msg);
    if (rc == FY_E_OK)
        return fy_json_str(lc->mig.migrate_data, "dest_cleanup_pending")
                   ? mark_dest_pending(lc, false, err)
                   : FY_E_OK;
    /* Whatever made it fail may pass next time; a guest must not stay behind.
     * Until then the task keeps the migration open (released, claimed again
     * with a delay), so the record does not claim a clean end. */
    fy_code mrc = mark_dest_pending(lc, true, err);
    if (again || mrc) {
        if (!mrc)
            *err = aerr;
        return err->code;
    }
    fy_error("migration %s: rollback at %s failed %d times, leftovers recorded in "
             "migrate_data.dest_cleanup_pending: %s",
             lc->mig.uuid, lc->dest, lc->run->task.attempts, aerr.msg);
    return FY_E_OK;
}

/* Networks back on the source: its binding stays ACTIVE, the destination's goes. */
static fy_code networks_back(live_ctx *lc, fy_err *err)
{
    if (cond_net_setup_on_host(lc->inst.uuid, lc->source, err))
        return err->code;
    if (lc->dest[0] && !fy_streq(lc->dest, lc->source) &&
        cond_net_teardown_on_host(lc->inst.uuid, lc->dest, err))
        return err->code;
    return FY_E_OK;
}

/* A migration whose job may have run: before anything is undone, the
 * destination settles where the guest runs (it removes a guest still arriving,
 * so the move cannot complete behind the rollback's back).  The wait for the
 * job did this already, and then the call answers as it did.  A guest that
 * runs there means the move completed after all: the task goes on with the
 * post-migration steps instead, at its next claim.  Any other failure leaves
 * it to rollback_at_dest, which never destroys a guest that lives there. */
static fy_code moved_after_all(live_ctx *lc, bool *ret_moved, fy_err *err)
{
    *ret_moved = false;
    if (lc->mig.status != FY_MIG_RUNNING || !lc->dest[0] || fy_streq(lc->dest, lc->source))
        return FY_E_OK;
    live_rollback_plan plan =
        live_rollback_plan_for(lc->block_migration, lc->shared_path, lc->volume_backed);
    json_auto_t *extra = json_pack("{s:b}", "destroy_disks", plan.destroy_disks);
    if (!extra)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_err derr = {0};
    fy_code rc = live_agent(lc, lc->dest, "rollback_live_migration_at_destination", extra, NULL,
                            &derr);
    lc->transient = false;
    if (rc != FY_E_CONFLICT)
        return FY_E_OK;
    fy_warn("migration %s: not rolled back: %s", lc->mig.uuid, derr.msg);
    *ret_moved = true;
    json_object_del(lc->run->task.params, "failure");
    if (cond_step(lc->run, LIVE_STEP_POST, lc->run->task.params, err))
        return err->code;
    *err = derr;
    return cond_retry_later(lc->run, err);
}

fy_code live_rollback(live_ctx *lc, fy_mig_status to, const char *message, fy_err *err)
{
    bool moved = false;
    if (moved_after_all(lc, &moved, err) || moved)
        return err->code;
    fy_info("migration %s: rolling back (%s): %s", lc->mig.uuid, fy_mig_status_name(to),
            message);
    if (instance_back(lc, err) || networks_back(lc, err))
        return cond_retry_later(lc->run, err);
    if (lc->dest[0] && !fy_streq(lc->dest, lc->source)) {
        if (volumes_off_dest(lc, err) || rollback_at_dest(lc, err))
            return cond_retry_later(lc->run, err);
    }
    if (live_allocations_back(lc, err) || final_status(lc, to, message, err))
        return cond_retry_later(lc->run, err);
    cond_action_finish_q(lc->run, to == FY_MIG_CANCELLED);
    return FY_E_OK;
}
