/* fy_err — the error table lookups and the fill helpers. */
#include "fy_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int http;
    const char *nova;
    bool retry;
    const char *hint;
} fy_code_info;

static const fy_code_info code_table[FY_E__COUNT] = {
#define X(name, http, nova, retry, hint) [FY_E_##name] = { #name, http, nova, retry, hint },
#include "fy_errors.def"
#undef X
};

static const fy_code_info *code_info(fy_code code)
{
    if ((unsigned)code >= FY_E__COUNT)
        return &code_table[FY_E_INTERNAL];
    return &code_table[code];
}

/* A message cut at the buffer end may end inside a UTF-8 sequence; drop the
 * partial character so the message can still be sent as JSON. */
static void trim_partial_utf8(char *msg)
{
    size_t len = strlen(msg);
    size_t i = len;
    while (i > 0 && ((unsigned char)msg[i - 1] & 0xc0) == 0x80)
        i--;
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)msg[i - 1];
    size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (len - (i - 1) < need)
        msg[i - 1] = '\0';
}

fy_code fy_fail(fy_err *err, fy_code code, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    if (!fmt || !*fmt) {
        snprintf(err->msg, sizeof err->msg, "%s", code_info(code)->hint);
        return code;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof err->msg)
        trim_partial_utf8(err->msg);
    if (!err->msg[0]) /* an error never goes out without words */
        snprintf(err->msg, sizeof err->msg, "%s", code_info(code)->hint);
    return code;
}

fy_code fy_err_prefix(fy_err *err, const char *fmt, ...)
{
    if (!err)
        return FY_E_INTERNAL;
    char ctx[FY_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);

    char old[FY_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    /* A long context may cut the old message short; the start matters most. */
    int n = old[0] ? snprintf(err->msg, sizeof err->msg, "%s: %s", ctx, old)
                   : snprintf(err->msg, sizeof err->msg, "%s", ctx);
    if (n >= (int)sizeof err->msg)
        trim_partial_utf8(err->msg);
    return err->code;
}

void fy_err_clear(fy_err *err)
{
    if (!err)
        return;
    err->code = FY_E_OK;
    err->msg[0] = '\0';
}

const char *fy_code_name(fy_code code)
{
    return code_info(code)->name;
}

fy_code fy_code_from_name(const char *name)
{
    if (!name)
        return FY_E_INTERNAL;
    for (int i = 0; i < FY_E__COUNT; i++)
        if (strcmp(code_table[i].name, name) == 0)
            return (fy_code)i;
    return FY_E_INTERNAL;
}

int fy_code_http(fy_code code)
{
    return code_info(code)->http;
}

const char *fy_code_nova_key(fy_code code)
{
    return code_info(code)->nova;
}

bool fy_code_retryable(fy_code code)
{
    return code_info(code)->retry;
}
