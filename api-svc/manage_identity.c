/* ferry-manage identity helpers and `user create`, `project create`. */
#include <stdio.h>
#include <string.h>
#include "fy_auth.h"
#include "fy_util.h"
#include "manage.h"

static fy_code ensure(const fy_sql *s, const char *name, char out_id[37], fy_err *err)
{
    char id[FY_UUID_LEN + 1];
    fy_uuid_v4(id);
    const char *const p[] = {id, name};
    _cleanup_pgres_ PGresult *r = NULL;
    fy_code rc = fy_db_exec_one(s, p, &r, err);
    if (rc == FY_E_OK)
        snprintf(out_id, 37, "%s", fy_db_str(r, 0, "id"));
    return rc;
}

fy_code manage_ensure_project(const char *name, char out_id[37], fy_err *err)
{
    return ensure(&manage_sql_project_ensure, name, out_id, err);
}

fy_code manage_ensure_role(const char *name, char out_id[37], fy_err *err)
{
    return ensure(&manage_sql_role_ensure, name, out_id, err);
}

fy_code manage_assign_role(const char *user_id, const char *project_id, const char *role_id,
                           fy_err *err)
{
    const char *const p[] = {user_id, project_id, role_id};
    return fy_db_exec(&manage_sql_role_assign, p, NULL, err);
}

typedef struct user_req {
    const char *name, *hash, *project, *role;
} user_req;

static fy_code user_create_txn(void *arg, fy_err *err)
{
    const user_req *u = arg;
    char pid[37], rid[37], uid[FY_UUID_LEN + 1];
    fy_code rc = manage_ensure_project(u->project, pid, err);
    if (rc == FY_E_OK)
        rc = manage_ensure_role(u->role, rid, err);
    if (rc != FY_E_OK)
        return rc;
    fy_uuid_v4(uid);
    const char *const p[] = {uid, u->name, u->hash};
    rc = fy_db_exec(&manage_sql_user_insert, p, NULL, err);
    if (rc == FY_E_CONFLICT)
        return fy_fail(err, FY_E_CONFLICT, "user '%s' already exists", u->name);
    if (rc != FY_E_OK)
        return rc;
    return manage_assign_role(uid, pid, rid, err);
}

static bool valid_name(const char *s)
{
    return s && *s && strlen(s) <= 255;
}

int manage_user_create(const manage_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    const char *pw = NULL, *project = NULL, *role = "member", *pos[1];
    const manage_opt opts[] = {
        {"password", &pw}, {"project", &project}, {"role", &role}, {NULL, NULL}};
    int npos;
    const char *use = "usage: user create NAME --password PW --project PROJECT [--role ROLE]";
    if (!manage_parse(argc, argv, opts, pos, 1, &npos) || npos != 1)
        return manage_usage("%s", use);
    if (!valid_name(pos[0]) || !valid_name(project) || !valid_name(role) || !pw || !*pw)
        return manage_usage("%s (names 1-255 characters, password not empty)", use);
    fy_err e;
    char hash[256];
    if (fy_schema_check(&e) != FY_E_OK || fy_password_hash(pw, hash, sizeof(hash), &e) != FY_E_OK)
        return manage_fail(&e);
    user_req u = {pos[0], hash, project, role};
    if (fy_db_txn(user_create_txn, &u, false, &e) != FY_E_OK)
        return manage_fail(&e);
    printf("user %s created with role %s on project %s\n", u.name, u.role, u.project);
    return MANAGE_OK;
}

int manage_project_create(const manage_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    const char *pos[1];
    int npos;
    if (!manage_parse(argc, argv, NULL, pos, 1, &npos) || npos != 1 || !valid_name(pos[0]))
        return manage_usage("usage: project create NAME");
    fy_err e;
    char id[FY_UUID_LEN + 1];
    fy_uuid_v4(id);
    const char *const p[] = {id, pos[0]};
    if (fy_schema_check(&e) != FY_E_OK)
        return manage_fail(&e);
    fy_code rc = fy_db_exec(&manage_sql_project_insert, p, NULL, &e);
    if (rc == FY_E_CONFLICT) {
        fprintf(stderr, "ferry-manage: project '%s' already exists\n", pos[0]);
        return MANAGE_FAIL;
    }
    if (rc != FY_E_OK)
        return manage_fail(&e);
    printf("project %s created (id %s)\n", pos[0], id);
    return MANAGE_OK;
}
