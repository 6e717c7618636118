#include "fy_health.h"

#include "fy_db.h"

static const fy_sql health_ping = {"fy_health_ping", "SELECT 1", 0};

fy_code fy_health_handler(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req;
    PGresult *res = NULL;
    fy_code rc = fy_db_exec(&health_ping, NULL, &res, err);
    if (res)
        PQclear(res);
    if (rc != FY_E_OK)
        return fy_fail(err, FY_E_UNAVAILABLE, "database unreachable: %s", err->msg);
    fy_resp_json(resp, 200, json_pack("{s:s}", "status", "ok"));
    return FY_E_OK;
}
