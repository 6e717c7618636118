/* Error bodies in the shape each API family's clients expect: Nova's for /v2.1,
 * Keystone's for /identity (and for every 401, which in Nova comes from the
 * Keystone middleware), webob's JSON for the Glance-style /image API. */
#include <string.h>
#include "api.h"
#include "fy_log.h"

static const char *reason(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 413: return "Request Entity Too Large";
    case 415: return "Unsupported Media Type";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status >= 500 ? "Internal Server Error" : "Error";
    }
}

static bool has_prefix(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return path && strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Internal failures are logged in full and answered without detail: a database or
 * I/O message is no business of the client. */
static bool hide_detail(fy_code code)
{
    switch (code) {
    case FY_E_INTERNAL: case FY_E_NOMEM: case FY_E_IO: case FY_E_DB: case FY_E_DB_RETRY:
    case FY_E_SCHEMA: case FY_E_DRIVER: case FY_E_CONFIG:
        return true;
    default:
        return false;
    }
}

void api_render_error(fy_req *req, const fy_err *e, fy_resp *resp)
{
    fy_err shown = *e;
    int status = fy_code_http(e->code);
    if (hide_detail(e->code)) {
        fy_error("%s %s failed: %s: %s", req->method, req->path, fy_code_name(e->code), e->msg);
        snprintf(shown.msg, sizeof shown.msg,
                 "Unexpected API Error. Please report this and attach the API log if "
                 "possible.");
    }
    if (status == 401 || has_prefix(req->path, "/identity")) {
        if (status == 401)
            fy_resp_add_header(resp, "WWW-Authenticate", "Keystone uri=\"%s/identity\"",
                               req->svc ? api_cfg(req)->public_url : "");
        fy_resp_json(resp, status, json_pack("{s:{s:i,s:s,s:s}}", "error", "code", status,
                                             "title", reason(status), "message", shown.msg));
        return;
    }
    if (has_prefix(req->path, "/image")) {
        char code[48];
        snprintf(code, sizeof code, "%d %s", status, reason(status));
        fy_resp_json(resp, status, json_pack("{s:s,s:s,s:s}", "message", shown.msg, "code",
                                             code, "title", reason(status)));
        return;
    }
    /* Nova says no more than this about a body it cannot parse. */
    if (e->code == FY_E_BAD_REQUEST && strncmp(e->msg, "Malformed request body", 22) == 0)
        snprintf(shown.msg, sizeof shown.msg, "Malformed request body");
    json_t *body;
    if (status == 406)
        /* Nova's fault wrapper has no name for 406 and falls back to computeFault. */
        body = json_pack("{s:{s:i,s:s}}", "computeFault", "code", 406, "message", shown.msg);
    else
        body = fy_nova_error_body(&shown);
    fy_resp_json(resp, status, body);
    resp->content_type = "application/json; charset=UTF-8";
}
