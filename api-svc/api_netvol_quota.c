/* Quotas and limits of the network and volume APIs (Neutron's /quotas, Cinder's
 * os-quota-sets and /limits), which clients read next to the compute quotas
 * (`openstack quota show`, `openstack limits show`).  Ferry enforces no count or
 * size quota on ports, networks or volumes, so those limits are -1 (unlimited);
 * the one real bound, a volume's largest size, is per_volume_gigabytes.  Usage
 * is counted from the project's volumes. */
#include <string.h>
#include "api.h"
#include "api_netvol.h"
#include "fy_cleanup.h"
#include "fy_util.h"

#define UNLIMITED (-1)

/* ---- Cinder ---- */

typedef struct vol_usage {
    long long volumes, gigabytes;
} vol_usage;

/* The project in the URL must be the caller's own; the quota's project may be
 * another only for admins (Cinder answers 403 otherwise). */
static fy_code vol_target(const fy_req *req, const char *target, fy_err *err)
{
    const char *own = req->params[0];
    if (!fy_uuid_valid(own) || !api_policy_allows(req, "rule:admin_or_owner", own))
        return fy_fail(err, FY_E_FORBIDDEN, "Policy doesn't allow volume access in project "
                       "%.64s.", own);
    if (!fy_uuid_valid(target) || !api_policy_allows(req, "rule:admin_or_owner", target))
        return fy_fail(err, FY_E_FORBIDDEN, "Policy doesn't allow volume:get_quotas to be "
                       "performed.");
    return FY_E_OK;
}

static fy_code vol_usage_of(const char *project, vol_usage *u, fy_err *err)
{
    const char *p[] = {project};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = fy_db_exec(&api_sql_vol_usage, p, &res, err);
    if (rc != FY_E_OK)
        return rc;
    u->volumes = fy_db_ll(res, 0, "volumes", 0);
    u->gigabytes = fy_db_ll(res, 0, "gigabytes", 0);
    return FY_E_OK;
}

static json_t *vol_quota_item(long long limit, long long in_use, bool usage)
{
    if (!usage)
        return json_integer(limit);
    return json_pack("{s:I,s:I,s:i,s:i}", "limit", (json_int_t)limit, "in_use",
                     (json_int_t)in_use, "reserved", 0, "allocated", 0);
}

static json_t *vol_quota_set(const char *id, const vol_usage *u, bool usage)
{
    json_t *q = json_pack("{s:s}", "id", id);
    if (!q)
        return NULL;
    json_object_set_new(q, "volumes", vol_quota_item(UNLIMITED, u->volumes, usage));
    json_object_set_new(q, "gigabytes", vol_quota_item(UNLIMITED, u->gigabytes, usage));
    json_object_set_new(q, "snapshots", vol_quota_item(UNLIMITED, 0, usage));
    json_object_set_new(q, "backups", vol_quota_item(UNLIMITED, 0, usage));
    json_object_set_new(q, "backup_gigabytes", vol_quota_item(UNLIMITED, 0, usage));
    json_object_set_new(q, "groups", vol_quota_item(UNLIMITED, 0, usage));
    json_object_set_new(q, "per_volume_gigabytes", vol_quota_item(API_VOLUME_MAX_GB, 0, usage));
    return q;
}

static bool query_true(const fy_req *req, const char *key)
{
    const char *v = fy_req_query(req, key);
    return v && (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"));
}

static fy_code vol_quota_reply(fy_req *req, fy_resp *resp, bool defaults, fy_err *err)
{
    const char *target = req->params[1];
    vol_usage u = {0};
    bool usage = !defaults && query_true(req, "usage");
    if (vol_target(req, target, err) || (usage && vol_usage_of(target, &u, err)))
        return err->code;
    json_t *body = json_pack("{s:o}", "quota_set", vol_quota_set(target, &u, usage));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code api_volume_quota_show(fy_req *req, fy_resp *resp, fy_err *err)
{
    return vol_quota_reply(req, resp, false, err);
}

fy_code api_volume_quota_defaults(fy_req *req, fy_resp *resp, fy_err *err)
{
    return vol_quota_reply(req, resp, true, err);
}

fy_code api_volume_limits(fy_req *req, fy_resp *resp, fy_err *err)
{
    vol_usage u = {0};
    if (vol_target(req, req->params[0], err) || vol_usage_of(req->params[0], &u, err))
        return err->code;
    json_t *body = json_pack(
        "{s:{s:[],s:{s:i,s:i,s:i,s:i,s:i,s:I,s:i,s:I,s:i,s:i}}}", "limits", "rate", "absolute",
        "maxTotalVolumes", UNLIMITED, "maxTotalVolumeGigabytes", UNLIMITED, "maxTotalSnapshots",
        UNLIMITED, "maxTotalBackups", UNLIMITED, "maxTotalBackupGigabytes", UNLIMITED,
        "totalVolumesUsed", (json_int_t)u.volumes, "totalSnapshotsUsed", 0,
        "totalGigabytesUsed", (json_int_t)u.gigabytes, "totalBackupsUsed", 0,
        "totalBackupGigabytesUsed", 0);
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

/* ---- Neutron ---- */

static const char *const net_resources[] = {
    "network", "subnet", "subnetpool", "port", "router", "floatingip",
    "rbac_policy", "security_group", "security_group_rule",
};

static fy_code net_quota_reply(fy_req *req, fy_resp *resp, fy_err *err)
{
    const char *target = req->params[0];
    if (!fy_uuid_valid(target))
        return fy_fail(err, FY_E_BAD_REQUEST, "'%.64s' is not a valid project id.", target);
    if (!api_policy_allows(req, "rule:admin_or_owner", target))
        return fy_fail(err, FY_E_FORBIDDEN, "Non-admin is not authorised to access quotas for "
                       "another project");
    json_t *q = json_object();
    for (size_t i = 0; q && i < sizeof net_resources / sizeof net_resources[0]; i++)
        json_object_set_new(q, net_resources[i], json_integer(UNLIMITED));
    json_t *body = q ? json_pack("{s:o}", "quota", q) : NULL;
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code api_network_quota_show(fy_req *req, fy_resp *resp, fy_err *err)
{
    return net_quota_reply(req, resp, err);
}

fy_code api_network_quota_default(fy_req *req, fy_resp *resp, fy_err *err)
{
    return net_quota_reply(req, resp, err);
}
