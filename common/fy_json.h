/* fy_json — declarative JSON input specs on jansson, and JSON helpers.
 *
 * A handler declares the fields it expects; fy_json_parse() validates an object
 * against the spec and writes into the caller's struct.  The first problem is
 * reported as FY_E_BAD_REQUEST with a message naming the field, e.g.
 *   "Invalid input for field/attribute flavorRef. Value: 12. 12 is not of type 'string'"
 *   "Missing required field: server.name"   "Additional properties are not allowed ('foo' was unexpected)"
 * Nothing is written to dst unless parsing succeeds. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include "fy_err.h"

typedef enum {
    FY_J_STRING,   /* const char * (borrowed from the json_t; valid while it lives) */
    FY_J_INT,      /* long long */
    FY_J_BOOL,     /* bool */
    FY_J_OBJECT,   /* json_t * (borrowed) */
    FY_J_ARRAY,    /* json_t * (borrowed) */
    FY_J_ANY,      /* json_t * (borrowed), any type incl. null */
} fy_jtype;

/* flags */
#define FY_J_REQUIRED  1u   /* must be present */
#define FY_J_NULLABLE  2u   /* null accepted: STRING -> NULL, others -> json_null borrowed in ANY */
#define FY_J_NONEMPTY  4u   /* STRING must have length >= 1 (after no trimming) */
#define FY_J_UUID      8u   /* STRING must be a canonical UUID */
#define FY_J_INT_AS_STRING 16u /* INT also accepts a decimal string ("1"), like Nova's flavor ids */

typedef struct fy_jspec {
    const char *name;
    fy_jtype type;
    unsigned flags;
    size_t offset;          /* offsetof in the destination struct */
    size_t present_offset;  /* offsetof a bool set true when present; (size_t)-1 = none */
    long long min, max;     /* INT bounds / STRING length bounds (0,0 = unchecked) */
} fy_jspec;

#define FY_JNOPRESENT ((size_t)-1)

/* allow_extra=false rejects unknown members.  `where` prefixes field names
 * in messages ("server" -> "server.name"); may be NULL. */
fy_code fy_json_parse(const json_t *obj, const fy_jspec *spec, size_t n, void *dst,
                      bool allow_extra, const char *where, fy_err *err);

/* Parses a request body into a json_t.  Enforces max depth (64) and rejects
 * invalid UTF-8, huge numbers, duplicate keys, trailing garbage: FY_E_BAD_REQUEST. */
fy_code fy_json_load(const char *buf, size_t len, json_t **ret, fy_err *err);

/* Small getters that tolerate missing members. */
const char *fy_json_str(const json_t *obj, const char *key);    /* NULL if absent / not string */
long long fy_json_int(const json_t *obj, const char *key, long long def);
bool fy_json_bool(const json_t *obj, const char *key, bool def);
/* Serialises compactly; caller frees. */
char *fy_json_dump(const json_t *j);
