/* GET /v2.1/os-aggregates.  Ferry has no host aggregates (every compute host is in
 * its service's availability zone, as Nova's hosts are without an aggregate), so
 * the list is empty; clients such as `openstack hypervisor show` read it. */
#include "api.h"

fy_code api_aggregates_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    fy_code rc = api_policy_check(req, "os_compute_api:os-aggregates:index", NULL, err);
    if (rc != FY_E_OK)
        return rc;
    json_t *body = json_pack("{s:[]}", "aggregates");
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}
