/* ferry-manage bootstrap: roles, the admin account, default flavors and network. */
#include <stdio.h>
#include <string.h>
#include "fy_auth.h"
#include "fy_util.h"
#include "manage.h"

typedef struct flavor_def {
    const char *id, *name;
    int vcpus, ram_mb, disk_gb;
} flavor_def;

/* 1-3 as the reference Nova deployment reports them (reference/nova/006), 4-5
 * Nova's classic sizes, 6-8 small enough for many fake or TCG guests per host. */
static const flavor_def flavors[] = {
    {"1", "m1.tiny", 1, 512, 1},      {"2", "m1.small", 1, 1024, 2},
    {"3", "m1.medium", 2, 2048, 4},   {"4", "m1.large", 4, 8192, 80},
    {"5", "m1.xlarge", 8, 16384, 160}, {"6", "ferry.nano", 1, 64, 1},
    {"7", "ferry.micro", 1, 128, 1},  {"8", "ferry.mini", 2, 256, 2},
};

static const char *const roles[] = {"admin", "member", "reader"};

typedef struct boot_req {
    const char *user, *hash, *project;
    bool user_created;
    int flavors_created;
    bool network_created;
} boot_req;

static fy_code ensure_flavors(boot_req *b, fy_err *err)
{
    b->flavors_created = 0;
    for (size_t i = 0; i < sizeof(flavors) / sizeof(flavors[0]); i++) {
        const flavor_def *f = &flavors[i];
        char v[12], m[12], d[12];
        snprintf(v, sizeof(v), "%d", f->vcpus);
        snprintf(m, sizeof(m), "%d", f->ram_mb);
        snprintf(d, sizeof(d), "%d", f->disk_gb);
        const char *const p[] = {f->id, f->name, v, m, d};
        _cleanup_pgres_ PGresult *r = NULL;
        fy_code rc = fy_db_exec(&manage_sql_flavor_ensure, p, &r, err);
        if (rc != FY_E_OK)
            return rc;
        b->flavors_created += (int)fy_db_affected(r);
    }
    return FY_E_OK;
}

static fy_code ensure_network(boot_req *b, fy_err *err)
{
    char id[FY_UUID_LEN + 1];
    fy_uuid_v4(id);
    const char *const p[] = {id, "private", "10.0.0.0/24"};
    _cleanup_pgres_ PGresult *r = NULL;
    fy_code rc = fy_db_exec(&manage_sql_network_ensure, p, &r, err);
    if (rc == FY_E_OK)
        b->network_created = fy_db_affected(r) > 0;
    return rc;
}

static fy_code ensure_admin(boot_req *b, const char *admin_role, fy_err *err)
{
    char pid[37], sid[37], uid[FY_UUID_LEN + 1];
    fy_code rc = manage_ensure_project(b->project, pid, err);
    if (rc == FY_E_OK)
        rc = manage_ensure_project("service", sid, err);
    if (rc != FY_E_OK)
        return rc;
    fy_uuid_v4(uid);
    const char *const p[] = {uid, b->user, b->hash};
    _cleanup_pgres_ PGresult *r = NULL;
    rc = fy_db_exec_one(&manage_sql_user_upsert, p, &r, err);
    if (rc != FY_E_OK)
        return rc;
    b->user_created = fy_db_bool(r, 0, "created");
    return manage_assign_role(fy_db_str(r, 0, "id"), pid, admin_role, err);
}

static fy_code bootstrap_txn(void *arg, fy_err *err)
{
    boot_req *b = arg;
    char admin_role[37] = "";
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        char id[37];
        fy_code rc = manage_ensure_role(roles[i], id, err);
        if (rc != FY_E_OK)
            return rc;
        if (strcmp(roles[i], "admin") == 0)
            snprintf(admin_role, sizeof(admin_role), "%s", id);
    }
    fy_code rc = ensure_admin(b, admin_role, err);
    if (rc == FY_E_OK)
        rc = ensure_flavors(b, err);
    if (rc == FY_E_OK)
        rc = ensure_network(b, err);
    return rc;
}

int manage_bootstrap(const manage_ctx *ctx, int argc, char **argv)
{
    const char *pw = NULL, *user = "admin", *project = "admin", *region = NULL, *pos[1];
    const manage_opt opts[] = {{"admin-password", &pw},
                               {"admin-user", &user},
                               {"project", &project},
                               {"region", &region},
                               {NULL, NULL}};
    int npos;
    const char *use = "usage: bootstrap --admin-password PW [--admin-user NAME] "
                      "[--project NAME] [--region NAME]";
    if (!manage_parse(argc, argv, opts, pos, 0, &npos))
        return manage_usage("%s", use);
    if (!pw || !*pw)
        return manage_usage("bootstrap needs a non-empty --admin-password");
    if (!*user || !*project || strlen(user) > 255 || strlen(project) > 255)
        return manage_usage("admin user and project names must be 1-255 characters");
    fy_err e;
    char hash[256];
    if (fy_schema_check(&e) != FY_E_OK || fy_password_hash(pw, hash, sizeof(hash), &e) != FY_E_OK)
        return manage_fail(&e);
    boot_req b = {.user = user, .hash = hash, .project = project};
    if (fy_db_txn(bootstrap_txn, &b, false, &e) != FY_E_OK)
        return manage_fail(&e);

    printf("user %s %s, admin on project %s\n", user,
           b.user_created ? "created" : "exists (password updated)", project);
    printf("roles: admin, member, reader; flavors created: %d; network private %s\n",
           b.flavors_created, b.network_created ? "created" : "exists");
    /* The catalog's region is the API's own setting, not stored in the database. */
    if (region && !fy_streq(region, ctx->region))
        fprintf(stderr, "ferry-manage: note: the API announces region '%s'; set region = %s "
                        "in its config to change it\n", ctx->region, region);
    return MANAGE_OK;
}
