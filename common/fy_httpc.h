/* fy_httpc — HTTP client on libcurl for calls between services.
 *
 * Every call carries the thread's request id (x-openstack-request-id) and, when
 * given, the inter-service credential.  Idempotent calls (opts.retries > 0) are
 * retried with exponential backoff + jitter on connection errors, timeouts and
 * 502/503/504.  A non-2xx answer carrying Ferry's error shape
 * {"error": {"code": "NAME", "message": ...}} comes back as that fy_code and
 * message, so an agent's failure reaches the caller intact. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include "fy_err.h"

typedef struct fy_httpc_opts {
    long timeout_ms;          /* whole call; default 30000 */
    long connect_timeout_ms;  /* default 2000 */
    int retries;              /* extra attempts for idempotent calls; 0 = none */
    long backoff_ms;          /* first backoff; default 100, doubles, capped at 5000 */
    const char *service_secret; /* sent as X-Service-Token when non-NULL */
    const char *auth_token;   /* sent as X-Auth-Token when non-NULL */
    const char *upload_path;  /* send this file as the body (application/octet-stream) */
    const char *download_path;/* write a 2xx body to this file instead of memory */
    const char *extra_header; /* one more "Name: value" header, or NULL */
} fy_httpc_opts;

typedef struct fy_http_result {
    long status;
    char *body;               /* NUL-terminated, owned */
    size_t body_len;
    json_t *json;             /* parsed when the body is JSON, owned */
} fy_http_result;

void fy_httpc_global_init(void);   /* once, before threads */
/* Frees the calling thread's connection cache now (it is also freed when the
 * thread exits); the next call on this thread starts a new one. */
void fy_httpc_thread_done(void);
void fy_http_result_clear(fy_http_result *r);

/* body may be NULL.  Returns FY_E_OK for 2xx (result filled), else the mapped error
 * (result still filled when an answer came).  opts may be NULL. */
fy_code fy_httpc_call(const char *method, const char *url, const json_t *body,
                      const fy_httpc_opts *opts, fy_http_result *ret, fy_err *err);
