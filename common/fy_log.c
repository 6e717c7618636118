/* fy_log — line-per-event logging to stderr, text or JSON.
 *
 * Each line is assembled in a buffer and handed to one write() so that lines
 * from different threads never interleave. */
#include "fy_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_ID_MAX 80
#define LOG_MSG_MAX 4096
#define LOG_LINE_MAX 16384

static char log_service[64] = "ferry";
static int log_level = FY_LOG_INFO;
static bool log_json;

static _Thread_local char log_reqid[LOG_ID_MAX];
static _Thread_local char log_migid[LOG_ID_MAX];

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char *const level_upper[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void fy_log_init(const char *service, int level, bool json)
{
    snprintf(log_service, sizeof log_service, "%s", service ? service : "ferry");
    fy_log_set_level(level);
    log_json = json;
}

int fy_log_level_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return FY_LOG_WARN;
    return -1;
}

void fy_log_set_level(int level)
{
    if (level < FY_LOG_ERROR)
        level = FY_LOG_ERROR;
    if (level > FY_LOG_DEBUG)
        level = FY_LOG_DEBUG;
    __atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

bool fy_log_enabled(int level)
{
    return level <= __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

static void set_id(char *dst, const char *src)
{
    snprintf(dst, LOG_ID_MAX, "%s", src ? src : "");
}

void fy_log_set_request_id(const char *reqid)
{
    set_id(log_reqid, reqid);
}

const char *fy_log_request_id(void)
{
    return log_reqid;
}

void fy_log_set_migration_id(const char *uuid)
{
    set_id(log_migid, uuid);
}

/* A bounded appender: once full, further text is dropped. */
typedef struct {
    char *buf;
    size_t cap, len;
} log_buf;

static void lb_putc(log_buf *b, char c)
{
    if (b->len + 1 < b->cap)
        b->buf[b->len++] = c;
}

static void lb_puts(log_buf *b, const char *s)
{
    for (; *s; s++)
        lb_putc(b, *s);
}

static void lb_printf(log_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lb_printf(log_buf *b, const char *fmt, ...)
{
    if (b->len + 1 >= b->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    b->len += (size_t)n < b->cap - b->len ? (size_t)n : b->cap - b->len - 1;
}

/* Adds unit whole or not at all, so a cut line never ends in half an escape. */
static void lb_unit(log_buf *b, const char *unit, size_t n)
{
    if (b->len + n < b->cap) {
        memcpy(b->buf + b->len, unit, n);
        b->len += n;
    }
}

/* Escapes control characters so one event stays one line; in JSON mode also
 * quotes and backslashes. */
static void lb_escaped(log_buf *b, const char *s, bool json)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        char unit[8];
        int n;
        if (c == '\n')
            n = snprintf(unit, sizeof unit, "\\n");
        else if (c == '\r')
            n = snprintf(unit, sizeof unit, "\\r");
        else if (c == '\t' && json)
            n = snprintf(unit, sizeof unit, "\\t");
        else if (json && (c == '"' || c == '\\'))
            n = snprintf(unit, sizeof unit, "\\%c", c);
        else if ((c < 0x20 && c != '\t') || c == 0x7f)
            n = snprintf(unit, sizeof unit, json ? "\\u%04x" : "\\x%02x", c);
        else if (c >= 0xc0) {
            /* A multi-byte character is one unit: never split it at a cut. */
            n = 1;
            unit[0] = (char)c;
            int want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            while (n < want && (p[1] & 0xc0) == 0x80)
                unit[n++] = (char)*++p;
        } else {
            unit[0] = (char)c;
            n = 1;
        }
        lb_unit(b, unit, (size_t)n);
    }
}

static void format_time(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%.20s.%03uZ", base, (unsigned)(ts.tv_nsec / 1000000L) % 1000u);
}

static const char *base_name(const char *file)
{
    const char *slash = file ? strrchr(file, '/') : NULL;
    return slash ? slash + 1 : (file ? file : "?");
}

static void format_text(log_buf *b, int level, const char *ts, const char *where, const char *msg)
{
    lb_printf(b, "%s %s %s [%s] [%s] ", ts, log_service, level_upper[level],
              log_reqid[0] ? log_reqid : "-", log_migid[0] ? log_migid : "-");
    if (where[0]) {
        lb_puts(b, where);
        lb_puts(b, ": ");
    }
    lb_escaped(b, msg, false);
}

static void json_field(log_buf *b, const char *key, const char *val, bool first)
{
    if (!first)
        lb_putc(b, ',');
    lb_printf(b, "\"%s\":", key);
    if (!val[0]) {
        lb_puts(b, "null");
        return;
    }
    lb_putc(b, '"');
    lb_escaped(b, val, true);
    lb_putc(b, '"');
}

static void format_json(log_buf *b, int level, const char *ts, const char *where, const char *msg)
{
    lb_putc(b, '{');
    json_field(b, "ts", ts, true);
    json_field(b, "service", log_service, false);
    json_field(b, "level", level_names[level], false);
    json_field(b, "request_id", log_reqid, false);
    json_field(b, "migration_id", log_migid, false);
    if (where[0])
        json_field(b, "where", where, false);
    lb_puts(b, ",\"msg\":\"");
    /* The message goes last and is the only part that can be cut: hold back
     * room for the closing quote and brace so the line stays valid JSON. */
    b->cap -= 2;
    lb_escaped(b, msg, true);
    b->cap += 2;
    lb_puts(b, "\"}");
}

/* vsnprintf may cut inside a UTF-8 sequence; drop the incomplete tail. */
static void drop_partial_char(char *s)
{
    size_t len = strlen(s), i = len;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
        i--;
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (len - (i - 1) < need)
        s[i - 1] = '\0';
}

void fy_log_write(int level, const char *file, int line, const char *fmt, ...)
{
    if (level < FY_LOG_ERROR || level > FY_LOG_DEBUG || !fy_log_enabled(level))
        return;
    int saved_errno = errno;

    char msg[LOG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    else if ((size_t)n >= sizeof msg)
        drop_partial_char(msg);

    char ts[32], where[160] = "";
    format_time(ts);
    if (level == FY_LOG_DEBUG)
        snprintf(where, sizeof where, "%.120s:%d", base_name(file), line);

    char line_buf[LOG_LINE_MAX];
    log_buf b = { line_buf, sizeof line_buf - 1, 0 }; /* -1: the newline always fits */
    if (log_json)
        format_json(&b, level, ts, where, msg);
    else
        format_text(&b, level, ts, where, msg);
    line_buf[b.len++] = '\n';

    ssize_t w;
    do
        w = write(STDERR_FILENO, line_buf, b.len);
    while (w < 0 && errno == EINTR);
    errno = saved_errno;
}
