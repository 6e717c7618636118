/* ferry-manage — the admin tool: schema, bootstrap, users/projects, services.
 * Exit codes: 0 success, 1 failure, 2 usage. */
#pragma once
#include <stdbool.h>
#include "fy_db.h"

enum { MANAGE_OK = 0, MANAGE_FAIL = 1, MANAGE_USAGE = 2 };

/* What every command may use; filled from --config / --db-url / FERRY_DB_URL. */
typedef struct manage_ctx {
    const char *region;          /* the API's configured region */
    long long service_down_time; /* seconds */
} manage_ctx;

/* Command-line options of one command: "--name value" or "--name=value". */
typedef struct manage_opt {
    const char *name;            /* without the leading "--" */
    const char **value;          /* set to the argument */
} manage_opt;

/* Parses argv[0..argc) into opts and up to max_pos positionals (*npos set).
 * Prints a message and returns false on an unknown option, a missing value or
 * too many positionals. */
bool manage_parse(int argc, char **argv, const manage_opt *opts, const char **pos, int max_pos,
                  int *npos);

/* Prints fy_err as "ferry-manage: <msg>" and returns MANAGE_FAIL. */
int manage_fail(const fy_err *e);
/* Prints a usage message for cmd and returns MANAGE_USAGE. */
int manage_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Commands: argv starts after the command words. */
int manage_db_sync(const manage_ctx *ctx, int argc, char **argv);
int manage_db_version(const manage_ctx *ctx, int argc, char **argv);
int manage_service_list(const manage_ctx *ctx, int argc, char **argv);
int manage_bootstrap(const manage_ctx *ctx, int argc, char **argv);
int manage_user_create(const manage_ctx *ctx, int argc, char **argv);
int manage_project_create(const manage_ctx *ctx, int argc, char **argv);

/* Shared identity steps (manage_identity.c), run inside a transaction. */
fy_code manage_ensure_project(const char *name, char out_id[37], fy_err *err);
fy_code manage_ensure_role(const char *name, char out_id[37], fy_err *err);
fy_code manage_assign_role(const char *user_id, const char *project_id, const char *role_id,
                           fy_err *err);

/* Statements (manage_sql.c). */
extern const fy_sql manage_sql_project_ensure;
extern const fy_sql manage_sql_project_insert;
extern const fy_sql manage_sql_role_ensure;
extern const fy_sql manage_sql_user_upsert;
extern const fy_sql manage_sql_user_insert;
extern const fy_sql manage_sql_role_assign;
extern const fy_sql manage_sql_flavor_ensure;
extern const fy_sql manage_sql_network_ensure;
extern const fy_sql manage_sql_service_list;
