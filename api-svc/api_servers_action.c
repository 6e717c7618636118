/* POST /v2.1/servers/{id}/action: one table from the body's action key to its
 * handler.  New actions are new entries here with their handler in their own file. */
#include <string.h>
#include "api_migrations.h"
#include "api_servers.h"

static const api_server_action actions[] = {
    {"os-start", api_action_start},
    {"os-stop", api_action_stop},
    {"os-migrateLive", api_action_live_migrate},
    {"migrate", api_action_migrate},
    {"resize", api_action_resize},
    {"confirmResize", api_action_confirm_resize},
    {"revertResize", api_action_revert_resize},
};

static const api_server_action *find_action(const char *name)
{
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (strcmp(actions[i].name, name) == 0)
            return &actions[i];
    return NULL;
}

fy_code api_servers_action(fy_req *req, fy_resp *resp, fy_err *err)
{
    if (!json_is_object(req->json) || json_object_size(req->json) == 0)
        return fy_fail(err, FY_E_BAD_REQUEST, "Malformed request body");
    /* Nova dispatches on the first key that names a known action. */
    const char *key, *first = NULL;
    json_t *val;
    json_object_foreach (req->json, key, val) {
        const api_server_action *a = find_action(key);
        if (a)
            return a->fn(req, resp, req->params[0], val, err);
        if (!first)
            first = key;
    }
    return fy_fail(err, FY_E_BAD_REQUEST, "There is no such action: %s", first);
}

/* os-start / os-stop take no arguments (null or {} in practice). */
static fy_code power_action(fy_req *req, fy_resp *resp, const char *server_id,
                            const api_transition *t, fy_err *err)
{
    fy_code rc = api_server_transition(req, server_id, t, err);
    if (rc != FY_E_OK)
        return rc;
    resp->status = 202;
    return FY_E_OK;
}

fy_code api_action_start(fy_req *req, fy_resp *resp, const char *server_id, json_t *arg,
                         fy_err *err)
{
    static const char *const from[] = {"stopped", NULL};
    static const api_transition t = {
        .rule = "os_compute_api:servers:start",
        .conflict_name = "start",
        .vm_states = from,
        .new_task_state = "powering-on",
        .task_kind = "start",
        .action = "start",
    };
    (void)arg;
    return power_action(req, resp, server_id, &t, err);
}

fy_code api_action_stop(fy_req *req, fy_resp *resp, const char *server_id, json_t *arg, fy_err *err)
{
    static const char *const from[] = {"active", NULL};
    static const api_transition t = {
        .rule = "os_compute_api:servers:stop",
        .conflict_name = "stop",
        .vm_states = from,
        .new_task_state = "powering-off",
        .task_kind = "stop",
        .action = "stop",
    };
    (void)arg;
    return power_action(req, resp, server_id, &t, err);
}
