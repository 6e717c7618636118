/* fy_httpd_resp — building responses: helpers for handlers, error bodies, and
 * turning a fy_resp into an MHD response. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "fy_cleanup.h"
#include "fy_httpd_priv.h"
#include "fy_log.h"

void fy_resp_init(fy_resp *resp)
{
    *resp = (fy_resp){ .status = 200, .file_fd = -1 };
}

void fy_resp_clear(fy_resp *resp)
{
    json_decref(resp->body);
    free(resp->raw);
    if (resp->file_fd >= 0)
        close(resp->file_fd);
    for (int i = 0; i < resp->nheaders; i++)
        free(resp->headers[i]);
    fy_resp_init(resp);
}

void fy_resp_json(fy_resp *resp, int status, json_t *body)
{
    json_decref(resp->body);
    resp->body = body;
    resp->status = status;
}

void fy_resp_add_header(fy_resp *resp, const char *name, const char *fmt, ...)
{
    _cleanup_free_ char *value = NULL;
    char *line = NULL;
    va_list ap;

    if (resp->nheaders >= (int)ELEMENTSOF(resp->headers)) {
        fy_debug("response header %s dropped: too many headers", name);
        return;
    }
    va_start(ap, fmt);
    int r = vasprintf(&value, fmt, ap);
    va_end(ap);
    if (r < 0) {
        value = NULL;
        return;
    }
    if (asprintf(&line, "%s: %s", name, value) < 0)
        return;
    resp->headers[resp->nheaders++] = line;
}

json_t *fy_nova_error_body(const fy_err *e)
{
    return json_pack("{s:{s:i,s:s}}", fy_code_nova_key(e->code), "code",
                     fy_code_http(e->code), "message", e->msg);
}

void fy_httpd_render_error_internal(fy_req *req, const fy_err *e, fy_resp *resp)
{
    (void)req;
    fy_resp_json(resp, fy_code_http(e->code),
                 json_pack("{s:{s:s,s:i,s:s}}", "error", "code", fy_code_name(e->code),
                           "status", fy_code_http(e->code), "message", e->msg));
}

void fy_httpd_conn_fail(fy_httpd_conn *c, const fy_err *e)
{
    const fy_httpd_conf *conf = &c->d->conf;
    fy_err copy = *e;

    if (copy.code == FY_E_OK)
        copy.code = FY_E_INTERNAL;
    if (!copy.msg[0])
        snprintf(copy.msg, sizeof(copy.msg), "%s", fy_code_name(copy.code));
    fy_resp_clear(&c->resp);
    if (conf->render_error)
        conf->render_error(&c->req, &copy, &c->resp);
    else
        fy_httpd_render_error_internal(&c->req, &copy, &c->resp);
    if (copy.code == FY_E_METHOD && c->allow[0])
        fy_resp_add_header(&c->resp, "Allow", "%s", c->allow);
    c->answered = true;
}

static struct MHD_Response *body_response(fy_resp *resp, const char **ret_type)
{
    if (resp->file_fd >= 0) {
        *ret_type = "application/octet-stream";
        struct MHD_Response *r =
            MHD_create_response_from_fd64((uint64_t)resp->file_size, resp->file_fd);
        if (r)
            resp->file_fd = -1; /* MHD closes it */
        return r;
    }
    if (resp->raw) {
        *ret_type = "application/octet-stream";
        struct MHD_Response *r = MHD_create_response_from_buffer(resp->raw_len, resp->raw,
                                                                 MHD_RESPMEM_MUST_FREE);
        if (r)
            resp->raw = NULL;
        return r;
    }
    if (resp->body) {
        char *text = json_dumps(resp->body, JSON_COMPACT);
        if (!text)
            return NULL;
        *ret_type = "application/json";
        struct MHD_Response *r =
            MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (!r)
            free(text);
        return r;
    }
    return MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
}

static void add_headers(struct MHD_Response *r, const fy_resp *resp)
{
    for (int i = 0; i < resp->nheaders; i++) {
        char *line = resp->headers[i], *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        const char *value = colon + 1 + strspn(colon + 1, " \t");
        if (MHD_add_response_header(r, line, value) != MHD_YES)
            fy_debug("invalid response header %s dropped", line);
        *colon = ':';
    }
}

enum MHD_Result fy_httpd_conn_queue(fy_httpd_conn *c)
{
    const fy_httpd_conf *conf = &c->d->conf;
    const char *type = NULL;

    fy_resp_add_header(&c->resp, "x-openstack-request-id", "%s", c->request_id);
    if (conf->decorate)
        conf->decorate(&c->req, &c->resp);
    struct MHD_Response *r = body_response(&c->resp, &type);
    if (!r)
        return MHD_NO;
    if (c->resp.content_type)
        type = c->resp.content_type;
    if (type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    add_headers(r, &c->resp);
    c->status = c->resp.status > 0 ? c->resp.status : 200;
    enum MHD_Result ret = MHD_queue_response(c->req.conn, (unsigned)c->status, r);
    MHD_destroy_response(r);
    c->queued = ret == MHD_YES;
    return ret;
}
