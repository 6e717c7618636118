/* Task "confirm": the seed's Cold migration confirm flow.  The source's
 * networks and its kept guest go, the server leaves VERIFY_RESIZE (running or
 * stopped as before the move), the reservation made for the confirm is
 * committed and the source allocation, held by the migration, released. */
#include <stdio.h>
#include "cond_cold.h"
#include "cond_netvol.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

#define EV_CONFIRM "compute_confirm_resize"
#define AGENT_MAX_CLAIMS 5

enum { ST_CONFIRM, ST_RELEASE };
static const char *const confirm_steps[] = {"confirm_resize", "release_source"};

static const char *source_of(const cond_cold *c)
{
    return c->mig.source_compute;
}

static bool same_host(const cond_cold *c)
{
    return fy_streq(c->mig.source_compute, c->mig.dest_compute);
}

typedef struct confirm_fail {
    cond_cold *c;
    const char *message;
} confirm_fail;

static fy_code fail_txn(void *arg, fy_err *err)
{
    confirm_fail *a = arg;
    static const fy_mig_status from[] = {FY_MIG_CONFIRMING};
    if (cond_instance_set_error(a->c->inst.uuid, 500, a->message, source_of(a->c), err) ||
        cond_mig_fail(a->c->mig.uuid, from, ELEMENTSOF(from), FY_MIG_ERROR, a->message, err))
        return err->code;
    return cond_quota_rollback(a->c->mig.uuid, err);
}

/* The confirm failed: ERROR, the record in error, and the migration's
 * allocation released all the same (nothing would release it later). */
static fy_code fail_confirm(cond_cold *c, fy_code code, const char *message, fy_err *err)
{
    char msg[FY_ERR_MSG_MAX];
    snprintf(msg, sizeof(msg), "%s", message);
    fy_info("migration %s: confirm failed: %s", c->mig.uuid, msg);
    fy_err e = {0};
    if (cond_sched_release(c->run->ctx, c->mig.uuid, NULL, &e))
        fy_warn("migration %s: source allocation not released: %s", c->mig.uuid, e.msg);
    confirm_fail a = {.c = c, .message = msg};
    if (fy_db_txn(fail_txn, &a, false, err))
        return cond_retry_later(c->run, err);
    cond_event_finish_q(c->run, EV_CONFIRM, false, msg);
    cond_action_finish_q(c->run, false);
    return fy_fail(err, code, "%s", msg);
}

typedef struct confirmed_args {
    cond_cold *c;
    bool updated;
} confirmed_args;

static fy_code confirmed_txn(void *arg, fy_err *err)
{
    confirmed_args *a = arg;
    bool on = fy_json_bool(a->c->mig.migrate_data, "power_on", true);
    const char *p[] = {a->c->inst.uuid, cond_cold_final_vm_state(on)};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_sql_cold_confirmed, p, &res, err))
        return err->code;
    a->updated = fy_db_affected(res) == 1;
    if (!a->updated)
        return FY_E_OK;
    if (cond_mig_set_status(a->c->mig.uuid, FY_MIG_CONFIRMING, FY_MIG_CONFIRMED, NULL, err))
        return err->code;
    return cond_quota_commit(a->c->mig.uuid, err);
}

static fy_code confirm_on_source(cond_cold *c, fy_err *err)
{
    _cleanup_(json_decrefp) json_t *body = NULL;
    if (cond_cold_body(c, NULL, c->inst.flavor, &body, err))
        return cond_retry_later(c->run, err);
    fy_err cause = {0};
    if (cond_cold_agent(c, source_of(c), "confirm_migration", body, COND_COLD_STEP_TIMEOUT_MS,
                        NULL, &cause) == FY_E_OK)
        return FY_E_OK;
    bool transient = cause.code == FY_E_UNAVAILABLE || cause.code == FY_E_TIMEOUT;
    if (c->run->release || cond_stopping(c->run) ||
        (transient && c->run->task.attempts < AGENT_MAX_CLAIMS)) {
        *err = cause;
        return cond_retry_later(c->run, err);
    }
    return fail_confirm(c, cause.code, cause.msg, err);
}

static fy_code step_confirm(cond_cold *c, fy_err *err)
{
    if (cond_step(c->run, confirm_steps[ST_CONFIRM], NULL, err))
        return err->code;
    cond_event_start_q(c->run, EV_CONFIRM, source_of(c));
    /* On the same host the source's binding is the one the guest uses. */
    if (!same_host(c) && cond_net_teardown_on_host(c->inst.uuid, source_of(c), err))
        return cond_retry_later(c->run, err);
    if (confirm_on_source(c, err))
        return err->code;
    confirmed_args a = {.c = c};
    if (fy_db_txn(confirmed_txn, &a, false, err))
        return cond_retry_later(c->run, err);
    if (!a.updated)
        return fail_confirm(c, FY_E_CONFLICT, "the server is no longer waiting for a confirm",
                            err);
    return FY_E_OK;
}

static fy_code step_release(cond_cold *c, fy_err *err)
{
    if (cond_step(c->run, confirm_steps[ST_RELEASE], NULL, err))
        return err->code;
    if (cond_sched_release(c->run->ctx, c->mig.uuid, NULL, err))
        return cond_retry_later(c->run, err);
    cond_event_finish_q(c->run, EV_CONFIRM, true, NULL);
    cond_action_finish_q(c->run, true);
    fy_info("migration %s: confirmed", c->mig.uuid);
    return FY_E_OK;
}

static fy_code confirm_run(cond_cold *c, fy_err *err)
{
    fy_code rc = cond_cold_load(c->run, c, err);
    if (rc == FY_E_NOT_FOUND) {
        fy_info("task %s: migration or server gone: %s", c->run->task.uuid, err->msg);
        fy_err_clear(err);
        return FY_E_OK;
    }
    if (rc)
        return cond_retry_later(c->run, err);
    if (c->mig.status == FY_MIG_CONFIRMED)
        return step_release(c, err);
    if (c->mig.status != FY_MIG_CONFIRMING) {
        fy_info("migration %s is %s: nothing to confirm", c->mig.uuid,
                fy_mig_status_name(c->mig.status));
        return FY_E_OK;
    }
    if (step_confirm(c, err))
        return err->code;
    return step_release(c, err);
}

fy_code cond_confirm_run(cond_run *run, fy_err *err)
{
    cond_cold c = {.run = run};
    fy_code rc = confirm_run(&c, err);
    cond_cold_clear(&c);
    return rc;
}
