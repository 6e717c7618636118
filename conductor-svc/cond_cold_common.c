/* Pieces shared by the cold-migration tasks: decisions, the loaded records,
 * agent step bodies and calls, volume connections, guarded task states. */
#include <stdio.h>
#include <string.h>
#include "cond_cold.h"
#include "cond_netvol.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

/* ---- decisions ---- */

bool cond_cold_was_running(const char *vm_state, int power_state)
{
    if (fy_streq(vm_state, "stopped"))
        return false;
    /* An active guest found shut off (power_state 4) is not started by the move. */
    return power_state != 4;
}

const char *cond_cold_final_vm_state(bool power_on)
{
    return power_on ? "active" : "stopped";
}

size_t cond_cold_ignore_hosts(const char *source, bool allow_same_host, const char *forced,
                              const char **out)
{
    if (!source || !*source || allow_same_host || (forced && *forced))
        return 0;
    out[0] = source;
    return 1;
}

bool cond_cold_take_alternate(cond_selection *sel, int tries, int max_attempts, cond_dest *ret)
{
    if (tries >= max_attempts || sel->nalts <= 0)
        return false;
    *ret = sel->alts[0];
    memmove(&sel->alts[0], &sel->alts[1], (size_t)(sel->nalts - 1) * sizeof(sel->alts[0]));
    sel->nalts--;
    return true;
}

int cond_cold_rank(fy_mig_status s)
{
    switch (s) {
    case FY_MIG_PRE_MIGRATING:
        return 0;
    case FY_MIG_MIGRATING:
        return 1;
    case FY_MIG_POST_MIGRATING:
        return 2;
    case FY_MIG_FINISHED:
        return 3;
    default:
        return -1;
    }
}

/* ---- transient failures ---- */

#define RETRY_FIRST_PAUSE_MS 250L
#define RETRY_MAX_PAUSE_MS 5000L

/* A call that timed out has waited long already (the task-level retry takes
 * it from there); out of memory is not a condition that passes. */
static bool transient(fy_code c)
{
    return fy_code_retryable(c) && c != FY_E_TIMEOUT && c != FY_E_NOMEM;
}

bool cond_cold_retry_again(cond_run *run, cond_cold_retry *r, const fy_err *err,
                           const char *what)
{
    if (!transient(err->code))
        return false;
    if (cond_stopping(run)) {
        run->release = true;
        return false;
    }
    unsigned long long now = fy_now_ms();
    if (!r->since_ms) {
        r->since_ms = now ? now : 1;
        r->pause_ms = RETRY_FIRST_PAUSE_MS;
    }
    if (now - r->since_ms >= (unsigned long long)COND_COLD_TRANSIENT_MS) {
        fy_warn("%s: still failing after %ld s, giving up: %s", what,
                COND_COLD_TRANSIENT_MS / 1000, err->msg);
        return false;
    }
    fy_info("%s failed, trying again in %ld ms: %s", what, r->pause_ms, err->msg);
    if (!cond_sleep(run, r->pause_ms)) {
        run->release = true;
        return false;
    }
    r->pause_ms = r->pause_ms * 2 > RETRY_MAX_PAUSE_MS ? RETRY_MAX_PAUSE_MS : r->pause_ms * 2;
    return true;
}

/* ---- records ---- */

fy_code cond_cold_load(cond_run *run, cond_cold *c, fy_err *err)
{
    c->run = run;
    if (!run->task.migration_uuid[0])
        return fy_fail(err, FY_E_NOT_FOUND, "task %s names no migration", run->task.uuid);
    if (cond_mig_load(run->task.migration_uuid, &c->mig, err))
        return err->code;
    c->have_mig = true;
    if (cond_instance_load(c->mig.instance_uuid, &c->inst, err))
        return err->code;
    c->have_inst = true;
    return FY_E_OK;
}

fy_code cond_cold_reload_mig(cond_cold *c, fy_err *err)
{
    cond_migration m = {0};
    if (cond_mig_load(c->run->task.migration_uuid, &m, err))
        return err->code;
    cond_mig_clear(&c->mig);
    c->mig = m;
    return FY_E_OK;
}

void cond_cold_clear(cond_cold *c)
{
    if (c->have_mig)
        cond_mig_clear(&c->mig);
    if (c->have_inst)
        cond_instance_clear(&c->inst);
    c->have_mig = c->have_inst = false;
}

fy_code cond_cold_advance(cond_cold *c, fy_mig_status from, fy_mig_status to, fy_err *err)
{
    fy_mig_status found = FY_MIG_INVALID;
    fy_code rc = cond_mig_set_status(c->mig.uuid, from, to, &found, err);
    if (rc == FY_E_CONFLICT && cond_cold_rank(found) > cond_cold_rank(to) &&
        cond_cold_rank(to) >= 0) {
        fy_err_clear(err);
        return FY_E_OK;
    }
    if (rc == FY_E_OK)
        c->mig.status = to;
    return rc;
}

/* ---- agent steps ---- */

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* The agent URL of host, or JSON null when the host has no agent registered. */
static fy_code url_of(const char *host, json_t **ret, fy_err *err)
{
    if (!host || !*host) {
        *ret = json_null();
        return FY_E_OK;
    }
    _cleanup_free_ char *url = NULL;
    fy_code rc = cond_agent_url(host, &url, err);
    if (rc == FY_E_NOT_FOUND) {
        fy_err_clear(err);
        *ret = json_null();
        return FY_E_OK;
    }
    if (rc)
        return rc;
    *ret = json_string(url);
    return *ret ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

fy_code cond_cold_body(const cond_cold *c, const json_t *bdi, const json_t *flavor,
                       json_t **ret, fy_err *err)
{
    const cond_migration *m = &c->mig;
    json_t *net = NULL, *src_url = NULL, *dst_url = NULL;
    if (cond_net_info(c->inst.uuid, &net, err))
        return err->code;
    if (url_of(m->source_compute, &src_url, err) || url_of(m->dest_compute, &dst_url, err)) {
        json_decref(net);
        json_decref(src_url);
        return err->code;
    }
    json_t *inst = cond_mig_body_instance(&c->inst);
    bool power_on = fy_json_bool(m->migrate_data, "power_on", true);
    json_t *body = json_pack(
        "{s:o,s:o,s:O,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:b,s:b,s:b}", "migration",
        cond_mig_body_migration(m), "instance", inst, "migrate_data", m->migrate_data,
        "network_info", net, "block_device_info", bdi ? json_deep_copy(bdi) : json_array(),
        "source_url", src_url, "dest_url", dst_url, "source_host",
        str_or_null(m->source_compute), "dest_host", str_or_null(m->dest_compute), "flavor",
        flavor ? json_deep_copy(flavor) : json_deep_copy(c->inst.flavor), "power_on", power_on,
        "allow_same_host", c->run->ctx->cfg.allow_resize_to_same_host, "shared_storage",
        m->shared_storage || fy_json_bool(m->migrate_data, "shared_storage", false));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    *ret = body;
    return FY_E_OK;
}

fy_code cond_cold_agent(cond_cold *c, const char *host, const char *step, const json_t *body,
                        long timeout_ms, json_t **ret_json, fy_err *err)
{
    _cleanup_(json_decrefp) json_t *ans = NULL;
    char what[192];
    snprintf(what, sizeof(what), "migration %s: %s on %s", c->mig.uuid, step,
             host ? host : "?");
    cond_cold_retry r = {0};
    while (cond_mig_agent_step(c->run->ctx, host, c->mig.uuid, step, body,
                               COND_COLD_STEP_RETRIES, timeout_ms, &ans, err))
        if (!cond_cold_retry_again(c->run, &r, err, what))
            return err->code;
    const json_t *md = json_object_get(ans, "migrate_data");
    if (json_is_object(md) && json_object_size(md) > 0) {
        /* The record is the truth a resumed run reads; memory follows it. */
        fy_err derr = {0};
        cond_cold_retry rd = {0};
        while (cond_mig_merge_data(c->mig.uuid, md, &derr)) {
            if (!cond_cold_retry_again(c->run, &rd, &derr, what)) {
                c->run->release = true;
                *err = derr;
                return derr.code;
            }
            fy_err_clear(&derr);
        }
        json_object_update(c->mig.migrate_data, (json_t *)md);
    }
    if (ret_json)
        *ret_json = TAKE_PTR(ans);
    return FY_E_OK;
}

/* ---- volumes ---- */

fy_code cond_cold_connect_volumes(const char *instance_uuid, const char *host, json_t **ret_bdi,
                                  fy_err *err)
{
    _cleanup_(json_decrefp) json_t *bdi = NULL;
    if (cond_vol_block_device_info(instance_uuid, host, &bdi, err))
        return err->code;
    size_t i;
    json_t *a;
    json_array_foreach(bdi, i, a) {
        const char *att = fy_json_str(a, "attachment_id");
        json_t *ci = NULL;
        if (!att)
            continue;
        if (cond_vol_initialize_connection(att, host, &ci, err))
            return err->code;
        json_object_set_new(a, "connection_info", ci ? ci : json_null());
    }
    *ret_bdi = TAKE_PTR(bdi);
    return FY_E_OK;
}

fy_code cond_cold_disconnect_volumes(const char *instance_uuid, const char *host, fy_err *err)
{
    _cleanup_(json_decrefp) json_t *bdi = NULL;
    if (cond_vol_block_device_info(instance_uuid, host, &bdi, err))
        return err->code;
    size_t i;
    json_t *a;
    json_array_foreach(bdi, i, a) {
        const char *att = fy_json_str(a, "attachment_id");
        if (att && cond_vol_terminate_connection(att, host, err))
            return err->code;
    }
    return FY_E_OK;
}

/* ---- instances ---- */

fy_code cond_cold_old_flavor(const char *uuid, json_t **ret, fy_err *err)
{
    const char *p[] = {uuid};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec_one(&cond_sql_cold_old_flavor, p, &res, err))
        return err->code;
    const char *text = fy_db_str(res, 0, "old_flavor");
    json_error_t jerr;
    json_t *f = text ? json_loads(text, 0, &jerr) : NULL;
    if (f && !json_is_object(f)) {
        json_decref(f);
        f = NULL;
    }
    *ret = f;
    return FY_E_OK;
}

fy_code cond_cold_task_state(const char *uuid, const char *const *from, size_t nfrom,
                             const char *to, bool *ret_updated, fy_err *err)
{
    /* A text[] literal of fixed state names (never user input). */
    char arr[256];
    size_t off = (size_t)snprintf(arr, sizeof(arr), "{");
    for (size_t i = 0; i < nfrom && off < sizeof(arr); i++)
        off += (size_t)snprintf(arr + off, sizeof(arr) - off, "%s\"%s\"", i ? "," : "", from[i]);
    if (off >= sizeof(arr) - 1)
        return fy_fail(err, FY_E_INTERNAL, "too many task states");
    snprintf(arr + off, sizeof(arr) - off, "}");
    const char *p[] = {uuid, arr, to};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_sql_cold_task_state, p, &res, err))
        return err->code;
    *ret_updated = fy_db_affected(res) == 1;
    return FY_E_OK;
}
