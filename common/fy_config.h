/* fy_config — table-driven configuration: defaults -> file -> environment.
 *
 * Each service declares one table of fy_cfg_opt describing fields of its own
 * config struct.  The file is `key = value` lines ('#' comments, blank lines ok).
 * The environment variable for key "db_url" is FERRY_DB_URL.  A bad value or an
 * unknown key in the file stops start-up with a message naming key and source. */
#pragma once
#include <stddef.h>
#include <stdio.h>
#include "fy_err.h"

typedef enum { FY_CFG_STR, FY_CFG_SECRET, FY_CFG_INT, FY_CFG_BOOL, FY_CFG_DOUBLE } fy_cfg_type;

typedef struct fy_cfg_opt {
    const char *key;
    fy_cfg_type type;
    const char *def;     /* default as text; NULL = no default (required if FY_CFG_REQUIRED) */
    long long min, max;  /* bounds for INT (ignored when min == max == 0) */
    size_t offset;       /* offsetof(struct, field): char * (owned, malloc'd), long long, bool, double */
    unsigned flags;
    const char *help;
} fy_cfg_opt;

#define FY_CFG_REQUIRED 1u

/* file may be NULL (no file).  On failure nothing needs freeing beyond fy_config_free. */
fy_code fy_config_load(const fy_cfg_opt *table, size_t n, void *dst, const char *file, fy_err *err);
void fy_config_free(const fy_cfg_opt *table, size_t n, void *dst);
/* Prints key = value, secrets as "****". */
void fy_config_dump(const fy_cfg_opt *table, size_t n, const void *dst, FILE *out);
