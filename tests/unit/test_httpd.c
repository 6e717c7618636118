/* fy_httpd: a server on an ephemeral port with a small route table, called
 * through fy_httpc and, where fy_httpc cannot express the request, raw libcurl. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fy_cleanup.h"
#include "fy_httpc.h"
#include "fy_httpd.h"
#include "fy_log.h"
#include "fy_util.h"

#define SECRET "s3cret-service-token"

static fy_httpd *srv;
static char base[64];
static char upload_dir[64] = "/tmp/fy-httpd-test-XXXXXX";
static char store_dir[64] = "/tmp/fy-httpd-store-XXXXXX";
static atomic_int finished_count;
static atomic_int finished_zero;

/* ---- handlers ---- */

static fy_code h_version(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req, (void)err;
    fy_resp_json(resp, 200, json_pack("{s:s}", "version", "2.1"));
    return FY_E_OK;
}

static fy_code h_echo(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)err;
    fy_resp_json(resp, 200, json_pack("{s:O?}", "got", req->json));
    return FY_E_OK;
}

static fy_code h_server(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)err;
    fy_resp_json(resp, 200, json_pack("{s:s,s:i}", "id", req->params[0], "n", req->nparams));
    return FY_E_OK;
}

static fy_code h_detail(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req, (void)err;
    fy_resp_json(resp, 200, json_pack("{s:b}", "detail", 1));
    return FY_E_OK;
}

static fy_code h_action(fy_req *req, fy_resp *resp, fy_err *err)
{
    const char *key = NULL;
    json_t *v;
    json_object_foreach(req->json, key, v) break;
    if (!key)
        return fy_fail(err, FY_E_BAD_REQUEST, "no action");
    fy_resp_json(resp, 202, json_pack("{s:s,s:s}", "id", req->params[0], "action", key));
    return FY_E_OK;
}

static fy_code h_delete(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req, (void)err;
    resp->status = 204;
    return FY_E_OK;
}

static fy_code h_ping(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)err;
    fy_resp_json(resp, 200, json_pack("{s:b}", "service", req->auth.is_service));
    return FY_E_OK;
}

static fy_code h_private(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)err;
    fy_resp_json(resp, 200, json_pack("{s:s}", "user", req->auth.user_id));
    return FY_E_OK;
}

static fy_code h_reqid(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)err;
    fy_resp_json(resp, 200,
                 json_pack("{s:s,s:s}", "request_id", req->request_id, "log", fy_log_request_id()));
    return FY_E_OK;
}

static fy_code h_conflict(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req, (void)resp;
    return fy_fail(err, FY_E_CONFLICT, "x");
}

static fy_code h_put_file(fy_req *req, fy_resp *resp, fy_err *err)
{
    _cleanup_free_ char *dst = fy_strdup_printf("%s/%s", store_dir, req->params[0]);
    struct stat st;
    if (!req->upload_path || stat(req->upload_path, &st) < 0)
        return fy_fail(err, FY_E_INTERNAL, "no upload file");
    if (rename(req->upload_path, dst) < 0)
        return fy_fail(err, FY_E_IO, "rename failed");
    fy_resp_json(resp, 201, json_pack("{s:I}", "size", (json_int_t)st.st_size));
    return FY_E_OK;
}

static fy_code h_get_file(fy_req *req, fy_resp *resp, fy_err *err)
{
    _cleanup_free_ char *path = fy_strdup_printf("%s/%s", store_dir, req->params[0]);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return fy_fail(err, FY_E_NOT_FOUND, "no such file");
    fstat(fd, &st);
    resp->file_fd = fd;
    resp->file_size = st.st_size;
    return FY_E_OK;
}

static void count_key(const char *key, const char *val, void *arg)
{
    (void)key, (void)val;
    (*(int *)arg)++;
}

static fy_code h_query(fy_req *req, fy_resp *resp, fy_err *err)
{
    const char *b[4];
    int n = fy_req_query_all(req, "b", b, 4), keys = 0;
    json_t *arr = json_array();
    (void)err;
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, json_string(b[i]));
    fy_req_query_each(req, count_key, &keys);
    const char *a = fy_req_query(req, "a"), *c = fy_req_query(req, "c");
    fy_resp_json(resp, 200, json_pack("{s:s?,s:o,s:i,s:s?,s:b}", "a", a, "b", arr, "keys", keys,
                                      "c", c, "missing", fy_req_query(req, "zzz") == NULL));
    return FY_E_OK;
}

static fy_code h_raw(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)err;
    fy_resp_json(resp, 200, json_pack("{s:I,s:s?,s:b}", "len", (json_int_t)req->body_len, "body",
                                      req->body, "json", req->json != NULL));
    return FY_E_OK;
}

static fy_code h_text(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req, (void)err;
    resp->raw = strdup("hello\n");
    resp->raw_len = 6;
    resp->content_type = "text/plain";
    fy_resp_add_header(resp, "X-Count", "%d", 42);
    return FY_E_OK;
}

static const fy_route routes[] = {
    { "GET", "/v2.1", h_version, FY_R_PUBLIC },
    { "POST", "/echo", h_echo, FY_R_PUBLIC },
    { "GET", "/servers/{}", h_server, FY_R_PUBLIC },
    { "DELETE", "/servers/{}", h_delete, FY_R_PUBLIC },
    { "GET", "/servers/detail", h_detail, FY_R_PUBLIC },
    { "POST", "/servers/{}/action", h_action, FY_R_PUBLIC },
    { "GET", "/internal/v1/ping", h_ping, FY_R_INTERNAL },
    { "GET", "/private", h_private, 0 },
    { "GET", "/reqid", h_reqid, FY_R_PUBLIC },
    { "GET", "/conflict", h_conflict, FY_R_PUBLIC },
    { "PUT", "/files/{}", h_put_file, FY_R_PUBLIC | FY_R_UPLOAD },
    { "GET", "/files/{}", h_get_file, FY_R_PUBLIC },
    { "GET", "/query", h_query, FY_R_PUBLIC },
    { "POST", "/raw", h_raw, FY_R_PUBLIC | FY_R_RAW },
    { "GET", "/text", h_text, FY_R_PUBLIC },
};

/* ---- hooks ---- */

static fy_code authenticate(fy_req *req, fy_err *err)
{
    if (!fy_streq(fy_req_header(req, "X-Auth-Token"), "good"))
        return fy_fail(err, FY_E_UNAUTHORIZED, "bad token");
    req->auth.authenticated = true;
    snprintf(req->auth.user_id, sizeof(req->auth.user_id), "alice");
    return FY_E_OK;
}

static fy_code pre_dispatch(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)resp;
    if (fy_req_header(req, "X-Refuse"))
        return fy_fail(err, FY_E_NOT_ACCEPTABLE, "refused by pre-dispatch");
    return FY_E_OK;
}

static void decorate(fy_req *req, fy_resp *resp)
{
    (void)req;
    fy_resp_add_header(resp, "X-Decorated", "yes");
}

static void finished(fy_req *req, int status, double seconds)
{
    (void)req;
    assert_true(seconds >= 0);
    atomic_fetch_add(&finished_count, 1);
    if (status == 0)
        atomic_fetch_add(&finished_zero, 1);
}

static int setup(void **state)
{
    (void)state;
    fy_httpc_global_init();
    if (!mkdtemp(upload_dir) || !mkdtemp(store_dir))
        return -1;
    fy_httpd_conf conf = {
        .bind_addr = "127.0.0.1",
        .port = 0,
        .threads = 4,
        .max_body = 1024,
        .max_upload = 6 * 1024 * 1024,
        .upload_dir = upload_dir,
        .routes = routes,
        .nroutes = ELEMENTSOF(routes),
        .service_secret = SECRET,
        .authenticate = authenticate,
        .pre_dispatch = pre_dispatch,
        .decorate = decorate,
        .finished = finished,
    };
    fy_err err = { 0 };
    if (fy_httpd_start(&conf, &srv, &err)) {
        fprintf(stderr, "start: %s\n", err.msg);
        return -1;
    }
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", fy_httpd_port(srv));
    return 0;
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        _cleanup_free_ char *p = fy_strdup_printf("%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static int teardown(void **state)
{
    (void)state;
    fy_httpd_stop(srv);
    fy_httpc_thread_done();
    rm_dir(upload_dir);
    rm_dir(store_dir);
    curl_global_cleanup();
    return 0;
}

/* ---- client helpers ---- */

static fy_code call(const char *method, const char *path, json_t *body, const fy_httpc_opts *o,
                    fy_http_result *r, fy_err *err)
{
    _cleanup_free_ char *url = fy_strdup_printf("%s%s", base, path);
    fy_code c = fy_httpc_call(method, url, body, o, r, err);
    json_decref(body);
    return c;
}

typedef struct raw_result {
    long status;
    char body[4096];
    size_t body_len;
    char headers[4096];
    size_t headers_len;
} raw_result;

static size_t raw_append(char *dst, size_t cap, size_t *len, const char *data, size_t n)
{
    size_t room = cap - 1 - *len, take = n < room ? n : room;
    memcpy(dst + *len, data, take);
    *len += take;
    dst[*len] = '\0';
    return n;
}

static size_t raw_body(char *data, size_t size, size_t nmemb, void *arg)
{
    raw_result *r = arg;
    return raw_append(r->body, sizeof(r->body), &r->body_len, data, size * nmemb);
}

static size_t raw_header(char *data, size_t size, size_t nmemb, void *arg)
{
    raw_result *r = arg;
    return raw_append(r->headers, sizeof(r->headers), &r->headers_len, data, size * nmemb);
}

typedef struct chunk_src {
    size_t left;
} chunk_src;

static size_t chunk_read(char *buf, size_t size, size_t nmemb, void *arg)
{
    chunk_src *s = arg;
    size_t n = size * nmemb < s->left ? size * nmemb : s->left;
    memset(buf, 'a', n);
    s->left -= n;
    return n;
}

/* A request fy_httpc would not send: any method, headers and body, optionally chunked. */
static void raw(const char *method, const char *path, const char *const *headers,
                const char *body, size_t chunked_len, raw_result *r)
{
    _cleanup_free_ char *url = fy_strdup_printf("%s%s", base, path);
    CURL *h = curl_easy_init();
    struct curl_slist *l = NULL;
    chunk_src src = { chunked_len };

    memset(r, 0, sizeof(*r));
    for (; headers && *headers; headers++)
        l = curl_slist_append(l, *headers);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, raw_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, raw_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    } else if (chunked_len) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, chunk_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &src);
    }
    CURLcode rc = curl_easy_perform(h);
    assert_int_equal(rc, CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(l);
    curl_easy_cleanup(h);
}

static bool has_header(const raw_result *r, const char *line)
{
    return strcasestr(r->headers, line) != NULL;
}

/* ---- tests ---- */

static void test_json_roundtrip(void **state)
{
    fy_http_result r;
    fy_err err = { 0 };
    (void)state;
    assert_int_equal(call("POST", "/echo", json_pack("{s:i,s:s}", "a", 1, "s", "é"), NULL, &r,
                          &err), FY_E_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r.json, "got"), "a")), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "got"), "s")),
                        "é");
    fy_http_result_clear(&r);

    /* an empty body on a JSON route is not an error: json stays NULL */
    assert_int_equal(call("POST", "/echo", NULL, NULL, &r, &err), FY_E_OK);
    assert_true(json_is_null(json_object_get(r.json, "got")));
    fy_http_result_clear(&r);
}

static void test_path_params(void **state)
{
    fy_http_result r;
    fy_err err = { 0 };
    (void)state;
    assert_int_equal(call("GET", "/servers/abc%20d%2Fe", NULL, NULL, &r, &err), FY_E_OK);
    assert_string_equal(json_string_value(json_object_get(r.json, "id")), "abc d/e");
    assert_int_equal(json_integer_value(json_object_get(r.json, "n")), 1);
    fy_http_result_clear(&r);

    /* the literal route wins over the capture whatever the table order */
    assert_int_equal(call("GET", "/servers/detail", NULL, NULL, &r, &err), FY_E_OK);
    assert_true(json_is_true(json_object_get(r.json, "detail")));
    fy_http_result_clear(&r);

    assert_int_equal(call("POST", "/servers/u1/action", json_pack("{s:{}}", "reboot"), NULL, &r,
                          &err), FY_E_OK);
    assert_int_equal(r.status, 202);
    assert_string_equal(json_string_value(json_object_get(r.json, "action")), "reboot");
    fy_http_result_clear(&r);

    assert_int_equal(call("GET", "/v2.1/", NULL, NULL, &r, &err), FY_E_OK);
    assert_string_equal(json_string_value(json_object_get(r.json, "version")), "2.1");
    fy_http_result_clear(&r);

    assert_int_equal(call("DELETE", "/servers/u1", NULL, NULL, &r, &err), FY_E_OK);
    assert_int_equal(r.status, 204);
    fy_http_result_clear(&r);

    /* a capture never spans segments; a bad escape is refused */
    assert_int_equal(call("GET", "/servers/a/b", NULL, NULL, &r, &err), FY_E_NOT_FOUND);
    fy_http_result_clear(&r);
    assert_int_equal(call("GET", "/servers/a%zz", NULL, NULL, &r, &err), FY_E_BAD_REQUEST);
    fy_http_result_clear(&r);
}

static void test_not_found(void **state)
{
    fy_http_result r;
    fy_err err = { 0 };
    (void)state;
    assert_int_equal(call("GET", "/nope", NULL, NULL, &r, &err), FY_E_NOT_FOUND);
    assert_int_equal(r.status, 404);
    json_t *e = json_object_get(r.json, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "NOT_FOUND");
    assert_int_equal(json_integer_value(json_object_get(e, "status")), 404);
    fy_http_result_clear(&r);
}

static void test_method_not_allowed(void **state)
{
    raw_result r;
    (void)state;
    raw("PUT", "/servers/abc", NULL, "{}", 0, &r);
    assert_int_equal(r.status, 405);
    assert_true(has_header(&r, "Allow: GET, HEAD, DELETE\r\n"));
    assert_true(has_header(&r, "x-openstack-request-id: req-"));
    assert_non_null(strstr(r.body, "\"METHOD\""));
}

static void test_head(void **state)
{
    raw_result r;
    (void)state;
    raw("HEAD", "/v2.1", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_true(has_header(&r, "Content-Type: application/json"));
}

static void test_too_large(void **state)
{
    char big[2000];
    fy_http_result r;
    fy_err err = { 0 };
    raw_result rr;
    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(call("POST", "/echo", json_pack("{s:s}", "k", big), NULL, &r, &err),
                     FY_E_TOO_LARGE);
    assert_int_equal(r.status, 413);
    fy_http_result_clear(&r);

    /* without Content-Length the limit is found while reading */
    const char *const hdrs[] = { "Content-Type: application/json", "Transfer-Encoding: chunked",
                                 NULL };
    raw("POST", "/echo", hdrs, NULL, 200000, &rr);
    assert_int_equal(rr.status, 413);
    assert_non_null(strstr(rr.body, "TOO_LARGE"));
}

static void test_unsupported_media(void **state)
{
    raw_result r;
    (void)state;
    const char *const text[] = { "Content-Type: text/plain", NULL };
    raw("POST", "/echo", text, "{\"a\":1}", 0, &r);
    assert_int_equal(r.status, 415);
    assert_non_null(strstr(r.body, "UNSUPPORTED_MEDIA"));

    const char *const charset[] = { "Content-Type: Application/JSON; charset=utf-8", NULL };
    raw("POST", "/echo", charset, "{\"a\":1}", 0, &r);
    assert_int_equal(r.status, 200);

    /* a RAW route takes any type and leaves the body unparsed */
    raw("POST", "/raw", text, "hello", 0, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"len\":5"));
    assert_non_null(strstr(r.body, "\"body\":\"hello\""));
    assert_non_null(strstr(r.body, "\"json\":false"));
}

static void test_malformed_json(void **state)
{
    raw_result r;
    (void)state;
    const char *const json[] = { "Content-Type: application/json", NULL };
    raw("POST", "/echo", json, "{\"a\": ", 0, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "BAD_REQUEST"));
}

static void test_internal_auth(void **state)
{
    fy_http_result r;
    fy_err err = { 0 };
    (void)state;
    assert_int_equal(call("GET", "/internal/v1/ping", NULL, NULL, &r, &err), FY_E_UNAUTHORIZED);
    assert_int_equal(r.status, 401);
    fy_http_result_clear(&r);

    fy_httpc_opts wrong = { .service_secret = SECRET "x" };
    assert_int_equal(call("GET", "/internal/v1/ping", NULL, &wrong, &r, &err), FY_E_UNAUTHORIZED);
    fy_http_result_clear(&r);

    fy_httpc_opts o = { .service_secret = SECRET };
    assert_int_equal(call("GET", "/internal/v1/ping", NULL, &o, &r, &err), FY_E_OK);
    assert_true(json_is_true(json_object_get(r.json, "service")));
    fy_http_result_clear(&r);
}

static void test_authenticate_hook(void **state)
{
    fy_http_result r;
    fy_err err = { 0 };
    (void)state;
    fy_httpc_opts bad = { .auth_token = "bad" }, good = { .auth_token = "good" };
    assert_int_equal(call("GET", "/private", NULL, &bad, &r, &err), FY_E_UNAUTHORIZED);
    assert_string_equal(err.msg, "bad token");
    fy_http_result_clear(&r);
    assert_int_equal(call("GET", "/private", NULL, &good, &r, &err), FY_E_OK);
    assert_string_equal(json_string_value(json_object_get(r.json, "user")), "alice");
    fy_http_result_clear(&r);
}

static void test_pre_dispatch_and_decorate(void **state)
{
    raw_result r;
    (void)state;
    const char *const refuse[] = { "X-Refuse: 1", NULL };
    raw("GET", "/v2.1", refuse, NULL, 0, &r);
    assert_int_equal(r.status, 406);
    assert_true(has_header(&r, "X-Decorated: yes"));

    raw("GET", "/text", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello\n");
    assert_true(has_header(&r, "Content-Type: text/plain"));
    assert_true(has_header(&r, "X-Count: 42"));
    assert_true(has_header(&r, "X-Decorated: yes"));
}

static void test_request_id(void **state)
{
    fy_http_result r;
    fy_err err = { 0 };
    raw_result rr;
    (void)state;
    fy_log_set_request_id("req-test-1234");
    assert_int_equal(call("GET", "/reqid", NULL, NULL, &r, &err), FY_E_OK);
    fy_log_set_request_id(NULL);
    assert_string_equal(json_string_value(json_object_get(r.json, "request_id")), "req-test-1234");
    assert_string_equal(json_string_value(json_object_get(r.json, "log")), "req-test-1234");
    fy_http_result_clear(&r);

    const char *const sane[] = { "x-openstack-request-id: abc-DEF-123", NULL };
    raw("GET", "/reqid", sane, NULL, 0, &rr);
    assert_true(has_header(&rr, "x-openstack-request-id: abc-DEF-123\r\n"));

    const char *const insane[] = { "x-openstack-request-id: bad id; drop table", NULL };
    raw("GET", "/reqid", insane, NULL, 0, &rr);
    assert_null(strstr(rr.body, "bad id"));
    assert_non_null(strstr(rr.body, "\"request_id\":\"req-"));
    assert_true(has_header(&rr, "x-openstack-request-id: req-"));
}

static void test_error_shape(void **state)
{
    fy_http_result r;
    fy_err err = { 0 };
    (void)state;
    assert_int_equal(call("GET", "/conflict", NULL, NULL, &r, &err), FY_E_CONFLICT);
    assert_string_equal(err.msg, "x");
    assert_int_equal(r.status, 409);
    fy_http_result_clear(&r);

    fy_err e = { .code = FY_E_NOT_FOUND };
    snprintf(e.msg, sizeof(e.msg), "Instance abc could not be found.");
    json_t *nova = fy_nova_error_body(&e);
    json_t *inner = json_object_get(nova, "itemNotFound");
    assert_int_equal(json_integer_value(json_object_get(inner, "code")), 404);
    assert_string_equal(json_string_value(json_object_get(inner, "message")),
                        "Instance abc could not be found.");
    json_decref(nova);
}

static void write_random_file(const char *path, size_t size)
{
    _cleanup_fclose_ FILE *f = fopen(path, "wb");
    uint8_t buf[65536];
    assert_non_null(f);
    for (size_t done = 0; done < size; done += sizeof(buf)) {
        size_t n = size - done < sizeof(buf) ? size - done : sizeof(buf);
        assert_true(fy_random_bytes(buf, n));
        assert_int_equal(fwrite(buf, 1, n, f), n);
    }
}

static bool files_equal(const char *a, const char *b)
{
    _cleanup_free_ char *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;
    fy_err err = { 0 };
    if (fy_read_file(a, 64 << 20, &da, &la, &err) || fy_read_file(b, 64 << 20, &db, &lb, &err))
        return false;
    return la == lb && memcmp(da, db, la) == 0;
}

static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, "..") != 0);
    if (d)
        closedir(d);
    return n;
}

static void test_upload_download(void **state)
{
    _cleanup_free_ char *src = fy_strdup_printf("%s/src.bin", store_dir);
    _cleanup_free_ char *back = fy_strdup_printf("%s/back.bin", store_dir);
    _cleanup_free_ char *huge = fy_strdup_printf("%s/huge.bin", store_dir);
    fy_http_result r;
    fy_err err = { 0 };
    (void)state;
    write_random_file(src, 5 * 1024 * 1024 + 17);

    fy_httpc_opts up = { .upload_path = src };
    assert_int_equal(call("PUT", "/files/img1", NULL, &up, &r, &err), FY_E_OK);
    assert_int_equal(r.status, 201);
    assert_int_equal(json_integer_value(json_object_get(r.json, "size")), 5 * 1024 * 1024 + 17);
    fy_http_result_clear(&r);
    assert_int_equal(dir_entries(upload_dir), 0);

    fy_httpc_opts down = { .download_path = back };
    assert_int_equal(call("GET", "/files/img1", NULL, &down, &r, &err), FY_E_OK);
    assert_int_equal(r.status, 200);
    fy_http_result_clear(&r);
    assert_true(files_equal(src, back));

    /* over max_upload: refused, and the temp file is gone */
    write_random_file(huge, 7 * 1024 * 1024);
    fy_httpc_opts up2 = { .upload_path = huge };
    assert_int_equal(call("PUT", "/files/img2", NULL, &up2, &r, &err), FY_E_TOO_LARGE);
    fy_http_result_clear(&r);
    assert_int_equal(dir_entries(upload_dir), 0);

    /* a failed download leaves no file behind */
    _cleanup_free_ char *missing = fy_strdup_printf("%s/missing.bin", store_dir);
    fy_httpc_opts down2 = { .download_path = missing };
    assert_int_equal(call("GET", "/files/none", NULL, &down2, &r, &err), FY_E_NOT_FOUND);
    fy_http_result_clear(&r);
    assert_int_equal(access(missing, F_OK), -1);
}

static void test_query(void **state)
{
    fy_http_result r;
    fy_err err = { 0 };
    (void)state;
    assert_int_equal(call("GET", "/query?a=1&b=x&b=y%20z+w&c", NULL, NULL, &r, &err), FY_E_OK);
    assert_string_equal(json_string_value(json_object_get(r.json, "a")), "1");
    json_t *b = json_object_get(r.json, "b");
    assert_int_equal(json_array_size(b), 2);
    assert_string_equal(json_string_value(json_array_get(b, 0)), "x");
    assert_string_equal(json_string_value(json_array_get(b, 1)), "y z w");
    assert_int_equal(json_integer_value(json_object_get(r.json, "keys")), 4);
    assert_string_equal(json_string_value(json_object_get(r.json, "c")), "");
    assert_true(json_is_true(json_object_get(r.json, "missing")));
    fy_http_result_clear(&r);
}

typedef struct worker {
    int ok;
} worker;

static void *hammer(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 40; i++) {
        fy_http_result r;
        fy_err err = { 0 };
        _cleanup_free_ char *path = fy_strdup_printf("/servers/s%d", i);
        if (call("GET", path, NULL, NULL, &r, &err) == FY_E_OK && r.status == 200)
            w->ok++;
        fy_http_result_clear(&r);
    }
    fy_httpc_thread_done();
    return NULL;
}

static void test_concurrent_keepalive(void **state)
{
    pthread_t t[16];
    worker w[16] = { 0 };
    (void)state;
    for (int i = 0; i < 16; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    for (int i = 0; i < 16; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].ok, 40);
    }
}

static void test_finished_hook(void **state)
{
    (void)state;
    assert_true(atomic_load(&finished_count) > 20);
    assert_int_equal(atomic_load(&finished_zero), 0);
}

static void test_bad_bind(void **state)
{
    fy_httpd *d = NULL;
    fy_err err = { 0 };
    (void)state;
    fy_httpd_conf conf = { .bind_addr = "localhost-ish", .routes = routes,
                           .nroutes = ELEMENTSOF(routes) };
    assert_int_equal(fy_httpd_start(&conf, &d, &err), FY_E_CONFIG);
    conf.bind_addr = "127.0.0.1";
    conf.port = fy_httpd_port(srv); /* already taken */
    assert_int_equal(fy_httpd_start(&conf, &d, &err), FY_E_IO);
    assert_null(d);
    fy_httpd_stop(NULL);
}

/* With reuse_port, two servers share one port and both answer; one without it
 * cannot join them. */
static void test_reuse_port(void **state)
{
    (void)state;
    fy_err err = { 0 };
    fy_httpd *a = NULL, *b = NULL, *c = NULL;
    fy_httpd_conf conf = { .bind_addr = "127.0.0.1", .reuse_port = true, .threads = 1,
                           .max_body = 1024, .routes = routes, .nroutes = ELEMENTSOF(routes),
                           .service_secret = SECRET };
    assert_int_equal(fy_httpd_start(&conf, &a, &err), FY_E_OK);
    conf.port = fy_httpd_port(a);
    assert_int_equal(fy_httpd_start(&conf, &b, &err), FY_E_OK);
    assert_int_equal(fy_httpd_port(b), conf.port);
    conf.reuse_port = false;
    assert_int_equal(fy_httpd_start(&conf, &c, &err), FY_E_IO);
    assert_null(c);
    /* Either may take a connection; with a closes, b serves them all. */
    fy_httpd_stop(a);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", conf.port);
    for (int i = 0; i < 4; i++) {
        fy_http_result r = { 0 };
        fy_httpc_opts o = { .timeout_ms = 5000 };
        json_t *body = json_pack("{s:i}", "n", i);
        assert_int_equal(fy_httpc_call("POST", url, body, &o, &r, &err), FY_E_OK);
        assert_int_equal(r.status, 200);
        json_decref(body);
        fy_http_result_clear(&r);
    }
    fy_httpd_stop(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_roundtrip),
        cmocka_unit_test(test_path_params),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_unsupported_media),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_internal_auth),
        cmocka_unit_test(test_authenticate_hook),
        cmocka_unit_test(test_pre_dispatch_and_decorate),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_error_shape),
        cmocka_unit_test(test_upload_download),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_concurrent_keepalive),
        cmocka_unit_test(test_finished_hook),
        cmocka_unit_test(test_bad_bind),
        cmocka_unit_test(test_reuse_port),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
