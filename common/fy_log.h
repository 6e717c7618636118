/* fy_log — one line per event: time, service, level, request id, message.
 * The request id is thread-local; the HTTP server sets it per request from
 * x-openstack-request-id (or generates one) and the HTTP client forwards it. */
#pragma once
#include <stdbool.h>

enum { FY_LOG_ERROR = 0, FY_LOG_WARN = 1, FY_LOG_INFO = 2, FY_LOG_DEBUG = 3 };

void fy_log_init(const char *service, int level, bool json);
int fy_log_level_from_name(const char *name); /* -1 if unknown */
void fy_log_set_level(int level);
bool fy_log_enabled(int level);

void fy_log_set_request_id(const char *reqid);  /* NULL clears; copied */
const char *fy_log_request_id(void);            /* "" when none */
/* Optional second key on the line, e.g. the migration uuid being worked on. */
void fy_log_set_migration_id(const char *uuid);

void fy_log_write(int level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define fy_error(...) fy_log_write(FY_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define fy_warn(...) fy_log_write(FY_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define fy_info(...) fy_log_write(FY_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define fy_debug(...) \
    do { if (fy_log_enabled(FY_LOG_DEBUG)) fy_log_write(FY_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__); } while (0)
