/* Reconciliation at start: the database and the hypervisor are made to agree. */
#include <stdio.h>
#include <string.h>
#include "compute_mig.h"
#include "compute_reconcile.h"
#include "compute_sql.h"
#include "fy_cleanup.h"
#include "fy_db.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

/* The power state of uuid in the driver's guest list, -1 when absent. */
static int guest_power(const json_t *guests, const char *uuid)
{
    size_t i;
    json_t *g;
    json_array_foreach(guests, i, g)
        if (fy_streq(fy_json_str(g, "uuid"), uuid))
            return (int)fy_json_int(g, "power_state", 0);
    return -1;
}

/* '{uuid,uuid,...}' for a uuid[] parameter. */
static char *uuid_array(const json_t *guests)
{
    size_t n = json_array_size(guests), i;
    size_t size = 3 + n * (FY_UUID_LEN + 1);
    char *out = malloc(size);
    if (!out)
        return NULL;
    size_t at = 0;
    out[at++] = '{';
    json_t *g;
    json_array_foreach(guests, i, g) {
        const char *u = fy_json_str(g, "uuid");
        if (!fy_uuid_valid(u))
            continue;
        at += (size_t)snprintf(out + at, size - at, "%s%s", at > 1 ? "," : "", u);
    }
    snprintf(out + at, size - at, "}");
    return out;
}

static void record(const char *host, const char *uuid, bool ok, const char *what)
{
    char id[FY_UUID_LEN + 1], req[FY_UUID_LEN + 8];
    fy_uuid_v4(id);
    snprintf(req, sizeof(req), "req-%s", id);
    const char *p[] = {host, uuid, req, ok ? "Success" : "Error", what};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_err err = {0};
    if (fy_db_exec(&compute_sql_reconcile_event, p, &res, &err))
        fy_warn("instance %s: reconcile action not recorded: %s", uuid, err.msg);
}

/* Guests nobody should have here: deleted, unknown, or placed on another host. */
static fy_code destroy_strays(compute_driver *drv, const char *host, const json_t *guests,
                              fy_err *err)
{
    _cleanup_free_ char *arr = uuid_array(guests);
    if (!arr)
        return fy_fail(err, FY_E_NOMEM, NULL);
    const char *p[] = {host, arr};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&compute_sql_reconcile_strays, p, &res, err))
        return err->code;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *uuid = fy_db_str(res, r, "uuid");
        bool known = fy_db_bool(res, r, "known");
        const char *where = fy_db_str(res, r, "host");
        if (known && fy_db_bool(res, r, "shared")) {
            /* Destroying would take the disk the instance runs from on its host. */
            fy_warn("guest %s is defined here but runs on %s (shared storage): left alone",
                    uuid, where);
            continue;
        }
        fy_err e = {0};
        fy_code rc = drv->ops->destroy(drv, uuid, &e);
        _cleanup_free_ char *what =
            known ? fy_strdup_printf("Destroyed a stray guest on %s: the instance is on %s", host,
                                     where ? where : "no host")
                  : NULL;
        if (rc)
            fy_warn("stray guest %s not destroyed: %s", uuid, e.msg);
        else
            fy_warn("destroyed guest %s: %s", uuid,
                    known ? "the instance is on another host" : "the instance is deleted");
        if (known)
            record(host, uuid, rc == FY_E_OK, rc ? e.msg : what);
    }
    return FY_E_OK;
}

static void mark_lost(const char *host, const char *uuid)
{
    _cleanup_free_ char *msg = fy_strdup_printf(
        "The guest of instance %s is missing on %s (found at compute agent start)", uuid, host);
    if (!msg)
        return;
    const char *p[] = {host, uuid, msg};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_err err = {0};
    if (fy_db_exec(&compute_sql_reconcile_lost, p, &res, &err)) {
        fy_warn("instance %s: %s", uuid, err.msg);
        return;
    }
    if (PQntuples(res) == 0)
        return;
    fy_warn("%s", msg);
    record(host, uuid, false, msg);
}

static void settle(const char *host, const char *uuid, const char *task_state, int power)
{
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", power);
    const char *p[] = {host, uuid, ps};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_err err = {0};
    if (fy_db_exec(&compute_sql_reconcile_settle, p, &res, &err)) {
        fy_warn("instance %s: %s", uuid, err.msg);
        return;
    }
    if (PQntuples(res) == 0)
        return;
    _cleanup_free_ char *what =
        fy_strdup_printf("Cleared task state %s left by an interrupted operation", task_state);
    fy_warn("instance %s: task state %s cleared (no task is running it)", uuid, task_state);
    record(host, uuid, true, what ? what : "Cleared a stale task state");
}

/* Instances placed here: a missing guest, a task state nobody will finish. */
static fy_code check_mine(const char *host, const json_t *guests, fy_err *err)
{
    const char *p[] = {host};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&compute_sql_reconcile_mine, p, &res, err))
        return err->code;
    static const char *const no_guest_expected[] = {"error", "building", "deleted",
                                                    "shelved_offloaded", "soft-delete"};
    for (int r = 0; r < PQntuples(res); r++) {
        const char *uuid = fy_db_str(res, r, "uuid");
        const char *vm = fy_db_str(res, r, "vm_state");
        const char *task = fy_db_str(res, r, "task_state");
        int power = guest_power(guests, uuid);
        bool expected = true;
        for (size_t i = 0; i < ELEMENTSOF(no_guest_expected); i++)
            expected &= !fy_streq(vm, no_guest_expected[i]);
        if (power < 0 && expected)
            mark_lost(host, uuid);
        else if (power >= 0 && task)
            settle(host, uuid, task, power);
    }
    return FY_E_OK;
}

/* Runs after the driver's own reconcile: jobs the hypervisor still ran (or
 * ended) while the agent was away have been taken over by it and get their end
 * from the hypervisor; only the others, which nothing can finish any more, are
 * marked failed here. */
fy_code compute_reconcile_at_start(compute_driver *drv, const char *host, fy_err *err)
{
    if (compute_live_job_recover(host, err))
        return err->code;
    json_auto_t *guests = NULL;
    fy_err e = {0};
    if (drv->ops->list(drv, &guests, &e) || destroy_strays(drv, host, guests, &e) ||
        check_mine(host, guests, &e))
        fy_warn("reconciliation at start incomplete: %s", e.msg);
    return FY_E_OK;
}
