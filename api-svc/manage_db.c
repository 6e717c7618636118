/* ferry-manage db sync | db version | service list */
#include <stdio.h>
#include "fy_util.h"
#include "manage.h"

int manage_db_sync(const manage_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    const char *pos[1];
    int npos;
    if (!manage_parse(argc, argv, NULL, pos, 0, &npos))
        return manage_usage("usage: db sync");
    fy_err e;
    int cur = 0;
    if (fy_schema_sync(&e) != FY_E_OK || fy_schema_current(&cur, &e) != FY_E_OK)
        return manage_fail(&e);
    printf("schema at version %d\n", cur);
    return MANAGE_OK;
}

int manage_db_version(const manage_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    const char *pos[1];
    int npos;
    if (!manage_parse(argc, argv, NULL, pos, 0, &npos))
        return manage_usage("usage: db version");
    fy_err e;
    int cur = 0;
    if (fy_schema_current(&cur, &e) != FY_E_OK)
        return manage_fail(&e);
    int latest = fy_schema_latest();
    printf("schema at version %d (this binary: %d)%s\n", cur, latest,
           cur < latest ? "; run ferry-manage db sync"
                        : cur > latest ? "; the database is newer than this binary" : "");
    return MANAGE_OK;
}

static void print_services(PGresult *r)
{
    printf("%-5s %-24s %-18s %-10s %-9s %-6s %s\n", "ID", "Host", "Binary", "Zone", "Status",
           "State", "Updated");
    for (int i = 0; i < PQntuples(r); i++) {
        const char *seen = fy_db_str(r, i, "last_seen");
        printf("%-5s %-24s %-18s %-10s %-9s %-6s %s\n", fy_db_str(r, i, "id"),
               fy_db_str(r, i, "host"), fy_db_str(r, i, "binary"), fy_db_str(r, i, "zone"),
               fy_db_bool(r, i, "disabled") ? "disabled" : "enabled",
               fy_db_bool(r, i, "up") ? "up" : "down", seen ? seen : "-");
    }
}

int manage_service_list(const manage_ctx *ctx, int argc, char **argv)
{
    const char *down = NULL, *pos[1];
    const manage_opt opts[] = {{"down-time", &down}, {NULL, NULL}};
    int npos;
    if (!manage_parse(argc, argv, opts, pos, 0, &npos))
        return manage_usage("usage: service list [--down-time SECONDS]");
    long long secs = ctx->service_down_time;
    if (down && !fy_parse_ll(down, 0, 86400 * 365, &secs))
        return manage_usage("--down-time must be a number of seconds, got '%s'", down);
    char s[24];
    snprintf(s, sizeof(s), "%lld", secs);
    const char *const p[] = {s};
    fy_err e;
    _cleanup_pgres_ PGresult *r = NULL;
    if (fy_schema_check(&e) != FY_E_OK || fy_db_exec(&manage_sql_service_list, p, &r, &e) != FY_E_OK)
        return manage_fail(&e);
    print_services(r);
    return MANAGE_OK;
}
