/* Migration records through the API: GET /os-migrations (admin), and per server
 * (2.22+) force_complete, (2.23+) list/show of in-progress live migrations, and
 * (2.24+) abort.  Abort and force-complete are flags on the record plus a notify
 * on 'ferry_jobs' for the conductor running the migration. */
#include <limits.h>
#include <string.h>
#include "api_migrations.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_migration.h"
#include "fy_util.h"

#define MAX_PAGE 1000 /* Nova's osapi_max_limit */

static fy_code no_resource(fy_err *err)
{
    return fy_fail(err, FY_E_NOT_FOUND, "The resource could not be found.");
}

/* NULL-able bigint column as JSON. */
static json_t *col_int(PGresult *res, int i, const char *col)
{
    const char *s = fy_db_str(res, i, col);
    return s ? json_integer(fy_db_ll(res, i, col, 0)) : json_null();
}

static json_t *col_str(PGresult *res, int i, const char *col)
{
    const char *s = fy_db_str(res, i, col);
    return s ? json_string(s) : json_null();
}

/* ---- server migrations (in-progress live migrations) ---- */

static json_t *server_migration_view(const fy_req *req, PGresult *res, int i)
{
    json_t *o = json_object();
    json_object_set_new(o, "created_at", col_str(res, i, "created_at"));
    json_object_set_new(o, "dest_compute", col_str(res, i, "dest_compute"));
    json_object_set_new(o, "dest_host", col_str(res, i, "dest_host"));
    json_object_set_new(o, "dest_node", col_str(res, i, "dest_node"));
    json_object_set_new(o, "disk_processed_bytes", col_int(res, i, "disk_processed"));
    json_object_set_new(o, "disk_remaining_bytes", col_int(res, i, "disk_remaining"));
    json_object_set_new(o, "disk_total_bytes", col_int(res, i, "disk_total"));
    json_object_set_new(o, "id", col_int(res, i, "id"));
    json_object_set_new(o, "memory_processed_bytes", col_int(res, i, "memory_processed"));
    json_object_set_new(o, "memory_remaining_bytes", col_int(res, i, "memory_remaining"));
    json_object_set_new(o, "memory_total_bytes", col_int(res, i, "memory_total"));
    json_object_set_new(o, "server_uuid", col_str(res, i, "instance_uuid"));
    json_object_set_new(o, "source_compute", col_str(res, i, "source_compute"));
    json_object_set_new(o, "source_node", col_str(res, i, "source_node"));
    json_object_set_new(o, "status", col_str(res, i, "status"));
    json_object_set_new(o, "updated_at", col_str(res, i, "updated_at"));
    if (api_mv_ge(req, 2, 59))
        json_object_set_new(o, "uuid", col_str(res, i, "uuid"));
    if (api_mv_ge(req, 2, 80)) {
        json_object_set_new(o, "user_id", col_str(res, i, "user_id"));
        json_object_set_new(o, "project_id", col_str(res, i, "project_id"));
    }
    return o;
}

/* Loads the server (404 as Nova) and checks the admin rule against its owner. */
static fy_code server_for(const fy_req *req, const char *rule, PGresult **inst, fy_err *err)
{
    fy_code rc = api_server_load(req, req->params[0], inst, err);
    if (rc == FY_E_OK)
        rc = api_policy_check(req, rule, fy_db_str(*inst, 0, "project_id"), err);
    return rc;
}

fy_code api_server_migrations_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    if (!api_mv_ge(req, 2, 23))
        return no_resource(err);
    _cleanup_pgres_ PGresult *inst = NULL;
    fy_code rc = server_for(req, "os_compute_api:servers:migrations:index", &inst, err);
    _cleanup_pgres_ PGresult *res = NULL;
    const char *p[] = {fy_db_str(inst, 0, "uuid")};
    if (rc == FY_E_OK)
        rc = fy_db_exec(&api_sql_mig_server_list, p, &res, err);
    if (rc != FY_E_OK)
        return rc;
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(list, server_migration_view(req, res, i));
    fy_resp_json(resp, 200, json_pack("{s:o}", "migrations", list));
    return FY_E_OK;
}

fy_code api_server_migrations_show(fy_req *req, fy_resp *resp, fy_err *err)
{
    if (!api_mv_ge(req, 2, 23))
        return no_resource(err);
    _cleanup_pgres_ PGresult *inst = NULL;
    fy_code rc = server_for(req, "os_compute_api:servers:migrations:show", &inst, err);
    if (rc != FY_E_OK)
        return rc;
    const char *sid = fy_db_str(inst, 0, "uuid"), *mid = req->params[1];
    _cleanup_pgres_ PGresult *res = NULL;
    const char *p[] = {mid, sid};
    rc = fy_db_exec(&api_sql_mig_get, p, &res, err);
    if (rc != FY_E_OK)
        return rc;
    if (PQntuples(res) == 0)
        return fy_fail(err, FY_E_NOT_FOUND,
                       "In-progress live migration %s is not found for server %s.", mid, sid);
    if (!fy_streq(fy_db_str(res, 0, "migration_type"), "live-migration"))
        return fy_fail(err, FY_E_NOT_FOUND, "Migration %s for server %s is not live-migration.",
                       mid, sid);
    /* Nova's show counts only these as in progress (its list is wider). */
    static const char *const shown[] = {"queued", "preparing", "running", "post-migrating"};
    const char *st = fy_db_str(res, 0, "status");
    bool in_progress = false;
    for (size_t i = 0; i < ELEMENTSOF(shown); i++)
        in_progress |= fy_streq(st, shown[i]);
    if (!in_progress)
        return fy_fail(err, FY_E_NOT_FOUND, "Live migration %s for server %s is not in progress.",
                       mid, sid);
    fy_resp_json(resp, 200, json_pack("{s:o}", "migration", server_migration_view(req, res, 0)));
    return FY_E_OK;
}

/* ---- abort / force complete ---- */

typedef struct flag_req {
    fy_req *req;
    const char *mid, *sid;
    const char *flag;          /* migrate_data member */
    const char *statuses;      /* text[] literal of the statuses that accept it */
    const char *action;        /* instance action recorded */
    const char *method;        /* "abort live migration" | "force complete" */
    fy_code not_found_code;    /* Nova answers 404 for abort, 400 for force complete */
} flag_req;

static fy_code flag_txn(void *arg, fy_err *err)
{
    flag_req *f = arg;
    _cleanup_pgres_ PGresult *upd = NULL;
    const char *p[] = {f->mid, f->sid, f->flag, f->statuses};
    fy_code rc = fy_db_exec(&api_sql_mig_flag, p, &upd, err);
    if (rc != FY_E_OK)
        return rc;
    if (PQntuples(upd) == 1) {
        const char *n[] = {fy_db_str(upd, 0, "uuid")};
        rc = fy_db_exec(&api_sql_mig_jobs_notify, n, NULL, err);
        if (rc == FY_E_OK)
            rc = api_instance_action_record(f->req, f->sid, f->action, err);
        return rc;
    }
    _cleanup_pgres_ PGresult *res = NULL;
    const char *g[] = {f->mid, f->sid};
    if ((rc = fy_db_exec(&api_sql_mig_get, g, &res, err)) != FY_E_OK)
        return rc;
    if (PQntuples(res) == 0)
        return fy_fail(err, f->not_found_code, "Migration %s not found for instance %s", f->mid,
                       f->sid);
    return fy_fail(err, FY_E_BAD_REQUEST,
                   "Migration %s state of instance %s is %s. Cannot %s while the migration is in "
                   "this state.",
                   f->mid, f->sid,
                   fy_streq(fy_db_str(res, 0, "migration_type"), "live-migration")
                       ? fy_db_str(res, 0, "status")
                       : fy_db_str(res, 0, "migration_type"),
                   f->method);
}

/* Nova's check_instance_state on the server, then the flag under guard. */
static fy_code flag_migration(fy_req *req, flag_req *f, const char *rule, const char *name,
                              bool need_active, fy_err *err)
{
    _cleanup_pgres_ PGresult *inst = NULL;
    fy_code rc = server_for(req, rule, &inst, err);
    if (rc != FY_E_OK)
        return rc;
    f->sid = fy_db_str(inst, 0, "uuid");
    if (!fy_streq(fy_db_str(inst, 0, "task_state"), "migrating") ||
        (need_active && !fy_streq(fy_db_str(inst, 0, "vm_state"), "active")))
        return fy_fail(err, FY_E_CONFLICT, "Instance %s is in an invalid state for '%s'", f->sid,
                       name);
    return fy_db_txn(flag_txn, f, false, err);
}

fy_code api_server_migrations_action(fy_req *req, fy_resp *resp, fy_err *err)
{
    if (!api_mv_ge(req, 2, 22))
        return no_resource(err);
    if (!json_is_object(req->json) || !json_object_get(req->json, "force_complete")) {
        const char *first = NULL;
        if (json_is_object(req->json)) {
            void *it = json_object_iter(req->json);
            first = it ? json_object_iter_key(it) : NULL;
        }
        if (!first)
            return fy_fail(err, FY_E_BAD_REQUEST, "Malformed request body");
        return fy_fail(err, FY_E_BAD_REQUEST, "There is no such action: %s", first);
    }
    flag_req f = {
        .req = req,
        .mid = req->params[1],
        .flag = "force_complete_requested",
        .statuses = "{running}",
        .action = "live_migration_force_complete",
        .method = "force complete",
        .not_found_code = FY_E_BAD_REQUEST,
    };
    fy_code rc = flag_migration(req, &f, "os_compute_api:servers:migrations:force_complete",
                                "force_complete", true, err);
    if (rc != FY_E_OK)
        return rc;
    resp->status = 202;
    return FY_E_OK;
}

fy_code api_server_migrations_abort(fy_req *req, fy_resp *resp, fy_err *err)
{
    if (!api_mv_ge(req, 2, 24))
        return no_resource(err);
    /* 2.65 lets a migration be aborted before it runs (queued / preparing). */
    flag_req f = {
        .req = req,
        .mid = req->params[1],
        .flag = "abort_requested",
        .statuses = api_mv_ge(req, 2, 65) ? "{queued,preparing,running}" : "{running}",
        .action = "live_migration_cancel",
        .method = "abort live migration",
        .not_found_code = FY_E_NOT_FOUND,
    };
    fy_code rc = flag_migration(req, &f, "os_compute_api:servers:migrations:delete",
                                "abort live migration", false, err);
    if (rc != FY_E_OK)
        return rc;
    resp->status = 202;
    return FY_E_OK;
}

/* ---- GET /os-migrations ---- */

typedef struct mig_query {
    const char *host, *status, *instance_uuid, *source_compute, *type, *user, *project, *marker;
    char since[48], before[48];
    char limit[24];
    bool has_limit;
    const fy_req *req;
    int nbad;
    char badlist[256];
} mig_query;

static bool key_known(const fy_req *req, const char *key)
{
    static const char *const base[] = {"hidden",         "host",          "instance_uuid",
                                       "source_compute", "status",        "migration_type"};
    for (size_t i = 0; i < ELEMENTSOF(base); i++)
        if (!strcmp(key, base[i]))
            return true;
    if (!strcmp(key, "limit") || !strcmp(key, "marker") || !strcmp(key, "changes-since"))
        return true;
    if (!strcmp(key, "changes-before"))
        return api_mv_ge(req, 2, 66);
    if (!strcmp(key, "user_id") || !strcmp(key, "project_id"))
        return api_mv_ge(req, 2, 80);
    return false;
}

static void note_key(const char *key, const char *val, void *arg)
{
    mig_query *q = arg;
    (void)val;
    if (key_known(q->req, key) || strstr(q->badlist, key))
        return;
    size_t len = strlen(q->badlist);
    snprintf(q->badlist + len, sizeof q->badlist - len, "%s'%s'", q->nbad ? ", " : "", key);
    q->nbad++;
}

static fy_code query_time(const fy_req *req, const char *key, char *out, size_t size, fy_err *err)
{
    const char *v = fy_req_query(req, key);
    if (!v)
        return FY_E_OK;
    if (!api_parse_iso_time(v, out, size))
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Invalid input for query parameters %s. Value: %s. '%s' is not a "
                       "'date-time'",
                       key, v, v);
    return FY_E_OK;
}

/* Nova's paging: non-negative integer limit (capped), a marker that must exist,
 * changes-since / changes-before. */
static fy_code parse_paging(const fy_req *req, mig_query *q, fy_err *err)
{
    long long l = MAX_PAGE;
    const char *limit = fy_req_query(req, "limit");
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
    if (rc != FY_E_OK)
        return rc;
    q->marker = fy_req_query(req, "marker");
    if (!q->marker)
        return FY_E_OK;
    _cleanup_pgres_ PGresult *res = NULL;
    const char *p[] = {q->marker};
    rc = fy_db_exec(&api_sql_mig_marker, p, &res, err);
    if (rc == FY_E_OK && PQntuples(res) == 0)
        rc = fy_fail(err, FY_E_BAD_REQUEST, "Marker %s could not be found.", q->marker);
    return rc;
}

static fy_code parse_mig_query(const fy_req *req, mig_query *q, fy_err *err)
{
    q->req = req;
    q->host = fy_req_query(req, "host");
    q->status = fy_req_query(req, "status");
    q->instance_uuid = fy_req_query(req, "instance_uuid");
    q->source_compute = fy_req_query(req, "source_compute");
    q->type = fy_req_query(req, "migration_type");
    snprintf(q->limit, sizeof q->limit, "%d", MAX_PAGE);
    if (!api_mv_ge(req, 2, 59))
        return FY_E_OK; /* earlier versions take any key and ignore paging */
    fy_req_query_each(req, note_key, q);
    if (q->nbad)
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Additional properties are not allowed (%s %s unexpected)", q->badlist,
                       q->nbad == 1 ? "was" : "were");
    if (api_mv_ge(req, 2, 80)) {
        q->user = fy_req_query(req, "user_id");
        q->project = fy_req_query(req, "project_id");
    }
    fy_code rc = parse_paging(req, q, err);
    if (rc == FY_E_OK && q->since[0] && q->before[0])
        rc = api_check_time_order(q->since, q->before, err);
    return rc;
}

static json_t *migration_view(const fy_req *req, const char *base, PGresult *res, int i)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", col_int(res, i, "id"));
    if (api_mv_ge(req, 2, 59))
        json_object_set_new(o, "uuid", col_str(res, i, "uuid"));
    static const char *const cols[] = {"source_compute", "dest_compute", "source_node",
                                       "dest_node",      "dest_host"};
    for (size_t c = 0; c < ELEMENTSOF(cols); c++)
        json_object_set_new(o, cols[c], col_str(res, i, cols[c]));
    json_object_set_new(o, "old_instance_type_id", col_int(res, i, "old_instance_type_id"));
    json_object_set_new(o, "new_instance_type_id", col_int(res, i, "new_instance_type_id"));
    json_object_set_new(o, "instance_uuid", col_str(res, i, "instance_uuid"));
    json_object_set_new(o, "status", col_str(res, i, "status"));
    const char *type = fy_db_str(res, i, "migration_type");
    if (api_mv_ge(req, 2, 23))
        json_object_set_new(o, "migration_type", col_str(res, i, "migration_type"));
    if (api_mv_ge(req, 2, 80)) {
        json_object_set_new(o, "user_id", col_str(res, i, "user_id"));
        json_object_set_new(o, "project_id", col_str(res, i, "project_id"));
    }
    json_object_set_new(o, "created_at", col_str(res, i, "created_at"));
    json_object_set_new(o, "updated_at", col_str(res, i, "updated_at"));
    static const char *const live[] = {"queued", "preparing", "running", "post-migrating"};
    bool linked = false;
    for (size_t s = 0; s < ELEMENTSOF(live); s++)
        linked |= fy_streq(fy_db_str(res, i, "status"), live[s]);
    if (api_mv_ge(req, 2, 23) && fy_streq(type, "live-migration") && linked) {
        const char *sid = fy_db_str(res, i, "instance_uuid"), *mid = fy_db_str(res, i, "id");
        _cleanup_free_ char *self = fy_strdup_printf("%s/v2.1/servers/%s/migrations/%s", base,
                                                     sid, mid);
        _cleanup_free_ char *book =
            fy_strdup_printf("%s/servers/%s/migrations/%s", base, sid, mid);
        json_object_set_new(o, "links",
                            json_pack("[{s:s, s:s}, {s:s, s:s}]", "rel", "self", "href",
                                      self ? self : "", "rel", "bookmark", "href",
                                      book ? book : ""));
    }
    return o;
}

/* The query again, sorted by key, without marker, plus the new marker. */
typedef struct link_args {
    char keys[16][64];
    const char *vals[16];
    int n;
} link_args;

static void collect(const char *key, const char *val, void *arg)
{
    link_args *l = arg;
    if (l->n >= 16 || !strcmp(key, "marker"))
        return;
    snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
    l->vals[l->n++] = val;
}

static char *url_escape(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~", *p))
            *o++ = (char)*p;
        else
        {
            snprintf(o, 4, "%%%02X", *p);
            o += 3;
        }
    }
    *o = '\0';
    return out;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

fy_code api_check_time_order(const char *since, const char *before, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL;
    const char *p[] = {since, before};
    fy_code rc = fy_db_exec_one(&api_sql_time_after, p, &res, err);
    if (rc == FY_E_OK && fy_db_bool(res, 0, "after"))
        rc = fy_fail(err, FY_E_BAD_REQUEST,
                     "The value of changes-since must be less than or equal to changes-before.");
    return rc;
}

static json_t *next_link(const fy_req *req, const char *base, const char *path, const char *last)
{
    link_args l = {.n = 0};
    fy_req_query_each(req, collect, &l);
    /* sort keys with their values */
    int idx[16];
    for (int i = 0; i < l.n; i++)
        idx[i] = i;
    for (int i = 1; i < l.n; i++)
        for (int j = i; j > 0 && key_cmp(l.keys[idx[j - 1]], l.keys[idx[j]]) > 0; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    char qs[1024] = "";
    size_t len = 0;
    for (int i = 0; i < l.n; i++) {
        _cleanup_free_ char *v = url_escape(l.vals[idx[i]] ? l.vals[idx[i]] : "");
        int w = snprintf(qs + len, sizeof qs - len, "%s=%s&", l.keys[idx[i]], v ? v : "");
        if (w > 0 && (size_t)w < sizeof qs - len)
            len += (size_t)w;
    }
    _cleanup_free_ char *href =
        fy_strdup_printf("%s/v2.1/%s?%smarker=%s", base, path, qs, last);
    return json_pack("[{s:s, s:s}]", "rel", "next", "href", href ? href : "");
}

fy_code api_os_migrations_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    fy_code rc = api_policy_check(req, "os_compute_api:os-migrations:index", NULL, err);
    if (rc != FY_E_OK)
        return rc;
    mig_query q = {0};
    if ((rc = parse_mig_query(req, &q, err)) != FY_E_OK)
        return rc;
    _cleanup_pgres_ PGresult *res = NULL;
    const char *p[] = {q.host,
                       q.status,
                       q.instance_uuid,
                       q.source_compute,
                       q.type,
                       q.since[0] ? q.since : NULL,
                       q.before[0] ? q.before : NULL,
                       q.user,
                       q.project,
                       q.marker,
                       q.limit};
    if ((rc = fy_db_exec(&api_sql_mig_list, p, &res, err)) != FY_E_OK)
        return rc;
    char base[512];
    api_base_url(req, base, sizeof base);
    json_t *list = json_array();
    int n = PQntuples(res);
    for (int i = 0; i < n; i++)
        json_array_append_new(list, migration_view(req, base, res, i));
    json_t *body = json_pack("{s:o}", "migrations", list);
    if (api_mv_ge(req, 2, 59) && n > 0 && n == atoi(q.limit))
        json_object_set_new(body, "migrations_links",
                            next_link(req, base, "os-migrations", fy_db_str(res, n - 1, "uuid")));
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

json_t *api_next_link(const fy_req *req, const char *base, const char *path, const char *last)
{
    return next_link(req, base, path, last);
}
