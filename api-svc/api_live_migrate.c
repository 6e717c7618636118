/* os-migrateLive: Nova's body schema per microversion, the guarded start of a
 * live migration (instance task_state, migration row, action, task in one
 * transaction), and below 2.34 the wait for the pre-check outcome. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "api_migrations.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_migration.h"
#include "fy_util.h"

/* ---- Python repr of JSON (Nova's messages print values that way) ---- */

typedef struct repr_buf {
    char *out;
    size_t size, len;
} repr_buf;

static void put(repr_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n && b->len + 1 < b->size; i++)
        b->out[b->len++] = s[i];
    b->out[b->len] = '\0';
}

static void puts_(repr_buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void repr_str(repr_buf *b, const char *s)
{
    /* Python prefers single quotes unless the text has one and no double quote. */
    char q = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';
    put(b, &q, 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '\\' || *p == (unsigned char)q) {
            esc[0] = '\\', esc[1] = (char)*p, esc[2] = '\0';
        } else if (*p == '\n') {
            snprintf(esc, sizeof esc, "\\n");
        } else if (*p == '\t') {
            snprintf(esc, sizeof esc, "\\t");
        } else if (*p == '\r') {
            snprintf(esc, sizeof esc, "\\r");
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", *p);
        } else {
            esc[0] = (char)*p, esc[1] = '\0';
        }
        puts_(b, esc);
    }
    put(b, &q, 1);
}

/* Shortest text that reads back as the same double, like Python's repr. */
static void repr_real(repr_buf *b, double d)
{
    char num[40];
    if (isinf(d)) {
        puts_(b, d > 0 ? "inf" : "-inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(num, sizeof num, "%.*g", prec, d);
        if (strtod(num, NULL) == d)
            break;
    }
    puts_(b, num);
    if (!strpbrk(num, ".en"))
        puts_(b, ".0");
}

static void repr_value(repr_buf *b, const json_t *v, int depth)
{
    char num[32];
    if (depth > 32) {
        puts_(b, "...");
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *m;
        bool first = true;
        puts_(b, "{");
        json_object_foreach ((json_t *)v, k, m) {
            puts_(b, first ? "" : ", ");
            first = false;
            repr_str(b, k);
            puts_(b, ": ");
            repr_value(b, m, depth + 1);
        }
        puts_(b, "}");
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *m;
        puts_(b, "[");
        json_array_foreach (v, i, m) {
            puts_(b, i ? ", " : "");
            repr_value(b, m, depth + 1);
        }
        puts_(b, "]");
        break;
    }
    case JSON_STRING:
        repr_str(b, json_string_value(v));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        puts_(b, num);
        break;
    case JSON_REAL:
        repr_real(b, json_real_value(v));
        break;
    case JSON_TRUE:
        puts_(b, "True");
        break;
    case JSON_FALSE:
        puts_(b, "False");
        break;
    case JSON_NULL:
        puts_(b, "None");
        break;
    }
}

void api_pyrepr(const json_t *v, char *out, size_t size)
{
    if (!out || size == 0)
        return;
    repr_buf b = {.out = out, .size = size, .len = 0};
    out[0] = '\0';
    if (v)
        repr_value(&b, v, 0);
    else
        puts_(&b, "None");
}

/* Python's str(): strings bare, everything else as repr. */
static void pystr(const json_t *v, char *out, size_t size)
{
    if (json_is_string(v))
        snprintf(out, size, "%s", json_string_value(v));
    else
        api_pyrepr(v, out, size);
}

/* ---- the os-migrateLive schema ---- */

#define BOOL_ENUM                                                                                  \
    "[True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', False, 'False', " \
    "'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no'"

static const char *const true_strs[] = {"True", "TRUE", "true", "1", "ON", "On", "on",
                                        "YES",  "Yes",  "yes"};
static const char *const false_strs[] = {"False", "FALSE", "false", "0", "OFF", "Off", "off",
                                         "NO",    "No",    "no"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

/* Nova's parameter_types.boolean (plus "auto" when allowed): 1 true, 0 false,
 * 2 auto, -1 not in the enum. */
static int bool_enum(const json_t *v, bool allow_auto)
{
    if (json_is_boolean(v))
        return json_is_true(v) ? 1 : 0;
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    if (in_list(s, true_strs, ELEMENTSOF(true_strs)))
        return 1;
    if (in_list(s, false_strs, ELEMENTSOF(false_strs)))
        return 0;
    return allow_auto && strcmp(s, "auto") == 0 ? 2 : -1;
}

static fy_code field_fail(fy_err *err, const char *field, const json_t *v, const char *why)
{
    char sv[256], rv[256];
    pystr(v, sv, sizeof sv);
    api_pyrepr(v, rv, sizeof rv);
    return fy_fail(err, FY_E_BAD_REQUEST, "Invalid input for field/attribute %s. Value: %s. %s %s",
                   field, sv, rv, why);
}

static fy_code check_bool_field(const json_t *obj, const char *name, bool allow_auto, int *ret,
                                fy_err *err)
{
    const json_t *v = json_object_get(obj, name);
    if (!v)
        return FY_E_OK;
    *ret = bool_enum(v, allow_auto);
    if (*ret >= 0)
        return FY_E_OK;
    return field_fail(err, name, v,
                      allow_auto ? "is not one of " BOOL_ENUM ", 'auto']"
                                 : "is not one of " BOOL_ENUM "]");
}

/* Nova's hostname_or_ip_address, nullable. */
static fy_code check_host(const json_t *v, const char **ret, fy_err *err)
{
    if (!v || json_is_null(v))
        return FY_E_OK;
    if (!json_is_string(v))
        return field_fail(err, "host", v, "is not of type 'string', 'null'");
    const char *s = json_string_value(v);
    if (json_string_length(v) > 255)
        return field_fail(err, "host", v, "is too long");
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-_.:", *p))
            return field_fail(err, "host", v, "does not match '^[a-zA-Z0-9-_.:]*$'");
    *ret = s;
    return FY_E_OK;
}

static fy_code whole_fail(fy_err *err, const char *member, const json_t *arg, const char *why)
{
    char rv[384];
    api_pyrepr(arg, rv, sizeof rv);
    return fy_fail(err, FY_E_BAD_REQUEST, "Invalid input for field/attribute %s. Value: %s. %s",
                   member, rv, why);
}

/* "Additional properties are not allowed ('a', 'b' were unexpected)" */
static fy_code check_extra(const json_t *arg, const char *member, const char *const *allowed,
                           size_t nallowed, fy_err *err)
{
    char list[256] = "";
    size_t n = 0, len = 0;
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *)arg, k, v) {
        if (in_list(k, allowed, nallowed))
            continue;
        char r[128];
        json_t *ks = json_string(k);
        api_pyrepr(ks, r, sizeof r);
        json_decref(ks);
        int w = snprintf(list + len, sizeof list - len, "%s%s", n ? ", " : "", r);
        if (w > 0 && (size_t)w < sizeof list - len)
            len += (size_t)w;
        n++;
    }
    if (n == 0)
        return FY_E_OK;
    char why[320];
    snprintf(why, sizeof why, "Additional properties are not allowed (%s %s unexpected)", list,
             n == 1 ? "was" : "were");
    return whole_fail(err, member, arg, why);
}

fy_code api_live_args_parse(const json_t *arg, int mv_minor, api_live_args *ret, fy_err *err)
{
    const char *member = "os-migrateLive";
    if (!json_is_object(arg)) {
        char sv[256], rv[256];
        pystr(arg, sv, sizeof sv);
        api_pyrepr(arg, rv, sizeof rv);
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Invalid input for field/attribute %s. Value: %s. %s is not of type "
                       "'object'",
                       member, sv, rv);
    }
    bool v225 = mv_minor >= 25, force_ok = mv_minor >= 30 && mv_minor < 68;
    api_live_args a = {.block_migration = API_BM_FALSE};
    int bm = 0, doc = 0, force = 0;
    fy_code rc = check_bool_field(arg, "block_migration", v225, &bm, err);
    if (rc == FY_E_OK && !v225)
        rc = check_bool_field(arg, "disk_over_commit", false, &doc, err);
    if (rc == FY_E_OK)
        rc = check_host(json_object_get(arg, "host"), &a.host, err);
    if (rc == FY_E_OK && force_ok)
        rc = check_bool_field(arg, "force", false, &force, err);
    if (rc != FY_E_OK)
        return rc;
    static const char *const req_old[] = {"block_migration", "disk_over_commit", "host"};
    static const char *const req_new[] = {"block_migration", "host"};
    const char *const *req = v225 ? req_new : req_old;
    size_t nreq = v225 ? ELEMENTSOF(req_new) : ELEMENTSOF(req_old);
    for (size_t i = 0; i < nreq; i++) {
        if (json_object_get(arg, req[i]))
            continue;
        char why[64];
        snprintf(why, sizeof why, "'%s' is a required property", req[i]);
        return whole_fail(err, member, arg, why);
    }
    /* Before 2.25 disk_over_commit; 2.30 .. 2.67 force. */
    static const char *const allowed_old[] = {"block_migration", "host", "disk_over_commit"};
    static const char *const allowed_new[] = {"block_migration", "host", "force"};
    rc = check_extra(arg, member, v225 ? allowed_new : allowed_old, force_ok || !v225 ? 3 : 2, err);
    if (rc != FY_E_OK)
        return rc;
    a.block_migration = bm == 2 ? API_BM_AUTO : bm == 1 ? API_BM_TRUE : API_BM_FALSE;
    a.force = force == 1;
    *ret = a;
    return FY_E_OK;
}

/* ---- ISO 8601 query times ---- */

static bool digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

bool api_parse_iso_time(const char *s, char *out, size_t size)
{
    /* YYYY-MM-DD[(T| )HH:MM[:SS[.frac]]][Z|(+|-)HH[:]MM] */
    size_t n = s ? strlen(s) : 0;
    if (n < 10 || n > 40 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
        !digits(s + 8, 2))
        return false;
    const char *p = s + 10;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!digits(p, 2) || p[2] != ':' || !digits(p + 3, 2))
            return false;
        p += 5;
        if (*p == ':') {
            if (!digits(p + 1, 2))
                return false;
            p += 3;
            if (*p == '.' || *p == ',') {
                p++;
                if (!isdigit((unsigned char)*p))
                    return false;
                while (isdigit((unsigned char)*p))
                    p++;
            }
        }
    }
    bool tz = false;
    if (*p == 'Z' || *p == 'z') {
        tz = true;
        p++;
    } else if (*p == '+' || *p == '-') {
        if (!digits(p + 1, 2))
            return false;
        p += 3;
        if (*p == ':')
            p++;
        if (*p && !digits(p, 2))
            return false;
        if (*p)
            p += 2;
        tz = true;
    }
    if (*p)
        return false;
    int w = snprintf(out, size, "%s%s", s, tz ? "" : "+00:00");
    return w > 0 && (size_t)w < size;
}

/* ---- the action ---- */

typedef struct live_ctx {
    fy_req *req;
    const api_live_args *args;
    const char *mig_uuid;
} live_ctx;

static fy_code host_must_exist(const char *host, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL;
    const char *p[] = {host};
    fy_code rc = fy_db_exec(&api_sql_compute_host_get, p, &res, err);
    if (rc == FY_E_OK && PQntuples(res) == 0)
        rc = fy_fail(err, FY_E_BAD_REQUEST, "Compute host %s could not be found.", host);
    return rc;
}

static fy_code live_extra(PGresult *inst, void *arg, fy_err *err)
{
    live_ctx *c = arg;
    if (c->args->host) {
        fy_code rc = host_must_exist(c->args->host, err);
        if (rc != FY_E_OK)
            return rc;
    }
    _cleanup_json_ json_t *flavor = json_loads(fy_db_str(inst, 0, "flavor"), 0, NULL);
    const char *fid = fy_json_str(flavor, "flavorid");
    api_mig_row m = {
        .uuid = c->mig_uuid,
        .instance_uuid = fy_db_str(inst, 0, "uuid"),
        .migration_type = "live-migration",
        .status = "accepted",
        .source_compute = fy_db_str(inst, 0, "host"),
        .source_node = fy_db_str(inst, 0, "node"),
        .dest_compute = c->args->host,
        .old_flavorid = fid,
        .new_flavorid = fid,
        .user_id = c->req->auth.user_id,
        .project_id = c->req->auth.project_id,
    };
    return api_migration_insert(&m, err);
}

/* Below 2.34 Nova's API waited for the conductor's pre-checks; so do we, bounded. */
#define PRECHECK_WAIT_MS 30000
#define PRECHECK_POLL_MS 100

static fy_code wait_precheck(const char *mig_uuid, fy_err *err)
{
    uint64_t deadline = fy_now_ms() + PRECHECK_WAIT_MS;
    const char *p[] = {mig_uuid};
    for (;;) {
        _cleanup_pgres_ PGresult *res = NULL;
        fy_code rc = fy_db_exec_one(&api_sql_mig_status, p, &res, err);
        if (rc != FY_E_OK)
            return rc;
        const char *st = fy_db_str(res, 0, "status");
        fy_mig_status s = fy_mig_status_from_name(st);
        if (s == FY_MIG_ERROR || s == FY_MIG_FAILED) {
            const char *why = fy_db_str(res, 0, "error");
            return fy_fail(err, FY_E_BAD_REQUEST, "%s",
                           why && *why ? why
                                       : "No valid host was found. There are not enough hosts "
                                         "available.");
        }
        if (s != FY_MIG_ACCEPTED && s != FY_MIG_QUEUED && s != FY_MIG_PREPARING)
            return FY_E_OK;
        if (fy_now_ms() >= deadline) {
            fy_debug("migration %s still %s after the pre-check wait", mig_uuid, st);
            return FY_E_OK;
        }
        usleep(PRECHECK_POLL_MS * 1000);
    }
}

fy_code api_action_live_migrate(fy_req *req, fy_resp *resp, const char *server_id, json_t *arg,
                                fy_err *err)
{
    api_live_args a;
    fy_code rc = api_live_args_parse(arg, req->mv_minor, &a, err);
    if (rc != FY_E_OK)
        return rc;
    char mig_uuid[FY_UUID_LEN + 1];
    fy_uuid_v4(mig_uuid);
    json_t *bm = a.block_migration == API_BM_AUTO ? json_string("auto")
                                                  : json_boolean(a.block_migration == API_BM_TRUE);
    _cleanup_json_ json_t *params =
        json_pack("{s:s?, s:o, s:b}", "host", a.host, "block_migration", bm, "force", a.force);
    _cleanup_free_ char *params_json = params ? fy_json_dump(params) : NULL;
    if (!params_json)
        return fy_fail(err, FY_E_NOMEM, NULL);
    static const char *const from[] = {"active", "paused", NULL};
    live_ctx c = {.req = req, .args = &a, .mig_uuid = mig_uuid};
    api_transition t = {
        .rule = "os_compute_api:os-migrate-server:migrate_live",
        .conflict_name = "os-migrateLive",
        .vm_states = from,
        .new_task_state = "migrating",
        .task_kind = "live_migrate",
        .action = "live-migration",
        .migration_uuid = mig_uuid,
        .params_json = params_json,
        .extra = live_extra,
        .extra_arg = &c,
    };
    rc = api_server_transition(req, server_id, &t, err);
    if (rc == FY_E_OK && !api_mv_ge(req, 2, 34))
        rc = wait_precheck(mig_uuid, err);
    if (rc != FY_E_OK)
        return rc;
    resp->status = 202;
    return FY_E_OK;
}
