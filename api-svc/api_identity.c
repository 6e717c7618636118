/* A Keystone v3 subset: version discovery and password authentication issuing
 * project-scoped tokens with a service catalog, token validation and
 * revocation, and reading projects and users.  Users, projects and roles come from the database (ferry-manage
 * bootstrap); the only domain is "default". */
#include <openssl/evp.h>
#include <string.h>
#include "api.h"
#include "api_sql.h"
#include "fy_auth.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

#define UNAUTHORIZED_MSG "The request you have made requires authentication."
#define KS_VERSION "v3.14"
#define KS_UPDATED "2020-04-07T00:00:00Z"
#define KS_MEDIA "application/vnd.openstack.identity-v3+json"

/* Who a token speaks for; filled by issue (from the request) or validate (from the row). */
typedef struct ks_who {
    char user_id[40], user_name[256], user_domain[64];
    char project_id[40], project_name[256], project_domain[64];
    char issued_at[40], expires_at[40];
} ks_who;

static fy_code missing(fy_err *err, const char *attr, const char *target)
{
    return fy_fail(err, FY_E_BAD_REQUEST,
                   "Expecting to find %s in %s. The server could not comply with the request "
                   "since it is either malformed or otherwise incorrect. The client is assumed "
                   "to be in error.", attr, target);
}

static fy_code unauthorized(fy_err *err)
{
    return fy_fail(err, FY_E_UNAUTHORIZED, UNAUTHORIZED_MSG);
}

/* --- version discovery --- */

static json_t *ks_version(const fy_req *req)
{
    char href[512];
    snprintf(href, sizeof href, "%s/identity/v3/", api_cfg(req)->public_url);
    return json_pack("{s:s,s:s,s:s,s:[{s:s,s:s}],s:[{s:s,s:s}]}", "id", KS_VERSION, "status",
                     "stable", "updated", KS_UPDATED, "links", "rel", "self", "href", href,
                     "media-types", "base", "application/json", "type", KS_MEDIA);
}

fy_code api_identity_root(fy_req *req, fy_resp *resp, fy_err *err)
{
    json_t *body = json_pack("{s:{s:[o]}}", "versions", "values", ks_version(req));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    /* Keystone answers its root with 300 Multiple Choices; keystoneauth expects it. */
    fy_resp_json(resp, 300, body);
    return FY_E_OK;
}

fy_code api_identity_v3(fy_req *req, fy_resp *resp, fy_err *err)
{
    json_t *body = json_pack("{s:o}", "version", ks_version(req));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

/* --- token body --- */

static json_t *domain_obj(const char *id)
{
    return json_pack("{s:s,s:s}", "id", id, "name",
                     strcmp(id, "default") == 0 ? "Default" : id);
}

/* Stable ids for catalog entries, derived from what they name. */
static void catalog_id(const char *what, char out[33])
{
    char digest[65];
    fy_token_digest(what, digest);
    memcpy(out, digest, 32);
    out[32] = '\0';
}

static json_t *catalog_entry(const fy_req *req, const char *type, const char *name,
                             const char *path)
{
    const api_config *cfg = api_cfg(req);
    static const char *const ifaces[] = {"public", "internal", "admin"};
    char url[512], id[33];
    snprintf(url, sizeof url, "%s%s", cfg->public_url, path);
    json_t *eps = json_array();
    for (size_t i = 0; i < ELEMENTSOF(ifaces); i++) {
        char key[64];
        snprintf(key, sizeof key, "%s:%s", type, ifaces[i]);
        catalog_id(key, id);
        json_array_append_new(eps, json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", id, "interface",
                                             ifaces[i], "region", cfg->region, "region_id",
                                             cfg->region, "url", url));
    }
    catalog_id(type, id);
    return json_pack("{s:o,s:s,s:s,s:s}", "endpoints", eps, "id", id, "type", type, "name",
                     name);
}

static json_t *catalog(const fy_req *req, const char *project_id)
{
    char volume_path[128];
    snprintf(volume_path, sizeof volume_path, "/volume/v3/%s", project_id);
    return json_pack("[o,o,o,o,o]", catalog_entry(req, "compute", "nova", "/v2.1"),
                     catalog_entry(req, "image", "glance", "/image"),
                     catalog_entry(req, "identity", "keystone", "/identity"),
                     catalog_entry(req, "network", "neutron", "/network"),
                     catalog_entry(req, "volumev3", "cinderv3", volume_path));
}

/* Keystone's audit ids are 22 chars of url-safe base64; ours derive from the digest
 * so issue and validate agree without storing them. */
static void audit_id(const char *digest, char out[24])
{
    unsigned char raw[16], b64[32];
    for (int i = 0; i < 16; i++) {
        unsigned v = 0;
        sscanf(digest + 2 * i, "%2x", &v);
        raw[i] = (unsigned char)v;
    }
    EVP_EncodeBlock(b64, raw, sizeof raw);
    for (int i = 0; i < 22; i++)
        out[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
    out[22] = '\0';
}

static json_t *roles_json(PGresult *roles)
{
    json_t *arr = json_array();
    for (int i = 0; arr && i < PQntuples(roles); i++)
        json_array_append_new(arr, json_pack("{s:s,s:s}", "id", fy_db_str(roles, i, "id"),
                                             "name", fy_db_str(roles, i, "name")));
    return arr;
}

static json_t *token_body(const fy_req *req, const ks_who *w, PGresult *roles,
                          const char *digest, bool with_catalog)
{
    char audit[24];
    audit_id(digest, audit);
    json_t *tok = json_pack(
        "{s:[s],s:{s:s,s:s,s:o,s:n},s:{s:s,s:s,s:o},s:o,s:b,s:s,s:s,s:[s]}", "methods",
        "password", "user", "id", w->user_id, "name", w->user_name, "domain",
        domain_obj(w->user_domain), "password_expires_at", "project", "id", w->project_id,
        "name", w->project_name, "domain", domain_obj(w->project_domain), "roles",
        roles_json(roles), "is_domain", 0, "expires_at", w->expires_at, "issued_at",
        w->issued_at, "audit_ids", audit);
    if (tok && with_catalog)
        json_object_set_new(tok, "catalog", catalog(req, w->project_id));
    return tok ? json_pack("{s:o}", "token", tok) : NULL;
}

/* --- issue --- */

typedef struct ks_auth_req {
    const char *user_id, *user_name, *user_dom_id, *user_dom_name, *password;
    const char *proj_id, *proj_name, *proj_dom_id, *proj_dom_name;
    bool scoped;
} ks_auth_req;

static fy_code parse_domain(json_t *dom, const char *where, const char **id, const char **name,
                            fy_err *err)
{
    if (!json_is_object(dom))
        return missing(err, "domain", where);
    *id = fy_json_str(dom, "id");
    *name = fy_json_str(dom, "name");
    if (!*id && !*name)
        return missing(err, "id or name", "domain");
    return FY_E_OK;
}

static fy_code parse_auth(const json_t *body, ks_auth_req *a, fy_err *err)
{
    json_t *auth = json_object_get(body, "auth");
    if (!json_is_object(auth))
        return missing(err, "auth", "request body");
    json_t *ident = json_object_get(auth, "identity");
    if (!json_is_object(ident))
        return missing(err, "identity", "auth");
    json_t *methods = json_object_get(ident, "methods");
    if (!json_is_array(methods))
        return missing(err, "methods", "identity");
    bool has_password = false;
    size_t i;
    json_t *m;
    json_array_foreach(methods, i, m) {
        if (fy_streq(json_string_value(m), "password"))
            has_password = true;
        else
            return fy_fail(err, FY_E_UNAUTHORIZED,
                           "Attempted to authenticate with an unsupported method.");
    }
    if (!has_password)
        return missing(err, "password", "methods");
    json_t *pw = json_object_get(ident, "password");
    if (!json_is_object(pw))
        return missing(err, "password", "identity");
    json_t *user = json_object_get(pw, "user");
    if (!json_is_object(user))
        return missing(err, "user", "password");
    a->password = fy_json_str(user, "password");
    if (!a->password)
        return missing(err, "password", "user");
    a->user_id = fy_json_str(user, "id");
    a->user_name = fy_json_str(user, "name");
    if (!a->user_id && !a->user_name)
        return missing(err, "id or name", "user");
    if (!a->user_id) {
        fy_code rc = parse_domain(json_object_get(user, "domain"), "user", &a->user_dom_id,
                                  &a->user_dom_name, err);
        if (rc != FY_E_OK)
            return rc;
    }

    json_t *scope = json_object_get(auth, "scope");
    if (!scope || json_is_null(scope) || (json_is_string(scope) &&
                                          fy_streq(json_string_value(scope), "unscoped")))
        return FY_E_OK;
    json_t *proj = json_object_get(scope, "project");
    if (!json_is_object(proj))
        return fy_fail(err, FY_E_UNAUTHORIZED,
                       "Only project-scoped tokens are supported by this identity service.");
    a->scoped = true;
    a->proj_id = fy_json_str(proj, "id");
    a->proj_name = fy_json_str(proj, "name");
    if (!a->proj_id && !a->proj_name)
        return missing(err, "id or name", "project");
    if (!a->proj_id)
        return parse_domain(json_object_get(proj, "domain"), "project", &a->proj_dom_id,
                            &a->proj_dom_name, err);
    return FY_E_OK;
}

static bool domain_matches(const char *actual, const char *id, const char *name)
{
    if (id)
        return strcmp(id, actual) == 0;
    if (name)
        return strcmp(name, strcmp(actual, "default") == 0 ? "Default" : actual) == 0;
    return true;
}

static fy_code find_user(const ks_auth_req *a, ks_who *w, fy_err *err)
{
    const char *params[] = {a->user_id ? a->user_id : a->user_name};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = fy_db_exec(a->user_id ? &api_sql_user_by_id : &api_sql_user_by_name, params,
                            &res, err);
    if (rc != FY_E_OK)
        return rc;
    /* Unknown user and wrong password look the same to the caller. */
    if (PQntuples(res) != 1 || !fy_db_bool(res, 0, "enabled") ||
        !domain_matches(fy_db_str(res, 0, "domain_id"), a->user_dom_id, a->user_dom_name) ||
        !fy_password_verify(a->password, fy_db_str(res, 0, "password_hash")))
        return unauthorized(err);
    snprintf(w->user_id, sizeof w->user_id, "%s", fy_db_str(res, 0, "id"));
    snprintf(w->user_name, sizeof w->user_name, "%s", fy_db_str(res, 0, "name"));
    snprintf(w->user_domain, sizeof w->user_domain, "%s", fy_db_str(res, 0, "domain_id"));
    return FY_E_OK;
}

static fy_code find_project(const ks_auth_req *a, ks_who *w, fy_err *err)
{
    const fy_sql *stmt = &api_sql_user_first_project;
    const char *key = w->user_id;
    if (a->scoped) {
        stmt = a->proj_id ? &api_sql_project_by_id : &api_sql_project_by_name;
        key = a->proj_id ? a->proj_id : a->proj_name;
    }
    const char *params[] = {key};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = fy_db_exec(stmt, params, &res, err);
    if (rc != FY_E_OK)
        return rc;
    if (PQntuples(res) != 1 ||
        !domain_matches(fy_db_str(res, 0, "domain_id"), a->proj_dom_id, a->proj_dom_name))
        return unauthorized(err);
    snprintf(w->project_id, sizeof w->project_id, "%s", fy_db_str(res, 0, "id"));
    snprintf(w->project_name, sizeof w->project_name, "%s", fy_db_str(res, 0, "name"));
    snprintf(w->project_domain, sizeof w->project_domain, "%s", fy_db_str(res, 0, "domain_id"));
    return FY_E_OK;
}

/* "admin,member" from the role rows, as stored with the token. */
static fy_code role_names(PGresult *roles, char *out, size_t size, fy_err *err)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < PQntuples(roles); i++) {
        int n = snprintf(out + used, size - used, "%s%s", i ? "," : "",
                         fy_db_str(roles, i, "name"));
        if (n < 0 || (size_t)n >= size - used)
            return fy_fail(err, FY_E_INTERNAL, "too many roles for one token");
        used += (size_t)n;
    }
    return FY_E_OK;
}

static fy_code store_token(const fy_req *req, ks_who *w, const char *roles, const char *digest,
                           fy_err *err)
{
    fy_err purge_err;
    _cleanup_pgres_ PGresult *purged = NULL;
    if (fy_db_exec(&api_sql_token_purge, NULL, &purged, &purge_err) != FY_E_OK)
        fy_debug("token purge: %s", purge_err.msg);

    char ttl[24];
    snprintf(ttl, sizeof ttl, "%lld", api_cfg(req)->token_ttl);
    const char *params[] = {digest, w->user_id, w->project_id, roles, ttl};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = fy_db_exec_one(&api_sql_token_insert, params, &res, err);
    if (rc != FY_E_OK)
        return rc;
    snprintf(w->issued_at, sizeof w->issued_at, "%s", fy_db_str(res, 0, "issued_at"));
    snprintf(w->expires_at, sizeof w->expires_at, "%s", fy_db_str(res, 0, "expires_at"));
    return FY_E_OK;
}

fy_code api_tokens_issue(fy_req *req, fy_resp *resp, fy_err *err)
{
    if (!json_is_object(req->json))
        return missing(err, "auth", "request body");
    ks_auth_req a = {0};
    ks_who w = {0};
    fy_code rc = parse_auth(req->json, &a, err);
    if (rc == FY_E_OK)
        rc = find_user(&a, &w, err);
    if (rc == FY_E_OK)
        rc = find_project(&a, &w, err);
    if (rc != FY_E_OK)
        return rc;

    const char *rparams[] = {w.user_id, w.project_id};
    _cleanup_pgres_ PGresult *roles = NULL;
    rc = fy_db_exec(&api_sql_user_roles, rparams, &roles, err);
    if (rc != FY_E_OK)
        return rc;
    if (PQntuples(roles) == 0)
        return unauthorized(err);   /* no role on the project: no access to it */
    char names[256];
    rc = role_names(roles, names, sizeof names, err);
    if (rc != FY_E_OK)
        return rc;

    char token[FY_TOKEN_LEN + 1], digest[65];
    fy_token_new(token);
    fy_token_digest(token, digest);
    rc = store_token(req, &w, names, digest, err);
    if (rc != FY_E_OK)
        return rc;
    json_t *body = token_body(req, &w, roles, digest, !fy_req_query(req, "nocatalog"));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_info("token issued for user %s project %s", w.user_name, w.project_name);
    fy_resp_json(resp, 201, body);
    fy_resp_add_header(resp, "X-Subject-Token", "%s", token);
    return FY_E_OK;
}

/* --- validate / revoke --- */

/* The subject token's digest, once the caller may act on it. */
static fy_code subject(const fy_req *req, const char *rule, char digest[65], fy_err *err)
{
    const char *tok = fy_req_header(req, "X-Subject-Token");
    if (!tok || !*tok)
        return fy_fail(err, FY_E_NOT_FOUND, "Could not find token: .");
    if (strlen(tok) > 1024)
        return fy_fail(err, FY_E_NOT_FOUND, "Could not find token.");
    fy_token_digest(tok, digest);
    if (strcmp(digest, req->auth.token_id) == 0)
        return FY_E_OK;   /* a token may always inspect or revoke itself */
    return api_policy_check(req, rule, NULL, err);
}

static fy_code not_found(const fy_req *req, fy_err *err)
{
    return fy_fail(err, FY_E_NOT_FOUND, "Could not find token: %.80s.",
                   fy_req_header(req, "X-Subject-Token"));
}

fy_code api_tokens_validate(fy_req *req, fy_resp *resp, fy_err *err)
{
    char digest[65];
    fy_code rc = subject(req, "identity:validate_token", digest, err);
    if (rc != FY_E_OK)
        return rc;
    const char *params[] = {digest};
    _cleanup_pgres_ PGresult *res = NULL;
    rc = fy_db_exec_one(&api_sql_token_get, params, &res, err);
    if (rc == FY_E_NOT_FOUND)
        return not_found(req, err);
    if (rc != FY_E_OK)
        return rc;

    ks_who w = {0};
    snprintf(w.user_id, sizeof w.user_id, "%s", fy_db_str(res, 0, "user_id"));
    snprintf(w.user_name, sizeof w.user_name, "%s", fy_db_str(res, 0, "user_name"));
    snprintf(w.user_domain, sizeof w.user_domain, "%s", fy_db_str(res, 0, "user_domain"));
    snprintf(w.project_id, sizeof w.project_id, "%s", fy_db_str(res, 0, "project_id"));
    snprintf(w.project_name, sizeof w.project_name, "%s", fy_db_str(res, 0, "project_name"));
    snprintf(w.project_domain, sizeof w.project_domain, "%s",
             fy_db_str(res, 0, "project_domain"));
    snprintf(w.issued_at, sizeof w.issued_at, "%s", fy_db_str(res, 0, "issued_at"));
    snprintf(w.expires_at, sizeof w.expires_at, "%s", fy_db_str(res, 0, "expires_at"));

    const char *rparams[] = {fy_db_str(res, 0, "roles")};
    _cleanup_pgres_ PGresult *roles = NULL;
    rc = fy_db_exec(&api_sql_roles_by_names, rparams, &roles, err);
    if (rc != FY_E_OK)
        return rc;
    fy_resp_add_header(resp, "X-Subject-Token", "%s", fy_req_header(req, "X-Subject-Token"));
    if (strcmp(req->method, "HEAD") == 0) {
        resp->status = 200;
        return FY_E_OK;
    }
    json_t *body = token_body(req, &w, roles, digest, !fy_req_query(req, "nocatalog"));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code api_tokens_revoke(fy_req *req, fy_resp *resp, fy_err *err)
{
    char digest[65];
    fy_code rc = subject(req, "identity:revoke_token", digest, err);
    if (rc != FY_E_OK)
        return rc;
    const char *params[] = {digest};
    _cleanup_pgres_ PGresult *res = NULL;
    rc = fy_db_exec(&api_sql_token_delete, params, &res, err);
    if (rc != FY_E_OK)
        return rc;
    if (fy_db_affected(res) == 0)
        return not_found(req, err);
    resp->status = 204;
    return FY_E_OK;
}

/* --- projects and users (read-only) ---
 * Enough for clients that resolve a name or id to an id (GET /projects/{x},
 * then ?name=x).  An admin sees every row; anyone else only their own project
 * or user: other rows are refused on show and left out of lists. */

typedef struct ks_kind {
    const char *member, *collection;   /* "project" / "projects" */
    const fy_sql *by_id, *list;
    const char *rule;                  /* named in the 403 message */
} ks_kind;

static const ks_kind ks_projects = {"project", "projects", &api_sql_project_by_id,
                                    &api_sql_projects_list, "identity:get_project"};
static const ks_kind ks_users = {"user", "users", &api_sql_user_by_id, &api_sql_users_list,
                                 "identity:get_user"};

static const char *own_id(const fy_req *req, const ks_kind *k)
{
    return k == &ks_projects ? req->auth.project_id : req->auth.user_id;
}

static json_t *ks_entity(const fy_req *req, const ks_kind *k, PGresult *res, int i)
{
    const char *id = fy_db_str(res, i, "id");
    _cleanup_free_ char *self = fy_strdup_printf("%s/identity/v3/%s/%s",
                                                 api_cfg(req)->public_url, k->collection, id);
    json_t *e = json_pack("{s:s, s:s, s:s, s:b, s:{}, s:{s:s}}", "id", id, "name",
                          fy_db_str(res, i, "name"), "domain_id", fy_db_str(res, i, "domain_id"),
                          "enabled", k == &ks_users ? fy_db_bool(res, i, "enabled") : true,
                          "options", "links", "self", self ? self : "");
    if (!e)
        return NULL;
    if (k == &ks_projects) {
        json_object_set_new(e, "description", json_string(""));
        json_object_set_new(e, "is_domain", json_false());
        json_object_set_new(e, "parent_id", json_string(fy_db_str(res, i, "domain_id")));
        json_object_set_new(e, "tags", json_array());
    } else {
        json_object_set_new(e, "password_expires_at", json_null());
    }
    return e;
}

static fy_code ks_show(fy_req *req, fy_resp *resp, const ks_kind *k, fy_err *err)
{
    const char *id = req->params[0];
    if (strlen(id) > 64)
        return fy_fail(err, FY_E_NOT_FOUND, "Could not find %s: %.64s.", k->member, id);
    const char *params[] = {id};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = fy_db_exec(k->by_id, params, &res, err);
    if (rc != FY_E_OK)
        return rc;
    if (PQntuples(res) != 1)
        return fy_fail(err, FY_E_NOT_FOUND, "Could not find %s: %s.", k->member, id);
    if (!req->auth.is_admin && !fy_streq(fy_db_str(res, 0, "id"), own_id(req, k)))
        return fy_fail(err, FY_E_FORBIDDEN,
                       "You are not authorized to perform the requested action: %s.", k->rule);
    json_t *body = json_pack("{s:o}", k->member, ks_entity(req, k, res, 0));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

static fy_code ks_list(fy_req *req, fy_resp *resp, const ks_kind *k, fy_err *err)
{
    const char *params[] = {fy_req_query(req, "name"), req->auth.is_admin ? NULL : own_id(req, k)};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = fy_db_exec(k->list, params, &res, err);
    if (rc != FY_E_OK)
        return rc;
    json_t *list = json_array();
    for (int i = 0; list && i < PQntuples(res); i++)
        json_array_append_new(list, ks_entity(req, k, res, i));
    _cleanup_free_ char *self =
        fy_strdup_printf("%s/identity/v3/%s", api_cfg(req)->public_url, k->collection);
    json_t *body = json_pack("{s:o, s:{s:s, s:n, s:n}}", k->collection, list, "links", "self",
                             self ? self : "", "previous", "next");
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code api_projects_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    return ks_list(req, resp, &ks_projects, err);
}

fy_code api_projects_show(fy_req *req, fy_resp *resp, fy_err *err)
{
    return ks_show(req, resp, &ks_projects, err);
}

fy_code api_users_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    return ks_list(req, resp, &ks_users, err);
}

fy_code api_users_show(fy_req *req, fy_resp *resp, fy_err *err)
{
    return ks_show(req, resp, &ks_users, err);
}
