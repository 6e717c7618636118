/* Quotas: the headroom check and reservations of moves (resize, revert), and the
 * read/write quota APIs (GET /limits, os-quota-sets).  Usage is counted from the
 * project's instances plus the live reservations of moves in progress. */
#include <limits.h>
#include <string.h>
#include "api_migrations.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_util.h"

bool api_flavor_size_of(const char *snapshot_json, api_flavor_size *ret)
{
    json_t *f = snapshot_json ? json_loads(snapshot_json, 0, NULL) : NULL;
    if (!json_is_object(f)) {
        json_decref(f);
        return false;
    }
    ret->vcpus = fy_json_int(f, "vcpus", 0);
    ret->memory_mb = fy_json_int(f, "memory_mb", 0);
    ret->root_gb = fy_json_int(f, "root_gb", 0);
    json_decref(f);
    return true;
}

static fy_code reserve_one(const char *project, const char *consumer, const char *res,
                           long long delta, fy_err *err)
{
    if (delta == 0)
        return FY_E_OK;
    char d[24];
    snprintf(d, sizeof d, "%lld", delta);
    const char *p[] = {project, res, d, consumer};
    return fy_db_exec(&api_sql_reservation_insert, p, NULL, err);
}

fy_code api_quota_reserve(const char *project_id, const char *consumer_uuid, long long d_cores,
                          long long d_ram, fy_err *err)
{
    if (d_cores <= 0 && d_ram <= 0)
        return FY_E_OK; /* a decrease always fits; nothing to hold */
    const char *q[] = {project_id};
    fy_code rc = fy_db_exec(&api_sql_quota_lock, q, NULL, err);
    _cleanup_pgres_ PGresult *res = NULL;
    if (rc == FY_E_OK)
        rc = fy_db_exec(&api_sql_quota_usage, q, &res, err);
    if (rc != FY_E_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *name = fy_db_str(res, i, "resource");
        long long lim = fy_db_ll(res, i, "hard_limit", -1), used = fy_db_ll(res, i, "used", 0);
        long long d = !strcmp(name, "cores") ? d_cores : !strcmp(name, "ram") ? d_ram : 0;
        if (lim >= 0 && d > 0 && used + d > lim)
            return fy_fail(err, FY_E_QUOTA_EXCEEDED,
                           "Quota exceeded for %s: Requested %lld, but already used %lld of %lld "
                           "%s",
                           name, d, used, lim, name);
    }
    if (d_cores > 0)
        rc = reserve_one(project_id, consumer_uuid, "cores", d_cores, err);
    if (rc == FY_E_OK && d_ram > 0)
        rc = reserve_one(project_id, consumer_uuid, "ram", d_ram, err);
    return rc;
}

/* ---- reading limits ---- */

/* Nova's fixed quotas that Ferry keeps no table for. */
typedef struct fixed_quota {
    const char *name;
    long long limit;
    int below; /* shown below 2.<below> */
} fixed_quota;

static const fixed_quota fixed[] = {
    {"fixed_ips", -1, 36},
    {"floating_ips", 10, 36},
    {"security_group_rules", 20, 36},
    {"security_groups", 10, 36},
    {"injected_file_content_bytes", 10240, 57},
    {"injected_file_path_bytes", 255, 57},
    {"injected_files", 5, 57},
};

typedef struct quota_view {
    PGresult *limits; /* api_sql_quota_get */
    PGresult *usage;  /* api_sql_quota_in_use, or NULL */
} quota_view;

static void quota_view_free(quota_view *v)
{
    if (v->limits)
        PQclear(v->limits);
    if (v->usage)
        PQclear(v->usage);
}

static fy_code quota_load(const char *project, bool usage, quota_view *v, fy_err *err)
{
    const char *p[] = {fy_uuid_valid(project) ? project : NULL};
    fy_code rc = fy_db_exec(&api_sql_quota_get, p, &v->limits, err);
    if (rc == FY_E_OK && usage && p[0])
        rc = fy_db_exec(&api_sql_quota_in_use, p, &v->usage, err);
    return rc;
}

static long long quota_limit(const quota_view *v, const char *res, bool defaults)
{
    for (int i = 0; i < PQntuples(v->limits); i++)
        if (fy_streq(fy_db_str(v->limits, i, "resource"), res))
            return fy_db_ll(v->limits, i, defaults ? "default_limit" : "hard_limit", -1);
    return -1;
}

static long long quota_used(const quota_view *v, const char *res, const char *col)
{
    for (int i = 0; v->usage && i < PQntuples(v->usage); i++)
        if (fy_streq(fy_db_str(v->usage, i, "resource"), res))
            return fy_db_ll(v->usage, i, col, 0);
    return 0;
}

/* The quota_set object: {"id"?, "<resource>": limit | {"in_use","limit","reserved"}}. */
static json_t *quota_set_json(const fy_req *req, const quota_view *v, const char *id,
                              bool defaults, bool detail)
{
    json_t *qs = json_object();
    if (id)
        json_object_set_new(qs, "id", json_string(id));
    for (int i = 0; i < PQntuples(v->limits); i++) {
        const char *res = fy_db_str(v->limits, i, "resource");
        long long lim = quota_limit(v, res, defaults);
        json_t *val = detail ? json_pack("{s:I, s:I, s:I}", "in_use",
                                         (json_int_t)quota_used(v, res, "in_use"), "limit",
                                         (json_int_t)lim, "reserved",
                                         (json_int_t)quota_used(v, res, "reserved"))
                             : json_integer(lim);
        json_object_set_new(qs, res, val);
    }
    for (size_t i = 0; i < ELEMENTSOF(fixed); i++) {
        if (api_mv_ge(req, 2, fixed[i].below))
            continue;
        json_t *val = detail ? json_pack("{s:i, s:I, s:i}", "in_use", 0, "limit",
                                         (json_int_t)fixed[i].limit, "reserved", 0)
                             : json_integer(fixed[i].limit);
        json_object_set_new(qs, fixed[i].name, val);
    }
    return qs;
}

static fy_code quota_get(fy_req *req, fy_resp *resp, bool detail, fy_err *err)
{
    const char *project = req->params[0];
    fy_code rc = api_policy_check(
        req, detail ? "os_compute_api:os-quota-sets:detail" : "os_compute_api:os-quota-sets:show",
        project, err);
    if (rc != FY_E_OK)
        return rc;
    _cleanup_(quota_view_free) quota_view v = {0};
    rc = quota_load(project, detail, &v, err);
    if (rc != FY_E_OK)
        return rc;
    fy_resp_json(resp, 200,
                 json_pack("{s:o}", "quota_set", quota_set_json(req, &v, project, false, detail)));
    return FY_E_OK;
}

fy_code api_quota_show(fy_req *req, fy_resp *resp, fy_err *err)
{
    return quota_get(req, resp, false, err);
}

fy_code api_quota_detail(fy_req *req, fy_resp *resp, fy_err *err)
{
    return quota_get(req, resp, true, err);
}

fy_code api_quota_defaults(fy_req *req, fy_resp *resp, fy_err *err)
{
    const char *project = req->params[0];
    fy_code rc = api_policy_check(req, "os_compute_api:os-quota-sets:defaults", project, err);
    if (rc != FY_E_OK)
        return rc;
    _cleanup_(quota_view_free) quota_view v = {0};
    rc = quota_load(NULL, false, &v, err);
    if (rc != FY_E_OK)
        return rc;
    fy_resp_json(resp, 200,
                 json_pack("{s:o}", "quota_set", quota_set_json(req, &v, project, true, false)));
    return FY_E_OK;
}

/* ---- updating ---- */

typedef struct quota_update {
    const char *project;
    json_t *set; /* validated {"resource": limit} */
    bool force;
} quota_update;

static fy_code quota_update_txn(void *arg, fy_err *err)
{
    quota_update *u = arg;
    const char *q[] = {u->project};
    fy_code rc = fy_db_exec(&api_sql_quota_lock, q, NULL, err);
    _cleanup_(quota_view_free) quota_view v = {0};
    if (rc == FY_E_OK)
        rc = quota_load(u->project, true, &v, err);
    if (rc != FY_E_OK)
        return rc;
    const char *res;
    json_t *val;
    json_object_foreach (u->set, res, val) {
        long long lim = json_integer_value(val);
        long long min = quota_used(&v, res, "in_use") + quota_used(&v, res, "reserved");
        if (!u->force && lim >= 0 && lim < min)
            return fy_fail(err, FY_E_BAD_REQUEST,
                           "Quota limit %lld for %s must be greater than or equal to already used "
                           "and reserved %lld.",
                           lim, res, min);
        char l[24];
        snprintf(l, sizeof l, "%lld", lim);
        const char *p[] = {u->project, res, l};
        if ((rc = fy_db_exec(&api_sql_quota_set, p, NULL, err)) != FY_E_OK)
            return rc;
    }
    return FY_E_OK;
}

static fy_code quota_value(const char *key, json_t *val, long long *ret, fy_err *err)
{
    long long n = 0;
    char rv[128];
    api_pyrepr(val, rv, sizeof rv);
    if (json_is_integer(val))
        n = json_integer_value(val);
    else if (!json_is_string(val) || !fy_parse_ll(json_string_value(val), LLONG_MIN, LLONG_MAX, &n))
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Invalid input for field/attribute %s. Value: %s. %s is not of type "
                       "'integer', 'string'",
                       key, rv, rv);
    if (n < -1 || n > 0x7FFFFFFF)
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Invalid input for field/attribute %s. Value: %lld. %lld is %s", key, n, n,
                       n < -1 ? "less than the minimum of -1"
                              : "greater than the maximum of 2147483647");
    *ret = n;
    return FY_E_OK;
}

static fy_code parse_quota_body(const fy_req *req, quota_update *u, fy_err *err)
{
    json_t *qs = json_object_get(req->json, "quota_set");
    if (!json_is_object(req->json) || !json_is_object(qs))
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Invalid input for field/attribute quota_set. 'quota_set' is a required "
                       "property");
    _cleanup_(quota_view_free) quota_view v = {0};
    fy_code rc = quota_load(NULL, false, &v, err);
    if (rc != FY_E_OK)
        return rc;
    const char *key;
    json_t *val;
    json_object_foreach (qs, key, val) {
        if (!strcmp(key, "force")) {
            u->force = json_is_true(val) || (json_is_string(val) && api_bool_str(json_string_value(val)));
            continue;
        }
        bool known = false, fixed_key = false;
        for (int i = 0; i < PQntuples(v.limits) && !known; i++)
            known = fy_streq(fy_db_str(v.limits, i, "resource"), key);
        for (size_t i = 0; i < ELEMENTSOF(fixed) && !known; i++)
            fixed_key = !api_mv_ge(req, 2, fixed[i].below) && !strcmp(fixed[i].name, key);
        if (!known && !fixed_key)
            return fy_fail(err, FY_E_BAD_REQUEST,
                           "Invalid input for field/attribute quota_set. Additional properties "
                           "are not allowed ('%s' was unexpected)",
                           key);
        long long n = 0;
        if ((rc = quota_value(key, val, &n, err)) != FY_E_OK)
            return rc;
        if (known) /* Nova's fixed quotas are accepted and not stored */
            json_object_set_new(u->set, key, json_integer(n));
    }
    return FY_E_OK;
}

fy_code api_quota_update(fy_req *req, fy_resp *resp, fy_err *err)
{
    const char *project = req->params[0];
    fy_code rc = api_policy_check(req, "os_compute_api:os-quota-sets:update", project, err);
    if (rc != FY_E_OK)
        return rc;
    if (!fy_uuid_valid(project))
        return fy_fail(err, FY_E_BAD_REQUEST, "Project ID %s is not a valid project.", project);
    _cleanup_json_ json_t *set = json_object();
    quota_update u = {.project = project, .set = set};
    rc = parse_quota_body(req, &u, err);
    if (rc == FY_E_OK)
        rc = fy_db_txn(quota_update_txn, &u, false, err);
    if (rc != FY_E_OK)
        return rc;
    _cleanup_(quota_view_free) quota_view v = {0};
    if ((rc = quota_load(project, false, &v, err)) != FY_E_OK)
        return rc;
    fy_resp_json(resp, 200,
                 json_pack("{s:o}", "quota_set", quota_set_json(req, &v, NULL, false, false)));
    return FY_E_OK;
}

fy_code api_quota_delete(fy_req *req, fy_resp *resp, fy_err *err)
{
    const char *project = req->params[0];
    fy_code rc = api_policy_check(req, "os_compute_api:os-quota-sets:delete", project, err);
    if (rc != FY_E_OK)
        return rc;
    if (fy_uuid_valid(project)) {
        const char *p[] = {project};
        if ((rc = fy_db_exec(&api_sql_quota_clear, p, NULL, err)) != FY_E_OK)
            return rc;
    }
    resp->status = 202;
    return FY_E_OK;
}

/* ---- GET /limits ---- */

fy_code api_limits(fy_req *req, fy_resp *resp, fy_err *err)
{
    fy_code rc = api_policy_check(req, "os_compute_api:limits", req->auth.project_id, err);
    if (rc != FY_E_OK)
        return rc;
    const char *project = req->auth.project_id;
    const char *other = fy_req_query(req, "tenant_id");
    fy_err ignored = {0};
    if (other && api_policy_check(req, "os_compute_api:limits:other_project", other, &ignored) ==
                     FY_E_OK)
        project = other; /* Nova ignores tenant_id for callers without the rule */
    _cleanup_(quota_view_free) quota_view v = {0};
    if ((rc = quota_load(project, true, &v, err)) != FY_E_OK)
        return rc;
    json_t *abs = json_object();
    long long meta = quota_limit(&v, "metadata_items", false);
    if (!api_mv_ge(req, 2, 39))
        json_object_set_new(abs, "maxImageMeta", json_integer(meta));
    if (!api_mv_ge(req, 2, 57)) {
        json_object_set_new(abs, "maxPersonality", json_integer(5));
        json_object_set_new(abs, "maxPersonalitySize", json_integer(10240));
    }
    if (!api_mv_ge(req, 2, 36)) {
        json_object_set_new(abs, "maxSecurityGroupRules", json_integer(20));
        json_object_set_new(abs, "maxSecurityGroups", json_integer(10));
    }
    json_object_set_new(abs, "maxServerMeta", json_integer(meta));
    json_object_set_new(abs, "maxTotalCores", json_integer(quota_limit(&v, "cores", false)));
    if (!api_mv_ge(req, 2, 36))
        json_object_set_new(abs, "maxTotalFloatingIps", json_integer(10));
    json_object_set_new(abs, "maxTotalInstances",
                        json_integer(quota_limit(&v, "instances", false)));
    json_object_set_new(abs, "maxTotalKeypairs", json_integer(quota_limit(&v, "key_pairs", false)));
    json_object_set_new(abs, "maxTotalRAMSize", json_integer(quota_limit(&v, "ram", false)));
    json_object_set_new(abs, "maxServerGroups",
                        json_integer(quota_limit(&v, "server_groups", false)));
    json_object_set_new(abs, "maxServerGroupMembers",
                        json_integer(quota_limit(&v, "server_group_members", false)));
    /* What the project is charged for: its servers plus the resources held for
     * moves in progress (e.g. the larger flavor of a resize awaiting confirm). */
    json_object_set_new(abs, "totalCoresUsed",
                        json_integer(quota_used(&v, "cores", "in_use") +
                                     quota_used(&v, "cores", "reserved")));
    if (!api_mv_ge(req, 2, 36))
        json_object_set_new(abs, "totalFloatingIpsUsed", json_integer(0));
    json_object_set_new(abs, "totalInstancesUsed",
                        json_integer(quota_used(&v, "instances", "in_use") +
                                     quota_used(&v, "instances", "reserved")));
    json_object_set_new(abs, "totalRAMUsed",
                        json_integer(quota_used(&v, "ram", "in_use") +
                                     quota_used(&v, "ram", "reserved")));
    if (!api_mv_ge(req, 2, 36))
        json_object_set_new(abs, "totalSecurityGroupsUsed", json_integer(0));
    json_object_set_new(abs, "totalServerGroupsUsed", json_integer(0));
    fy_resp_json(resp, 200, json_pack("{s:{s:[], s:o}}", "limits", "rate", "absolute", abs));
    return FY_E_OK;
}
