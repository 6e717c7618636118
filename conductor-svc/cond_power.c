/* Tasks "start" and "stop": power the guest on or off on its host. */
#include <stdio.h>
#include "cond.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"

#define POWER_RETRIES 3
#define POWER_TIMEOUT_MS 60000L

/* Nova's power states. */
enum { POWER_RUNNING = 1, POWER_SHUTDOWN = 4 };

typedef struct power_op {
    const char *action;     /* agent call and recorded step */
    const char *event;
    const char *vm_state;
    int power_state;
} power_op;

static const power_op op_start = {"power_on", "compute_start_instance", "active", POWER_RUNNING};
static const power_op op_stop = {"power_off", "compute_stop_instance", "stopped", POWER_SHUTDOWN};

/* The instance keeps its vm_state; the failure shows as a fault and event. */
static fy_code power_failed(cond_run *run, const power_op *op, const char *host, fy_err *err)
{
    fy_err cause = *err;
    const char *p[] = {run->task.instance_uuid};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_sql_instance_task_clear, p, &res, err) ||
        cond_fault_add(run->task.instance_uuid, 500, cause.msg, host, err))
        return cond_retry_later(run, err);
    cond_event_finish_q(run, op->event, false, cause.msg);
    cond_action_finish_q(run, false);
    *err = cause;
    return cause.code;
}

static fy_code power_run(cond_run *run, const power_op *op, const cond_instance *inst,
                         fy_err *err)
{
    if (!inst->host) {
        fy_fail(err, FY_E_CONFLICT, "instance %s is not on any host", inst->uuid);
        return power_failed(run, op, NULL, err);
    }
    if (cond_step(run, op->action, NULL, err))
        return err->code;
    cond_event_start_q(run, op->event, inst->host);
    json_auto_t *ans = NULL;
    if (cond_agent_post(run->ctx, inst->host, inst->uuid, op->action, NULL, POWER_RETRIES,
                        POWER_TIMEOUT_MS, &ans, err)) {
        if (cond_stopping(run))
            return cond_retry_later(run, err);
        return power_failed(run, op, inst->host, err);
    }
    char ps[16];
    snprintf(ps, sizeof(ps), "%lld", fy_json_int(ans, "power_state", op->power_state));
    const char *p[] = {inst->uuid, op->vm_state, ps};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_sql_instance_power, p, &res, err))
        return cond_retry_later(run, err);
    cond_event_finish_q(run, op->event, true, NULL);
    cond_action_finish_q(run, true);
    return FY_E_OK;
}

static fy_code power_task(cond_run *run, const power_op *op, fy_err *err)
{
    cond_instance inst = {0};
    fy_code rc = cond_instance_load(run->task.instance_uuid, &inst, err);
    if (rc == FY_E_NOT_FOUND)
        return FY_E_OK;
    if (rc)
        return cond_retry_later(run, err);
    rc = inst.deleted ? FY_E_OK : power_run(run, op, &inst, err);
    cond_instance_clear(&inst);
    return rc;
}

fy_code cond_start_run(cond_run *run, fy_err *err)
{
    return power_task(run, &op_start, err);
}

fy_code cond_stop_run(cond_run *run, fy_err *err)
{
    return power_task(run, &op_stop, err);
}
