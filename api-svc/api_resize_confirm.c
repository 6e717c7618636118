/* confirmResize and revertResize of a server in VERIFY_RESIZE (vm_state resized):
 * the 'finished' migration moves to confirming / reverting under guard, in the
 * same transaction as the action and the conductor task. */
#include "api_migrations.h"
#include "fy_cleanup.h"
#include "fy_util.h"

typedef struct finish_ctx {
    fy_req *req;
    api_transition t;
    const char *to_status; /* confirming | reverting */
    bool reserve_increase; /* revert: the old flavor comes back */
    char mig_uuid[FY_UUID_LEN + 1];
} finish_ctx;

/* Revert gives the instance its old flavor back: hold the increase, if any. */
static fy_code reserve_revert(PGresult *inst, const char *mig_uuid, fy_err *err)
{
    api_flavor_size cur = {0}, old = {0};
    if (!api_flavor_size_of(fy_db_str(inst, 0, "flavor"), &cur) ||
        !api_flavor_size_of(fy_db_str(inst, 0, "old_flavor"), &old))
        return FY_E_OK; /* nothing recorded to go back to: no change in usage */
    return api_quota_reserve(fy_db_str(inst, 0, "project_id"), mig_uuid, old.vcpus - cur.vcpus,
                             old.memory_mb - cur.memory_mb, err);
}

static fy_code finish_extra(PGresult *inst, void *arg, fy_err *err)
{
    finish_ctx *c = arg;
    const char *uuid = fy_db_str(inst, 0, "uuid");
    _cleanup_pgres_ PGresult *mig = NULL;
    const char *p[] = {uuid};
    fy_code rc = fy_db_exec(&api_sql_mig_finished, p, &mig, err);
    if (rc != FY_E_OK)
        return rc;
    if (PQntuples(mig) == 0)
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Migration not found for instance %s with status finished.", uuid);
    snprintf(c->mig_uuid, sizeof c->mig_uuid, "%s", fy_db_str(mig, 0, "uuid"));
    c->t.migration_uuid = c->mig_uuid;
    if (c->reserve_increase && (rc = reserve_revert(inst, c->mig_uuid, err)) != FY_E_OK)
        return rc;
    _cleanup_pgres_ PGresult *upd = NULL;
    const char *u[] = {c->mig_uuid, "finished", c->to_status};
    rc = fy_db_exec(&api_sql_mig_set_status, u, &upd, err);
    if (rc == FY_E_OK && fy_db_affected(upd) != 1)
        rc = fy_fail(err, FY_E_CONFLICT, "Migration %s is no longer finished", c->mig_uuid);
    return rc;
}

static const char *const resized[] = {"resized", NULL};

fy_code api_action_confirm_resize(fy_req *req, fy_resp *resp, const char *server_id, json_t *arg,
                                  fy_err *err)
{
    (void)arg;
    /* No reservation: usage follows instances.flavor, which already is the new
     * flavor, so a confirm can only release resources. */
    finish_ctx c = {.req = req, .to_status = "confirming"};
    c.t = (api_transition){
        .rule = "os_compute_api:servers:confirm_resize",
        .conflict_name = "confirmResize",
        .vm_states = resized,
        .new_task_state = NULL, /* Nova leaves the task state alone while confirming */
        .task_kind = "confirm",
        .action = "confirmResize",
        .extra = finish_extra,
        .extra_arg = &c,
    };
    fy_code rc = api_server_transition(req, server_id, &c.t, err);
    if (rc != FY_E_OK)
        return rc;
    resp->status = 204;
    return FY_E_OK;
}

fy_code api_action_revert_resize(fy_req *req, fy_resp *resp, const char *server_id, json_t *arg,
                                 fy_err *err)
{
    (void)arg;
    finish_ctx c = {.req = req, .to_status = "reverting", .reserve_increase = true};
    c.t = (api_transition){
        .rule = "os_compute_api:servers:revert_resize",
        .conflict_name = "revertResize",
        .vm_states = resized,
        .new_task_state = "resize_reverting",
        .task_kind = "revert",
        .action = "revertResize",
        .extra = finish_extra,
        .extra_arg = &c,
    };
    fy_code rc = api_server_transition(req, server_id, &c.t, err);
    if (rc != FY_E_OK)
        return rc;
    resp->status = 202;
    return FY_E_OK;
}
