/* fy_json — request-body loading and declarative validation on jansson.
 *
 * Validation messages follow the texts of Nova's jsonschema errors so clients
 * written against Nova see familiar wording. */
#include "fy_json.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fy_cleanup.h"
#include "fy_util.h"

#define JSON_MAX_DEPTH 64
#define JSON_SHOW_MAX 120 /* longest value quoted in a message */

/* Walks the raw bytes once; deep input never reaches jansson's recursive parser. */
static bool depth_ok(const char *buf, size_t len)
{
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '[' || c == '{') {
            if (++depth > JSON_MAX_DEPTH)
                return false;
        } else if (c == ']' || c == '}')
            depth--;
    }
    return true;
}

fy_code fy_json_load(const char *buf, size_t len, json_t **ret, fy_err *err)
{
    if (!buf)
        return fy_fail(err, FY_E_BAD_REQUEST, "Malformed request body: empty body");
    if (memchr(buf, '\0', len))
        return fy_fail(err, FY_E_BAD_REQUEST, "Malformed request body: contains a NUL byte");
    if (!depth_ok(buf, len))
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Malformed request body: nesting deeper than %d levels", JSON_MAX_DEPTH);
    json_error_t jerr;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return fy_fail(err, FY_E_BAD_REQUEST, "Malformed request body: %s (line %d, column %d)",
                       jerr.text, jerr.line, jerr.column);
    *ret = j;
    return FY_E_OK;
}

/* Cuts s to at most max bytes plus "..." on a character boundary, so the
 * message stays valid UTF-8 when it is sent back as JSON.  s needs max+4 bytes. */
static void utf8_cut(char *s, size_t max)
{
    if (strlen(s) <= max)
        return;
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
        cut--;
    memcpy(s + cut, "...", 4);
}

/* Compact text of v for a message, cut to a readable length; caller frees. */
static char *show(const json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (!s)
        return strdup("null");
    size_t len = strlen(s);
    if (len > JSON_SHOW_MAX - 3 && len < JSON_SHOW_MAX) {
        /* only just over: the "..." would end past the dump's own buffer */
        char *grown = realloc(s, JSON_SHOW_MAX + 1);
        if (!grown) {
            free(s);
            return NULL;
        }
        s = grown;
    }
    utf8_cut(s, JSON_SHOW_MAX - 3);
    return s;
}

typedef union {
    const char *s;
    long long i;
    bool b;
    json_t *j;
} jvalue;

typedef struct {
    const fy_jspec *spec;
    const char *where;
    char name[160]; /* "server.name" */
} jfield;

static fy_code invalid(fy_err *err, const jfield *f, const json_t *v, const char *why)
{
    _cleanup_free_ char *sv = show(v);
    return fy_fail(err, FY_E_BAD_REQUEST, "Invalid input for field/attribute %s. Value: %s. %s %s",
                   f->name, sv ? sv : "?", sv ? sv : "?", why);
}

static const char *type_names(const fy_jspec *s)
{
    bool null = s->flags & FY_J_NULLABLE;
    switch (s->type) {
    case FY_J_STRING:
        return null ? "is not of type 'string', 'null'" : "is not of type 'string'";
    case FY_J_INT:
        if (s->flags & FY_J_INT_AS_STRING)
            return null ? "is not of type 'integer', 'string', 'null'"
                        : "is not of type 'integer', 'string'";
        return null ? "is not of type 'integer', 'null'" : "is not of type 'integer'";
    case FY_J_BOOL:
        return null ? "is not of type 'boolean', 'null'" : "is not of type 'boolean'";
    case FY_J_OBJECT:
        return null ? "is not of type 'object', 'null'" : "is not of type 'object'";
    case FY_J_ARRAY:
        return null ? "is not of type 'array', 'null'" : "is not of type 'array'";
    case FY_J_ANY:
        break;
    }
    return "is not of an accepted type";
}

/* Length in code points, as jsonschema counts; jansson guarantees valid UTF-8. */
static size_t utf8_len(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

static fy_code check_string(const jfield *f, const json_t *v, jvalue *out, fy_err *err)
{
    const fy_jspec *s = f->spec;
    const char *str = json_string_value(v);
    size_t bytes = json_string_length(v);
    if (strlen(str) != bytes)
        return invalid(err, f, v, "contains a NUL character");
    size_t len = utf8_len(str, bytes);
    long long min = s->min;
    if ((s->flags & FY_J_NONEMPTY) && min < 1)
        min = 1;
    if (min > 0 && (long long)len < min)
        return invalid(err, f, v, "is too short");
    if (s->max > 0 && (long long)len > s->max)
        return invalid(err, f, v, "is too long");
    if ((s->flags & FY_J_UUID) && !fy_uuid_valid(str))
        return invalid(err, f, v, "is not a 'uuid'");
    out->s = str;
    return FY_E_OK;
}

static fy_code check_int(const jfield *f, const json_t *v, jvalue *out, fy_err *err)
{
    const fy_jspec *s = f->spec;
    long long x;
    if (json_is_integer(v))
        x = json_integer_value(v);
    else if (json_is_string(v) && (s->flags & FY_J_INT_AS_STRING)) {
        if (strlen(json_string_value(v)) != json_string_length(v) ||
            !fy_parse_ll(json_string_value(v), LLONG_MIN, LLONG_MAX, &x))
            return invalid(err, f, v, "is not a valid integer");
    } else
        return invalid(err, f, v, type_names(s));

    if (!(s->min == 0 && s->max == 0)) {
        char why[96];
        if (x < s->min) {
            snprintf(why, sizeof why, "is less than the minimum of %lld", s->min);
            return invalid(err, f, v, why);
        }
        if (x > s->max) {
            snprintf(why, sizeof why, "is greater than the maximum of %lld", s->max);
            return invalid(err, f, v, why);
        }
    }
    out->i = x;
    return FY_E_OK;
}

/* Validates one present member and converts it into out. */
static fy_code check_value(const jfield *f, json_t *v, jvalue *out, fy_err *err)
{
    const fy_jspec *s = f->spec;
    if (s->type == FY_J_ANY) {
        out->j = v;
        return FY_E_OK;
    }
    if (json_is_null(v) && (s->flags & FY_J_NULLABLE)) {
        memset(out, 0, sizeof *out);
        return FY_E_OK;
    }
    switch (s->type) {
    case FY_J_STRING:
        if (!json_is_string(v))
            return invalid(err, f, v, type_names(s));
        return check_string(f, v, out, err);
    case FY_J_INT:
        return check_int(f, v, out, err);
    case FY_J_BOOL:
        if (!json_is_boolean(v))
            return invalid(err, f, v, type_names(s));
        out->b = json_is_true(v);
        return FY_E_OK;
    case FY_J_OBJECT:
        if (!json_is_object(v))
            return invalid(err, f, v, type_names(s));
        out->j = v;
        return FY_E_OK;
    case FY_J_ARRAY:
        if (!json_is_array(v))
            return invalid(err, f, v, type_names(s));
        out->j = v;
        return FY_E_OK;
    case FY_J_ANY:
        break;
    }
    return fy_fail(err, FY_E_INTERNAL, "field %s: unknown spec type %d", f->name, (int)s->type);
}

static void field_init(jfield *f, const fy_jspec *spec, const char *where)
{
    f->spec = spec;
    f->where = where;
    if (where && *where)
        snprintf(f->name, sizeof f->name, "%.80s.%.70s", where, spec->name);
    else
        snprintf(f->name, sizeof f->name, "%.150s", spec->name);
}

static fy_code missing(fy_err *err, const json_t *obj, const jfield *f)
{
    _cleanup_free_ char *so = show(obj);
    const char *at = f->where && *f->where ? f->where : f->spec->name;
    return fy_fail(err, FY_E_BAD_REQUEST,
                   "Invalid input for field/attribute %s. Value: %s. '%s' is a required property",
                   at, so ? so : "?", f->spec->name);
}

static fy_code check_extra(const json_t *obj, const fy_jspec *spec, size_t n, fy_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = strcmp(spec[i].name, key) == 0;
        if (known)
            continue;
        char shown[JSON_SHOW_MAX + 1];
        snprintf(shown, sizeof shown, "%.*s", JSON_SHOW_MAX - 4, key);
        utf8_cut(shown, JSON_SHOW_MAX - 4 - 3);
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Additional properties are not allowed ('%s' was unexpected)", shown);
    }
    return FY_E_OK;
}

static void store(void *dst, const fy_jspec *s, const jvalue *val, bool is_null)
{
    char *p = (char *)dst + s->offset;
    switch (s->type) {
    case FY_J_STRING:
        *(const char **)p = val->s;
        break;
    case FY_J_INT:
        if (!is_null)
            *(long long *)p = val->i;
        break;
    case FY_J_BOOL:
        if (!is_null)
            *(bool *)p = val->b;
        break;
    case FY_J_OBJECT:
    case FY_J_ARRAY:
    case FY_J_ANY:
        *(json_t **)p = val->j;
        break;
    }
}

fy_code fy_json_parse(const json_t *obj, const fy_jspec *spec, size_t n, void *dst,
                      bool allow_extra, const char *where, fy_err *err)
{
    if (!json_is_object(obj)) {
        _cleanup_free_ char *so = show(obj);
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Invalid input for field/attribute %s. Value: %s. %s is not of type 'object'",
                       where && *where ? where : "body", so ? so : "?", so ? so : "?");
    }
    _cleanup_free_ jvalue *vals = calloc(n ? n : 1, sizeof *vals);
    if (!vals)
        return fy_fail(err, FY_E_NOMEM, NULL);

    for (size_t i = 0; i < n; i++) {
        jfield f;
        field_init(&f, &spec[i], where);
        json_t *v = json_object_get(obj, spec[i].name);
        if (!v) {
            if (spec[i].flags & FY_J_REQUIRED)
                return missing(err, obj, &f);
            continue;
        }
        fy_code rc = check_value(&f, v, &vals[i], err);
        if (rc != FY_E_OK)
            return rc;
    }
    if (!allow_extra) {
        fy_code rc = check_extra(obj, spec, n, err);
        if (rc != FY_E_OK)
            return rc;
    }

    /* Everything is valid: only now touch the caller's struct. */
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(obj, spec[i].name);
        if (spec[i].present_offset != FY_JNOPRESENT)
            *(bool *)((char *)dst + spec[i].present_offset) = v != NULL;
        if (v)
            store(dst, &spec[i], &vals[i], json_is_null(v));
    }
    return FY_E_OK;
}

const char *fy_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

long long fy_json_int(const json_t *obj, const char *key, long long def)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? json_integer_value(v) : def;
}

bool fy_json_bool(const json_t *obj, const char *key, bool def)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

char *fy_json_dump(const json_t *j)
{
    if (!j)
        return strdup("null");
    return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}
