/* ferry-manage: global options, database set-up and command dispatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "fy_log.h"
#include "manage.h"

static const char usage_text[] =
    "usage: ferry-manage [--config FILE] [--db-url URL] COMMAND [ARGS]\n"
    "\n"
    "The database URL is taken from --db-url, else the config file (db_url),\n"
    "else the environment (FERRY_DB_URL).\n"
    "\n"
    "commands:\n"
    "  db sync                       create or upgrade the schema\n"
    "  db version                    show the schema version\n"
    "  bootstrap --admin-password PW [--admin-user admin] [--project admin]\n"
    "            [--region RegionOne]\n"
    "                                roles, admin user and project, default flavors\n"
    "                                and network (safe to re-run; updates the password)\n"
    "  user create NAME --password PW --project PROJECT [--role member]\n"
    "  project create NAME\n"
    "  service list [--down-time SECONDS]\n";

typedef struct command {
    const char *word1, *word2;   /* word2 NULL for one-word commands */
    int (*fn)(const manage_ctx *ctx, int argc, char **argv);
} command;

static const command commands[] = {
    {"db", "sync", manage_db_sync},
    {"db", "version", manage_db_version},
    {"bootstrap", NULL, manage_bootstrap},
    {"user", "create", manage_user_create},
    {"project", "create", manage_project_create},
    {"service", "list", manage_service_list},
};

/* Global options come before the command; returns the index of the command word. */
static int parse_globals(int argc, char **argv, const char **config, const char **db_url)
{
    int i = 1;
    while (i < argc && strncmp(argv[i], "--", 2) == 0) {
        const char *a = argv[i];
        const char **dst = NULL;
        size_t n = 0;
        if (strncmp(a, "--config", 8) == 0 && (a[8] == '\0' || a[8] == '='))
            dst = config, n = 8;
        else if (strncmp(a, "--db-url", 8) == 0 && (a[8] == '\0' || a[8] == '='))
            dst = db_url, n = 8;
        else if (strcmp(a, "--help") == 0)
            return -2;
        else
            return -1;
        if (a[n] == '=') {
            *dst = a + n + 1;
        } else if (i + 1 < argc) {
            *dst = argv[++i];
        } else {
            return -1;
        }
        i++;
    }
    return i;
}

static const command *find_command(int argc, char **argv, int *used)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        const command *c = &commands[i];
        if (strcmp(argv[0], c->word1) != 0)
            continue;
        if (!c->word2) {
            *used = 1;
            return c;
        }
        if (argc > 1 && strcmp(argv[1], c->word2) == 0) {
            *used = 2;
            return c;
        }
    }
    return NULL;
}

/* --db-url wins over the config file, which already includes FERRY_DB_URL. */
static int run(const command *c, const char *config, const char *db_url, int argc, char **argv)
{
    api_config cfg = {0};
    manage_ctx ctx = {.region = "RegionOne", .service_down_time = 60};
    fy_err e;
    int rc = MANAGE_OK;
    if (config) {
        if (api_config_load(&cfg, config, &e) != FY_E_OK) {
            rc = manage_fail(&e);
            goto out;
        }
        ctx.region = cfg.region;
        ctx.service_down_time = cfg.service_down_time;
        if (!db_url)
            db_url = cfg.db_url;
    }
    if (!db_url || !*db_url)
        db_url = getenv("FERRY_DB_URL");
    if (!db_url || !*db_url) {
        rc = manage_usage("no database URL: use --db-url, --config or FERRY_DB_URL");
        goto out;
    }
    if (fy_db_init(db_url, "ferry-manage", &e) != FY_E_OK) {
        rc = manage_fail(&e);
        goto out;
    }
    rc = c->fn(&ctx, argc, argv);
    fy_db_shutdown();
out:
    api_config_free(&cfg);
    return rc;
}

int main(int argc, char **argv)
{
    fy_log_init("ferry-manage", FY_LOG_WARN, false);
    const char *config = NULL, *db_url = NULL;
    int i = parse_globals(argc, argv, &config, &db_url);
    if (i == -2 || (i > 0 && i < argc && strcmp(argv[i], "help") == 0)) {
        fputs(usage_text, stdout);
        return MANAGE_OK;
    }
    if (i < 0)
        return manage_usage("bad global option (only --config FILE and --db-url URL)");
    if (i >= argc) {
        fputs(usage_text, stderr);
        return MANAGE_USAGE;
    }
    int used = 0;
    const command *c = find_command(argc - i, argv + i, &used);
    if (!c)
        return manage_usage("unknown command '%s%s%s'", argv[i], i + 1 < argc ? " " : "",
                            i + 1 < argc ? argv[i + 1] : "");
    return run(c, config, db_url, argc - i - used, argv + i + used);
}
