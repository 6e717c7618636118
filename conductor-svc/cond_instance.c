/* Instance rows as the conductor reads and writes them: state, faults, and
 * the events of the instance action the API recorded with the request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cond.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"

fy_code cond_instance_load(const char *uuid, cond_instance *ret, fy_err *err)
{
    const char *p[] = {uuid};
    PGresult *res = NULL;
    if (fy_db_exec_one(&cond_sql_instance_get, p, &res, err))
        return err->code;
    cond_instance inst = {
        .res = res,
        .uuid = fy_db_str(res, 0, "uuid"),
        .display_name = fy_db_str(res, 0, "display_name"),
        .project_id = fy_db_str(res, 0, "project_id"),
        .user_id = fy_db_str(res, 0, "user_id"),
        .image_ref = fy_db_str(res, 0, "image_ref"),
        .vm_state = fy_db_str(res, 0, "vm_state"),
        .task_state = fy_db_str(res, 0, "task_state"),
        .host = fy_db_str(res, 0, "host"),
        .node = fy_db_str(res, 0, "node"),
        .availability_zone = fy_db_str(res, 0, "availability_zone"),
        .requested_host = fy_db_str(res, 0, "requested_host"),
        .id = fy_db_ll(res, 0, "id", 0),
        .power_state = (int)fy_db_ll(res, 0, "power_state", 0),
        .deleted = fy_db_bool(res, 0, "deleted"),
    };
    const char *flavor = fy_db_str(res, 0, "flavor");
    json_error_t jerr;
    inst.flavor = flavor ? json_loads(flavor, 0, &jerr) : NULL;
    if (!json_is_object(inst.flavor)) {
        json_decref(inst.flavor);
        PQclear(res);
        return fy_fail(err, FY_E_INTERNAL, "instance %s has no valid flavor", uuid);
    }
    if (inst.host && !*inst.host)
        inst.host = NULL;
    *ret = inst;
    return FY_E_OK;
}

void cond_instance_clear(cond_instance *inst)
{
    if (!inst)
        return;
    json_decref(inst->flavor);
    if (inst->res)
        PQclear(inst->res);
    memset(inst, 0, sizeof(*inst));
}


static fy_code flavor_int(const json_t *flavor, const char *key, bool required, long long *ret,
                          fy_err *err)
{
    const json_t *v = json_object_get(flavor, key);
    if (!v && !required) {
        *ret = 0;
        return FY_E_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 2147483647)
        return fy_fail(err, FY_E_INTERNAL, "flavor snapshot has no valid %s", key);
    *ret = json_integer_value(v);
    return FY_E_OK;
}

fy_code cond_flavor_resources(const json_t *flavor, cond_resources *ret, fy_err *err)
{
    long long vcpus, mem, root, eph;
    if (flavor_int(flavor, "vcpus", true, &vcpus, err) ||
        flavor_int(flavor, "memory_mb", true, &mem, err) ||
        flavor_int(flavor, "root_gb", false, &root, err) ||
        flavor_int(flavor, "ephemeral_gb", false, &eph, err))
        return err->code;
    *ret = (cond_resources){.vcpus = vcpus, .memory_mb = mem, .disk_gb = root + eph};
    return FY_E_OK;
}

static fy_code exec_simple(const fy_sql *stmt, const char *const *p, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL;
    return fy_db_exec(stmt, p, &res, err);
}

fy_code cond_event_start(const char *instance_uuid, const char *request_id, const char *event,
                         const char *host, fy_err *err)
{
    const char *p[] = {instance_uuid, request_id, event, host, NULL};
    return exec_simple(&cond_sql_event_start, p, err);
}

fy_code cond_event_finish(const char *instance_uuid, const char *request_id, const char *event,
                          bool ok, const char *traceback, fy_err *err)
{
    const char *p[] = {instance_uuid, request_id, event, ok ? "Success" : "Error",
                       ok ? NULL : traceback, NULL};
    return exec_simple(&cond_sql_event_finish, p, err);
}

fy_code cond_action_finish(const char *instance_uuid, const char *request_id, bool ok,
                           fy_err *err)
{
    const char *p[] = {instance_uuid, request_id, ok ? NULL : "Error", NULL};
    return exec_simple(&cond_sql_action_finish, p, err);
}

fy_code cond_fault_add(const char *uuid, int code, const char *message, const char *host,
                       fy_err *err)
{
    char c[16];
    snprintf(c, sizeof(c), "%d", code);
    const char *p[] = {uuid, c, message, "", host};
    return exec_simple(&cond_sql_fault_add, p, err);
}

typedef struct error_args {
    const char *uuid, *message, *host;
    int code;
} error_args;

static fy_code set_error_txn(void *arg, fy_err *err)
{
    const error_args *a = arg;
    const char *p[] = {a->uuid};
    if (exec_simple(&cond_sql_instance_error, p, err))
        return err->code;
    return cond_fault_add(a->uuid, a->code, a->message, a->host, err);
}

fy_code cond_instance_set_error(const char *uuid, int code, const char *message,
                                const char *host, fy_err *err)
{
    error_args a = {.uuid = uuid, .message = message, .host = host, .code = code};
    return fy_db_txn(set_error_txn, &a, false, err);
}

/* Within the engine these go out with the task's next step write (explicit
 * times keep them true); a run outside the engine writes them at once. */
void cond_event_start_q(const cond_run *run, const char *event, const char *host)
{
    const char *p[] = {run->task.instance_uuid, run->task.request_id, event, host, NULL};
    if (cond_pending_add(run->pending, &cond_sql_event_start, p, 5, 4))
        return;
    fy_err err = {0};
    if (cond_event_start(run->task.instance_uuid, run->task.request_id, event, host, &err))
        fy_warn("instance %s: event %s not recorded: %s", run->task.instance_uuid, event,
                err.msg);
}

void cond_event_finish_q(const cond_run *run, const char *event, bool ok, const char *tb)
{
    const char *p[] = {run->task.instance_uuid, run->task.request_id, event,
                       ok ? "Success" : "Error", ok ? NULL : tb, NULL};
    if (cond_pending_add(run->pending, &cond_sql_event_finish, p, 6, 5))
        return;
    fy_err err = {0};
    if (cond_event_finish(run->task.instance_uuid, run->task.request_id, event, ok, tb, &err))
        fy_warn("instance %s: event %s not recorded: %s", run->task.instance_uuid, event,
                err.msg);
}

void cond_action_finish_q(const cond_run *run, bool ok)
{
    const char *p[] = {run->task.instance_uuid, run->task.request_id, ok ? NULL : "Error", NULL};
    if (cond_pending_add(run->pending, &cond_sql_action_finish, p, 4, 3))
        return;
    fy_err err = {0};
    if (cond_action_finish(run->task.instance_uuid, run->task.request_id, ok, &err))
        fy_warn("instance %s: action not finished: %s", run->task.instance_uuid, err.msg);
}

fy_code cond_instance_pending_move(const char *instance_uuid, char *ret, fy_err *err)
{
    const char *p[] = {instance_uuid};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec_one(&cond_sql_pending_move, p, &res, err))
        return err->code;
    snprintf(ret, 37, "%s", fy_db_str(res, 0, "uuid"));
    return FY_E_OK;
}
