/* Task "revert": the seed's Cold migration revert flow.
 *
 * revert_resize         on the destination: networks torn down, the binding
 *                       leaves it, the guest and its disk destroyed, volume
 *                       connections terminated, the instance's claim released
 * finish_revert_resize  on the source: old flavor and host, networks and
 *                       volume connections back, the guest restored from the
 *                       kept disk (powered as before the move), the
 *                       migration's allocation handed back to the instance */
#include <stdio.h>
#include "cond_cold.h"
#include "cond_netvol.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

#define EV_REVERT "compute_revert_resize"
#define EV_FINISH "compute_finish_revert_resize"
#define AGENT_MAX_CLAIMS 5

enum { ST_DEST, ST_SOURCE };
static const char *const revert_steps[] = {"revert_resize", "finish_revert_resize"};

typedef struct revert {
    cond_cold c;
    size_t at;
} revert;

static const char *uuid_of(const revert *r)
{
    return r->c.inst.uuid;
}

static const char *source_of(const revert *r)
{
    return r->c.mig.source_compute;
}

static const char *dest_of(const revert *r)
{
    return r->c.mig.dest_compute;
}

static bool same_host(const revert *r)
{
    return fy_streq(source_of(r), dest_of(r));
}

static bool on_source(const revert *r)
{
    return r->at == ST_SOURCE;
}

/* ---- failure ---- */

typedef struct revert_fail {
    revert *r;
    const char *message;
} revert_fail;

static fy_code fail_txn(void *arg, fy_err *err)
{
    revert_fail *a = arg;
    static const fy_mig_status from[] = {FY_MIG_REVERTING};
    if (cond_instance_set_error(uuid_of(a->r), 500, a->message, NULL, err) ||
        cond_mig_fail(a->r->c.mig.uuid, from, ELEMENTSOF(from), FY_MIG_ERROR, a->message, err))
        return err->code;
    return cond_quota_rollback(a->r->c.mig.uuid, err);
}

/* ERROR, the record in error; the allocations follow where the server is:
 * still on the destination (the migration's source allocation is dropped) or
 * already back on the source (the migration's allocation is the instance's). */
static fy_code fail_revert(revert *r, const char *event, fy_code code, const char *message,
                           fy_err *err)
{
    char msg[FY_ERR_MSG_MAX];
    snprintf(msg, sizeof(msg), "%s", message);
    fy_info("migration %s: revert failed: %s", r->c.mig.uuid, msg);
    const cond_ctx *ctx = r->c.run->ctx;
    fy_err e = {0};
    fy_code rc = on_source(r) ? cond_sched_move(ctx, r->c.mig.uuid, uuid_of(r), source_of(r), &e)
                              : cond_sched_release(ctx, r->c.mig.uuid, NULL, &e);
    if (rc)
        fy_warn("migration %s: allocations not settled: %s", r->c.mig.uuid, e.msg);
    revert_fail a = {.r = r, .message = msg};
    if (fy_db_txn(fail_txn, &a, false, err))
        return cond_retry_later(r->c.run, err);
    cond_event_finish_q(r->c.run, event, false, msg);
    cond_action_finish_q(r->c.run, false);
    return fy_fail(err, code, "%s", msg);
}

static fy_code agent_call(revert *r, const char *host, const char *step, const char *event,
                          const json_t *body, json_t **ret, fy_err *err)
{
    fy_err cause = {0};
    if (cond_cold_agent(&r->c, host, step, body, COND_COLD_STEP_TIMEOUT_MS, ret, &cause) ==
        FY_E_OK)
        return FY_E_OK;
    bool transient = cause.code == FY_E_UNAVAILABLE || cause.code == FY_E_TIMEOUT;
    if (r->c.run->release || cond_stopping(r->c.run) ||
        (transient && r->c.run->task.attempts < AGENT_MAX_CLAIMS)) {
        *err = cause;
        return cond_retry_later(r->c.run, err);
    }
    return fail_revert(r, event, cause.code, cause.msg, err);
}

/* ---- on the destination ---- */

static fy_code step_dest(revert *r, fy_err *err)
{
    r->at = ST_DEST;
    if (cond_step(r->c.run, revert_steps[ST_DEST], NULL, err))
        return err->code;
    cond_event_start_q(r->c.run, EV_REVERT, dest_of(r));
    if ((!same_host(r) && cond_net_teardown_on_host(uuid_of(r), dest_of(r), err)) ||
        cond_net_migrate_start(uuid_of(r), dest_of(r), source_of(r), err))
        return cond_retry_later(r->c.run, err);
    _cleanup_(json_decrefp) json_t *bdi = NULL, *body = NULL;
    if (cond_vol_block_device_info(uuid_of(r), dest_of(r), &bdi, err) ||
        cond_cold_body(&r->c, bdi, r->c.inst.flavor, &body, err))
        return cond_retry_later(r->c.run, err);
    if (agent_call(r, dest_of(r), "revert_migration_dest", EV_REVERT, body, NULL, err))
        return err->code;
    if (cond_cold_disconnect_volumes(uuid_of(r), dest_of(r), err))
        return cond_retry_later(r->c.run, err);
    if (cond_sched_release(r->c.run->ctx, uuid_of(r), dest_of(r), err))
        return cond_retry_later(r->c.run, err);
    cond_event_finish_q(r->c.run, EV_REVERT, true, NULL);
    return FY_E_OK;
}

/* ---- on the source ---- */

typedef struct flavor_args {
    const revert *r;
} flavor_args;

/* Usage is counted from the flavor: the revert's reservation goes with it. */
static fy_code flavor_txn(void *arg, fy_err *err)
{
    const revert *r = ((flavor_args *)arg)->r;
    const char *node = r->c.mig.source_node ? r->c.mig.source_node : source_of(r);
    const char *p[] = {uuid_of(r), source_of(r), node};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_sql_cold_revert_flavor, p, &res, err))
        return err->code;
    return cond_quota_commit(r->c.mig.uuid, err);
}

typedef struct reverted_args {
    revert *r;
    int power_state;
    bool updated;
} reverted_args;

static fy_code reverted_txn(void *arg, fy_err *err)
{
    reverted_args *a = arg;
    bool on = fy_json_bool(a->r->c.mig.migrate_data, "power_on", true);
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", a->power_state);
    const char *p[] = {uuid_of(a->r), cond_cold_final_vm_state(on), ps};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_sql_cold_reverted, p, &res, err))
        return err->code;
    a->updated = fy_db_affected(res) == 1;
    if (!a->updated)
        return FY_E_OK;
    return cond_mig_set_status(a->r->c.mig.uuid, FY_MIG_REVERTING, FY_MIG_REVERTED, NULL, err);
}

/* The guest back on the source: *ret_power_state from the agent. */
static fy_code restore_guest(revert *r, int *ret_power_state, fy_err *err)
{
    _cleanup_(json_decrefp) json_t *old = NULL, *bdi = NULL, *body = NULL, *ans = NULL;
    /* A resumed run finds the old flavor already back in place. */
    if (cond_cold_old_flavor(uuid_of(r), &old, err))
        return cond_retry_later(r->c.run, err);
    const json_t *flavor = old ? old : r->c.inst.flavor;
    flavor_args fa = {.r = r};
    if (fy_db_txn(flavor_txn, &fa, false, err) ||
        cond_net_setup_on_host(uuid_of(r), source_of(r), err) ||
        cond_cold_connect_volumes(uuid_of(r), source_of(r), &bdi, err) ||
        cond_cold_body(&r->c, bdi, flavor, &body, err))
        return cond_retry_later(r->c.run, err);
    if (agent_call(r, source_of(r), "finish_revert_migration", EV_FINISH, body, &ans, err))
        return err->code;
    bool on = fy_json_bool(r->c.mig.migrate_data, "power_on", true);
    *ret_power_state = (int)fy_json_int(json_object_get(ans, "instance"), "power_state",
                                        on ? 1 : 4);
    return FY_E_OK;
}

static fy_code step_source(revert *r, fy_err *err)
{
    r->at = ST_SOURCE;
    if (cond_step(r->c.run, revert_steps[ST_SOURCE], NULL, err))
        return err->code;
    cond_event_start_q(r->c.run, EV_FINISH, source_of(r));
    reverted_args a = {.r = r, .power_state = 4};
    if (restore_guest(r, &a.power_state, err))
        return err->code;
    if (cond_net_migrate_finish(uuid_of(r), source_of(r), err) ||
        cond_sched_move(r->c.run->ctx, r->c.mig.uuid, uuid_of(r), source_of(r), err) ||
        fy_db_txn(reverted_txn, &a, false, err))
        return cond_retry_later(r->c.run, err);
    if (!a.updated)
        return fail_revert(r, EV_FINISH, FY_E_CONFLICT,
                           "the server changed state during the revert", err);
    cond_event_finish_q(r->c.run, EV_FINISH, true, NULL);
    cond_action_finish_q(r->c.run, true);
    fy_info("migration %s: reverted to %s", r->c.mig.uuid, source_of(r));
    return FY_E_OK;
}

/* ---- the task ---- */

static fy_code revert_run(revert *r, fy_err *err)
{
    cond_run *run = r->c.run;
    fy_code rc = cond_cold_load(run, &r->c, err);
    if (rc == FY_E_NOT_FOUND) {
        fy_info("task %s: migration or server gone: %s", run->task.uuid, err->msg);
        fy_err_clear(err);
        return FY_E_OK;
    }
    if (rc)
        return cond_retry_later(run, err);
    if (r->c.mig.status != FY_MIG_REVERTING) {
        fy_info("migration %s is %s: nothing to revert", r->c.mig.uuid,
                fy_mig_status_name(r->c.mig.status));
        return FY_E_OK;
    }
    if (!source_of(r) || !dest_of(r))
        return fail_revert(r, EV_REVERT, FY_E_INTERNAL, "the migration names no source or "
                           "destination host", err);
    size_t at = cond_step_index(run, revert_steps, ELEMENTSOF(revert_steps));
    if (at == ST_DEST && step_dest(r, err))
        return err->code;
    return step_source(r, err);
}

fy_code cond_revert_run(cond_run *run, fy_err *err)
{
    revert r = {.c = {.run = run}};
    fy_code rc = revert_run(&r, err);
    cond_cold_clear(&r.c);
    return rc;
}
