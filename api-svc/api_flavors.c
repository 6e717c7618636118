/* Nova's flavors API: list, detail, show, create, delete and the extra-specs index
 * (nova/api/openstack/compute/flavors.py, flavor_manage.py, views/flavors.py). */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "api.h"
#include "api_sql.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_util.h"

#define FLAVOR_MAX_LIMIT 1000      /* Nova's [api] max_limit */
#define DB_INT_MAX 2147483647LL

/* --- views --- */

static json_t *flavor_links(const fy_req *req, const char *id)
{
    const char *base = api_cfg(req)->public_url;
    char self[512], bookmark[512];
    snprintf(self, sizeof self, "%s/v2.1/flavors/%s", base, id);
    snprintf(bookmark, sizeof bookmark, "%s/flavors/%s", base, id);
    return json_pack("[{s:s,s:s},{s:s,s:s}]", "rel", "self", "href", self, "rel", "bookmark",
                     "href", bookmark);
}

static json_t *extra_specs(PGresult *res, int row)
{
    const char *text = fy_db_str(res, row, "extra_specs");
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_object();
    }
    return j;
}

static json_t *description(PGresult *res, int row)
{
    const char *d = fy_db_str(res, row, "description");
    return d ? json_string(d) : json_null();
}

static json_t *flavor_basic(const fy_req *req, PGresult *res, int row)
{
    const char *id = fy_db_str(res, row, "flavorid");
    json_t *f = json_pack("{s:s,s:s,s:o}", "id", id, "name", fy_db_str(res, row, "name"),
                          "links", flavor_links(req, id));
    if (f && api_mv_ge(req, 2, 55))
        json_object_set_new(f, "description", description(res, row));
    return f;
}

static json_t *flavor_full(const fy_req *req, PGresult *res, int row)
{
    const char *id = fy_db_str(res, row, "flavorid");
    long long swap = fy_db_ll(res, row, "swap_mb", 0);
    double rxtx = fy_db_double(res, row, "rxtx_factor", 1.0);
    /* Before 2.75 Nova shows "" for a zero swap (and a zero rxtx_factor). */
    json_t *swap_j = swap || api_mv_ge(req, 2, 75) ? json_integer(swap) : json_string("");
    json_t *rxtx_j = rxtx != 0.0 ? json_real(rxtx) : json_string("");
    json_t *f = json_pack("{s:s,s:s,s:I,s:I,s:o,s:I,s:b,s:I,s:b,s:o,s:o}", "id", id, "name",
                          fy_db_str(res, row, "name"), "ram",
                          fy_db_ll(res, row, "memory_mb", 0), "disk",
                          fy_db_ll(res, row, "root_gb", 0), "swap", swap_j,
                          "OS-FLV-EXT-DATA:ephemeral", fy_db_ll(res, row, "ephemeral_gb", 0),
                          "OS-FLV-DISABLED:disabled", 0, "vcpus",
                          fy_db_ll(res, row, "vcpus", 0), "os-flavor-access:is_public",
                          fy_db_bool(res, row, "is_public"), "rxtx_factor", rxtx_j, "links",
                          flavor_links(req, id));
    if (f && api_mv_ge(req, 2, 55))
        json_object_set_new(f, "description", description(res, row));
    if (f && api_mv_ge(req, 2, 61))
        json_object_set_new(f, "extra_specs", extra_specs(res, row));
    return f;
}

/* --- list / detail --- */

typedef struct flavor_query {
    char min_ram[24], min_disk[24], marker[256], limit[24];
    const char *is_public;   /* "true", "false" or NULL (both) */
    long long nlimit;
} flavor_query;

static fy_code int_filter(const fy_req *req, const char *key, char *out, size_t size,
                          fy_err *err)
{
    const char *v = fy_req_query(req, key);
    long long x;
    if (!v)
        return FY_E_OK;
    if (!fy_parse_ll(v, LLONG_MIN, LLONG_MAX, &x))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid %s filter [%.64s]", key, v);
    if (x < INT_MIN || x > INT_MAX)
        x = x < 0 ? INT_MIN : INT_MAX;
    snprintf(out, size, "%lld", x);
    return FY_E_OK;
}

static bool bool_word(const char *v, bool *ret)
{
    static const char *const yes[] = {"1", "t", "true", "on", "y", "yes"};
    static const char *const no[] = {"0", "f", "false", "off", "n", "no"};
    for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *ret = true, true;
        if (strcasecmp(v, no[i]) == 0)
            return *ret = false, true;
    }
    return false;
}

static fy_code parse_query(const fy_req *req, flavor_query *q, fy_err *err)
{
    memset(q, 0, sizeof *q);
    fy_code rc = int_filter(req, "minRam", q->min_ram, sizeof q->min_ram, err);
    if (rc == FY_E_OK)
        rc = int_filter(req, "minDisk", q->min_disk, sizeof q->min_disk, err);
    if (rc != FY_E_OK)
        return rc;

    q->is_public = "true";
    const char *pub = fy_req_query(req, "is_public");
    if (pub && req->auth.is_admin) {
        bool b;
        if (strcasecmp(pub, "none") == 0)
            q->is_public = NULL;
        else if (bool_word(pub, &b))
            q->is_public = b ? "true" : "false";
        else
            return fy_fail(err, FY_E_BAD_REQUEST, "Invalid is_public filter [%.64s]", pub);
    }

    q->nlimit = FLAVOR_MAX_LIMIT;
    const char *lim = fy_req_query(req, "limit");
    if (lim) {
        long long x;
        if (!*lim || strspn(lim, "0123456789") != strlen(lim) ||
            !fy_parse_ll(lim, 0, LLONG_MAX, &x))
            return fy_fail(err, FY_E_BAD_REQUEST,
                           "Invalid input for query parameters limit. Value: %.64s. '%.64s' "
                           "does not match '^[0-9]*$'", lim, lim);
        if (x < q->nlimit)
            q->nlimit = x;
    }
    snprintf(q->limit, sizeof q->limit, "%lld", q->nlimit);

    const char *marker = fy_req_query(req, "marker");
    if (marker) {
        if (strlen(marker) >= sizeof q->marker)
            return fy_fail(err, FY_E_BAD_REQUEST, "marker [%.64s...] not found", marker);
        const char *params[] = {marker};
        _cleanup_pgres_ PGresult *res = NULL;
        rc = fy_db_exec(&api_sql_flavor_get, params, &res, err);
        if (rc != FY_E_OK)
            return rc;
        if (PQntuples(res) != 1)
            return fy_fail(err, FY_E_BAD_REQUEST, "marker [%s] not found", marker);
        snprintf(q->marker, sizeof q->marker, "%s", marker);
    }
    return FY_E_OK;
}

static json_t *next_link(const fy_req *req, const flavor_query *q, const char *coll,
                         const char *last)
{
    char href[1024];
    snprintf(href, sizeof href, "%s/v2.1/%s?limit=%lld&marker=%s", api_cfg(req)->public_url,
             coll, q->nlimit, last);
    return json_pack("[{s:s,s:s}]", "rel", "next", "href", href);
}

static fy_code list(fy_req *req, fy_resp *resp, bool detail, fy_err *err)
{
    flavor_query q;
    fy_code rc = parse_query(req, &q, err);
    if (rc != FY_E_OK)
        return rc;
    const char *params[] = {q.min_ram[0] ? q.min_ram : NULL, q.min_disk[0] ? q.min_disk : NULL,
                            q.is_public, q.marker[0] ? q.marker : NULL, q.limit};
    _cleanup_pgres_ PGresult *res = NULL;
    rc = fy_db_exec(&api_sql_flavor_list, params, &res, err);
    if (rc != FY_E_OK)
        return rc;

    json_t *arr = json_array();
    int n = PQntuples(res);
    for (int i = 0; arr && i < n; i++)
        json_array_append_new(arr, detail ? flavor_full(req, res, i) : flavor_basic(req, res, i));
    json_t *body = json_pack("{s:o}", "flavors", arr);
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    /* Like Nova: a full page suggests there may be more. */
    if (n > 0 && n == q.nlimit)
        json_object_set_new(body, "flavors_links",
                            next_link(req, &q, detail ? "flavors/detail" : "flavors",
                                      fy_db_str(res, n - 1, "flavorid")));
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code api_flavors_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    return list(req, resp, false, err);
}

fy_code api_flavors_detail(fy_req *req, fy_resp *resp, fy_err *err)
{
    return list(req, resp, true, err);
}

/* --- show / extra specs --- */

/* The flavor row, hiding private flavors from non-admins as Nova does. */
static fy_code get_visible(const fy_req *req, const char *id, PGresult **ret, fy_err *err)
{
    const char *params[] = {id};
    PGresult *res = NULL;
    fy_code rc = fy_db_exec_one(&api_sql_flavor_get, params, &res, err);
    if (rc == FY_E_OK && !fy_db_bool(res, 0, "is_public") && !req->auth.is_admin) {
        PQclear(res);
        rc = FY_E_NOT_FOUND;
    }
    if (rc == FY_E_NOT_FOUND)
        return fy_fail(err, FY_E_NOT_FOUND, "Flavor %.255s could not be found.", id);
    if (rc == FY_E_OK)
        *ret = res;
    return rc;
}

fy_code api_flavors_show(fy_req *req, fy_resp *resp, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = get_visible(req, req->params[0], &res, err);
    if (rc != FY_E_OK)
        return rc;
    json_t *body = json_pack("{s:o}", "flavor", flavor_full(req, res, 0));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code api_flavor_extra_specs(fy_req *req, fy_resp *resp, fy_err *err)
{
    fy_code rc = api_policy_check(req, "os_compute_api:os-flavor-extra-specs:index", NULL, err);
    if (rc != FY_E_OK)
        return rc;
    _cleanup_pgres_ PGresult *res = NULL;
    rc = get_visible(req, req->params[0], &res, err);
    if (rc != FY_E_OK)
        return rc;
    fy_resp_json(resp, 200, json_pack("{s:o}", "extra_specs", extra_specs(res, 0)));
    return FY_E_OK;
}

/* --- create --- */

typedef struct flavor_in {
    const char *name;
    json_t *id, *rxtx, *is_public;
    long long ram, vcpus, disk, ephemeral, swap;
    const char *description;
} flavor_in;

#define FIN(n, t, f, fl, lo, hi) {n, t, fl, offsetof(flavor_in, f), FY_JNOPRESENT, lo, hi}
static const fy_jspec flavor_spec[] = {
    FIN("name", FY_J_STRING, name, FY_J_REQUIRED, 1, 255),
    FIN("id", FY_J_ANY, id, 0, 0, 0),
    FIN("ram", FY_J_INT, ram, FY_J_REQUIRED | FY_J_INT_AS_STRING, 1, DB_INT_MAX),
    FIN("vcpus", FY_J_INT, vcpus, FY_J_REQUIRED | FY_J_INT_AS_STRING, 1, DB_INT_MAX),
    FIN("disk", FY_J_INT, disk, FY_J_REQUIRED | FY_J_INT_AS_STRING, 0, DB_INT_MAX),
    FIN("OS-FLV-EXT-DATA:ephemeral", FY_J_INT, ephemeral, FY_J_INT_AS_STRING, 0, DB_INT_MAX),
    FIN("swap", FY_J_INT, swap, FY_J_INT_AS_STRING, 0, DB_INT_MAX),
    FIN("rxtx_factor", FY_J_ANY, rxtx, 0, 0, 0),
    FIN("os-flavor-access:is_public", FY_J_ANY, is_public, 0, 0, 0),
    /* last: only from 2.55 */
    FIN("description", FY_J_STRING, description, FY_J_NULLABLE, 0, 65535),
};

typedef struct flavor_body {
    json_t *flavor;
} flavor_body;

static const fy_jspec flavor_body_spec[] = {
    {"flavor", FY_J_OBJECT, FY_J_REQUIRED, offsetof(flavor_body, flavor), FY_JNOPRESENT, 0, 0},
};

static fy_code bad(fy_err *err, const char *field, const json_t *v, const char *why)
{
    _cleanup_free_ char *shown = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    return fy_fail(err, FY_E_BAD_REQUEST,
                   "Invalid input for field/attribute %s. Value: %.128s. %.128s %s", field,
                   shown ? shown : "?", shown ? shown : "?", why);
}

static bool id_chars_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255 || s[0] == ' ' || s[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr(". _-", s[i]))
            return false;
    return true;
}

static fy_code flavor_id(const flavor_in *in, char out[256], fy_err *err)
{
    if (!in->id || json_is_null(in->id)) {
        char uuid[FY_UUID_LEN + 1];
        fy_uuid_v4(uuid);
        snprintf(out, 256, "%s", uuid);
        return FY_E_OK;
    }
    if (json_is_integer(in->id)) {
        snprintf(out, 256, "%" JSON_INTEGER_FORMAT, json_integer_value(in->id));
        return FY_E_OK;
    }
    if (!json_is_string(in->id))
        return bad(err, "id", in->id, "is not of type 'string', 'null', 'integer'");
    if (!id_chars_ok(json_string_value(in->id)))
        return bad(err, "id", in->id, "does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'");
    snprintf(out, 256, "%s", json_string_value(in->id));
    return FY_E_OK;
}

static fy_code rxtx_factor(const flavor_in *in, char out[40], fy_err *err)
{
    double x = 1.0;
    if (!in->rxtx) {
        snprintf(out, 40, "1.0");
        return FY_E_OK;
    }
    if (json_is_number(in->rxtx)) {
        x = json_number_value(in->rxtx);
    } else if (json_is_string(in->rxtx)) {
        const char *s = json_string_value(in->rxtx);
        size_t digits = strspn(s, "0123456789");
        bool ok = digits > 0 && (s[digits] == '\0' ||
                                 (s[digits] == '.' && s[digits + 1] &&
                                  strspn(s + digits + 1, "0123456789") == strlen(s + digits + 1)));
        if (!ok)
            return bad(err, "rxtx_factor", in->rxtx, "does not match '^[0-9]+(\\.[0-9]+)?$'");
        x = strtod(s, NULL);
    } else {
        return bad(err, "rxtx_factor", in->rxtx, "is not of type 'number', 'string'");
    }
    if (!(x > 0.0))
        return bad(err, "rxtx_factor", in->rxtx, "is less than or equal to the minimum of 0");
    if (!isfinite(x) || x > 3.40282e+38)
        return bad(err, "rxtx_factor", in->rxtx, "is greater than the maximum of 3.40282e+38");
    snprintf(out, 40, "%.17g", x);
    return FY_E_OK;
}

static fy_code is_public(const flavor_in *in, const char **out, fy_err *err)
{
    bool b = true;
    if (in->is_public && !json_is_boolean(in->is_public) &&
        !(json_is_string(in->is_public) && bool_word(json_string_value(in->is_public), &b)))
        return bad(err, "os-flavor-access:is_public", in->is_public,
                   "is not one of [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', "
                   "'Yes', 'yes', 'y', 't', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', "
                   "'off', 'NO', 'No', 'no', 'n', 'f']");
    if (in->is_public && json_is_boolean(in->is_public))
        b = json_is_true(in->is_public);
    *out = b ? "true" : "false";
    return FY_E_OK;
}

static fy_code check_name(const char *name, fy_err *err)
{
    size_t n = strlen(name);
    if (isspace((unsigned char)name[0]) || isspace((unsigned char)name[n - 1]))
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Invalid input for field/attribute name. Value: %.255s. An invalid "
                       "'name' value was provided. The name must be: printable characters. "
                       "Can not start or end with whitespace.", name);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return fy_fail(err, FY_E_BAD_REQUEST,
                           "Invalid input for field/attribute name. Value: %.255s. An invalid "
                           "'name' value was provided. The name must be: printable characters. "
                           "Can not start or end with whitespace.", name);
    return FY_E_OK;
}

static fy_code check_clash(const char *id, const char *name, fy_err *err)
{
    const char *params[] = {id, name};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = fy_db_exec(&api_sql_flavor_clash, params, &res, err);
    if (rc != FY_E_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        if (fy_streq(fy_db_str(res, i, "name"), name))
            return fy_fail(err, FY_E_CONFLICT, "Flavor with name %.255s already exists.", name);
        return fy_fail(err, FY_E_CONFLICT, "Flavor with ID %.255s already exists.", id);
    }
    return FY_E_OK;
}

fy_code api_flavors_create(fy_req *req, fy_resp *resp, fy_err *err)
{
    fy_code rc = api_policy_check(req, "os_compute_api:os-flavor-manage:create", NULL, err);
    if (rc != FY_E_OK)
        return rc;
    flavor_body body = {0};
    flavor_in in = {0};
    size_t nspec = ELEMENTSOF(flavor_spec) - (api_mv_ge(req, 2, 55) ? 0 : 1);
    rc = fy_json_parse(req->json, flavor_body_spec, 1, &body, false, NULL, err);
    if (rc == FY_E_OK)
        rc = fy_json_parse(body.flavor, flavor_spec, nspec, &in, false, "flavor", err);
    if (rc == FY_E_OK)
        rc = check_name(in.name, err);
    char id[256], rxtx[40];
    const char *pub = NULL;
    if (rc == FY_E_OK)
        rc = flavor_id(&in, id, err);
    if (rc == FY_E_OK)
        rc = rxtx_factor(&in, rxtx, err);
    if (rc == FY_E_OK)
        rc = is_public(&in, &pub, err);
    if (rc == FY_E_OK)
        rc = check_clash(id, in.name, err);
    if (rc != FY_E_OK)
        return rc;

    char ram[24], vcpus[24], disk[24], eph[24], swap[24];
    snprintf(ram, sizeof ram, "%lld", in.ram);
    snprintf(vcpus, sizeof vcpus, "%lld", in.vcpus);
    snprintf(disk, sizeof disk, "%lld", in.disk);
    snprintf(eph, sizeof eph, "%lld", in.ephemeral);
    snprintf(swap, sizeof swap, "%lld", in.swap);
    const char *params[] = {id, in.name, vcpus, ram, disk, eph, swap, rxtx, pub, in.description};
    _cleanup_pgres_ PGresult *res = NULL;
    rc = fy_db_exec_one(&api_sql_flavor_insert, params, &res, err);
    if (rc == FY_E_CONFLICT)   /* lost a race with an identical create */
        return fy_fail(err, FY_E_CONFLICT, "Flavor with name %.255s already exists.", in.name);
    if (rc != FY_E_OK)
        return rc;
    json_t *out = json_pack("{s:o}", "flavor", flavor_full(req, res, 0));
    if (!out)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, out);
    return FY_E_OK;
}

fy_code api_flavors_delete(fy_req *req, fy_resp *resp, fy_err *err)
{
    fy_code rc = api_policy_check(req, "os_compute_api:os-flavor-manage:delete", NULL, err);
    if (rc != FY_E_OK)
        return rc;
    const char *params[] = {req->params[0]};
    _cleanup_pgres_ PGresult *res = NULL;
    rc = fy_db_exec(&api_sql_flavor_delete, params, &res, err);
    if (rc != FY_E_OK)
        return rc;
    if (fy_db_affected(res) == 0)
        return fy_fail(err, FY_E_NOT_FOUND, "Flavor %.255s could not be found.", req->params[0]);
    resp->status = 202;
    return FY_E_OK;
}
