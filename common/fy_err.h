/* fy_err — the one error convention of Ferry: a status code plus a message.
 *
 * Functions that can fail return fy_code (FY_E_OK == 0) and fill a caller-owned
 * fy_err.  fy_fail() sets both and returns the code, so `return fy_fail(err, ...)`
 * is the idiom.  The code maps to HTTP status and to Nova's error-body key in one
 * table (fy_errors.def). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

typedef enum {
#define X(name, http, nova, retry, hint) FY_E_##name,
#include "fy_errors.def"
#undef X
    FY_E__COUNT
} fy_code;

#define FY_ERR_MSG_MAX 512

typedef struct fy_err {
    fy_code code;
    char msg[FY_ERR_MSG_MAX];
} fy_err;

/* Sets err (if non-NULL) and returns code.  A NULL or empty fmt uses the table hint. */
fy_code fy_fail(fy_err *err, fy_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes err->msg with context, keeps the code; returns err->code. */
fy_code fy_err_prefix(fy_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fy_err_clear(fy_err *err);

const char *fy_code_name(fy_code code);        /* "NOT_FOUND" */
fy_code fy_code_from_name(const char *name);   /* FY_E_INTERNAL when unknown */
int fy_code_http(fy_code code);                /* 404 */
const char *fy_code_nova_key(fy_code code);    /* "itemNotFound" */
bool fy_code_retryable(fy_code code);
