/* Conductor tasks and instance-action records, written inside the caller's
 * transaction so they commit (or vanish) with the state change they belong to. */
#include "api_servers.h"
#include "fy_cleanup.h"
#include "fy_util.h"

fy_code api_task_enqueue(const char *kind, const char *instance_uuid, const char *migration_uuid,
                         const char *request_id, const char *params_json, char ret_uuid[37],
                         fy_err *err)
{
    char uuid[FY_UUID_LEN + 1];
    fy_uuid_v4(uuid);
    const char *p[] = {
        uuid, kind, instance_uuid, migration_uuid, request_id ? request_id : "", params_json};
    /* NOTIFY inside the transaction is delivered at commit, never before;
     * both statements go out in one round trip. */
    const char *n[] = {uuid};
    const fy_db_op ops[] = {{&api_sql_task_insert, p, NULL}, {&api_sql_task_notify, n, NULL}};
    fy_code rc = fy_db_batch(ops, ELEMENTSOF(ops), err);
    if (rc != FY_E_OK)
        return rc;
    if (ret_uuid)
        snprintf(ret_uuid, FY_UUID_LEN + 1, "%s", uuid);
    return FY_E_OK;
}

fy_code api_instance_action_record(const fy_req *req, const char *instance_uuid, const char *action,
                                   fy_err *err)
{
    const char *user = fy_uuid_valid(req->auth.user_id) ? req->auth.user_id : NULL;
    const char *project = fy_uuid_valid(req->auth.project_id) ? req->auth.project_id : NULL;
    const char *p[] = {instance_uuid, action, req->request_id ? req->request_id : "", user,
                       project};
    return fy_db_exec(&api_sql_action_insert, p, NULL, err);
}
