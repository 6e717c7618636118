/* fy_httpd_priv — state shared by the fy_httpd_*.c files; not for services. */
#pragma once
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdint.h>
#include "fy_httpd.h"

struct fy_httpd {
    struct MHD_Daemon *mhd;
    fy_httpd_conf conf;
    atomic_int inflight;              /* requests started and not yet completed */
    atomic_bool stopping;             /* fy_httpd_stop: answers close their connection */
};

typedef struct fy_query_arg {
    char *key, *val;                  /* URL-decoded, owned */
} fy_query_arg;

typedef struct fy_upload_extent {
    long long off, len;
} fy_upload_extent;

typedef struct fy_upload_hasher fy_upload_hasher;

/* FY_R_UPLOAD: where the body goes in the temp file (fy_httpd_upload.c). */
typedef struct fy_httpd_upload {
    bool sparse;                      /* the body goes to the extents' offsets */
    fy_upload_extent *ext;            /* sparse: the map, owned */
    size_t n;                         /* its extents */
    size_t at;                        /* the extent being written */
    long long in;                     /* bytes of it written */
    long long data;                   /* sparse: the bytes the map holds */
    long long len;                    /* body bytes written */
    long long dirty_start, dirty_end; /* written since the last write-back was started */
    fy_upload_hasher *hasher;         /* hashes large chunks beside their write, owned */
    bool no_hasher;                   /* it could not be started: hash in line */
} fy_httpd_upload;

/* One per request (MHD's con_cls).  req comes first so a fy_req * can point here. */
typedef struct fy_httpd_conn {
    fy_req req;
    fy_resp resp;
    fy_httpd *d;
    const fy_route *route;
    char *params[FY_MAX_PARAMS];      /* decoded captures, owned */
    char *path;                       /* owned copy of the URL path */
    char request_id[65];
    char client_ip[64];
    char allow[64];                   /* for 405 */
    char *body;                       /* JSON/RAW routes: accumulated body */
    size_t body_len, body_cap;
    int upload_fd;                    /* FY_R_UPLOAD: temp file being written */
    char *upload_path;
    struct evp_md_ctx_st *upload_md;  /* SHA-256 of the upload, computed while it streams in */
    fy_httpd_upload up;
    size_t received;                  /* body bytes seen, including discarded ones */
    bool answered;                    /* resp is final (error rendered or handler ran) */
    bool queued;                      /* handed to MHD */
    int status;
    uint64_t start_us;
    fy_query_arg *args;
    size_t nargs;
    bool args_parsed;
} fy_httpd_conn;

/* fy_httpd_route.c */
/* Finds the route for c->req.method/path; on success fills params.  On failure
 * returns FY_E_NOT_FOUND or FY_E_METHOD (c->allow filled) or FY_E_BAD_REQUEST. */
fy_code fy_httpd_route_find(fy_httpd_conn *c, fy_err *err);
/* Decodes %XX in place (and '+' to space when plus); false, s unchanged, on a
 * malformed escape. */
bool fy_url_decode(char *s, bool plus);

/* fy_httpd_resp.c */
void fy_resp_init(fy_resp *resp);
void fy_resp_clear(fy_resp *resp);
/* Renders e with the service's renderer into a cleared c->resp; marks it final. */
void fy_httpd_conn_fail(fy_httpd_conn *c, const fy_err *e);
/* Adds the common headers, lets the service decorate, queues the response. */
enum MHD_Result fy_httpd_conn_queue(fy_httpd_conn *c);

/* fy_httpd_upload.c */
/* Before the temp file is made: a sparse body's map is read (400 when malformed). */
fy_code fy_httpd_upload_begin(fy_httpd_conn *c, fy_err *err);
/* Hashes and writes one chunk of the body. */
fy_code fy_httpd_upload_write(fy_httpd_conn *c, const char *data, size_t n, fy_err *err);
/* The body is complete: checks that a sparse one filled its map, fills req.upload_*. */
fy_code fy_httpd_upload_end(fy_httpd_conn *c, fy_err *err);
void fy_httpd_upload_free(fy_httpd_conn *c);

/* fy_httpd_query.c */
void fy_httpd_conn_free_args(fy_httpd_conn *c);
/* Appends one query argument, URL-decoding key and value; false when out of memory. */
bool fy_httpd_conn_add_arg(fy_httpd_conn *c, const char *key, const char *value);
