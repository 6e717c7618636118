/* Tasks "migrate" and "resize": the seed's Cold Migration Flow.
 *
 * move_allocation  the source allocation goes to the migration uuid
 * schedule         a destination is claimed for the instance (the source is
 *                  ignored unless allow_resize_to_same_host; a given host is forced)
 * prep_resize      on the destination; a failure moves to the next alternate,
 *                  and with none left the server is back as it was
 * resize_instance  power off and push the disk on the source, volume connections
 *                  and the network binding leave the source
 * finish_resize    new flavor, networks and volumes on the destination,
 *                  finish_migration, VERIFY_RESIZE
 * rollback         (after a failure) the server, its networks, volumes and
 *                  allocations back on the source, the move recorded as error
 *
 * The chosen host and the alternates left live in tasks.params.cold, so a
 * resumed run repeats its recorded step with the same claim.  A rollback is
 * recorded (with its cause, tasks.params.rollback) before it undoes anything:
 * a resumed run rolls back again rather than repeat the failed step over a
 * partly undone move.
 *
 * A database restart or a service away for a moment is waited for, not taken
 * for the move's failure: idempotent calls are repeated while they fail
 * transiently (cond_cold_retry_again), and the other writes give the task
 * back to be resumed at its recorded step (cond_retry_later). */
#include <stdio.h>
#include <string.h>
#include "cond_cold.h"
#include "cond_netvol.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

#define EV_CONDUCTOR "conductor_migrate_server"
#define EV_PREP "compute_prep_resize"
#define EV_RESIZE "compute_resize_instance"
#define EV_FINISH "compute_finish_resize"
#define NVH_MESSAGE "No valid host was found. There are not enough hosts available."
/* Claims of one task after which an unreachable agent fails the move (each
 * claim already retries for COND_COLD_TRANSIENT_MS). */
#define AGENT_MAX_CLAIMS 5

enum { ST_MOVE, ST_SCHEDULE, ST_PREP, ST_RESIZE, ST_FINISH, ST_ROLLBACK };
static const char *const cold_steps[] = {"move_allocation", "schedule", "prep_resize",
                                         "resize_instance", "finish_resize", "rollback"};

typedef struct move {
    cond_cold c;
    const json_t *flavor;   /* the flavor the guest gets (borrowed) */
    cond_resources res;
    cond_selection sel;     /* sel.dest = current destination; sel.alts = not tried yet */
    int tries;
    size_t at;              /* the step running */
    bool resumed;           /* the step running was recorded by an earlier run */
    bool ended;             /* an outcome was recorded: no further step */
} move;

static const char *uuid_of(const move *m)
{
    return m->c.inst.uuid;
}

static const char *source_of(const move *m)
{
    return m->c.mig.source_compute ? m->c.mig.source_compute : m->c.inst.host;
}

static bool same_host(const move *m)
{
    return fy_streq(source_of(m), m->sel.dest.host);
}

/* ---- state kept in tasks.params ---- */

static json_t *dest_json(const cond_dest *d)
{
    return json_pack("{s:s,s:s}", "host", d->host, "node", d->node);
}

static fy_code save_state(move *m, const char *step, fy_err *err)
{
    json_t *alts = json_array();
    for (int i = 0; alts && i < m->sel.nalts; i++)
        json_array_append_new(alts, dest_json(&m->sel.alts[i]));
    json_t *st = alts ? json_pack("{s:s,s:s,s:o,s:i}", "host", m->sel.dest.host, "node",
                                  m->sel.dest.node, "alternates", alts, "tries", m->tries)
                      : NULL;
    if (!st || json_object_set_new(m->c.run->task.params, "cold", st) != 0)
        return fy_fail(err, FY_E_NOMEM, NULL);
    return cond_step(m->c.run, step, m->c.run->task.params, err);
}

static bool load_dest(const json_t *j, cond_dest *d)
{
    const char *host = fy_json_str(j, "host"), *node = fy_json_str(j, "node");
    if (!host || !node || strlen(host) >= COND_HOST_MAX || strlen(node) >= COND_HOST_MAX)
        return false;
    snprintf(d->host, sizeof(d->host), "%s", host);
    snprintf(d->node, sizeof(d->node), "%s", node);
    return true;
}

static fy_code load_state(move *m, fy_err *err)
{
    const json_t *st = json_object_get(m->c.run->task.params, "cold");
    if (!load_dest(st, &m->sel.dest))
        return fy_fail(err, FY_E_INTERNAL, "task %s: step %s without a recorded host",
                       m->c.run->task.uuid, m->c.run->task.step);
    m->tries = (int)fy_json_int(st, "tries", 1);
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(st, "alternates"), i, a) {
        if (m->sel.nalts < COND_MAX_ALTERNATES && load_dest(a, &m->sel.alts[m->sel.nalts]))
            m->sel.nalts++;
    }
    return FY_E_OK;
}

/* ---- failure outcomes ---- */

static void warn_if(fy_code rc, const move *m, const char *what, const fy_err *err)
{
    if (rc)
        fy_warn("migration %s: %s: %s", m->c.mig.uuid, what, err->msg);
}

/* Allocations back as before the move: the destination claim released, the
 * migration's source allocation handed back to the instance. */
static void restore_allocations(move *m)
{
    const cond_ctx *ctx = m->c.run->ctx;
    cond_run *run = m->c.run;
    fy_err e = {0};
    if (m->at >= ST_SCHEDULE)
        warn_if(COND_COLD_RETRYING(run, "releasing the claim", &e,
                                   cond_sched_release(ctx, uuid_of(m), NULL, &e)),
                m, "claim not released", &e);
    warn_if(COND_COLD_RETRYING(run, "handing the source allocation back", &e,
                               cond_sched_move(ctx, m->c.mig.uuid, uuid_of(m), source_of(m), &e)),
            m, "source allocation not handed back", &e);
}

/* The source guest back from its kept disk, powered off as the failed step
 * left it (the server goes to ERROR).  Returns its power state, -1 unknown. */
static int restore_source_guest(move *m)
{
    fy_err e = {0};
    _cleanup_(json_decrefp) json_t *body = NULL, *ans = NULL, *old = NULL;
    cond_run *run = m->c.run;
    if (COND_COLD_RETRYING(run, "reading the old flavor", &e,
                           cond_cold_old_flavor(uuid_of(m), &old, &e)) == FY_E_OK &&
        COND_COLD_RETRYING(run, "building the step body", &e,
                           cond_cold_body(&m->c, NULL, old ? old : m->c.inst.flavor, &body,
                                          &e)) == FY_E_OK &&
        json_object_set_new(body, "power_on", json_false()) == 0 &&
        cond_cold_agent(&m->c, source_of(m), "finish_revert_migration", body,
                        COND_COLD_STEP_TIMEOUT_MS, &ans, &e) == FY_E_OK)
        return (int)fy_json_int(json_object_get(ans, "instance"), "power_state", 4);
    warn_if(e.code, m, "source guest not restored", &e);
    return -1;
}

/* After the source gave up its guest: the destination's copy goes, the
 * guest, networks and volume connections return to the source. */
static int restore_source(move *m)
{
    fy_err e = {0};
    cond_run *run = m->c.run;
    const char *src = source_of(m), *dst = m->sel.dest.host, *uuid = uuid_of(m);
    if (dst[0] && !same_host(m)) {
        _cleanup_(json_decrefp) json_t *body = NULL;
        if (COND_COLD_RETRYING(run, "building the step body", &e,
                               cond_cold_body(&m->c, NULL, m->flavor, &body, &e)) == FY_E_OK)
            warn_if(cond_cold_agent(&m->c, dst, "revert_migration_dest", body,
                                    COND_COLD_STEP_TIMEOUT_MS, NULL, &e),
                    m, "destination not cleaned", &e);
        warn_if(COND_COLD_RETRYING(run, "tearing down the destination networks", &e,
                                   cond_net_teardown_on_host(uuid, dst, &e)),
                m, "destination networks not torn down", &e);
        warn_if(COND_COLD_RETRYING(run, "terminating the destination volume connections", &e,
                                   cond_cold_disconnect_volumes(uuid, dst, &e)),
                m, "destination volume connections not terminated", &e);
    }
    warn_if(COND_COLD_RETRYING(run, "setting up the source networks", &e,
                               cond_net_setup_on_host(uuid, src, &e)),
            m, "source networks not set up", &e);
    warn_if(COND_COLD_RETRYING(run, "activating the source binding", &e,
                               cond_net_migrate_finish(uuid, src, &e)),
            m, "source binding not active", &e);
    _cleanup_(json_decrefp) json_t *bdi = NULL;
    warn_if(COND_COLD_RETRYING(run, "restoring the source volume connections", &e,
                               cond_cold_connect_volumes(uuid, src, &bdi, &e)),
            m, "source volume connections not restored", &e);
    return same_host(m) ? -1 : restore_source_guest(m);
}

static const fy_mig_status cold_open[] = {FY_MIG_PRE_MIGRATING, FY_MIG_MIGRATING,
                                          FY_MIG_POST_MIGRATING};

typedef struct fail_args {
    move *m;
    const char *message;
    bool error_state;       /* instance ERROR (else back as it was) */
    int power_state;        /* -1: unchanged */
} fail_args;

static fy_code fail_txn(void *arg, fy_err *err)
{
    fail_args *a = arg;
    const char *uuid = uuid_of(a->m);
    const char *p[] = {uuid};
    _cleanup_pgres_ PGresult *r1 = NULL, *r2 = NULL;
    if (a->error_state) {
        char ps[16];
        snprintf(ps, sizeof(ps), "%d", a->power_state);
        const char *pp[] = {uuid, ps};
        _cleanup_pgres_ PGresult *r3 = NULL;
        if (fy_db_exec(&cond_sql_cold_restore_flavor, p, &r1, err) ||
            (a->power_state >= 0 && fy_db_exec(&cond_sql_cold_power, pp, &r3, err)) ||
            cond_instance_set_error(uuid, 500, a->message, NULL, err))
            return err->code;
    } else if (fy_db_exec(&cond_sql_cold_instance_unprep, p, &r2, err) ||
               cond_fault_add(uuid, 500, a->message, NULL, err)) {
        return err->code;
    }
    if (cond_mig_fail(a->m->c.mig.uuid, cold_open, ELEMENTSOF(cold_open), FY_MIG_ERROR,
                      a->message, err))
        return err->code;
    return cond_quota_rollback(a->m->c.mig.uuid, err);
}

/* Records step "rollback" with what a resumed run needs to roll back again:
 * until it is recorded nothing is undone, so a run given back before that
 * resumes the failed step itself. */
static fy_code record_rollback(move *m, const char *event, bool error_state, fy_code code,
                               const char *msg, fy_err *err)
{
    cond_run *run = m->c.run;
    if (fy_streq(run->task.step, cold_steps[ST_ROLLBACK]))
        return FY_E_OK;     /* resumed: recorded by an earlier run */
    json_t *rb = json_pack("{s:s,s:b,s:s,s:s,s:I}", "event", event, "error_state", error_state,
                           "code", fy_code_name(code), "message", msg, "at", (json_int_t)m->at);
    if (!rb || json_object_set_new(run->task.params, "rollback", rb) != 0)
        return fy_fail(err, FY_E_NOMEM, NULL);
    cond_cold_retry r = {0};
    while (cond_step(run, cold_steps[ST_ROLLBACK], run->task.params, err)) {
        if (run->lost)
            return err->code;
        run->release = false;   /* the step write failed: try it again first */
        if (!cond_cold_retry_again(run, &r, err, "recording the rollback"))
            return cond_retry_later(run, err);
        fy_err_clear(err);
    }
    return FY_E_OK;
}

/* Records the failed move.  error_state false is the no-valid-host outcome,
 * which completes the task; otherwise the task fails with the message. */
static fy_code fail_move(move *m, const char *event, bool error_state, fy_code code,
                         const char *message, fy_err *err)
{
    char msg[FY_ERR_MSG_MAX];
    snprintf(msg, sizeof(msg), "%s", message);
    fy_info("migration %s: %s", m->c.mig.uuid, msg);
    if (record_rollback(m, event, error_state, code, msg, err))
        return err->code;
    int power_state = m->at >= ST_RESIZE ? restore_source(m) : -1;
    restore_allocations(m);
    fail_args a = {.m = m, .message = msg, .error_state = error_state,
                   .power_state = power_state};
    if (COND_COLD_RETRYING(m->c.run, "recording the failed move", err,
                           fy_db_txn(fail_txn, &a, false, err)))
        return cond_retry_later(m->c.run, err);
    /* Recorded: the task ends here even if the conductor began to stop. */
    m->c.run->release = false;
    m->ended = true;
    cond_event_finish_q(m->c.run, event, false, msg);
    cond_action_finish_q(m->c.run, false);
    if (!error_state) {
        fy_err_clear(err);
        return FY_E_OK;
    }
    return fy_fail(err, code, "%s", msg);
}

static fy_code changed_under_us(move *m, const char *event, fy_err *err)
{
    return fail_move(m, event, true, FY_E_CONFLICT,
                     "the server changed state during the move", err);
}

/* An agent step failed: an unreachable agent may come back (steps are
 * idempotent), so the task is retried a few times before the move fails. */
static fy_code agent_failed(move *m, const char *event, const fy_err *cause, fy_err *err)
{
    bool transient = fy_code_retryable(cause->code) && cause->code != FY_E_NOMEM;
    if ((transient && m->c.run->task.attempts < AGENT_MAX_CLAIMS) || cond_stopping(m->c.run)) {
        *err = *cause;
        return cond_retry_later(m->c.run, err);
    }
    return fail_move(m, event, true, cause->code, cause->msg, err);
}

/* ---- move_allocation ---- */

static fy_code step_move(move *m, fy_err *err)
{
    m->at = ST_MOVE;
    if (cond_step(m->c.run, cold_steps[ST_MOVE], NULL, err))
        return err->code;
    cond_event_start_q(m->c.run, EV_CONDUCTOR, m->c.run->ctx->cfg.host);
    if (!json_object_get(m->c.mig.migrate_data, "power_on")) {
        bool on = cond_cold_was_running(m->c.inst.vm_state, m->c.inst.power_state);
        _cleanup_(json_decrefp) json_t *d = json_pack("{s:b}", "power_on", on);
        if (!d || cond_mig_merge_data(m->c.mig.uuid, d, err))
            return cond_retry_later(m->c.run, err);
        json_object_update(m->c.mig.migrate_data, d);
    }
    /* The move is idempotent: a scheduler down or restarting is waited for. */
    if (COND_COLD_RETRYING(m->c.run, "moving the source allocation", err,
                           cond_sched_move(m->c.run->ctx, uuid_of(m), m->c.mig.uuid,
                                           source_of(m), err))) {
        bool unreachable = fy_code_retryable(err->code) && err->code != FY_E_NOMEM;
        if (cond_stopping(m->c.run) || (unreachable && m->c.run->task.attempts < AGENT_MAX_CLAIMS))
            return cond_retry_later(m->c.run, err);
        return fail_move(m, EV_CONDUCTOR, true, err->code, err->msg, err);
    }
    return FY_E_OK;
}

/* ---- schedule ---- */

static fy_code select_once(move *m, fy_err *err)
{
    const char *forced = fy_json_str(m->c.run->task.params, "host");
    const char *ignore[2];
    size_t nign = cond_cold_ignore_hosts(source_of(m), m->c.run->ctx->cfg.allow_resize_to_same_host,
                                         forced, ignore);
    long long alts = m->c.run->ctx->cfg.max_attempts - 1;
    cond_select req = {
        .consumer_uuid = uuid_of(m),
        .project_id = m->c.inst.project_id,
        .res = m->res,
        .force_host = forced && *forced ? forced : NULL,
        .num_alternates = (int)(alts > COND_MAX_ALTERNATES ? COND_MAX_ALTERNATES : alts),
        .ignore_hosts = ignore,
        .n_ignore_hosts = nign,
    };
    return cond_sched_select(m->c.run->ctx, &req, &m->sel, err);
}

/* Right after a database outage the hosts' heartbeats are stale (they could
 * not be written), so the scheduler finds hosts down that are up again a
 * moment later.  After an outage this run saw, or in a resumed run, "no
 * valid host" is asked again until the heartbeats had time to come back. */
static bool hosts_may_be_stale(move *m, unsigned long long *nvh_since)
{
    const cond_config *cfg = &m->c.run->ctx->cfg;
    unsigned long long now = fy_now_ms();
    if (!*nvh_since)
        *nvh_since = now;
    long long wait_s = cfg->service_down_time + cfg->report_interval;
    if (now - *nvh_since >= (unsigned long long)wait_s * 1000ULL)
        return false;
    fy_info("migration %s: no valid host right after an outage; asking again once the hosts"
            " report", m->c.mig.uuid);
    return cond_sleep(m->c.run, 1000);
}

/* A lost answer may still have claimed: before asking again the instance's
 * claims are released (its own allocation is the migration's by now).  A
 * scheduler (or its database) away is waited for. */
static fy_code schedule(move *m, fy_err *err)
{
    cond_cold_retry r = {0};
    bool outage = m->c.run->task.attempts > 1;
    unsigned long long nvh_since = 0;
    for (bool again = outage;; again = true) {
        fy_code rc = again ? cond_sched_release(m->c.run->ctx, uuid_of(m), NULL, err) : FY_E_OK;
        if (rc == FY_E_OK)
            rc = select_once(m, err);
        if (rc == FY_E_OK)
            return rc;
        if (rc == FY_E_NO_VALID_HOST) {
            if (!outage || !hosts_may_be_stale(m, &nvh_since))
                return rc;
        } else if (cond_cold_retry_again(m->c.run, &r, err, "scheduling")) {
            outage = true;
        } else {
            return rc;
        }
        fy_err_clear(err);
    }
}

static fy_code step_schedule(move *m, fy_err *err)
{
    m->at = ST_SCHEDULE;
    if (cond_step(m->c.run, cold_steps[ST_SCHEDULE], NULL, err))
        return err->code;
    fy_code rc = schedule(m, err);
    if (rc == FY_E_NO_VALID_HOST)
        return fail_move(m, EV_CONDUCTOR, false, FY_E_OK, err->msg[0] ? err->msg : NVH_MESSAGE,
                         err);
    if (rc && cond_stopping(m->c.run))
        return cond_retry_later(m->c.run, err);
    if (rc)
        return fail_move(m, EV_CONDUCTOR, true, rc, err->msg, err);
    m->tries = 1;
    if (COND_COLD_RETRYING(m->c.run, "recording the destination", err,
                           cond_mig_set_dest(m->c.mig.uuid, m->sel.dest.host, m->sel.dest.node,
                                             err)))
        return cond_retry_later(m->c.run, err);
    cond_event_finish_q(m->c.run, EV_CONDUCTOR, true, NULL);
    return save_state(m, cold_steps[ST_PREP], err);
}

/* ---- prep_resize ---- */

/* Moves to the next alternate that accepts a claim; false when none is left. */
static bool next_host(move *m)
{
    const cond_ctx *ctx = m->c.run->ctx;
    cond_run *run = m->c.run;
    fy_err e = {0};
    if (COND_COLD_RETRYING(run, "releasing the claim", &e,
                           cond_sched_release(ctx, uuid_of(m), m->sel.dest.host, &e))) {
        warn_if(e.code, m, "claim not released", &e);
        return false;
    }
    cond_dest alt;
    while (cond_cold_take_alternate(&m->sel, m->tries, (int)ctx->cfg.max_attempts, &alt)) {
        /* A claim is idempotent (a claim already held is answered as made). */
        if (COND_COLD_RETRYING(run, "claiming an alternate", &e,
                               cond_sched_claim(ctx, uuid_of(m), m->c.inst.project_id, alt.host,
                                                &m->res, &e)) == FY_E_OK) {
            fy_info("migration %s: rescheduled to %s", m->c.mig.uuid, alt.host);
            m->sel.dest = alt;
            m->tries++;
            return true;
        }
        fy_info("migration %s: alternate %s refused the claim: %s", m->c.mig.uuid, alt.host,
                e.msg);
        if (e.code != FY_E_CONFLICT)
            return false;
    }
    /* Nothing is claimed now: a failure path must not release again. */
    m->sel.dest.host[0] = '\0';
    return false;
}

static fy_code record_shared(move *m, const json_t *data, fy_err *err)
{
    const json_t *v = json_object_get(data, "shared_storage");
    if (!json_is_boolean(v))
        return FY_E_OK;
    bool shared = json_is_true(v);
    if (cond_mig_set_storage(m->c.mig.uuid, NULL, &shared, err))
        return err->code;
    m->c.mig.shared_storage = shared;
    return FY_E_OK;
}

/* One prep_resize on sel.dest: *ret_ok false with the cause in cause. */
static fy_code prep_once(move *m, bool *ret_ok, fy_err *cause, fy_err *err)
{
    _cleanup_(json_decrefp) json_t *body = NULL;
    if (cond_cold_reload_mig(&m->c, err) || cond_cold_body(&m->c, NULL, m->flavor, &body, err))
        return cond_retry_later(m->c.run, err);
    cond_event_start_q(m->c.run, EV_PREP, m->sel.dest.host);
    if (cond_cold_agent(&m->c, m->sel.dest.host, "prep_resize", body, COND_COLD_STEP_TIMEOUT_MS,
                        NULL, cause)) {
        if (m->c.run->release)
            return fy_fail(err, cause->code, "%s", cause->msg);
        cond_event_finish_q(m->c.run, EV_PREP, false, cause->msg);
        *ret_ok = false;
        return FY_E_OK;
    }
    if (record_shared(m, m->c.mig.migrate_data, err))
        return cond_retry_later(m->c.run, err);
    cond_event_finish_q(m->c.run, EV_PREP, true, NULL);
    *ret_ok = true;
    return FY_E_OK;
}

/* A run resumed at prep_resize may follow one that stopped while moving on
 * to an alternate (its claim on the recorded destination released, one on an
 * alternate made, the record naming either): the claims and the record are
 * made to match the recorded destination again.  Releases and claims are
 * idempotent.  *ret_room false when the destination has no room any more. */
static fy_code resume_claims(move *m, bool *ret_room, fy_err *err)
{
    const cond_ctx *ctx = m->c.run->ctx;
    cond_run *run = m->c.run;
    *ret_room = true;
    for (int i = 0; i < m->sel.nalts; i++)
        if (COND_COLD_RETRYING(run, "releasing an alternate's claim", err,
                               cond_sched_release(ctx, uuid_of(m), m->sel.alts[i].host, err)))
            return cond_retry_later(run, err);
    fy_code rc = COND_COLD_RETRYING(run, "claiming the destination", err,
                                    cond_sched_claim(ctx, uuid_of(m), m->c.inst.project_id,
                                                     m->sel.dest.host, &m->res, err));
    if (rc == FY_E_CONFLICT) {
        *ret_room = false;
        return FY_E_OK;
    }
    if (rc || COND_COLD_RETRYING(run, "recording the destination", err,
                                 cond_mig_set_dest(m->c.mig.uuid, m->sel.dest.host,
                                                   m->sel.dest.node, err)))
        return cond_retry_later(run, err);
    return FY_E_OK;
}

static fy_code step_prep(move *m, fy_err *err)
{
    m->at = ST_PREP;
    bool room = true;
    if (m->resumed && resume_claims(m, &room, err))
        return err->code;
    for (;;) {
        bool ok = false;
        fy_err cause = {0};
        if (!room)
            fy_fail(&cause, FY_E_CONFLICT, "Host %s has not enough free resources any more.",
                    m->sel.dest.host);
        else if (prep_once(m, &ok, &cause, err))
            return err->code;
        room = true;
        if (ok)
            return cond_step(m->c.run, cold_steps[ST_RESIZE], NULL, err);
        fy_info("migration %s: prep_resize on %s failed: %s", m->c.mig.uuid, m->sel.dest.host,
                cause.msg);
        if (cond_stopping(m->c.run)) {
            *err = cause;
            return cond_retry_later(m->c.run, err);
        }
        /* Out of hosts (Nova: MaxRetriesExceeded, a NoValidHost): the
         * server is back as it was, only the record shows the error. */
        if (!next_host(m)) {
            if (m->c.run->release)      /* stopping: resumed later */
                return fy_fail(err, cause.code, "%s", cause.msg);
            return fail_move(m, EV_PREP, false, FY_E_OK, cause.msg, err);
        }
        if (COND_COLD_RETRYING(m->c.run, "recording the destination", err,
                               cond_mig_set_dest(m->c.mig.uuid, m->sel.dest.host,
                                                 m->sel.dest.node, err)))
            return cond_retry_later(m->c.run, err);
        if (save_state(m, cold_steps[ST_PREP], err))
            return err->code;
    }
}

/* ---- resize_instance ---- */

static fy_code set_task_state(move *m, const char *const *from, size_t n, const char *to,
                              bool *ret_ok, fy_err *err)
{
    if (cond_cold_task_state(uuid_of(m), from, n, to, ret_ok, err))
        return cond_retry_later(m->c.run, err);
    return FY_E_OK;
}

/* The source's guest is powered off and its disk pushed to the destination. */
static fy_code disk_and_power_off(move *m, fy_err *err)
{
    _cleanup_(json_decrefp) json_t *bdi = NULL, *body = NULL, *ans = NULL;
    if (cond_vol_block_device_info(uuid_of(m), source_of(m), &bdi, err) ||
        cond_cold_body(&m->c, bdi, m->flavor, &body, err))
        return cond_retry_later(m->c.run, err);
    fy_err cause = {0};
    if (cond_cold_agent(&m->c, source_of(m), "migrate_disk_and_power_off", body,
                        COND_COLD_DISK_TIMEOUT_MS, &ans, &cause)) {
        if (m->c.run->release) {
            *err = cause;
            return err->code;
        }
        return agent_failed(m, EV_RESIZE, &cause, err);
    }
    const json_t *disk = json_object_get(ans, "disk_info");
    if (!json_is_object(disk))
        return FY_E_OK;
    /* The source found out whether the disk had to travel: later steps on
     * both hosts act on it (a shared disk is never deleted by one side). */
    _cleanup_(json_decrefp) json_t *d = json_pack("{s:O}", "disk_info", disk);
    const json_t *shared = json_object_get(disk, "shared_storage");
    if (d && json_is_boolean(shared))
        json_object_set(d, "shared_storage", (json_t *)shared);
    if (!d || cond_mig_merge_data(m->c.mig.uuid, d, err) || record_shared(m, d, err))
        return cond_retry_later(m->c.run, err);
    json_object_update(m->c.mig.migrate_data, d);
    return FY_E_OK;
}

static fy_code step_resize(move *m, fy_err *err)
{
    m->at = ST_RESIZE;
    static const char *const from1[] = {"resize_prep", "resize_migrating", "resize_migrated"};
    static const char *const from2[] = {"resize_migrating", "resize_migrated"};
    bool ok = false;
    cond_event_start_q(m->c.run, EV_RESIZE, source_of(m));
    if (set_task_state(m, from1, ELEMENTSOF(from1), "resize_migrating", &ok, err))
        return err->code;
    if (!ok)
        return changed_under_us(m, EV_RESIZE, err);
    if (cond_cold_advance(&m->c, FY_MIG_PRE_MIGRATING, FY_MIG_MIGRATING, err))
        return cond_retry_later(m->c.run, err);
    if (disk_and_power_off(m, err))
        return err->code;
    if (cond_cold_disconnect_volumes(uuid_of(m), source_of(m), err) ||
        cond_net_migrate_start(uuid_of(m), source_of(m), m->sel.dest.host, err) ||
        cond_cold_advance(&m->c, FY_MIG_MIGRATING, FY_MIG_POST_MIGRATING, err))
        return cond_retry_later(m->c.run, err);
    if (set_task_state(m, from2, ELEMENTSOF(from2), "resize_migrated", &ok, err))
        return err->code;
    if (!ok)
        return changed_under_us(m, EV_RESIZE, err);
    cond_event_finish_q(m->c.run, EV_RESIZE, true, NULL);
    return cond_step(m->c.run, cold_steps[ST_FINISH], NULL, err);
}

/* ---- finish_resize ---- */

typedef struct flavor_args {
    const char *uuid, *migration, *flavor;
} flavor_args;

/* The usage is counted from the flavor: the reservation goes with the change. */
static fy_code flavor_txn(void *arg, fy_err *err)
{
    flavor_args *a = arg;
    const char *p[] = {a->uuid, a->flavor};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_sql_cold_apply_flavor, p, &res, err))
        return err->code;
    return cond_quota_commit_hold(a->migration, a->uuid, err);
}

typedef struct resized_args {
    move *m;
    int power_state;
    bool updated;
} resized_args;

static fy_code resized_txn(void *arg, fy_err *err)
{
    resized_args *a = arg;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", a->power_state);
    const char *p[] = {uuid_of(a->m), a->m->sel.dest.host, a->m->sel.dest.node, ps};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_sql_cold_resized, p, &res, err))
        return err->code;
    a->updated = fy_db_affected(res) == 1;
    if (!a->updated)
        return FY_E_OK;
    return cond_mig_set_status(a->m->c.mig.uuid, FY_MIG_POST_MIGRATING, FY_MIG_FINISHED, NULL,
                               err);
}

static fy_code finish_migration(move *m, int *ret_power_state, fy_err *err)
{
    _cleanup_(json_decrefp) json_t *bdi = NULL, *body = NULL, *ans = NULL;
    if (cond_cold_connect_volumes(uuid_of(m), m->sel.dest.host, &bdi, err) ||
        cond_cold_reload_mig(&m->c, err) || cond_cold_body(&m->c, bdi, m->flavor, &body, err))
        return cond_retry_later(m->c.run, err);
    fy_err cause = {0};
    if (cond_cold_agent(&m->c, m->sel.dest.host, "finish_migration", body,
                        COND_COLD_STEP_TIMEOUT_MS, &ans, &cause)) {
        if (m->c.run->release) {
            *err = cause;
            return err->code;
        }
        return agent_failed(m, EV_FINISH, &cause, err);
    }
    bool on = fy_json_bool(m->c.mig.migrate_data, "power_on", true);
    *ret_power_state = (int)fy_json_int(json_object_get(ans, "instance"), "power_state",
                                        on ? 1 : 4);
    return FY_E_OK;
}

static fy_code step_finish(move *m, fy_err *err)
{
    m->at = ST_FINISH;
    static const char *const from[] = {"resize_migrated", "resize_finish"};
    cond_event_start_q(m->c.run, EV_FINISH, m->sel.dest.host);
    _cleanup_free_ char *flavor = fy_json_dump(m->flavor);
    if (!flavor)
        return fy_fail(err, FY_E_NOMEM, NULL);
    flavor_args fa = {.uuid = uuid_of(m), .migration = m->c.mig.uuid, .flavor = flavor};
    bool ok = false;
    if (fy_db_txn(flavor_txn, &fa, false, err) ||
        cond_net_setup_on_host(uuid_of(m), m->sel.dest.host, err) ||
        cond_net_migrate_finish(uuid_of(m), m->sel.dest.host, err))
        return cond_retry_later(m->c.run, err);
    if (set_task_state(m, from, ELEMENTSOF(from), "resize_finish", &ok, err))
        return err->code;
    if (!ok)
        return changed_under_us(m, EV_FINISH, err);
    resized_args ra = {.m = m, .power_state = 4};
    if (finish_migration(m, &ra.power_state, err))
        return err->code;
    if (fy_db_txn(resized_txn, &ra, false, err))
        return cond_retry_later(m->c.run, err);
    if (!ra.updated)
        return changed_under_us(m, EV_FINISH, err);
    cond_event_finish_q(m->c.run, EV_FINISH, true, NULL);
    cond_action_finish_q(m->c.run, true);
    fy_info("migration %s: %s on %s, waiting for confirm", m->c.mig.uuid, uuid_of(m),
            m->sel.dest.host);
    return FY_E_OK;
}

/* ---- the task ---- */

/* Each step either fails (err), ends the move with a recorded outcome
 * (m->ended: no valid host, no host left after reschedules) or goes on. */
static fy_code run_steps(move *m, size_t at, fy_err *err)
{
    typedef fy_code (*step_fn)(move *, fy_err *);
    static const step_fn steps[] = {step_move, step_schedule, step_prep, step_resize,
                                    step_finish};
    if (at > ST_SCHEDULE && load_state(m, err))
        return err->code;
    for (size_t i = at; i < ELEMENTSOF(steps); i++) {
        m->resumed = i == at && m->c.run->task.attempts > 1;
        if (steps[i](m, err))
            return err->code;
        if (m->ended)
            return FY_E_OK;
    }
    return FY_E_OK;
}

/* A rollback recorded by an earlier run is done again from its start: each of
 * its calls is idempotent, and it ends with the same outcome. */
static fy_code resume_rollback(move *m, fy_err *err)
{
    const json_t *params = m->c.run->task.params;
    const json_t *rb = json_object_get(params, "rollback");
    const char *msg = fy_json_str(rb, "message"), *ev = fy_json_str(rb, "event");
    if (!msg || !ev)
        return fy_fail(err, FY_E_INTERNAL, "task %s: step rollback without its record",
                       m->c.run->task.uuid);
    json_int_t at = fy_json_int(rb, "at", ST_MOVE);
    m->at = at >= ST_MOVE && at < ST_ROLLBACK ? (size_t)at : ST_MOVE;
    if (json_object_get(params, "cold") && load_state(m, err))
        return err->code;
    char event[64];
    snprintf(event, sizeof(event), "%s", ev);
    fy_info("migration %s: rolling back again after a restart", m->c.mig.uuid);
    return fail_move(m, event, fy_json_bool(rb, "error_state", true),
                     fy_code_from_name(fy_json_str(rb, "code")), msg, err);
}

static fy_code cold_run(move *m, fy_err *err)
{
    cond_run *run = m->c.run;
    fy_code rc = cond_cold_load(run, &m->c, err);
    if (rc == FY_E_NOT_FOUND) {
        fy_info("task %s: migration or server gone: %s", run->task.uuid, err->msg);
        fy_err_clear(err);
        return FY_E_OK;
    }
    if (rc)
        return cond_retry_later(run, err);
    /* Done already (an earlier run ended before recording it), or failed. */
    if (m->c.mig.status != FY_MIG_PRE_MIGRATING && m->c.mig.status != FY_MIG_MIGRATING &&
        m->c.mig.status != FY_MIG_POST_MIGRATING)
        return FY_E_OK;
    const json_t *f = json_object_get(run->task.params, "flavor");
    m->flavor = json_is_object(f) ? f : m->c.inst.flavor;
    if (cond_flavor_resources(m->flavor, &m->res, err))
        return fail_move(m, EV_CONDUCTOR, true, err->code, err->msg, err);
    size_t at = cond_step_index(run, cold_steps, ELEMENTSOF(cold_steps));
    if (at == ST_ROLLBACK)
        return resume_rollback(m, err);
    return run_steps(m, at, err);
}

static fy_code cold_task(cond_run *run, fy_err *err)
{
    move m = {.c = {.run = run}};
    fy_code rc = cold_run(&m, err);
    cond_cold_clear(&m.c);
    return rc;
}

fy_code cond_migrate_run(cond_run *run, fy_err *err)
{
    return cold_task(run, err);
}

fy_code cond_resize_run(cond_run *run, fy_err *err)
{
    return cold_task(run, err);
}
