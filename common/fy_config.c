/* fy_config — table-driven configuration: defaults -> file -> environment.
 *
 * dst must start zeroed (or freed with fy_config_free): string fields are
 * freed whenever a later source overrides them. */
#include "fy_config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fy_cleanup.h"
#include "fy_util.h"

#define CFG_FILE_MAX (1u << 20)
#define CFG_ENV_MAX 128
#define CFG_SRC_MAX (PATH_MAX + 32)

static void *field(void *dst, const fy_cfg_opt *o)
{
    return (char *)dst + o->offset;
}

static const void *cfield(const void *dst, const fy_cfg_opt *o)
{
    return (const char *)dst + o->offset;
}

static void env_name(const char *key, char out[CFG_ENV_MAX])
{
    size_t i = 0;
    int n = snprintf(out, CFG_ENV_MAX, "FERRY_");
    i = n > 0 ? (size_t)n : 0;
    for (const char *k = key; *k && i + 1 < CFG_ENV_MAX; k++)
        out[i++] = isalnum((unsigned char)*k) ? (char)toupper((unsigned char)*k) : '_';
    out[i] = '\0';
}

static bool parse_bool(const char *v, bool *ret)
{
    static const char *const yes[] = { "true", "yes", "1", "on" };
    static const char *const no[] = { "false", "no", "0", "off" };
    for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *ret = true;
            return true;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *ret = false;
            return true;
        }
    }
    return false;
}

static bool parse_double(const char *v, double *ret)
{
    if (!*v || isspace((unsigned char)*v))
        return false;
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (errno != 0 || *end != '\0' || !isfinite(d))
        return false;
    *ret = d;
    return true;
}

static bool int_bounded(const fy_cfg_opt *o)
{
    return !(o->min == 0 && o->max == 0);
}

static fy_code set_int(const fy_cfg_opt *o, void *dst, const char *v, const char *src, fy_err *err)
{
    long long x;
    if (!fy_parse_ll(v, LLONG_MIN, LLONG_MAX, &x))
        return fy_fail(err, FY_E_CONFIG, "%s: value '%.64s' from %s is not an integer", o->key,
                       v, src);
    if (int_bounded(o) && (x < o->min || x > o->max))
        return fy_fail(err, FY_E_CONFIG, "%s: %lld from %s is out of range [%lld, %lld]", o->key,
                       x, src, o->min, o->max);
    *(long long *)field(dst, o) = x;
    return FY_E_OK;
}

/* Stores one textual value into the field of o; src names where it came from. */
static fy_code set_value(const fy_cfg_opt *o, void *dst, const char *v, const char *src,
                         fy_err *err)
{
    switch (o->type) {
    case FY_CFG_STR:
    case FY_CFG_SECRET: {
        char *copy = strdup(v);
        if (!copy)
            return fy_fail(err, FY_E_NOMEM, NULL);
        char **slot = field(dst, o);
        free(*slot);
        *slot = copy;
        return FY_E_OK;
    }
    case FY_CFG_INT:
        return set_int(o, dst, v, src, err);
    case FY_CFG_BOOL: {
        bool b;
        if (!parse_bool(v, &b))
            return fy_fail(err, FY_E_CONFIG,
                           "%s: value '%.64s' from %s is not a boolean "
                           "(true/false/yes/no/1/0/on/off)",
                           o->key, v, src);
        *(bool *)field(dst, o) = b;
        return FY_E_OK;
    }
    case FY_CFG_DOUBLE: {
        double d;
        if (!parse_double(v, &d))
            return fy_fail(err, FY_E_CONFIG, "%s: value '%.64s' from %s is not a number", o->key,
                           v, src);
        *(double *)field(dst, o) = d;
        return FY_E_OK;
    }
    }
    return fy_fail(err, FY_E_INTERNAL, "%s: unknown option type %d", o->key, (int)o->type);
}

static const fy_cfg_opt *find_opt(const fy_cfg_opt *table, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].key, key) == 0)
            return &table[i];
    return NULL;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    return s;
}

static char *unquote(char *v)
{
    size_t len = strlen(v);
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
        v[len - 1] = '\0';
        return v + 1;
    }
    return v;
}

static fy_code load_line(const fy_cfg_opt *table, size_t n, void *dst, bool *seen, char *line,
                         const char *src, fy_err *err)
{
    char *s = trim(line);
    if (!*s || *s == '#')
        return FY_E_OK;
    char *eq = strchr(s, '=');
    if (!eq)
        return fy_fail(err, FY_E_CONFIG, "%s: expected 'key = value'", src);
    *eq = '\0';
    char *key = trim(s);
    char *val = unquote(trim(eq + 1));
    if (!*key)
        return fy_fail(err, FY_E_CONFIG, "%s: missing key before '='", src);
    const fy_cfg_opt *o = find_opt(table, n, key);
    if (!o)
        return fy_fail(err, FY_E_CONFIG, "%s: unknown key '%.64s'", src, key);
    seen[o - table] = true;
    return set_value(o, dst, val, src, err);
}

static fy_code load_file(const fy_cfg_opt *table, size_t n, void *dst, bool *seen,
                         const char *file, fy_err *err)
{
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    fy_code rc = fy_read_file(file, CFG_FILE_MAX, &text, &len, err);
    if (rc != FY_E_OK) {
        err->code = FY_E_CONFIG;
        return fy_err_prefix(err, "config file");
    }
    if (memchr(text, '\0', len))
        return fy_fail(err, FY_E_CONFIG, "%s: contains a NUL byte", file);
    char *save = NULL;
    unsigned lineno = 0;
    /* strtok_r would skip empty lines and break line numbers, so split by hand. */
    for (char *line = text; line; line = save) {
        lineno++;
        char *nl = strchr(line, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        char src[CFG_SRC_MAX];
        snprintf(src, sizeof src, "%s:%u", file, lineno);
        rc = load_line(table, n, dst, seen, line, src, err);
        if (rc != FY_E_OK)
            return rc;
    }
    return FY_E_OK;
}

static fy_code load_env(const fy_cfg_opt *table, size_t n, void *dst, bool *seen, fy_err *err)
{
    for (size_t i = 0; i < n; i++) {
        char name[CFG_ENV_MAX];
        env_name(table[i].key, name);
        const char *v = getenv(name);
        if (!v)
            continue;
        seen[i] = true;
        fy_code rc = set_value(&table[i], dst, v, name, err);
        if (rc != FY_E_OK)
            return rc;
    }
    return FY_E_OK;
}

static bool opt_has_value(const fy_cfg_opt *o, const void *dst, bool seen)
{
    if (o->type == FY_CFG_STR || o->type == FY_CFG_SECRET) {
        const char *s = *(char *const *)cfield(dst, o);
        return s && *s;
    }
    return seen;
}

fy_code fy_config_load(const fy_cfg_opt *table, size_t n, void *dst, const char *file, fy_err *err)
{
    fy_err local;
    if (!err)
        err = &local;
    _cleanup_free_ bool *seen = calloc(n ? n : 1, sizeof *seen);
    if (!seen)
        return fy_fail(err, FY_E_NOMEM, NULL);

    for (size_t i = 0; i < n; i++) {
        if (!table[i].def)
            continue;
        seen[i] = true;
        fy_code rc = set_value(&table[i], dst, table[i].def, "default", err);
        if (rc != FY_E_OK)
            return rc;
    }
    if (file) {
        fy_code rc = load_file(table, n, dst, seen, file, err);
        if (rc != FY_E_OK)
            return rc;
    }
    fy_code rc = load_env(table, n, dst, seen, err);
    if (rc != FY_E_OK)
        return rc;

    for (size_t i = 0; i < n; i++) {
        if (!(table[i].flags & FY_CFG_REQUIRED) || opt_has_value(&table[i], dst, seen[i]))
            continue;
        char name[CFG_ENV_MAX];
        env_name(table[i].key, name);
        return fy_fail(err, FY_E_CONFIG, "%s is required (set it in the config file or %s)",
                       table[i].key, name);
    }
    return FY_E_OK;
}

void fy_config_free(const fy_cfg_opt *table, size_t n, void *dst)
{
    if (!dst)
        return;
    for (size_t i = 0; i < n; i++) {
        if (table[i].type != FY_CFG_STR && table[i].type != FY_CFG_SECRET)
            continue;
        char **slot = field(dst, &table[i]);
        free(*slot);
        *slot = NULL;
    }
}

void fy_config_dump(const fy_cfg_opt *table, size_t n, const void *dst, FILE *out)
{
    for (size_t i = 0; i < n; i++) {
        const fy_cfg_opt *o = &table[i];
        switch (o->type) {
        case FY_CFG_STR: {
            const char *s = *(char *const *)cfield(dst, o);
            fprintf(out, "%s = %s\n", o->key, s ? s : "");
            break;
        }
        case FY_CFG_SECRET: {
            const char *s = *(char *const *)cfield(dst, o);
            fprintf(out, "%s = %s\n", o->key, s && *s ? "****" : "");
            break;
        }
        case FY_CFG_INT:
            fprintf(out, "%s = %lld\n", o->key, *(const long long *)cfield(dst, o));
            break;
        case FY_CFG_BOOL:
            fprintf(out, "%s = %s\n", o->key, *(const bool *)cfield(dst, o) ? "true" : "false");
            break;
        case FY_CFG_DOUBLE:
            fprintf(out, "%s = %g\n", o->key, *(const double *)cfield(dst, o));
            break;
        }
    }
}
