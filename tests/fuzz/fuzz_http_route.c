/* fuzz_http_route — the route matcher, path-capture decoding and query-argument
 * decoding of fy_httpd on arbitrary request targets.
 *
 * Input: byte 0 picks the method; the rest is the request target
 * ("/v2.1/servers/x/action?limit=1&marker=%41").  The query string is split the
 * way libmicrohttpd splits it ('&' between arguments, the first '=' between key and
 * value) and each argument goes through the server's own decoding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fy_httpd_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fy_code nop(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req;
    (void)resp;
    (void)err;
    return FY_E_OK;
}

/* The shapes of the services' tables: fixed paths, one to three captures,
 * a capture followed by a fixed segment, several methods on one path. */
static const fy_route routes[] = {
    { "GET", "/", nop, FY_R_PUBLIC },
    { "GET", "/v2.1", nop, FY_R_PUBLIC },
    { "GET", "/healthz", nop, FY_R_PUBLIC },
    { "POST", "/identity/v3/auth/tokens", nop, FY_R_PUBLIC },
    { "GET", "/identity/v3/auth/tokens", nop, 0 },
    { "DELETE", "/identity/v3/auth/tokens", nop, 0 },
    { "GET", "/v2.1/flavors", nop, 0 },
    { "POST", "/v2.1/flavors", nop, 0 },
    { "GET", "/v2.1/flavors/detail", nop, 0 },
    { "GET", "/v2.1/flavors/{}", nop, 0 },
    { "DELETE", "/v2.1/flavors/{}", nop, 0 },
    { "GET", "/v2.1/flavors/{}/os-extra_specs", nop, 0 },
    { "PUT", "/image/v2/images/{}/file", nop, FY_R_UPLOAD },
    { "GET", "/v2.1/servers", nop, 0 },
    { "POST", "/v2.1/servers", nop, 0 },
    { "GET", "/v2.1/servers/detail", nop, 0 },
    { "GET", "/v2.1/servers/{}", nop, 0 },
    { "DELETE", "/v2.1/servers/{}", nop, 0 },
    { "POST", "/v2.1/servers/{}/action", nop, 0 },
    { "GET", "/v2.1/servers/{}/migrations", nop, 0 },
    { "GET", "/v2.1/servers/{}/migrations/{}", nop, 0 },
    { "DELETE", "/v2.1/servers/{}/migrations/{}", nop, 0 },
    { "POST", "/v2.1/servers/{}/migrations/{}/action", nop, 0 },
    { "GET", "/v2.1/servers/{}/os-instance-actions/{}", nop, 0 },
    { "POST", "/internal/{}/{}/{}", nop, FY_R_INTERNAL },
    { "PUT", "/v2.1/os-services/{}", nop, 0 },
};

static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS" };

static void check_route(fy_httpd_conn *c, fy_code rc)
{
    if (rc == FY_E_OK) {
        if (!c->route || c->req.nparams < 0 || c->req.nparams > FY_MAX_PARAMS)
            abort();
        for (int i = 0; i < c->req.nparams; i++)
            /* a capture is one non-empty segment; decoding never yields NUL */
            if (!c->req.params[i] || !c->req.params[i][0])
                abort();
    } else if (rc == FY_E_METHOD) {
        if (!c->allow[0])
            abort();
    } else if (rc != FY_E_NOT_FOUND && rc != FY_E_BAD_REQUEST) {
        abort();
    }
}

static void add_args(fy_httpd_conn *c, char *query)
{
    for (char *save = NULL, *arg = strtok_r(query, "&", &save); arg;
         arg = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(arg, '=');
        if (eq)
            *eq = '\0';
        if (!fy_httpd_conn_add_arg(c, arg, eq ? eq + 1 : NULL))
            abort();
    }
    c->args_parsed = true;
}

static void each(const char *key, const char *val, void *arg)
{
    size_t *n = arg;
    if (!key || !val)
        abort();
    (*n)++;
}

static void use_args(fy_httpd_conn *c)
{
    size_t n = 0;
    fy_req_query_each(&c->req, each, &n);
    if (n != c->nargs)
        abort();
    for (size_t i = 0; i < c->nargs; i++) {
        const char *vals[8];
        int got = fy_req_query_all(&c->req, c->args[i].key, vals, 8);
        const char *first = fy_req_query(&c->req, c->args[i].key);
        if (got < 1 || !first || first != vals[0])
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *target = strndup((const char *)data + 1, size - 1);
    if (!target)
        return 0;
    char *query = strchr(target, '?');
    if (query)
        *query++ = '\0';

    fy_httpd d = { .conf = { .routes = routes, .nroutes = sizeof routes / sizeof routes[0] } };
    fy_httpd_conn c = { .d = &d, .upload_fd = -1 };
    c.req = (fy_req){ .method = methods[data[0] % (sizeof methods / sizeof methods[0])],
                      .path = target,
                      .priv = &c };
    fy_err err = { 0 };
    check_route(&c, fy_httpd_route_find(&c, &err));
    if (query) {
        add_args(&c, query);
        use_args(&c);
    }

    /* the decoder alone, with and without '+' as space */
    char *copy = strndup((const char *)data + 1, size - 1);
    if (copy) {
        size_t before = strlen(copy);
        if (fy_url_decode(copy, data[0] & 1) && strlen(copy) > before)
            abort();
        free(copy);
    }

    for (int i = 0; i < FY_MAX_PARAMS; i++)
        free(c.params[i]);
    fy_httpd_conn_free_args(&c);
    free(target);
    return 0;
}
