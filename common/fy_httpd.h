/* fy_httpd — HTTP server on libmicrohttpd with one static route table per service.
 *
 * Dispatch happens in one place: it sets the request id (from x-openstack-request-id
 * or new), reads and parses the body centrally (JSON when non-empty; 413 over the
 * limit; 415 for a non-JSON content type on a JSON route), matches the route
 * ("/v2.1/servers/{}/action" — `{}` captures one segment), answers 404 / 405 with
 * Allow, calls the service's authenticate hook unless the route is FY_R_PUBLIC,
 * then the handler.  A handler's error (fy_code + message) is rendered by the
 * service's error renderer, so each service emits one error shape. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "fy_err.h"

#define FY_MAX_PARAMS 6

typedef struct fy_auth_ctx {
    bool authenticated;
    bool is_service;        /* called with the inter-service credential */
    bool is_admin;
    char user_id[40], project_id[40];
    char user_name[128], project_name[128];
    char roles[256];        /* comma-separated */
    char token_id[72];
} fy_auth_ctx;

typedef struct fy_req {
    const char *method;
    const char *path;                 /* as sent (still %-escaped), without query string */
    const char *route;                /* the matched route's pattern, NULL until matched */
    const char *params[FY_MAX_PARAMS];/* captured {} segments, URL-decoded, in order */
    int nparams;
    const char *body;                 /* raw body (NUL-terminated), may be NULL */
    size_t body_len;
    json_t *json;                     /* parsed body or NULL (owned by the server) */
    const char *upload_path;          /* FY_R_UPLOAD: temp file with the body; handler may rename it */
    char upload_sha256[65];           /* FY_R_UPLOAD: hex SHA-256 of that body, hashed as it arrived */
    size_t upload_len;                /* FY_R_UPLOAD: body bytes received */
    bool upload_sparse;               /* FY_R_UPLOAD: a sparse body, at its extents' offsets (below) */
    const char *request_id;
    fy_auth_ctx auth;
    int mv_major, mv_minor;           /* microversion, set by the service's hook (0.0 if none) */
    void *conn;                       /* struct MHD_Connection * */
    void *svc;                        /* the service's context pointer */
    char *client_ip;
    void *priv;                       /* server-internal; NULL outside a served request */
} fy_req;

typedef struct fy_resp {
    int status;                       /* default 200 */
    json_t *body;                     /* owned; NULL = empty body */
    const char *content_type;         /* default application/json when body set */
    char *raw;                        /* owned raw body alternative (e.g. text/plain metrics) */
    size_t raw_len;
    int file_fd;                      /* >= 0: send this file (owned, closed by the server) */
    off_t file_size;
    char *headers[16];                /* owned "Name: value" strings */
    int nheaders;
} fy_resp;

typedef fy_code (*fy_handler)(fy_req *req, fy_resp *resp, fy_err *err);

/* route flags */
#define FY_R_PUBLIC   1u   /* no authentication */
#define FY_R_INTERNAL 2u   /* requires the service credential */
#define FY_R_UPLOAD   4u   /* body streamed to a temp file (large limit), not parsed */
#define FY_R_RAW      8u   /* body kept raw, not parsed as JSON */

/* Sparse uploads: a FY_R_UPLOAD body sent with FY_UPLOAD_SIZE_HEADER (a file's logical
 * size) and FY_UPLOAD_EXTENTS_HEADER ("off:len,off:len,...": ascending, disjoint, within
 * the size; empty: no data) is the data of those extents back to back.  It is written
 * straight to the extents' offsets of the temp file, holes left unallocated, and
 * req->upload_sparse is set; the file ends with the last extent (the handler sizes it).
 * A map without the size, a malformed one, or a body that does not fill it exactly is
 * refused (400).
 * upload_sha256 is that of the body as sent. */
#define FY_UPLOAD_SIZE_HEADER    "X-Ferry-Size"
#define FY_UPLOAD_EXTENTS_HEADER "X-Ferry-Extents"

typedef struct fy_route {
    const char *method;   /* "GET", "POST", ... ("HEAD" is answered by GET routes too) */
    const char *pattern;  /* "/v2.1/servers/{}" */
    fy_handler fn;
    unsigned flags;
} fy_route;

typedef struct fy_httpd_conf {
    const char *bind_addr;            /* "127.0.0.1" */
    int port;                         /* 0 = ephemeral (see fy_httpd_port) */
    /* Bind with SO_REUSEPORT: several processes (same user) listen on one address and
     * port, and the kernel spreads new connections over them.  Every process sharing
     * the port must set it; off, a second process on a taken port fails to start. */
    bool reuse_port;
    unsigned threads;                 /* worker threads */
    size_t max_body;                  /* JSON body limit (bytes) */
    size_t max_upload;                /* FY_R_UPLOAD limit */
    const char *upload_dir;           /* where upload temp files go */
    const fy_route *routes;
    size_t nroutes;
    void *svc;                        /* passed as req->svc */
    const char *service_secret;       /* inter-service credential (X-Service-Token) */
    /* Authenticates a non-public, non-internal request (fills req->auth). */
    fy_code (*authenticate)(fy_req *req, fy_err *err);
    /* Called after routing, before auth (e.g. microversion negotiation); may fail. */
    fy_code (*pre_dispatch)(fy_req *req, fy_resp *resp, fy_err *err);
    /* Renders an error into resp (status + body).  NULL = fy_httpd_render_error_internal. */
    void (*render_error)(fy_req *req, const fy_err *e, fy_resp *resp);
    /* Adds headers to every response (e.g. microversion, request id copies). */
    void (*decorate)(fy_req *req, fy_resp *resp);
    /* Called at the end of every request (e.g. metrics, assert no open txn). */
    void (*finished)(fy_req *req, int status, double seconds);
} fy_httpd_conf;

typedef struct fy_httpd fy_httpd;

fy_code fy_httpd_start(const fy_httpd_conf *conf, fy_httpd **ret, fy_err *err);
int fy_httpd_port(const fy_httpd *d);
/* Stops accepting, waits for in-flight requests, frees. NULL ok. */
void fy_httpd_stop(fy_httpd *d);

/* Response helpers */
void fy_resp_json(fy_resp *resp, int status, json_t *body /* stolen */);
void fy_resp_add_header(fy_resp *resp, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* {"error": {"code": "NOT_FOUND", "status": 404, "message": "..."}} */
void fy_httpd_render_error_internal(fy_req *req, const fy_err *e, fy_resp *resp);
/* Nova shape: {"itemNotFound": {"code": 404, "message": "..."}} */
json_t *fy_nova_error_body(const fy_err *e);

const char *fy_req_header(const fy_req *req, const char *name);
const char *fy_req_query(const fy_req *req, const char *key);   /* first value */
/* All values of a repeated query key; returns count (<= max). */
int fy_req_query_all(const fy_req *req, const char *key, const char **out, int max);
/* Iterates all query keys (for "unknown filter" checks): calls fn for each key. */
void fy_req_query_each(const fy_req *req, void (*fn)(const char *key, const char *val, void *arg), void *arg);

/* Blocks SIGTERM/SIGINT in the calling thread (call first in main, before threads)
 * and waits for one; returns the signal number. */
void fy_signals_block(void);
int fy_signals_wait(void);
