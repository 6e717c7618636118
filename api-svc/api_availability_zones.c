/* GET /v2.1/os-availability-zone: the zones of the compute services; a zone is
 * available while at least one of its compute services is enabled. */
#include "api_servers.h"
#include "fy_cleanup.h"

fy_code api_availability_zones(fy_req *req, fy_resp *resp, fy_err *err)
{
    fy_code rc = api_policy_check(req, "os_compute_api:os-availability-zone:list", NULL, err);
    if (rc != FY_E_OK)
        return rc;
    _cleanup_pgres_ PGresult *res = NULL;
    if ((rc = fy_db_exec(&api_sql_zones_list, NULL, &res, err)) != FY_E_OK)
        return rc;
    json_t *zones = json_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(zones, json_pack("{s:s, s:{s:b}, s:n}", "zoneName",
                                               fy_db_str(res, i, "zone"), "zoneState", "available",
                                               fy_db_bool(res, i, "available"), "hosts"));
    fy_resp_json(resp, 200, json_pack("{s:o}", "availabilityZoneInfo", zones));
    return FY_E_OK;
}
