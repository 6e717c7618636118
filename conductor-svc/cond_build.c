/* Task "build": schedule (claiming on a host), bind the instance and its ports
 * to that host, spawn on its agent; on a failed spawn move to the next
 * alternate while attempts remain.  The chosen host and the alternates left
 * are kept in tasks.params so a resumed run continues with the same claim. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cond.h"
#include "cond_netvol.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

#define EV_SCHEDULE "conductor_schedule_and_build_instances"
#define EV_SPAWN "compute_build_and_run_instance"
#define NVH_MESSAGE "No valid host was found. There are not enough hosts available."
#define SPAWN_TIMEOUT_MS 300000L
#define SPAWN_RETRIES 2
#define SELECT_TRIES 3

enum { STEP_SCHEDULE, STEP_BIND, STEP_SPAWN };
static const char *const build_steps[] = {"schedule", "bind", "spawn"};

typedef struct build {
    cond_run *run;
    cond_instance inst;
    cond_resources res;
    cond_selection sel;     /* sel.dest = current host; sel.alts = those not tried yet */
    int tries;              /* hosts tried, the current one included */
} build;

static const char *uuid_of(const build *b)
{
    return b->run->task.instance_uuid;
}

/* ---- state kept in tasks.params ---- */

static json_t *dest_json(const cond_dest *d)
{
    return json_pack("{s:s,s:s}", "host", d->host, "node", d->node);
}

static fy_code save_state(build *b, const char *step, fy_err *err)
{
    json_t *alts = json_array();
    for (int i = 0; alts && i < b->sel.nalts; i++)
        json_array_append_new(alts, dest_json(&b->sel.alts[i]));
    json_t *st = alts ? json_pack("{s:s,s:s,s:o,s:i}", "host", b->sel.dest.host, "node",
                                  b->sel.dest.node, "alternates", alts, "tries", b->tries)
                      : NULL;
    if (!st || json_object_set_new(b->run->task.params, "build", st) != 0)
        return fy_fail(err, FY_E_NOMEM, NULL);
    return cond_step(b->run, step, b->run->task.params, err);
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

static fy_code load_state(build *b, fy_err *err)
{
    const json_t *st = json_object_get(b->run->task.params, "build");
    if (!load_dest(st, &b->sel.dest))
        return fy_fail(err, FY_E_INTERNAL, "task %s: step %s without a recorded host",
                       b->run->task.uuid, b->run->task.step);
    b->tries = (int)fy_json_int(st, "tries", 1);
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(st, "alternates"), i, a) {
        if (b->sel.nalts < COND_MAX_ALTERNATES && load_dest(a, &b->sel.alts[b->sel.nalts]))
            b->sel.nalts++;
    }
    return FY_E_OK;
}

/* ---- outcomes ---- */

static void release_all(build *b)
{
    fy_err err = {0};
    if (cond_sched_release(b->run->ctx, uuid_of(b), NULL, &err))
        fy_warn("instance %s: allocations not released: %s", uuid_of(b), err.msg);
}

/* The instance was deleted (or a delete is pending): stop here, give back the claim. */
static fy_code abandon(build *b)
{
    fy_info("instance %s: being deleted, build stops", uuid_of(b));
    release_all(b);
    cond_action_finish_q(b->run, false);
    return FY_E_OK;
}

/* Records the failure (ERROR, fault, events).  Returns `code` with the message
 * in err: FY_E_OK for an outcome that completes the task (no valid host). */
static fy_code fail_build(build *b, const char *event, const char *host, fy_code code,
                          const char *message, fy_err *err)
{
    char msg[FY_ERR_MSG_MAX];
    snprintf(msg, sizeof(msg), "%s", message);
    if (cond_instance_set_error(uuid_of(b), 500, msg, host, err))
        return cond_retry_later(b->run, err);
    cond_event_finish_q(b->run, event, false, msg);
    cond_action_finish_q(b->run, false);
    if (code == FY_E_OK)
        return FY_E_OK;
    return fy_fail(err, code, "%s", msg);
}

/* ---- steps ---- */

static fy_code select_once(build *b, fy_err *err)
{
    /* The API split "zone:host" at create: the zone is availability_zone, the
     * pinned host (admins only) requested_host. */
    const char *az = b->inst.availability_zone;
    const char *host = b->inst.requested_host;
    cond_select sreq = {
        .consumer_uuid = uuid_of(b),
        .project_id = b->inst.project_id,
        .res = b->res,
        .zone = az && *az ? az : NULL,
        .force_host = host && *host ? host : NULL,
        .num_alternates = 2,
    };
    return cond_sched_select(b->run->ctx, &sreq, &b->sel, err);
}

static bool transient(fy_code c)
{
    return c == FY_E_UNAVAILABLE || c == FY_E_TIMEOUT || c == FY_E_UPSTREAM;
}

/* Returns FY_E_OK with b->sel filled, or the final error.  Before asking
 * again (or after a previous run died mid-call) the consumer's claims are
 * released so that a lost answer cannot leave a second claim behind. */
static fy_code schedule(build *b, fy_err *err)
{
    fy_code rc = FY_E_UNAVAILABLE;
    for (int i = 0; i < SELECT_TRIES; i++) {
        if (i > 0 && !cond_sleep(b->run, 1000L << i))
            break;
        if (i > 0 || b->run->task.attempts > 1)
            rc = cond_sched_release(b->run->ctx, uuid_of(b), NULL, err);
        else
            rc = FY_E_OK;
        if (rc == FY_E_OK)
            rc = select_once(b, err);
        if (!transient(rc))
            return rc;
        fy_warn("instance %s: scheduler call failed: %s", uuid_of(b), err->msg);
    }
    return rc;
}

static fy_code step_schedule(build *b, fy_err *err)
{
    if (cond_step(b->run, build_steps[STEP_SCHEDULE], NULL, err))
        return err->code;
    const char *me = b->run->ctx->cfg.host;
    cond_event_start_q(b->run, EV_SCHEDULE, me);
    fy_code rc = schedule(b, err);
    if (rc == FY_E_NO_VALID_HOST) {
        fy_info("instance %s: no valid host", uuid_of(b));
        return fail_build(b, EV_SCHEDULE, NULL, FY_E_OK, NVH_MESSAGE, err);
    }
    if (cond_stopping(b->run) && rc) {
        b->run->release = true;
        return rc;
    }
    if (rc) {
        fy_err cause = *err;
        release_all(b);
        return fail_build(b, EV_SCHEDULE, NULL, cause.code, cause.msg, err);
    }
    cond_event_finish_q(b->run, EV_SCHEDULE, true, NULL);
    b->tries = 1;
    return save_state(b, build_steps[STEP_BIND], err);
}

typedef struct bind_args {
    const char *uuid, *host, *node;
    bool bound;
} bind_args;

static fy_code bind_txn(void *arg, fy_err *err)
{
    bind_args *a = arg;
    const char *pi[] = {a->uuid, a->host, a->node};
    const char *pp[] = {a->uuid, a->host};
    const char *pu[] = {a->uuid};
    _cleanup_pgres_ PGresult *r1 = NULL;
    if (fy_db_exec(&cond_sql_instance_bind, pi, &r1, err))
        return err->code;
    a->bound = fy_db_affected(r1) == 1;
    if (!a->bound)
        return FY_E_OK;
    _cleanup_pgres_ PGresult *r2 = NULL, *r3 = NULL, *r4 = NULL;
    if (fy_db_exec(&cond_sql_bindings_drop_other, pp, &r2, err) ||
        fy_db_exec(&cond_sql_bindings_add, pp, &r3, err) ||
        fy_db_exec(&cond_sql_ports_activate, pu, &r4, err))
        return err->code;
    return FY_E_OK;
}

/* false in *ret_bound when the instance is no longer to be built. */
static fy_code step_bind(build *b, bool *ret_bound, fy_err *err)
{
    bind_args a = {.uuid = uuid_of(b), .host = b->sel.dest.host, .node = b->sel.dest.node};
    if (fy_db_txn(bind_txn, &a, false, err))
        return cond_retry_later(b->run, err);
    *ret_bound = a.bound;
    return FY_E_OK;
}

static fy_code ports_json(const char *uuid, json_t **ret, fy_err *err)
{
    const char *p[] = {uuid};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_sql_ports_list, p, &res, err))
        return err->code;
    _cleanup_(json_decrefp) json_t *arr = json_array();
    for (int i = 0; arr && i < PQntuples(res); i++) {
        json_t *port = json_pack("{s:s,s:s,s:s,s:s}", "id", fy_db_str(res, i, "id"),
                                 "mac_address", fy_db_str(res, i, "mac_address"), "fixed_ip",
                                 fy_db_str(res, i, "fixed_ip"), "network_id",
                                 fy_db_str(res, i, "network_id"));
        if (!port || json_array_append_new(arr, port) != 0)
            return fy_fail(err, FY_E_NOMEM, NULL);
    }
    if (!arr)
        return fy_fail(err, FY_E_NOMEM, NULL);
    *ret = TAKE_PTR(arr);
    return FY_E_OK;
}

/* Connects the instance's volumes on the chosen host (idempotent) and returns
 * their block_device_info for the agent. */
static fy_code volumes_connect(build *b, json_t **ret, fy_err *err)
{
    const char *host = b->sel.dest.host;
    _cleanup_(json_decrefp) json_t *bdi = NULL;
    if (cond_vol_block_device_info(uuid_of(b), host, &bdi, err))
        return err->code;
    size_t i;
    json_t *v;
    json_array_foreach (bdi, i, v) {
        if (!json_is_null(json_object_get(v, "connection_info")))
            continue;
        json_t *info = NULL;
        if (cond_vol_initialize_connection(fy_json_str(v, "attachment_id"), host, &info, err))
            return err->code;
        json_object_set_new(v, "connection_info", info);
    }
    *ret = TAKE_PTR(bdi);
    return FY_E_OK;
}

/* Before trying another host: the failed one keeps no volume connection. */
static void volumes_disconnect(build *b)
{
    fy_err err = {0};
    const char *host = b->sel.dest.host;
    _cleanup_(json_decrefp) json_t *bdi = NULL;
    if (cond_vol_block_device_info(uuid_of(b), host, &bdi, &err) == FY_E_OK) {
        size_t i;
        json_t *v;
        json_array_foreach (bdi, i, v)
            if (cond_vol_terminate_connection(fy_json_str(v, "attachment_id"), host, &err))
                break;
    }
    if (err.code)
        fy_warn("instance %s: volume connections on %s not removed: %s", uuid_of(b), host,
                err.msg);
}

static fy_code spawn_body(build *b, json_t **ret, fy_err *err)
{
    json_t *ports = NULL, *bdi = NULL;
    if (ports_json(uuid_of(b), &ports, err))
        return err->code;
    if (volumes_connect(b, &bdi, err)) {
        json_decref(ports);
        return err->code;
    }
    const cond_instance *i = &b->inst;
    /* A server booted without an image gets an empty disk: no "image" at all. */
    bool has_image = i->image_ref && i->image_ref[0];
    json_t *body = json_pack(
        "{s:{s:s,s:I,s:s,s:O,s:s,s:s},s:o,s:o,s:o}", "instance", "uuid", i->uuid, "id",
        (json_int_t)i->id, "display_name", i->display_name, "flavor", i->flavor, "image_ref",
        has_image ? i->image_ref : "", "project_id", i->project_id, "ports", ports, "image",
        has_image ? json_pack("{s:s}", "id", i->image_ref) : json_null(), "block_device_info",
        bdi);
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    *ret = body;
    return FY_E_OK;
}

typedef struct active_args {
    const char *uuid;
    int power_state;
    bool updated;
} active_args;

static fy_code mark_active(build *b, int power_state, bool *ret_updated, fy_err *err)
{
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", power_state);
    const char *p[] = {uuid_of(b), ps};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_sql_instance_active, p, &res, err))
        return err->code;
    *ret_updated = fy_db_affected(res) == 1;
    return FY_E_OK;
}

/* Moves to the next alternate that accepts a claim; false when none is left. */
static bool next_host(build *b)
{
    fy_err err = {0};
    if (cond_sched_release(b->run->ctx, uuid_of(b), b->sel.dest.host, &err)) {
        fy_warn("instance %s: claim on %s not released: %s", uuid_of(b), b->sel.dest.host,
                err.msg);
        return false;
    }
    while (b->sel.nalts > 0 && b->tries < b->run->ctx->cfg.max_attempts) {
        cond_dest alt = b->sel.alts[0];
        memmove(&b->sel.alts[0], &b->sel.alts[1], (size_t)(b->sel.nalts - 1) * sizeof(alt));
        b->sel.nalts--;
        if (cond_sched_claim(b->run->ctx, uuid_of(b), b->inst.project_id, alt.host, &b->res,
                             &err) == FY_E_OK) {
            fy_info("instance %s: rescheduled to %s", uuid_of(b), alt.host);
            b->sel.dest = alt;
            b->tries++;
            return true;
        }
        fy_info("instance %s: alternate %s refused the claim: %s", uuid_of(b), alt.host,
                err.msg);
        if (err.code != FY_E_CONFLICT)
            return false;
    }
    return false;
}

/* One spawn attempt on b->sel.dest.  *ret_spawned false: it failed (err set). */
static fy_code spawn_once(build *b, bool *ret_spawned, fy_err *err)
{
    _cleanup_(json_decrefp) json_t *body = NULL, *ans = NULL;
    if (spawn_body(b, &body, err))
        return cond_retry_later(b->run, err);
    cond_event_start_q(b->run, EV_SPAWN, b->sel.dest.host);
    fy_err aerr = {0};
    if (cond_agent_post(b->run->ctx, b->sel.dest.host, uuid_of(b), "spawn", body, SPAWN_RETRIES,
                        SPAWN_TIMEOUT_MS, &ans, &aerr)) {
        fy_warn("instance %s: spawn on %s failed: %s", uuid_of(b), b->sel.dest.host, aerr.msg);
        cond_event_finish_q(b->run, EV_SPAWN, false, aerr.msg);
        *err = aerr;
        *ret_spawned = false;
        return FY_E_OK;
    }
    bool updated = false;
    if (mark_active(b, (int)fy_json_int(ans, "power_state", 1), &updated, err))
        return cond_retry_later(b->run, err);
    cond_event_finish_q(b->run, EV_SPAWN, true, NULL);
    if (updated)
        cond_action_finish_q(b->run, true);
    else
        fy_info("instance %s: spawned but a delete is pending", uuid_of(b));
    *ret_spawned = true;
    return FY_E_OK;
}

static fy_code bind_and_spawn(build *b, size_t at, fy_err *err)
{
    for (;;) {
        if (at <= STEP_BIND) {
            bool bound = false;
            if (step_bind(b, &bound, err))
                return err->code;
            if (!bound)
                return abandon(b);
            if (cond_step(b->run, build_steps[STEP_SPAWN], NULL, err))
                return err->code;
        }
        bool spawned = false;
        fy_err serr = {0};
        if (spawn_once(b, &spawned, &serr))
            return fy_fail(err, serr.code, "%s", serr.msg);
        if (spawned)
            return FY_E_OK;
        if (cond_stopping(b->run)) {
            b->run->release = true;
            return fy_fail(err, serr.code, "%s", serr.msg);
        }
        volumes_disconnect(b);
        if (!next_host(b)) {
            release_all(b);
            return fail_build(b, EV_SPAWN, b->sel.dest.host, serr.code, serr.msg, err);
        }
        if (save_state(b, build_steps[STEP_BIND], err))
            return err->code;
        at = STEP_BIND;
    }
}

static fy_code build_run(build *b, fy_err *err)
{
    fy_code rc = cond_instance_load(uuid_of(b), &b->inst, err);
    if (rc == FY_E_NOT_FOUND) {
        release_all(b);
        return FY_E_OK;
    }
    if (rc)
        return cond_retry_later(b->run, err);
    if (b->inst.deleted || fy_streq(b->inst.task_state, "deleting"))
        return abandon(b);
    /* Already active or in error: an earlier run finished before recording it. */
    if (!fy_streq(b->inst.vm_state, "building"))
        return FY_E_OK;
    if (cond_flavor_resources(b->inst.flavor, &b->res, err))
        return fail_build(b, EV_SCHEDULE, NULL, err->code, err->msg, err);

    size_t at = cond_step_index(b->run, build_steps, ELEMENTSOF(build_steps));
    if (at == STEP_SCHEDULE) {
        if (step_schedule(b, err))
            return err->code;
        /* A final outcome (no valid host, error) was recorded by step_schedule. */
        if (strcmp(b->run->task.step, build_steps[STEP_BIND]) != 0)
            return FY_E_OK;
        at = STEP_BIND;
    } else if (load_state(b, err)) {
        return err->code;
    }
    return bind_and_spawn(b, at, err);
}

fy_code cond_build_run(cond_run *run, fy_err *err)
{
    build b = {.run = run};
    fy_code rc = build_run(&b, err);
    cond_instance_clear(&b.inst);
    return rc;
}
