/* migrate (cold migration, admin) and resize (owner): Nova's body checks, then in
 * one transaction the instance's resize_prep, the migration row, the new flavor,
 * the quota reservation of an upsize, the action and the conductor task. */
#include <string.h>
#include "api_migrations.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_util.h"

fy_code api_migration_insert(const api_mig_row *m, fy_err *err)
{
    const char *user = fy_uuid_valid(m->user_id) ? m->user_id : NULL;
    const char *project = fy_uuid_valid(m->project_id) ? m->project_id : NULL;
    const char *p[] = {m->uuid,          m->instance_uuid, m->migration_type, m->status,
                       m->source_compute, m->source_node,  m->dest_compute,   m->old_flavorid,
                       m->new_flavorid,   user,            project};
    return fy_db_exec(&api_sql_mig_insert, p, NULL, err);
}

static fy_code bad_member(fy_err *err, const char *field, const json_t *v, const char *why)
{
    char rv[256];
    api_pyrepr(v, rv, sizeof rv);
    /* str() of a string value is the bare text */
    return fy_fail(err, FY_E_BAD_REQUEST, "Invalid input for field/attribute %s. Value: %s. %s %s",
                   field, json_is_string(v) ? json_string_value(v) : rv, rv, why);
}

static fy_code extra_keys(const json_t *obj, const char *member, const char *const *allowed,
                          size_t n, fy_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *)obj, k, v) {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++)
            ok = strcmp(k, allowed[i]) == 0;
        if (!ok) {
            char rv[256];
            api_pyrepr(obj, rv, sizeof rv);
            return fy_fail(err, FY_E_BAD_REQUEST,
                           "Invalid input for field/attribute %s. Value: %s. Additional properties "
                           "are not allowed ('%s' was unexpected)",
                           member, rv, k);
        }
    }
    return FY_E_OK;
}

/* A flavor snapshot (instances.flavor shape) of a flavors row. */
static char *flavor_snapshot(PGresult *res)
{
    json_t *specs = json_loads(fy_db_str(res, 0, "extra_specs"), 0, NULL);
    _cleanup_json_ json_t *snap = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o}", "flavorid", fy_db_str(res, 0, "flavorid"),
        "name", fy_db_str(res, 0, "name"), "vcpus", (json_int_t)fy_db_ll(res, 0, "vcpus", 0),
        "memory_mb", (json_int_t)fy_db_ll(res, 0, "memory_mb", 0), "root_gb",
        (json_int_t)fy_db_ll(res, 0, "root_gb", 0), "ephemeral_gb",
        (json_int_t)fy_db_ll(res, 0, "ephemeral_gb", 0), "swap_mb",
        (json_int_t)fy_db_ll(res, 0, "swap_mb", 0), "extra_specs", specs ? specs : json_object());
    return snap ? fy_json_dump(snap) : NULL;
}

/* State shared by both actions' transaction callbacks. */
typedef struct move_ctx {
    fy_req *req;
    api_transition t;
    char mig_uuid[FY_UUID_LEN + 1];
    const char *host;       /* migrate: requested destination */
    char flavor_ref[128];   /* resize: requested flavor id */
    char *new_flavor;       /* snapshot (owned) */
    char *params;           /* task params (owned) */
} move_ctx;

static void move_ctx_reset(move_ctx *c)
{
    free(c->new_flavor);
    free(c->params);
    c->new_flavor = c->params = NULL;
}

static fy_code record_move(move_ctx *c, PGresult *inst, const char *type, const char *new_fid,
                           fy_err *err)
{
    _cleanup_json_ json_t *cur = json_loads(fy_db_str(inst, 0, "flavor"), 0, NULL);
    api_mig_row m = {
        .uuid = c->mig_uuid,
        .instance_uuid = fy_db_str(inst, 0, "uuid"),
        .migration_type = type,
        .status = "pre-migrating",
        .source_compute = fy_db_str(inst, 0, "host"),
        .source_node = fy_db_str(inst, 0, "node"),
        .old_flavorid = fy_json_str(cur, "flavorid"),
        .new_flavorid = new_fid ? new_fid : fy_json_str(cur, "flavorid"),
        .user_id = c->req->auth.user_id,
        .project_id = c->req->auth.project_id,
    };
    fy_code rc = api_migration_insert(&m, err);
    if (rc != FY_E_OK)
        return rc;
    const char *p[] = {m.instance_uuid, c->new_flavor ? c->new_flavor : fy_db_str(inst, 0, "flavor")};
    return fy_db_exec(&api_sql_mig_instance_new_flavor, p, NULL, err);
}

/* ---- migrate ---- */

static fy_code migrate_extra(PGresult *inst, void *arg, fy_err *err)
{
    move_ctx *c = arg;
    move_ctx_reset(c);
    if (c->host) {
        fy_code rc = api_policy_check(c->req, "os_compute_api:os-migrate-server:migrate:host",
                                      fy_db_str(inst, 0, "project_id"), err);
        if (rc != FY_E_OK)
            return rc;
        if (fy_streq(c->host, fy_db_str(inst, 0, "host")))
            return fy_fail(err, FY_E_BAD_REQUEST,
                           "Cannot migrate to the host where the server exists.");
        _cleanup_pgres_ PGresult *res = NULL;
        const char *p[] = {c->host};
        rc = fy_db_exec(&api_sql_compute_host_get, p, &res, err);
        if (rc != FY_E_OK)
            return rc;
        if (PQntuples(res) == 0)
            return fy_fail(err, FY_E_BAD_REQUEST, "Compute host %s could not be found.", c->host);
    }
    _cleanup_json_ json_t *params = json_pack("{s:s?}", "host", c->host);
    c->params = params ? fy_json_dump(params) : NULL;
    if (!c->params)
        return fy_fail(err, FY_E_NOMEM, NULL);
    c->t.params_json = c->params;
    return record_move(c, inst, "migration", NULL, err);
}

/* 2.56: {"migrate": null | {"host": null | "h"}}; earlier versions ignore the body. */
static fy_code parse_migrate(const fy_req *req, const json_t *arg, const char **host, fy_err *err)
{
    *host = NULL;
    if (!api_mv_ge(req, 2, 56) || json_is_null(arg))
        return FY_E_OK;
    if (!json_is_object(arg))
        return bad_member(err, "migrate", arg, "is not of type 'object', 'null'");
    const json_t *h = json_object_get(arg, "host");
    if (h && !json_is_null(h) && !json_is_string(h))
        return bad_member(err, "host", h, "is not of type 'string', 'null'");
    if (json_is_string(h) && json_string_length(h) > 255)
        return bad_member(err, "host", h, "is too long");
    static const char *const allowed[] = {"host"};
    fy_code rc = extra_keys(arg, "migrate", allowed, ELEMENTSOF(allowed), err);
    if (rc == FY_E_OK && json_is_string(h))
        *host = json_string_value(h);
    return rc;
}

static fy_code run_move(fy_req *req, fy_resp *resp, const char *server_id, move_ctx *c,
                        fy_err *err)
{
    fy_code rc = api_server_transition(req, server_id, &c->t, err);
    move_ctx_reset(c);
    if (rc != FY_E_OK)
        return rc;
    resp->status = 202;
    return FY_E_OK;
}

static const char *const move_from[] = {"active", "stopped", NULL};

fy_code api_action_migrate(fy_req *req, fy_resp *resp, const char *server_id, json_t *arg,
                           fy_err *err)
{
    move_ctx c = {.req = req};
    fy_code rc = parse_migrate(req, arg, &c.host, err);
    if (rc != FY_E_OK)
        return rc;
    fy_uuid_v4(c.mig_uuid);
    c.t = (api_transition){
        .rule = "os_compute_api:os-migrate-server:migrate",
        .conflict_name = "migrate",
        .vm_states = move_from,
        .new_task_state = "resize_prep",
        .task_kind = "migrate",
        .action = "migrate",
        .migration_uuid = c.mig_uuid,
        .extra = migrate_extra,
        .extra_arg = &c,
    };
    return run_move(req, resp, server_id, &c, err);
}

/* ---- resize ---- */

static fy_code load_flavor(const move_ctx *c, PGresult **ret, fy_err *err)
{
    const char *p[] = {c->flavor_ref};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = fy_db_exec(&api_sql_srv_flavor_get, p, &res, err);
    if (rc != FY_E_OK)
        return rc;
    if (PQntuples(res) != 1 || (!fy_db_bool(res, 0, "is_public") && !c->req->auth.is_admin))
        return fy_fail(err, FY_E_BAD_REQUEST, "Flavor %s could not be found.", c->flavor_ref);
    *ret = TAKE_PTR(res);
    return FY_E_OK;
}

static fy_code resize_extra(PGresult *inst, void *arg, fy_err *err)
{
    move_ctx *c = arg;
    move_ctx_reset(c);
    _cleanup_pgres_ PGresult *fl = NULL;
    fy_code rc = load_flavor(c, &fl, err);
    if (rc != FY_E_OK)
        return rc;
    api_flavor_size cur = {0};
    api_flavor_size_of(fy_db_str(inst, 0, "flavor"), &cur);
    _cleanup_json_ json_t *curj = json_loads(fy_db_str(inst, 0, "flavor"), 0, NULL);
    const char *new_fid = fy_db_str(fl, 0, "flavorid");
    bool same = fy_streq(fy_json_str(curj, "flavorid"), new_fid);
    if (!same && fy_db_ll(fl, 0, "root_gb", 0) < cur.root_gb)
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Server disk was unable to be resized because: Resizing to a smaller disk "
                       "flavor is not allowed.");
    if (same)
        return fy_fail(err, FY_E_BAD_REQUEST, "When resizing, instances must change flavor!");
    c->new_flavor = flavor_snapshot(fl);
    if (!c->new_flavor)
        return fy_fail(err, FY_E_NOMEM, NULL);
    rc = api_quota_reserve(fy_db_str(inst, 0, "project_id"), c->mig_uuid,
                           fy_db_ll(fl, 0, "vcpus", 0) - cur.vcpus,
                           fy_db_ll(fl, 0, "memory_mb", 0) - cur.memory_mb, err);
    if (rc != FY_E_OK)
        return rc;
    c->params = fy_strdup_printf("{\"flavor\": %s}", c->new_flavor);
    if (!c->params)
        return fy_fail(err, FY_E_NOMEM, NULL);
    c->t.params_json = c->params;
    return record_move(c, inst, "resize", new_fid, err);
}

static const char *ref_tail(const char *ref)
{
    const char *slash = strrchr(ref, '/');
    return slash ? slash + 1 : ref;
}

static fy_code parse_resize(const json_t *arg, move_ctx *c, fy_err *err)
{
    if (!json_is_object(arg))
        return bad_member(err, "resize", arg, "is not of type 'object'");
    const json_t *f = json_object_get(arg, "flavorRef");
    if (f && !json_is_string(f) && !json_is_integer(f))
        return bad_member(err, "flavorRef", f, "is not of type 'string', 'integer'");
    if (json_is_string(f) && json_string_length(f) == 0)
        return bad_member(err, "flavorRef", f, "is too short");
    const json_t *dc = json_object_get(arg, "OS-DCF:diskConfig");
    if (dc && !(json_is_string(dc) && (!strcmp(json_string_value(dc), "AUTO") ||
                                       !strcmp(json_string_value(dc), "MANUAL"))))
        return bad_member(err, "OS-DCF:diskConfig", dc, "is not one of ['AUTO', 'MANUAL']");
    if (!f) {
        char rv[256];
        api_pyrepr(arg, rv, sizeof rv);
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Invalid input for field/attribute resize. Value: %s. 'flavorRef' is a "
                       "required property",
                       rv);
    }
    static const char *const allowed[] = {"flavorRef", "OS-DCF:diskConfig"};
    fy_code rc = extra_keys(arg, "resize", allowed, ELEMENTSOF(allowed), err);
    if (rc != FY_E_OK)
        return rc;
    if (json_is_integer(f))
        snprintf(c->flavor_ref, sizeof c->flavor_ref, "%lld", (long long)json_integer_value(f));
    else
        snprintf(c->flavor_ref, sizeof c->flavor_ref, "%s", ref_tail(json_string_value(f)));
    return FY_E_OK;
}

fy_code api_action_resize(fy_req *req, fy_resp *resp, const char *server_id, json_t *arg,
                          fy_err *err)
{
    move_ctx c = {.req = req};
    fy_code rc = parse_resize(arg, &c, err);
    if (rc != FY_E_OK)
        return rc;
    fy_uuid_v4(c.mig_uuid);
    c.t = (api_transition){
        .rule = "os_compute_api:servers:resize",
        .conflict_name = "resize",
        .vm_states = move_from,
        .new_task_state = "resize_prep",
        .task_kind = "resize",
        .action = "resize",
        .migration_uuid = c.mig_uuid,
        .extra = resize_extra,
        .extra_arg = &c,
    };
    return run_move(req, resp, server_id, &c, err);
}
