/* fy_httpd_route — matching a request path against the service's route table. */
#include <stdio.h>
#include <string.h>
#include "fy_cleanup.h"
#include "fy_httpd_priv.h"

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static bool escapes_valid(const char *s)
{
    for (; *s; s++) {
        if (*s != '%')
            continue;
        int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
        /* a decoded NUL would silently truncate the value */
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return false;
        s += 2;
    }
    return true;
}

bool fy_url_decode(char *s, bool plus)
{
    if (!escapes_valid(s))
        return false;
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '%') {
            *w++ = (char)(hexval(r[1]) * 16 + hexval(r[2]));
            r += 2;
        } else {
            *w++ = plus && *r == '+' ? ' ' : *r;
        }
    }
    *w = '\0';
    return true;
}

typedef struct span {
    const char *p;
    size_t n;
} span;

/* Length of path without one trailing slash ("/v2.1/" matches "/v2.1"; "/" stays). */
static size_t path_len(const char *path)
{
    size_t n = strlen(path);
    if (n > 1 && path[n - 1] == '/')
        n--;
    return n;
}

/* Matches path[0..plen) against pattern; fills caps (at most FY_MAX_PARAMS).
 * Returns the number of captures, or -1 when it does not match. */
static int pattern_match(const char *pattern, const char *path, size_t plen, span caps[])
{
    const char *pe = path + plen;
    int ncap = 0;
    while (*pattern) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            const char *seg = path;
            while (path < pe && *path != '/')
                path++;
            if (path == seg || ncap >= FY_MAX_PARAMS)
                return -1;
            caps[ncap++] = (span){ seg, (size_t)(path - seg) };
            pattern += 2;
        } else {
            if (path >= pe || *path != *pattern)
                return -1;
            path++;
            pattern++;
        }
    }
    return path == pe ? ncap : -1;
}

static bool method_serves(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0)
        return true;
    /* MHD drops the body of a HEAD answer, so the GET handler serves it */
    return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

static void allow_add(char *allow, size_t size, const char *method)
{
    size_t n = strlen(method), len = strlen(allow);
    for (const char *p = allow; (p = strstr(p, method)); p += n)
        if ((p == allow || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
            return;
    snprintf(allow + len, size - len, "%s%s", len ? ", " : "", method);
}

static fy_code store_params(fy_httpd_conn *c, const span caps[], int ncap, fy_err *err)
{
    for (int i = 0; i < ncap; i++) {
        c->params[i] = strndup(caps[i].p, caps[i].n);
        if (!c->params[i])
            return fy_fail(err, FY_E_NOMEM, "out of memory");
        if (!fy_url_decode(c->params[i], false))
            return fy_fail(err, FY_E_BAD_REQUEST, "Malformed escape in URL path");
        c->req.params[i] = c->params[i];
    }
    c->req.nparams = ncap;
    return FY_E_OK;
}

/* Among the routes serving the method, the one with the fewest captures wins, so
 * "/servers/detail" beats "/servers/{}" whatever the table order. */
fy_code fy_httpd_route_find(fy_httpd_conn *c, fy_err *err)
{
    const fy_httpd_conf *conf = &c->d->conf;
    const char *path = c->req.path;
    size_t plen = path_len(path);
    span caps[FY_MAX_PARAMS], best_caps[FY_MAX_PARAMS];
    int best = -1;
    bool path_known = false;

    c->allow[0] = '\0';
    for (size_t i = 0; i < conf->nroutes; i++) {
        const fy_route *r = &conf->routes[i];
        int ncap = pattern_match(r->pattern, path, plen, caps);
        if (ncap < 0)
            continue;
        path_known = true;
        allow_add(c->allow, sizeof(c->allow), r->method);
        if (strcmp(r->method, "GET") == 0)
            allow_add(c->allow, sizeof(c->allow), "HEAD");
        if (!method_serves(r->method, c->req.method) || (best >= 0 && ncap >= best))
            continue;
        best = ncap;
        c->route = r;
        memcpy(best_caps, caps, sizeof(caps));
    }
    if (c->route) {
        c->req.route = c->route->pattern;
        return store_params(c, best_caps, best, err);
    }
    if (path_known)
        return fy_fail(err, FY_E_METHOD, "The method %s is not allowed for this resource",
                       c->req.method);
    return fy_fail(err, FY_E_NOT_FOUND, "The resource could not be found.");
}
