/* GET /servers/{id}/os-instance-actions[/{request_id}]: what was done to a server
 * and, per action, the events the services recorded.  Fields follow the
 * microversion (2.58 updated_at and paging, 2.62 host/hostId, 2.84 details);
 * tracebacks and event hosts only for those allowed events:details. */
#include <limits.h>
#include <string.h>
#include "api_migrations.h"
#include "fy_cleanup.h"
#include "fy_util.h"

#define MAX_PAGE 1000

static json_t *col_str(PGresult *res, int i, const char *col)
{
    const char *s = fy_db_str(res, i, col);
    return s ? json_string(s) : json_null();
}

static json_t *action_view(const fy_req *req, PGresult *res, int i)
{
    json_t *o = json_object();
    static const char *const cols[] = {"action",     "instance_uuid", "request_id", "user_id",
                                       "project_id", "start_time",    "message"};
    for (size_t c = 0; c < ELEMENTSOF(cols); c++)
        json_object_set_new(o, cols[c], col_str(res, i, cols[c]));
    if (api_mv_ge(req, 2, 58))
        json_object_set_new(o, "updated_at", col_str(res, i, "updated_at"));
    return o;
}

static fy_code load_server(const fy_req *req, const char *rule, PGresult **inst, fy_err *err)
{
    fy_code rc = api_server_load(req, req->params[0], inst, err);
    if (rc == FY_E_OK)
        rc = api_policy_check(req, rule, fy_db_str(*inst, 0, "project_id"), err);
    return rc;
}

/* ---- list ---- */

typedef struct action_query {
    const fy_req *req;
    const char *marker;
    char since[48], before[48], limit[24];
    bool has_limit;
    char badlist[256];
    int nbad;
} action_query;

static void note_key(const char *key, const char *val, void *arg)
{
    action_query *q = arg;
    (void)val;
    bool known = !strcmp(key, "limit") || !strcmp(key, "marker") ||
                 !strcmp(key, "changes-since") ||
                 (!strcmp(key, "changes-before") && api_mv_ge(q->req, 2, 66));
    if (known || strstr(q->badlist, key))
        return;
    size_t len = strlen(q->badlist);
    snprintf(q->badlist + len, sizeof q->badlist - len, "%s'%s'", q->nbad ? ", " : "", key);
    q->nbad++;
}

static fy_code query_time(const fy_req *req, const char *key, char *out, size_t size, fy_err *err)
{
    const char *v = fy_req_query(req, key);
    if (v && !api_parse_iso_time(v, out, size))
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Invalid input for query parameters %s. Value: %s. '%s' is not a "
                       "'date-time'",
                       key, v, v);
    return FY_E_OK;
}

static fy_code parse_query(const fy_req *req, const char *sid, action_query *q, fy_err *err)
{
    q->req = req;
    snprintf(q->limit, sizeof q->limit, "%d", MAX_PAGE);
    if (!api_mv_ge(req, 2, 58))
        return FY_E_OK;
    fy_req_query_each(req, note_key, q);
    if (q->nbad)
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Additional properties are not allowed (%s %s unexpected)", q->badlist,
                       q->nbad == 1 ? "was" : "were");
    const char *limit = fy_req_query(req, "limit");
    long long l = MAX_PAGE;
    if (limit) {
        if (!fy_parse_ll(limit, 0, LLONG_MAX, &l) || limit[0] == '-' || limit[0] == '+')
            return fy_fail(err, FY_E_BAD_REQUEST,
                           "Invalid input for query parameters limit. Value: %s. '%s' does not "
                           "match '^[0-9]*$'",
                           limit, limit);
        q->has_limit = true;
    }
    snprintf(q->limit, sizeof q->limit, "%lld", l < MAX_PAGE ? l : MAX_PAGE);
    fy_code rc = query_time(req, "changes-since", q->since, sizeof q->since, err);
    if (rc == FY_E_OK && api_mv_ge(req, 2, 66))
        rc = query_time(req, "changes-before", q->before, sizeof q->before, err);
    if (rc == FY_E_OK && q->since[0] && q->before[0])
        rc = api_check_time_order(q->since, q->before, err);
    if (rc != FY_E_OK)
        return rc;
    q->marker = fy_req_query(req, "marker");
    if (!q->marker)
        return FY_E_OK;
    _cleanup_pgres_ PGresult *res = NULL;
    const char *p[] = {sid, q->marker};
    rc = fy_db_exec(&api_sql_action_marker, p, &res, err);
    if (rc == FY_E_OK && PQntuples(res) == 0)
        rc = fy_fail(err, FY_E_BAD_REQUEST, "Marker %s could not be found.", q->marker);
    return rc;
}

fy_code api_instance_actions_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    _cleanup_pgres_ PGresult *inst = NULL;
    fy_code rc = load_server(req, "os_compute_api:os-instance-actions:list", &inst, err);
    if (rc != FY_E_OK)
        return rc;
    const char *sid = fy_db_str(inst, 0, "uuid");
    action_query q = {0};
    if ((rc = parse_query(req, sid, &q, err)) != FY_E_OK)
        return rc;
    _cleanup_pgres_ PGresult *res = NULL;
    const char *p[] = {sid, q.marker, q.since[0] ? q.since : NULL, q.before[0] ? q.before : NULL,
                       q.limit};
    if ((rc = fy_db_exec(&api_sql_actions_list, p, &res, err)) != FY_E_OK)
        return rc;
    json_t *list = json_array();
    int n = PQntuples(res);
    for (int i = 0; i < n; i++)
        json_array_append_new(list, action_view(req, res, i));
    json_t *body = json_pack("{s:o}", "instanceActions", list);
    if (api_mv_ge(req, 2, 58) && n > 0 && n == atoi(q.limit)) {
        char base[512], path[128];
        api_base_url(req, base, sizeof base);
        snprintf(path, sizeof path, "servers/%s/os-instance-actions", sid);
        json_object_set_new(body, "links",
                            api_next_link(req, base, path, fy_db_str(res, n - 1, "request_id")));
    }
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

/* ---- show ---- */

typedef struct event_opts {
    bool traceback, host, host_id, details;
    const char *project_id;
} event_opts;

static json_t *event_view(const event_opts *o, PGresult *res, int i)
{
    json_t *e = json_object();
    static const char *const cols[] = {"event", "start_time", "finish_time", "result"};
    for (size_t c = 0; c < ELEMENTSOF(cols); c++)
        json_object_set_new(e, cols[c], col_str(res, i, cols[c]));
    if (o->traceback)
        json_object_set_new(e, "traceback", col_str(res, i, "traceback"));
    const char *host = fy_db_str(res, i, "host");
    if (o->host)
        json_object_set_new(e, "host", col_str(res, i, "host"));
    if (o->host_id) {
        char hid[57];
        api_server_host_id(o->project_id, host, hid);
        json_object_set_new(e, "hostId", json_string(hid));
    }
    if (o->details)
        json_object_set_new(e, "details", col_str(res, i, "details"));
    return e;
}

fy_code api_instance_actions_show(fy_req *req, fy_resp *resp, fy_err *err)
{
    _cleanup_pgres_ PGresult *inst = NULL;
    fy_code rc = load_server(req, "os_compute_api:os-instance-actions:show", &inst, err);
    if (rc != FY_E_OK)
        return rc;
    const char *sid = fy_db_str(inst, 0, "uuid"), *rid = req->params[1];
    _cleanup_pgres_ PGresult *act = NULL;
    const char *p[] = {sid, rid};
    if ((rc = fy_db_exec(&api_sql_action_get, p, &act, err)) != FY_E_OK)
        return rc;
    if (PQntuples(act) == 0)
        return fy_fail(err, FY_E_NOT_FOUND, "Action %s not found", rid);
    const char *owner = fy_db_str(inst, 0, "project_id");
    /* Before 2.51 only holders of the events rule saw events at all. */
    bool events = api_mv_ge(req, 2, 51) ||
                  api_policy_check(req, "os_compute_api:os-instance-actions:events", owner,
                                   &(fy_err){0}) == FY_E_OK;
    bool details_ok = api_policy_check(req, "os_compute_api:os-instance-actions:events:details",
                                       owner, &(fy_err){0}) == FY_E_OK;
    json_t *body = action_view(req, act, 0);
    if (events) {
        _cleanup_pgres_ PGresult *ev = NULL;
        const char *e[] = {fy_db_str(act, 0, "id")};
        if ((rc = fy_db_exec(&api_sql_action_events, e, &ev, err)) != FY_E_OK) {
            json_decref(body);
            return rc;
        }
        event_opts o = {
            .traceback = details_ok,
            .host = details_ok && api_mv_ge(req, 2, 62),
            .host_id = api_mv_ge(req, 2, 62),
            .details = api_mv_ge(req, 2, 84),
            .project_id = owner,
        };
        json_t *list = json_array();
        for (int i = 0; i < PQntuples(ev); i++)
            json_array_append_new(list, event_view(&o, ev, i));
        json_object_set_new(body, "events", list);
    }
    fy_resp_json(resp, 200, json_pack("{s:o}", "instanceAction", body));
    return FY_E_OK;
}
