/* Version discovery for the compute API, and the health check. */
#include "api.h"
#include "api_sql.h"
#include "fy_log.h"
#include "fy_util.h"

static json_t *link_obj(const char *rel, const char *href)
{
    return json_pack("{s:s,s:s}", "rel", rel, "href", href);
}

static json_t *version_v21(const fy_req *req, bool full)
{
    const char *base = api_cfg(req)->public_url;
    char href[512], max[16];
    snprintf(href, sizeof href, "%s/v2.1/", base);
    snprintf(max, sizeof max, "%d.%d", API_MV_MIN_MAJOR, API_MV_MAX_MINOR);
    json_t *links = json_pack("[o]", link_obj("self", href));
    json_t *v = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "id", "v2.1", "status", "CURRENT",
                          "version", max, "min_version", "2.1", "updated",
                          "2013-07-23T11:33:21Z", "links", links);
    if (full && v) {
        json_array_append_new(links, json_pack("{s:s,s:s,s:s}", "rel", "describedby", "type",
                                               "text/html", "href",
                                               "http://docs.openstack.org/"));
        json_object_set_new(v, "media-types",
                            json_pack("[{s:s,s:s}]", "base", "application/json", "type",
                                      "application/vnd.openstack.compute+json;version=2.1"));
    }
    return v;
}

fy_code api_versions_root(fy_req *req, fy_resp *resp, fy_err *err)
{
    char href[512];
    snprintf(href, sizeof href, "%s/v2/", api_cfg(req)->public_url);
    json_t *v20 = json_pack("{s:s,s:s,s:s,s:s,s:s,s:[o]}", "id", "v2.0", "status", "SUPPORTED",
                            "version", "", "min_version", "", "updated", "2011-01-21T11:33:21Z",
                            "links", link_obj("self", href));
    json_t *body = json_pack("{s:[o,o]}", "versions", v20, version_v21(req, false));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code api_versions_v21(fy_req *req, fy_resp *resp, fy_err *err)
{
    json_t *body = json_pack("{s:o}", "version", version_v21(req, true));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code api_healthz(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req;
    (void)err;
    fy_err dberr;
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&api_sql_ping, NULL, &res, &dberr) != FY_E_OK) {
        /* Unauthenticated callers get no detail; the log has it. */
        fy_warn("health check: database: %s", dberr.msg);
        fy_resp_json(resp, 503, json_pack("{s:s}", "status", "unavailable"));
        return FY_E_OK;
    }
    fy_resp_json(resp, 200, json_pack("{s:s}", "status", "ok"));
    return FY_E_OK;
}
