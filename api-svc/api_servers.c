/* GET /v2.1/servers[/detail], GET and DELETE /v2.1/servers/{id}, and the guarded
 * state transition every server action goes through. */
#include <limits.h>
#include <string.h>
#include <strings.h>
#include "api_servers.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_util.h"

#define MAX_PAGE 1000 /* Nova's osapi_max_limit */

void api_down_time_param(const fy_req *req, char out[24])
{
    const api_ctx *ctx = req->svc;
    long long t = ctx && ctx->cfg.service_down_time > 0 ? ctx->cfg.service_down_time : 60;
    snprintf(out, 24, "%lld", t);
}

bool api_bool_str(const char *s)
{
    static const char *const yes[] = {"1", "t", "true", "on", "y", "yes"};
    for (size_t i = 0; s && i < ELEMENTSOF(yes); i++)
        if (strcasecmp(s, yes[i]) == 0)
            return true;
    return false;
}

static fy_code not_found(fy_err *err, const char *uuid)
{
    return fy_fail(err, FY_E_NOT_FOUND, "Instance %s could not be found.", uuid);
}

fy_code api_server_load(const fy_req *req, const char *uuid, PGresult **ret, fy_err *err)
{
    if (!fy_uuid_valid(uuid))
        return not_found(err, uuid);
    _cleanup_pgres_ PGresult *res = NULL;
    const char *p[] = {uuid};
    fy_code rc = fy_db_exec_one(&api_sql_server_get, p, &res, err);
    if (rc == FY_E_NOT_FOUND)
        return not_found(err, uuid);
    if (rc != FY_E_OK)
        return rc;
    if (!req->auth.is_admin && !fy_streq(fy_db_str(res, 0, "project_id"), req->auth.project_id))
        return not_found(err, uuid);
    *ret = TAKE_PTR(res);
    return FY_E_OK;
}

/* ---- list / detail / show ---- */

/* A text[] literal from a JSON array of plain state names. */
static char *pg_array(const json_t *arr)
{
    size_t cap = 2 + 64 * (json_array_size(arr) + 1), n = 0, i;
    char *out = malloc(cap);
    json_t *v;
    if (!out)
        return NULL;
    out[n++] = '{';
    json_array_foreach (arr, i, v) {
        int w = snprintf(out + n, cap - n, "%s%s", i ? "," : "", json_string_value(v));
        if (w < 0 || (size_t)w >= cap - n) {
            free(out);
            return NULL;
        }
        n += (size_t)w;
    }
    snprintf(out + n, cap - n, "}");
    return out;
}

typedef struct list_query {
    const char *project, *uuid, *name, *host, *marker;
    char *vm_states, *task_states; /* owned */
    char limit[24];
    bool has_limit;
    bool empty; /* a status filter that matches nothing */
} list_query;

static void list_query_free(list_query *q)
{
    free(q->vm_states);
    free(q->task_states);
}

static fy_code parse_status(const fy_req *req, list_query *q, fy_err *err)
{
    const char *vals[16];
    int n = fy_req_query_all(req, "status", vals, (int)ELEMENTSOF(vals));
    if (n <= 0)
        return FY_E_OK;
    json_t *vm = json_array(), *task = json_array();
    bool any_task = false, found = false;
    for (int i = 0; i < n; i++)
        found |= api_server_status_states(vals[i], vm, task, &any_task);
    fy_code rc = FY_E_OK;
    if (!found && api_mv_ge(req, 2, 38))
        rc = fy_fail(err, FY_E_BAD_REQUEST, "Invalid status value");
    else if (!found)
        q->empty = true;
    else {
        q->vm_states = pg_array(vm);
        if (!any_task)
            q->task_states = pg_array(task);
        if (!q->vm_states || (!any_task && !q->task_states))
            rc = fy_fail(err, FY_E_NOMEM, NULL);
    }
    json_decref(vm);
    json_decref(task);
    return rc;
}

static fy_code parse_paging(const fy_req *req, list_query *q, fy_err *err)
{
    const char *limit = fy_req_query(req, "limit");
    long long l = MAX_PAGE;
    if (limit) {
        if (!fy_parse_ll(limit, LLONG_MIN, LLONG_MAX, &l))
            return fy_fail(err, FY_E_BAD_REQUEST, "limit param must be an integer");
        if (l < 0)
            return fy_fail(err, FY_E_BAD_REQUEST, "limit param must be positive");
        q->has_limit = true;
    }
    snprintf(q->limit, sizeof(q->limit), "%lld", l < MAX_PAGE ? l : MAX_PAGE);
    q->marker = fy_req_query(req, "marker");
    if (!q->marker)
        return FY_E_OK;
    _cleanup_pgres_ PGresult *res = NULL;
    const char *p[] = {q->marker, q->project};
    fy_code rc = fy_uuid_valid(q->marker) ? fy_db_exec_one(&api_sql_server_marker, p, &res, err)
                                          : FY_E_NOT_FOUND;
    if (rc == FY_E_NOT_FOUND)
        return fy_fail(err, FY_E_BAD_REQUEST, "marker [%s] not found", q->marker);
    return rc;
}

static fy_code parse_list_query(const fy_req *req, bool detail, list_query *q, fy_err *err)
{
    const char *all = fy_req_query(req, "all_tenants");
    bool all_tenants = all && (!*all || api_bool_str(all));
    if (all_tenants) {
        fy_code rc = api_policy_check(req,
                                      detail ? "os_compute_api:servers:detail:get_all_tenants"
                                             : "os_compute_api:servers:index:get_all_tenants",
                                      NULL, err);
        if (rc != FY_E_OK)
            return rc;
        q->project = fy_req_query(req, "project_id");
        if (!q->project)
            q->project = fy_req_query(req, "tenant_id");
        if (q->project && !fy_uuid_valid(q->project))
            q->empty = true;
    } else {
        q->project = req->auth.project_id;
    }
    q->name = fy_req_query(req, "name");
    /* Like Nova, filters beyond the owner's set are dropped for non-admins. */
    if (req->auth.is_admin)
        q->host = fy_req_query(req, "host");
    fy_code rc = parse_status(req, q, err);
    if (rc != FY_E_OK)
        return rc;
    return parse_paging(req, q, err);
}

static json_t *next_link(const char *base, bool detail, const char *limit, const char *last)
{
    _cleanup_free_ char *href = fy_strdup_printf("%s/v2.1/servers%s?limit=%s&marker=%s", base,
                                                 detail ? "/detail" : "", limit, last);
    return json_pack("[{s:s, s:s}]", "rel", "next", "href", href ? href : "");
}

static fy_code servers_query(fy_req *req, fy_resp *resp, bool detail, fy_err *err)
{
    fy_code rc = api_policy_check(
        req, detail ? "os_compute_api:servers:detail" : "os_compute_api:servers:index",
        req->auth.project_id, err);
    if (rc != FY_E_OK)
        return rc;
    _cleanup_(list_query_free) list_query q = {0};
    rc = parse_list_query(req, detail, &q, err);
    if (rc != FY_E_OK)
        return rc;
    json_t *servers = json_array();
    json_t *body = json_pack("{s:o}", "servers", servers);
    if (q.empty) {
        fy_resp_json(resp, 200, body);
        return FY_E_OK;
    }
    char down[24], base[512];
    api_down_time_param(req, down);
    api_view_opts o;
    api_view_opts_for(req, base, sizeof(base), &o);
    _cleanup_pgres_ PGresult *res = NULL;
    const char *p[] = {down,        q.project,     NULL,     q.name, q.host,
                       q.vm_states, q.task_states, q.marker, q.limit};
    rc = fy_db_exec(&api_sql_servers_select, p, &res, err);
    if (rc != FY_E_OK) {
        json_decref(body);
        return rc;
    }
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        api_server_row r;
        api_server_row_from_pg(res, i, &r);
        json_array_append_new(servers, detail ? api_server_view_full(&o, &r)
                                              : api_server_view_brief(&o, &r));
    }
    if (q.has_limit && n > 0 && n == atoi(q.limit))
        json_object_set_new(body, "servers_links",
                            next_link(base, detail, q.limit, fy_db_str(res, n - 1, "uuid")));
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code api_servers_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    return servers_query(req, resp, false, err);
}

fy_code api_servers_detail(fy_req *req, fy_resp *resp, fy_err *err)
{
    return servers_query(req, resp, true, err);
}

fy_code api_servers_show(fy_req *req, fy_resp *resp, fy_err *err)
{
    const char *uuid = req->params[0];
    if (!fy_uuid_valid(uuid))
        return not_found(err, uuid);
    char down[24], base[512];
    api_down_time_param(req, down);
    const char *project = req->auth.is_admin ? NULL : req->auth.project_id;
    _cleanup_pgres_ PGresult *res = NULL;
    const char *p[] = {down, project, uuid, NULL, NULL, NULL, NULL, NULL, NULL};
    fy_code rc = fy_db_exec_one(&api_sql_servers_select, p, &res, err);
    if (rc == FY_E_NOT_FOUND)
        return not_found(err, uuid);
    if (rc != FY_E_OK)
        return rc;
    rc = api_policy_check(req, "os_compute_api:servers:show", fy_db_str(res, 0, "project_id"), err);
    if (rc != FY_E_OK)
        return rc;
    api_view_opts o;
    api_view_opts_for(req, base, sizeof(base), &o);
    api_server_row r;
    api_server_row_from_pg(res, 0, &r);
    fy_resp_json(resp, 200, json_pack("{s:o}", "server", api_server_view_full(&o, &r)));
    return FY_E_OK;
}

/* ---- transitions ---- */

typedef struct transition_arg {
    fy_req *req;
    const char *uuid;
    const api_transition *t;
} transition_arg;

static fy_code check_state(const fy_req *req, PGresult *inst, const api_transition *t, fy_err *err)
{
    const char *uuid = fy_db_str(inst, 0, "uuid");
    const char *vm = fy_db_str(inst, 0, "vm_state"), *task = fy_db_str(inst, 0, "task_state");
    if (fy_db_bool(inst, 0, "locked") && !req->auth.is_admin)
        return fy_fail(err, FY_E_CONFLICT, "Instance %s is locked", uuid);
    bool vm_ok = !t->vm_states;
    for (const char *const *s = t->vm_states; s && *s && !vm_ok; s++)
        vm_ok = fy_streq(*s, vm);
    if (!vm_ok)
        return fy_fail(err, FY_E_CONFLICT, "Cannot '%s' instance %s while it is in vm_state %s",
                       t->conflict_name, uuid, vm ? vm : "None");
    if (!t->any_task_state && task)
        return fy_fail(err, FY_E_CONFLICT, "Cannot '%s' instance %s while it is in task_state %s",
                       t->conflict_name, uuid, task);
    return FY_E_OK;
}

static fy_code transition_txn(void *arg, fy_err *err)
{
    transition_arg *a = arg;
    const api_transition *t = a->t;
    _cleanup_pgres_ PGresult *inst = NULL;
    const char *p[] = {a->uuid};
    fy_code rc = fy_db_exec_one(&api_sql_server_lock, p, &inst, err);
    if (rc == FY_E_NOT_FOUND)
        return not_found(err, a->uuid);
    if (rc != FY_E_OK)
        return rc;
    const char *task = fy_db_str(inst, 0, "task_state");
    if (t->any_task_state && fy_streq(task, t->new_task_state))
        return FY_E_OK; /* already under way: accepting again changes nothing */
    rc = check_state(a->req, inst, t, err);
    if (rc == FY_E_OK && t->extra)
        rc = t->extra(inst, t->extra_arg, err);
    if (rc != FY_E_OK)
        return rc;
    _cleanup_pgres_ PGresult *upd = NULL;
    const char *u[] = {a->uuid, t->new_task_state, task};
    rc = fy_db_exec(&api_sql_server_set_task, u, &upd, err);
    if (rc != FY_E_OK)
        return rc;
    if (fy_db_affected(upd) != 1)
        return fy_fail(err, FY_E_CONFLICT, "Cannot '%s' instance %s while it is in task_state %s",
                       t->conflict_name, a->uuid, task ? task : "None");
    rc = api_instance_action_record(a->req, a->uuid, t->action, err);
    if (rc != FY_E_OK)
        return rc;
    return api_task_enqueue(t->task_kind, a->uuid, t->migration_uuid, a->req->request_id,
                            t->params_json, NULL, err);
}

fy_code api_server_transition(fy_req *req, const char *uuid, const api_transition *t, fy_err *err)
{
    _cleanup_pgres_ PGresult *inst = NULL;
    fy_code rc = api_server_load(req, uuid, &inst, err);
    if (rc != FY_E_OK)
        return rc;
    rc = api_policy_check(req, t->rule, fy_db_str(inst, 0, "project_id"), err);
    if (rc != FY_E_OK)
        return rc;
    transition_arg a = {.req = req, .uuid = uuid, .t = t};
    return fy_db_txn(transition_txn, &a, false, err);
}

fy_code api_servers_delete(fy_req *req, fy_resp *resp, fy_err *err)
{
    static const api_transition del = {
        .rule = "os_compute_api:servers:delete",
        .conflict_name = "delete",
        .any_task_state = true,
        .new_task_state = "deleting",
        .task_kind = "delete",
        .action = "delete",
    };
    fy_code rc = api_server_transition(req, req->params[0], &del, err);
    if (rc != FY_E_OK)
        return rc;
    resp->status = 204;
    return FY_E_OK;
}
