/* Authentication of public requests: a Keystone-style X-Auth-Token looked up by its
 * SHA-256 digest, or the inter-service credential (compute agents fetching images). */
#include <string.h>
#include "api.h"
#include "api_sql.h"
#include "fy_auth.h"
#include "fy_util.h"

#define UNAUTHORIZED_MSG "The request you have made requires authentication."

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

static bool roles_include_admin(const char *roles)
{
    const char *p = roles;
    while (p && *p) {
        size_t n = strcspn(p, ",");
        if (n == 5 && strncmp(p, "admin", 5) == 0)
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

static bool service_credential_ok(const fy_req *req)
{
    const char *given = fy_req_header(req, "X-Service-Token");
    const char *secret = req->svc ? api_cfg(req)->service_secret : NULL;
    return given && secret && *secret && fy_const_time_eq(given, secret);
}

fy_code api_authenticate(fy_req *req, fy_err *err)
{
    memset(&req->auth, 0, sizeof req->auth);
    if (service_credential_ok(req)) {
        req->auth.authenticated = req->auth.is_service = req->auth.is_admin = true;
        copy_str(req->auth.user_name, sizeof req->auth.user_name, "ferry-service");
        copy_str(req->auth.roles, sizeof req->auth.roles, "admin,service");
        return FY_E_OK;
    }
    const char *token = fy_req_header(req, "X-Auth-Token");
    if (!token || !*token || strlen(token) > 1024)
        return fy_fail(err, FY_E_UNAUTHORIZED, UNAUTHORIZED_MSG);

    char digest[65];
    fy_token_digest(token, digest);
    const char *params[] = {digest};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = fy_db_exec_one(&api_sql_token_auth, params, &res, err);
    if (rc == FY_E_NOT_FOUND)
        return fy_fail(err, FY_E_UNAUTHORIZED, UNAUTHORIZED_MSG);
    if (rc != FY_E_OK)
        return rc;

    fy_auth_ctx *a = &req->auth;
    a->authenticated = true;
    copy_str(a->user_id, sizeof a->user_id, fy_db_str(res, 0, "user_id"));
    copy_str(a->project_id, sizeof a->project_id, fy_db_str(res, 0, "project_id"));
    copy_str(a->user_name, sizeof a->user_name, fy_db_str(res, 0, "user_name"));
    copy_str(a->project_name, sizeof a->project_name, fy_db_str(res, 0, "project_name"));
    copy_str(a->roles, sizeof a->roles, fy_db_str(res, 0, "roles"));
    /* The digest, not the token: enough to identify it, useless to replay. */
    copy_str(a->token_id, sizeof a->token_id, digest);
    a->is_admin = roles_include_admin(a->roles);
    return FY_E_OK;
}
