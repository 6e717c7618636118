/* fy_httpd_query — request headers and query-string access for handlers.
 *
 * MHD is told not to unescape (so "%2F" in a path segment cannot split it); the
 * query arguments are decoded here, once per request, keeping repeated keys. */
#include <string.h>
#include "fy_httpd_priv.h"

void fy_httpd_conn_free_args(fy_httpd_conn *c)
{
    for (size_t i = 0; i < c->nargs; i++) {
        free(c->args[i].key);
        free(c->args[i].val);
    }
    free(c->args);
    c->args = NULL;
    c->nargs = 0;
}

bool fy_httpd_conn_add_arg(fy_httpd_conn *c, const char *key, const char *value)
{
    fy_query_arg *grown = realloc(c->args, (c->nargs + 1) * sizeof(*c->args));
    if (!grown)
        return false;
    c->args = grown;
    fy_query_arg a = { strdup(key), strdup(value ? value : "") };
    if (!a.key || !a.val) {
        free(a.key);
        free(a.val);
        return false;
    }
    /* a malformed escape is kept verbatim; the handler validates the value */
    fy_url_decode(a.key, true);
    fy_url_decode(a.val, true);
    c->args[c->nargs++] = a;
    return true;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    return fy_httpd_conn_add_arg(cls, key, value) ? MHD_YES : MHD_NO;
}

static fy_httpd_conn *conn_args(const fy_req *req)
{
    fy_httpd_conn *c = req->priv;
    if (!c)
        return NULL;
    if (!c->args_parsed) {
        c->args_parsed = true;
        MHD_get_connection_values(c->req.conn, MHD_GET_ARGUMENT_KIND, collect_arg, c);
    }
    return c;
}

const char *fy_req_header(const fy_req *req, const char *name)
{
    if (!req->conn)
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *fy_req_query(const fy_req *req, const char *key)
{
    const char *v = NULL;
    return fy_req_query_all(req, key, &v, 1) ? v : NULL;
}

int fy_req_query_all(const fy_req *req, const char *key, const char **out, int max)
{
    fy_httpd_conn *c = conn_args(req);
    int n = 0;
    for (size_t i = 0; c && i < c->nargs && n < max; i++)
        if (strcmp(c->args[i].key, key) == 0)
            out[n++] = c->args[i].val;
    return n;
}

void fy_req_query_each(const fy_req *req, void (*fn)(const char *key, const char *val, void *arg),
                       void *arg)
{
    fy_httpd_conn *c = conn_args(req);
    for (size_t i = 0; c && i < c->nargs; i++)
        fn(c->args[i].key, c->args[i].val, arg);
}
