/* os-services: list, and enable/disable/force-down through PUT /os-services/{}
 * (a service uuid from 2.53, one of Nova's legacy action names before). */
#include <stddef.h>
#include <string.h>
#include "api_servers.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_util.h"

#define COMPUTE_BINARY "ferry-compute"

static json_t *service_view(const fy_req *req, PGresult *res, int i)
{
    bool disabled = fy_db_bool(res, i, "disabled");
    json_t *id = api_mv_ge(req, 2, 53) ? json_string(fy_db_str(res, i, "uuid"))
                                       : json_integer(fy_db_ll(res, i, "id", 0));
    const char *reason = fy_db_str(res, i, "disabled_reason");
    json_t *v = json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:s?, s:o}", "binary",
                          fy_db_str(res, i, "binary_name"), "host", fy_db_str(res, i, "host"), "id",
                          id, "zone", fy_db_str(res, i, "zone"), "status",
                          disabled ? "disabled" : "enabled", "state", fy_db_str(res, i, "state"),
                          "updated_at", fy_db_str(res, i, "updated_at"), "disabled_reason",
                          reason ? json_string(reason) : json_null());
    if (v && api_mv_ge(req, 2, 11))
        json_object_set_new(v, "forced_down", json_boolean(fy_db_bool(res, i, "forced_down")));
    return v;
}

/* host, binary, uuid, id: the optional filters of api_sql_services_list. */
static fy_code services_select(const fy_req *req, const char *host, const char *binary,
                               const char *uuid, const char *id, PGresult **ret, fy_err *err)
{
    char down[24];
    api_down_time_param(req, down);
    const char *p[] = {down, host, binary, uuid, id};
    return fy_db_exec(&api_sql_services_list, p, ret, err);
}

fy_code api_services_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    fy_code rc = api_policy_check(req, "os_compute_api:os-services:list", NULL, err);
    if (rc != FY_E_OK)
        return rc;
    _cleanup_pgres_ PGresult *res = NULL;
    rc = services_select(req, fy_req_query(req, "host"), fy_req_query(req, "binary"), NULL, NULL,
                         &res, err);
    if (rc != FY_E_OK)
        return rc;
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(list, service_view(req, res, i));
    fy_resp_json(resp, 200, json_pack("{s:o}", "services", list));
    return FY_E_OK;
}

/* NULL for "keep" in the tri-state SQL parameters. */
static const char *tri(bool present, bool v)
{
    return present ? (v ? "true" : "false") : NULL;
}

static fy_code apply_update(const char *id, const char *disabled, const char *reason,
                            const char *forced, fy_err *err)
{
    const char *p[] = {id, disabled, reason, forced};
    return fy_db_exec(&api_sql_service_update, p, NULL, err);
}

typedef struct update_body {
    const char *status, *reason;
    bool forced_down, has_status, has_forced;
} update_body;

static const fy_jspec update_spec[] = {
    {"status", FY_J_STRING, 0, offsetof(update_body, status), offsetof(update_body, has_status), 0,
     0},
    {"disabled_reason", FY_J_STRING, 0, offsetof(update_body, reason), FY_JNOPRESENT, 1, 255},
    {"forced_down", FY_J_BOOL, 0, offsetof(update_body, forced_down),
     offsetof(update_body, has_forced), 0, 0},
};

static fy_code validate_update(const update_body *b, fy_err *err)
{
    if (b->has_status && strcmp(b->status, "enabled") != 0 && strcmp(b->status, "disabled") != 0)
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Invalid input for field/attribute status. Value: %s. '%s' is not one of "
                       "['enabled', 'disabled']",
                       b->status, b->status);
    if (!b->has_status && !b->has_forced)
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "At least one of 'status' or 'forced_down' must "
                       "be specified in the request body.");
    if (b->reason && !(b->has_status && !strcmp(b->status, "disabled")))
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Specifying 'disabled_reason' with status 'enabled' is invalid.");
    return FY_E_OK;
}

/* 2.53+: PUT /os-services/{uuid} -> the whole service. */
static fy_code update_by_uuid(fy_req *req, fy_resp *resp, const char *uuid, fy_err *err)
{
    if (!fy_uuid_valid(uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid uuid %s", uuid);
    update_body b = {0};
    fy_code rc =
        fy_json_parse(req->json, update_spec, ELEMENTSOF(update_spec), &b, false, NULL, err);
    if (rc != FY_E_OK || (rc = validate_update(&b, err)) != FY_E_OK)
        return rc;
    _cleanup_pgres_ PGresult *res = NULL;
    if ((rc = services_select(req, NULL, NULL, uuid, NULL, &res, err)) != FY_E_OK)
        return rc;
    if (PQntuples(res) != 1)
        return fy_fail(err, FY_E_NOT_FOUND, "Service %s could not be found.", uuid);
    const char *binary = fy_db_str(res, 0, "binary_name");
    if (!fy_streq(binary, COMPUTE_BINARY))
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Updating a %s service is not supported. Only " COMPUTE_BINARY
                       " services can be updated.",
                       binary);
    bool disable = b.has_status && !strcmp(b.status, "disabled");
    rc = apply_update(fy_db_str(res, 0, "id"), tri(b.has_status, disable), b.reason,
                      tri(b.has_forced, b.forced_down), err);
    _cleanup_pgres_ PGresult *after = NULL;
    if (rc != FY_E_OK ||
        (rc = services_select(req, NULL, NULL, uuid, NULL, &after, err)) != FY_E_OK)
        return rc;
    if (PQntuples(after) != 1)
        return fy_fail(err, FY_E_NOT_FOUND, "Service %s could not be found.", uuid);
    fy_resp_json(resp, 200, json_pack("{s:o}", "service", service_view(req, after, 0)));
    return FY_E_OK;
}

typedef struct legacy_body {
    const char *host, *binary, *reason;
    bool forced_down, has_forced;
} legacy_body;

static const fy_jspec legacy_spec[] = {
    {"host", FY_J_STRING, FY_J_REQUIRED, offsetof(legacy_body, host), FY_JNOPRESENT, 1, 255},
    {"binary", FY_J_STRING, FY_J_REQUIRED, offsetof(legacy_body, binary), FY_JNOPRESENT, 1, 255},
    {"disabled_reason", FY_J_STRING, 0, offsetof(legacy_body, reason), FY_JNOPRESENT, 1, 255},
    {"forced_down", FY_J_BOOL, 0, offsetof(legacy_body, forced_down),
     offsetof(legacy_body, has_forced), 0, 0},
};

/* Before 2.53: PUT /os-services/{enable|disable|disable-log-reason|force-down}. */
static fy_code update_legacy(fy_req *req, fy_resp *resp, const char *action, fy_err *err)
{
    bool enable = !strcmp(action, "enable"), disable = !strcmp(action, "disable");
    bool log_reason = !strcmp(action, "disable-log-reason");
    bool force = !strcmp(action, "force-down") && api_mv_ge(req, 2, 11);
    if (!enable && !disable && !log_reason && !force)
        return fy_fail(err, FY_E_NOT_FOUND, "Unknown action");
    legacy_body b = {0};
    fy_code rc =
        fy_json_parse(req->json, legacy_spec, ELEMENTSOF(legacy_spec), &b, false, NULL, err);
    if (rc != FY_E_OK)
        return rc;
    if (log_reason && !b.reason)
        return fy_fail(err, FY_E_BAD_REQUEST, "Missing disabled reason field");
    if (force && !b.has_forced)
        return fy_fail(err, FY_E_BAD_REQUEST, "Missing forced_down field");
    _cleanup_pgres_ PGresult *res = NULL;
    if ((rc = services_select(req, b.host, b.binary, NULL, NULL, &res, err)) != FY_E_OK)
        return rc;
    if (PQntuples(res) != 1)
        return fy_fail(err, FY_E_NOT_FOUND, "Compute host %s with binary %s could not be found.",
                       b.host, b.binary);
    const char *id = fy_db_str(res, 0, "id");
    rc = force
             ? apply_update(id, NULL, NULL, tri(true, b.forced_down), err)
             : apply_update(id, enable ? "false" : "true", log_reason ? b.reason : NULL, NULL, err);
    if (rc != FY_E_OK)
        return rc;
    json_t *svc = json_pack("{s:s, s:s}", "host", b.host, "binary", b.binary);
    if (force)
        json_object_set_new(svc, "forced_down", json_boolean(b.forced_down));
    else
        json_object_set_new(svc, "status", json_string(enable ? "enabled" : "disabled"));
    if (log_reason)
        json_object_set_new(svc, "disabled_reason", json_string(b.reason));
    fy_resp_json(resp, 200, json_pack("{s:o}", "service", svc));
    return FY_E_OK;
}

fy_code api_services_update(fy_req *req, fy_resp *resp, fy_err *err)
{
    fy_code rc = api_policy_check(req, "os_compute_api:os-services:update", NULL, err);
    if (rc != FY_E_OK)
        return rc;
    if (!json_is_object(req->json))
        return fy_fail(err, FY_E_BAD_REQUEST, "Malformed request body");
    if (api_mv_ge(req, 2, 53))
        return update_by_uuid(req, resp, req->params[0], err);
    return update_legacy(req, resp, req->params[0], err);
}
