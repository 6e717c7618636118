/* fuzz_api_body — whole requests through fy_httpd's one dispatch path, in process:
 * a real server on 127.0.0.1 (ephemeral port) with a small route table shaped like
 * the API's, and handlers that validate their bodies the way the API's do.
 *
 * Input: byte 0 picks the method, byte 1 the Content-Type, byte 2 the headers
 * (token, service token, request id, microversion); then the request target up to
 * the first '\n', then the body.  Every request must be answered with a status
 * below 500, and the server must keep answering. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "fy_httpd.h"
#include "fy_json.h"
#include "fy_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_BODY 4096
#define SECRET "fuzz-service-secret"
#define TOKEN "fuzz-admin-token"

typedef struct server_body {
    const char *name, *image_ref, *az, *user_data;
    json_t *flavor_ref, *networks, *metadata;
    long long min_count;
    bool has_networks;
} server_body;

static const fy_jspec server_spec[] = {
    { "name", FY_J_STRING, FY_J_REQUIRED, offsetof(server_body, name), FY_JNOPRESENT, 1, 255 },
    { "flavorRef", FY_J_ANY, FY_J_REQUIRED, offsetof(server_body, flavor_ref), FY_JNOPRESENT, 0, 0 },
    { "imageRef", FY_J_STRING, 0, offsetof(server_body, image_ref), FY_JNOPRESENT, 0, 255 },
    { "networks", FY_J_ANY, 0, offsetof(server_body, networks),
      offsetof(server_body, has_networks), 0, 0 },
    { "availability_zone", FY_J_STRING, 0, offsetof(server_body, az), FY_JNOPRESENT, 1, 255 },
    { "min_count", FY_J_INT, FY_J_INT_AS_STRING, offsetof(server_body, min_count), FY_JNOPRESENT,
      1, 100 },
    { "metadata", FY_J_OBJECT, 0, offsetof(server_body, metadata), FY_JNOPRESENT, 0, 0 },
    { "user_data", FY_J_STRING, FY_J_NULLABLE, offsetof(server_body, user_data), FY_JNOPRESENT, 0,
      65535 },
};

typedef struct wrapped {
    json_t *inner;
} wrapped;

static fy_code need_body(const fy_req *req, fy_err *err)
{
    if (!req->json)
        return fy_fail(err, FY_E_BAD_REQUEST, "The request body is missing");
    return FY_E_OK;
}

static fy_code unwrap(const fy_req *req, const char *key, json_t **inner, fy_err *err)
{
    fy_jspec spec = { key, FY_J_OBJECT, FY_J_REQUIRED, offsetof(wrapped, inner), FY_JNOPRESENT, 0, 0 };
    wrapped w = { 0 };
    fy_code rc = need_body(req, err);
    if (rc == FY_E_OK)
        rc = fy_json_parse(req->json, &spec, 1, &w, false, NULL, err);
    *inner = w.inner;
    return rc;
}

static fy_code servers_create(fy_req *req, fy_resp *resp, fy_err *err)
{
    json_t *server;
    fy_code rc = unwrap(req, "server", &server, err);
    if (rc)
        return rc;
    server_body sb = { 0 };
    if ((rc = fy_json_parse(server, server_spec, N(server_spec), &sb, false, "server", err)))
        return rc;
    fy_resp_json(resp, 202, json_pack("{s:{s:s}}", "server", "name", sb.name));
    return FY_E_OK;
}

typedef struct live_body {
    const char *host;
    json_t *block_migration;
} live_body;

static const fy_jspec live_spec[] = {
    { "host", FY_J_STRING, FY_J_REQUIRED | FY_J_NULLABLE, offsetof(live_body, host), FY_JNOPRESENT,
      1, 255 },
    { "block_migration", FY_J_ANY, FY_J_REQUIRED, offsetof(live_body, block_migration),
      FY_JNOPRESENT, 0, 0 },
};

static fy_code servers_action(fy_req *req, fy_resp *resp, fy_err *err)
{
    fy_code rc = need_body(req, err);
    if (rc)
        return rc;
    if (!json_is_object(req->json) || json_object_size(req->json) != 1)
        return fy_fail(err, FY_E_BAD_REQUEST, "An action takes exactly one member");
    if (!fy_uuid_valid(req->params[0]))
        return fy_fail(err, FY_E_NOT_FOUND, "Instance %.40s could not be found.", req->params[0]);
    const json_t *live = json_object_get(req->json, "os-migrateLive");
    if (!live)
        return fy_fail(err, FY_E_BAD_REQUEST, "Unknown action");
    live_body lb = { 0 };
    if ((rc = fy_json_parse(live, live_spec, N(live_spec), &lb, false, "os-migrateLive", err)))
        return rc;
    resp->status = 202;
    return FY_E_OK;
}

static void count_arg(const char *key, const char *val, void *arg)
{
    (void)key;
    (void)val;
    (*(int *)arg)++;
}

static fy_code servers_list(fy_req *req, fy_resp *resp, fy_err *err)
{
    int n = 0;
    fy_req_query_each(req, count_arg, &n);
    const char *limit = fy_req_query(req, "limit");
    long long lim = 0;
    if (limit && !fy_parse_ll(limit, 0, 1000, &lim))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid limit");
    const char *status[4];
    int ns = fy_req_query_all(req, "status", status, 4);
    fy_resp_json(resp, 200, json_pack("{s:i,s:I,s:i}", "args", n, "limit", lim, "status", ns));
    return FY_E_OK;
}

static fy_code show(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)err;
    fy_resp_json(resp, 200, json_pack("{s:s}", "id", req->params[0]));
    return FY_E_OK;
}

static fy_code tokens(fy_req *req, fy_resp *resp, fy_err *err)
{
    json_t *auth;
    fy_code rc = unwrap(req, "auth", &auth, err);
    if (rc)
        return rc;
    resp->status = 201;
    fy_resp_add_header(resp, "X-Subject-Token", "%s", TOKEN);
    return FY_E_OK;
}

static fy_code raw(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)err;
    fy_resp_json(resp, 200, json_pack("{s:I}", "bytes", (json_int_t)req->body_len));
    return FY_E_OK;
}

static fy_code upload(fy_req *req, fy_resp *resp, fy_err *err)
{
    if (!req->upload_path)
        return fy_fail(err, FY_E_BAD_REQUEST, "no upload");
    resp->status = 204;
    return FY_E_OK;
}

static fy_code internal(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req;
    (void)err;
    resp->status = 200;
    return FY_E_OK;
}

static const fy_route routes[] = {
    { "GET", "/healthz", show, FY_R_PUBLIC },
    { "POST", "/identity/v3/auth/tokens", tokens, FY_R_PUBLIC },
    { "GET", "/v2.1/servers", servers_list, 0 },
    { "POST", "/v2.1/servers", servers_create, 0 },
    { "GET", "/v2.1/servers/{}", show, 0 },
    { "POST", "/v2.1/servers/{}/action", servers_action, 0 },
    { "GET", "/v2.1/servers/{}/migrations/{}", show, 0 },
    { "PUT", "/image/v2/images/{}/file", upload, FY_R_UPLOAD },
    { "POST", "/metrics/{}", raw, FY_R_RAW | FY_R_PUBLIC },
    { "POST", "/internal/{}/step", internal, FY_R_INTERNAL },
};

static fy_code authenticate(fy_req *req, fy_err *err)
{
    const char *t = fy_req_header(req, "X-Auth-Token");
    if (!t || !fy_const_time_eq(t, TOKEN))
        return fy_fail(err, FY_E_UNAUTHORIZED, "The request you have made requires authentication.");
    req->auth.authenticated = true;
    req->auth.is_admin = true;
    return FY_E_OK;
}

/* Like the API's microversion negotiation: "compute X.Y" within 2.1 .. 2.90. */
static fy_code pre_dispatch(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)resp;
    const char *v = fy_req_header(req, "OpenStack-API-Version");
    req->mv_major = 2;
    req->mv_minor = 1;
    if (!v)
        return FY_E_OK;
    int major = 0, minor = 0, used = 0;
    if (sscanf(v, "compute %d.%d%n", &major, &minor, &used) != 2 || v[used] != '\0' ||
        major != 2 || minor < 1 || minor > 90)
        return fy_fail(err, FY_E_NOT_ACCEPTABLE, "Version %.40s is not supported by the API.", v);
    req->mv_minor = minor;
    return FY_E_OK;
}

static void render(fy_req *req, const fy_err *e, fy_resp *resp)
{
    (void)req;
    fy_resp_json(resp, fy_code_http(e->code), fy_nova_error_body(e));
}

static int server_port(void)
{
    static int port;
    static char dir[] = "/tmp/fuzz-upload-XXXXXX";
    if (port)
        return port;
    if (!mkdtemp(dir))
        abort();
    fy_httpd_conf conf = {
        .bind_addr = "127.0.0.1",
        .threads = 1,
        .max_body = MAX_BODY,
        .max_upload = 2 * MAX_BODY,
        .upload_dir = dir,
        .routes = routes,
        .nroutes = N(routes),
        .service_secret = SECRET,
        .authenticate = authenticate,
        .pre_dispatch = pre_dispatch,
        .render_error = render,
    };
    fy_httpd *d = NULL;
    fy_err err = { 0 };
    if (fy_httpd_start(&conf, &d, &err) != FY_E_OK) {
        fprintf(stderr, "fuzz_api_body: %s\n", err.msg);
        abort();
    }
    port = fy_httpd_port(d);
    if (port <= 0)
        abort();
    return port;
}

static const char *const methods[] = { "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH" };
static const char *const ctypes[] = {
    NULL,
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/merge-patch+json",
    "application/octet-stream",
    "APPLICATION/JSON ",
    "application/+json",
};

/* Builds the request text; the target keeps only bytes a request line may carry. */
static char *build_request(const uint8_t *data, size_t size, size_t *len)
{
    const uint8_t *nl = memchr(data + 3, '\n', size - 3);
    size_t tlen = nl ? (size_t)(nl - (data + 3)) : size - 3;
    const uint8_t *body = nl ? nl + 1 : data + size;
    size_t blen = (size_t)(data + size - body);
    char target[1024];
    size_t t = 0;
    for (size_t i = 0; i < tlen && t + 1 < sizeof target; i++)
        if (data[3 + i] > 0x20 && data[3 + i] < 0x7f)
            target[t++] = (char)data[3 + i];
    target[t] = '\0';
    if (target[0] != '/')
        snprintf(target, sizeof target, "/");
    const char *ct = ctypes[data[1] % N(ctypes)];
    unsigned h = data[2];
    char *head = NULL;
    int n = asprintf(&head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s%s%s%s%s"
                     "Content-Length: %zu\r\n\r\n",
                     methods[data[0] % N(methods)], target, ct ? "Content-Type: " : "",
                     ct ? ct : "", ct ? "\r\n" : "",
                     (h & 1) ? "X-Auth-Token: " TOKEN "\r\n" : "",
                     (h & 2) ? "X-Service-Token: " SECRET "\r\n" : "",
                     (h & 4) ? "X-OpenStack-Request-Id: req-fuzz\r\n" : "",
                     (h & 8) ? "OpenStack-API-Version: compute 2.90\r\n" : "", blen);
    if (n < 0)
        abort();
    char *req = malloc((size_t)n + blen);
    if (!req)
        abort();
    memcpy(req, head, (size_t)n);
    memcpy(req + n, body, blen);
    free(head);
    *len = (size_t)n + blen;
    return req;
}

/* Sends the request, reads the whole answer; returns the status, 0 when the server
 * reset the connection after answering early (a refused body). */
static int exchange(int port, const char *req, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        abort();
    struct timeval tv = { .tv_sec = 10 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* reset on close: no TIME_WAIT pile-up over millions of connections */
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        abort();
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;   /* answered early and closed: the answer is still read below */
        off += (size_t)w;
    }
    char buf[16384];
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                fprintf(stderr, "fuzz_api_body: no answer within 10 s\n");
                abort();
            }
            break;
        }
        got += (size_t)r;
        if (got == sizeof buf - 1)
            got = 12;  /* only the status line matters; keep draining */
    }
    close(fd);
    buf[got] = '\0';
    int status = 0;
    if (got >= 12 && sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        abort();
    return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int port = server_port();
    size_t len;
    char *req = build_request(data, size, &len);
    int status = exchange(port, req, len);
    free(req);
    if (status >= 500) {
        fprintf(stderr, "fuzz_api_body: answered %d\n", status);
        abort();
    }
    /* the server must still be serving (checked now and then: it costs a connection) */
    static unsigned runs;
    static const char ping[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (++runs % 32 == 0 && exchange(port, ping, sizeof ping - 1) != 200)
        abort();
    return 0;
}
