/* os-hypervisors list/detail/show: compute nodes with their service, the
 * resource fields before 2.88, uuids instead of integer ids from 2.53, and from
 * 2.88 the host's uptime line in show (asked of the agent; null when it cannot
 * answer, as Nova does for a host that is down). */
#include <limits.h>
#include <string.h>
#include "api_servers.h"
#include "fy_cleanup.h"
#include "fy_httpc.h"
#include "fy_json.h"
#include "fy_util.h"

#define MAX_PAGE 1000
/* The uptime is a nicety: a slow agent must not hold up the answer. */
#define UPTIME_TIMEOUT_MS 2000
#define UPTIME_CONNECT_TIMEOUT_MS 500

static json_t *id_of(const fy_req *req, PGresult *res, int i, const char *int_col,
                     const char *uuid_col)
{
    return api_mv_ge(req, 2, 53) ? json_string(fy_db_str(res, i, uuid_col))
                                 : json_integer(fy_db_ll(res, i, int_col, 0));
}

static json_t *cpu_info_view(const fy_req *req, const char *text)
{
    if (!api_mv_ge(req, 2, 28))
        return json_string(text ? text : "{}");
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    return j ? j : json_object();
}

static void add_resources(const fy_req *req, PGresult *res, int i, json_t *h)
{
    long long mem = fy_db_ll(res, i, "memory_mb", 0),
              mem_used = fy_db_ll(res, i, "memory_mb_used", 0);
    long long disk = fy_db_ll(res, i, "local_gb", 0),
              disk_used = fy_db_ll(res, i, "local_gb_used", 0);
    json_object_set_new(h, "vcpus", json_integer(fy_db_ll(res, i, "vcpus", 0)));
    json_object_set_new(h, "memory_mb", json_integer(mem));
    json_object_set_new(h, "local_gb", json_integer(disk));
    json_object_set_new(h, "vcpus_used", json_integer(fy_db_ll(res, i, "vcpus_used", 0)));
    json_object_set_new(h, "memory_mb_used", json_integer(mem_used));
    json_object_set_new(h, "local_gb_used", json_integer(disk_used));
    json_object_set_new(h, "free_ram_mb", json_integer(mem - mem_used));
    json_object_set_new(h, "free_disk_gb", json_integer(disk - disk_used));
    json_object_set_new(h, "current_workload",
                        json_integer(fy_db_ll(res, i, "current_workload", 0)));
    json_object_set_new(h, "running_vms", json_integer(fy_db_ll(res, i, "running_vms", 0)));
    json_object_set_new(h, "disk_available_least", json_integer(disk - disk_used));
    json_object_set_new(h, "cpu_info", cpu_info_view(req, fy_db_str(res, i, "cpu_info")));
}

static json_t *hypervisor_view(const fy_req *req, PGresult *res, int i, bool detail,
                               bool with_servers)
{
    json_t *h = json_pack("{s:o, s:s, s:s, s:s}", "id", id_of(req, res, i, "id", "uuid"),
                          "hypervisor_hostname", fy_db_str(res, i, "hypervisor_hostname"), "state",
                          fy_db_str(res, i, "state"), "status",
                          fy_db_bool(res, i, "disabled") ? "disabled" : "enabled");
    if (!h)
        return NULL;
    if (detail) {
        const char *reason = fy_db_str(res, i, "disabled_reason");
        json_object_set_new(h, "hypervisor_type",
                            json_string(fy_db_str(res, i, "hypervisor_type")));
        json_object_set_new(h, "hypervisor_version",
                            json_integer(fy_db_ll(res, i, "hypervisor_version", 0)));
        json_object_set_new(h, "host_ip", json_string(fy_db_str(res, i, "host_ip")));
        json_object_set_new(h, "service",
                            json_pack("{s:o, s:s, s:o}", "id",
                                      id_of(req, res, i, "service_id", "service_uuid"), "host",
                                      fy_db_str(res, i, "service_host"), "disabled_reason",
                                      reason ? json_string(reason) : json_null()));
        if (api_mv_ge(req, 2, 88))
            json_object_set_new(h, "uptime", json_null());
        else
            add_resources(req, res, i, h);
    }
    const char *servers = fy_db_str(res, i, "servers");
    json_t *list = with_servers && servers ? json_loads(servers, 0, NULL) : NULL;
    if (list)
        json_object_set_new(h, "servers", list);
    return h;
}

typedef struct hv_query {
    const char *id, *uuid, *pattern, *marker_id, *marker_uuid;
    char limit[24];
    bool with_servers;
} hv_query;

static fy_code hv_select(const fy_req *req, const hv_query *q, PGresult **ret, fy_err *err)
{
    char down[24];
    api_down_time_param(req, down);
    const char *p[] = {down,
                       q->id,
                       q->uuid,
                       q->pattern,
                       q->marker_id,
                       q->marker_uuid,
                       q->limit[0] ? q->limit : NULL};
    return fy_db_exec(&api_sql_hypervisors_list, p, ret, err);
}

static fy_code parse_marker(const fy_req *req, hv_query *q, fy_err *err)
{
    const char *marker = fy_req_query(req, "marker");
    if (!marker)
        return FY_E_OK;
    long long v;
    bool uuids = api_mv_ge(req, 2, 53);
    hv_query probe = {0};
    if (uuids && fy_uuid_valid(marker))
        probe.uuid = q->marker_uuid = marker;
    else if (!uuids && fy_parse_ll(marker, 1, INT_MAX, &v))
        probe.id = q->marker_id = marker;
    else
        return fy_fail(err, FY_E_BAD_REQUEST, "marker [%s] not found", marker);
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = hv_select(req, &probe, &res, err);
    if (rc == FY_E_OK && PQntuples(res) == 0)
        rc = fy_fail(err, FY_E_BAD_REQUEST, "marker [%s] not found", marker);
    return rc;
}

static fy_code parse_list(const fy_req *req, hv_query *q, fy_err *err)
{
    if (api_mv_ge(req, 2, 53)) {
        q->pattern = fy_req_query(req, "hypervisor_hostname_pattern");
        q->with_servers = api_bool_str(fy_req_query(req, "with_servers"));
    }
    if (!api_mv_ge(req, 2, 33))
        return FY_E_OK;
    const char *limit = fy_req_query(req, "limit");
    long long l;
    if (limit && (!fy_parse_ll(limit, 0, LLONG_MAX, &l)))
        return fy_fail(err, FY_E_BAD_REQUEST, "limit param must be a non-negative integer");
    if (limit)
        snprintf(q->limit, sizeof(q->limit), "%lld", l < MAX_PAGE ? l : MAX_PAGE);
    return parse_marker(req, q, err);
}

static fy_code hypervisors_query(fy_req *req, fy_resp *resp, bool detail, fy_err *err)
{
    fy_code rc = api_policy_check(req,
                                  detail ? "os_compute_api:os-hypervisors:list-detail"
                                         : "os_compute_api:os-hypervisors:list",
                                  NULL, err);
    hv_query q = {0};
    if (rc != FY_E_OK || (rc = parse_list(req, &q, err)) != FY_E_OK)
        return rc;
    _cleanup_pgres_ PGresult *res = NULL;
    if ((rc = hv_select(req, &q, &res, err)) != FY_E_OK)
        return rc;
    int n = PQntuples(res);
    if (q.pattern && n == 0)
        return fy_fail(err, FY_E_NOT_FOUND, "No hypervisor matching '%s' could be found.",
                       q.pattern);
    json_t *list = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(list, hypervisor_view(req, res, i, detail, q.with_servers));
    json_t *body = json_pack("{s:o}", "hypervisors", list);
    if (q.limit[0] && n > 0 && n == atoi(q.limit)) {
        char base[512];
        api_base_url(req, base, sizeof(base));
        const char *last =
            api_mv_ge(req, 2, 53) ? fy_db_str(res, n - 1, "uuid") : fy_db_str(res, n - 1, "id");
        _cleanup_free_ char *href = fy_strdup_printf("%s/v2.1/os-hypervisors%s?limit=%s&marker=%s",
                                                     base, detail ? "/detail" : "", q.limit, last);
        json_object_set_new(body, "hypervisors_links",
                            json_pack("[{s:s, s:s}]", "rel", "next", "href", href ? href : ""));
    }
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code api_hypervisors_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    return hypervisors_query(req, resp, false, err);
}

fy_code api_hypervisors_detail(fy_req *req, fy_resp *resp, fy_err *err)
{
    return hypervisors_query(req, resp, true, err);
}

static json_t *host_uptime(const fy_req *req, PGresult *res, int i)
{
    const char *url = fy_db_str(res, i, "service_url");
    if (!url || !fy_streq(fy_db_str(res, i, "state"), "up"))
        return json_null();
    _cleanup_free_ char *full = fy_strdup_printf("%s/internal/v1/host/uptime", url);
    fy_httpc_opts opts = {
        .timeout_ms = UPTIME_TIMEOUT_MS,
        .connect_timeout_ms = UPTIME_CONNECT_TIMEOUT_MS,
        .service_secret = api_cfg(req)->service_secret,
    };
    fy_http_result r = {0};
    fy_err err = {0};
    json_t *ret = NULL;
    if (full && fy_httpc_call("GET", full, NULL, &opts, &r, &err) == FY_E_OK) {
        json_t *up = json_object_get(r.json, "uptime");
        ret = json_is_string(up) ? json_incref(up) : NULL;
    }
    fy_http_result_clear(&r);
    return ret ? ret : json_null();
}

fy_code api_hypervisors_show(fy_req *req, fy_resp *resp, fy_err *err)
{
    fy_code rc = api_policy_check(req, "os_compute_api:os-hypervisors:show", NULL, err);
    if (rc != FY_E_OK)
        return rc;
    const char *id = req->params[0];
    hv_query q = {0};
    long long v;
    if (api_mv_ge(req, 2, 53)) {
        if (!fy_uuid_valid(id))
            return fy_fail(err, FY_E_BAD_REQUEST, "Invalid uuid %s", id);
        q.uuid = id;
        q.with_servers = api_bool_str(fy_req_query(req, "with_servers"));
    } else if (fy_parse_ll(id, 1, INT_MAX, &v)) {
        q.id = id;
    } else {
        return fy_fail(err, FY_E_NOT_FOUND, "Hypervisor with ID %s could not be found.", id);
    }
    _cleanup_pgres_ PGresult *res = NULL;
    if ((rc = hv_select(req, &q, &res, err)) != FY_E_OK)
        return rc;
    if (PQntuples(res) != 1)
        return fy_fail(err, FY_E_NOT_FOUND, "Hypervisor with ID %s could not be found.", id);
    json_t *h = hypervisor_view(req, res, 0, true, q.with_servers);
    if (h && api_mv_ge(req, 2, 88))
        json_object_set_new(h, "uptime", host_uptime(req, res, 0));
    fy_resp_json(resp, 200, json_pack("{s:o}", "hypervisor", h));
    return FY_E_OK;
}
