/* fy_httpc against an in-process fy_httpd: error mapping, retries, timeouts,
 * headers it sends, connection failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fy_cleanup.h"
#include "fy_httpc.h"
#include "fy_httpd.h"
#include "fy_log.h"
#include "fy_util.h"

#define SECRET "svc-secret"

static fy_httpd *srv;
static char base[64];
static atomic_int flaky_calls;

static fy_code h_flaky(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req;
    if (atomic_fetch_add(&flaky_calls, 1) < 2)
        return fy_fail(err, FY_E_UNAVAILABLE, "warming up");
    fy_resp_json(resp, 200, json_pack("{s:b}", "ok", 1));
    return FY_E_OK;
}

static fy_code h_slow(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req, (void)err;
    usleep(800 * 1000);
    fy_resp_json(resp, 200, json_object());
    return FY_E_OK;
}

static fy_code h_agent_fail(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req, (void)resp;
    return fy_fail(err, FY_E_DRIVER, "disk full on host1");
}

static fy_code h_nova404(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req, (void)err;
    fy_resp_json(resp, 404, json_pack("{s:{s:i,s:s}}", "itemNotFound", "code", 404, "message",
                                      "Instance u1 could not be found."));
    return FY_E_OK;
}

static fy_code h_plain500(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req, (void)err;
    resp->status = 500;
    resp->raw = strdup("boom");
    resp->raw_len = 4;
    resp->content_type = "text/plain";
    return FY_E_OK;
}

static json_t *header_or_null(const fy_req *req, const char *name)
{
    const char *v = fy_req_header(req, name);
    return v ? json_string(v) : json_null();
}

static fy_code h_echo(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)err;
    fy_resp_json(resp, 200,
                 json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:O?}", "rid", req->request_id, "auth",
                           header_or_null(req, "X-Auth-Token"), "svc",
                           header_or_null(req, "X-Service-Token"), "extra",
                           header_or_null(req, "X-Extra"), "ct",
                           header_or_null(req, "Content-Type"), "accept",
                           header_or_null(req, "Accept"), "body", req->json));
    return FY_E_OK;
}

static const fy_route routes[] = {
    { "GET", "/flaky", h_flaky, FY_R_PUBLIC },
    { "GET", "/slow", h_slow, FY_R_PUBLIC },
    { "POST", "/agent", h_agent_fail, FY_R_INTERNAL },
    { "GET", "/nova404", h_nova404, FY_R_PUBLIC },
    { "GET", "/plain500", h_plain500, FY_R_PUBLIC },
    { "POST", "/echo", h_echo, FY_R_PUBLIC },
    { "PATCH", "/echo", h_echo, FY_R_PUBLIC },
    { "GET", "/echo", h_echo, FY_R_PUBLIC },
};

static int setup(void **state)
{
    (void)state;
    fy_httpc_global_init();
    fy_httpd_conf conf = {
        .bind_addr = "127.0.0.1",
        .threads = 2,
        .max_body = 64 * 1024,
        .max_upload = 1024 * 1024,
        .upload_dir = "/tmp",
        .routes = routes,
        .nroutes = ELEMENTSOF(routes),
        .service_secret = SECRET,
    };
    fy_err err = { 0 };
    if (fy_httpd_start(&conf, &srv, &err))
        return -1;
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", fy_httpd_port(srv));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fy_httpd_stop(srv);
    fy_httpc_thread_done();
    curl_global_cleanup();
    return 0;
}

static fy_code call(const char *method, const char *path, json_t *body, const fy_httpc_opts *o,
                    fy_http_result *r, fy_err *err)
{
    _cleanup_free_ char *url = fy_strdup_printf("%s%s", base, path);
    fy_code c = fy_httpc_call(method, url, body, o, r, err);
    json_decref(body);
    return c;
}

static void test_headers_sent(void **state)
{
    fy_http_result r;
    fy_err err = { 0 };
    (void)state;
    fy_httpc_opts o = { .auth_token = "tok", .service_secret = SECRET, .extra_header = "X-Extra: 7" };
    fy_log_set_request_id("req-abc-1");
    assert_int_equal(call("POST", "/echo", json_pack("{s:i}", "n", 5), &o, &r, &err), FY_E_OK);
    fy_log_set_request_id(NULL);
    assert_string_equal(json_string_value(json_object_get(r.json, "rid")), "req-abc-1");
    assert_string_equal(json_string_value(json_object_get(r.json, "auth")), "tok");
    assert_string_equal(json_string_value(json_object_get(r.json, "svc")), SECRET);
    assert_string_equal(json_string_value(json_object_get(r.json, "extra")), "7");
    assert_string_equal(json_string_value(json_object_get(r.json, "ct")), "application/json");
    assert_string_equal(json_string_value(json_object_get(r.json, "accept")), "application/json");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r.json, "body"), "n")), 5);
    assert_non_null(r.body);
    assert_int_equal(r.body_len, strlen(r.body));
    fy_http_result_clear(&r);

    /* without a thread request id the server makes one */
    assert_int_equal(call("PATCH", "/echo", json_pack("{}"), NULL, &r, &err), FY_E_OK);
    assert_true(strncmp(json_string_value(json_object_get(r.json, "rid")), "req-", 4) == 0);
    assert_true(json_is_null(json_object_get(r.json, "auth")));
    fy_http_result_clear(&r);

    assert_int_equal(call("GET", "/echo", NULL, NULL, &r, &err), FY_E_OK);
    assert_true(json_is_null(json_object_get(r.json, "body")));
    fy_http_result_clear(&r);
}

static void test_ferry_error_roundtrip(void **state)
{
    fy_http_result r;
    fy_err err = { 0 };
    (void)state;
    fy_httpc_opts o = { .service_secret = SECRET };
    assert_int_equal(call("POST", "/agent", json_object(), &o, &r, &err), FY_E_DRIVER);
    assert_string_equal(err.msg, "disk full on host1");
    assert_int_equal(r.status, 500);
    fy_http_result_clear(&r);
}

static void test_nova_and_plain_errors(void **state)
{
    fy_http_result r;
    fy_err err = { 0 };
    (void)state;
    assert_int_equal(call("GET", "/nova404", NULL, NULL, &r, &err), FY_E_NOT_FOUND);
    assert_string_equal(err.msg, "Instance u1 could not be found.");
    fy_http_result_clear(&r);

    assert_int_equal(call("GET", "/plain500", NULL, NULL, &r, &err), FY_E_UPSTREAM);
    assert_non_null(strstr(err.msg, "HTTP 500"));
    assert_non_null(strstr(err.msg, "boom"));
    assert_string_equal(r.body, "boom");
    assert_null(r.json);
    fy_http_result_clear(&r);
}

static void test_retry(void **state)
{
    fy_http_result r;
    fy_err err = { 0 };
    (void)state;
    atomic_store(&flaky_calls, 0);
    fy_httpc_opts o = { .retries = 3, .backoff_ms = 10 };
    assert_int_equal(call("GET", "/flaky", NULL, &o, &r, &err), FY_E_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(atomic_load(&flaky_calls), 3);
    fy_http_result_clear(&r);

    atomic_store(&flaky_calls, 0);
    assert_int_equal(call("GET", "/flaky", NULL, NULL, &r, &err), FY_E_UNAVAILABLE);
    assert_string_equal(err.msg, "warming up");
    assert_int_equal(r.status, 503);
    assert_int_equal(atomic_load(&flaky_calls), 1);
    fy_http_result_clear(&r);

    /* not retried: a 4xx answer */
    atomic_store(&flaky_calls, 0);
    assert_int_equal(call("GET", "/nova404", NULL, &o, &r, &err), FY_E_NOT_FOUND);
    fy_http_result_clear(&r);
}

static void test_timeout(void **state)
{
    fy_http_result r;
    fy_err err = { 0 };
    (void)state;
    fy_httpc_opts o = { .timeout_ms = 200 };
    uint64_t t0 = fy_now_ms();
    assert_int_equal(call("GET", "/slow", NULL, &o, &r, &err), FY_E_TIMEOUT);
    assert_true(fy_now_ms() - t0 < 700);
    assert_non_null(strstr(err.msg, "/slow"));
    fy_http_result_clear(&r);
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_connection_refused(void **state)
{
    fy_http_result r;
    fy_err err = { 0 };
    char url[64];
    (void)state;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", closed_port());
    fy_httpc_opts o = { .retries = 2, .backoff_ms = 5 };
    assert_int_equal(fy_httpc_call("GET", url, NULL, &o, &r, &err), FY_E_UNAVAILABLE);
    assert_non_null(strstr(err.msg, url));
    assert_int_equal(r.status, 0);
    fy_http_result_clear(&r);

    assert_int_equal(fy_httpc_call("GET", "notaurl://x", NULL, NULL, &r, &err), FY_E_INTERNAL);
    fy_http_result_clear(&r);
}

static void test_missing_upload(void **state)
{
    fy_http_result r;
    fy_err err = { 0 };
    (void)state;
    fy_httpc_opts o = { .upload_path = "/nonexistent/file" };
    assert_int_equal(call("POST", "/echo", NULL, &o, &r, &err), FY_E_IO);
    fy_http_result_clear(&r);
}

typedef struct slow_call {
    char url[64];
    fy_code code;
    long status;
} slow_call;

static void *call_slow(void *arg)
{
    slow_call *sc = arg;
    fy_http_result r;
    fy_err err = { 0 };
    sc->code = fy_httpc_call("GET", sc->url, NULL, NULL, &r, &err);
    sc->status = r.status;
    fy_http_result_clear(&r);
    fy_httpc_thread_done();
    return NULL;
}

/* Stopping waits for the request being served and lets its answer out. */
static void test_graceful_stop(void **state)
{
    fy_httpd *d = NULL;
    fy_err err = { 0 };
    pthread_t t;
    slow_call sc = { 0 };
    (void)state;
    fy_httpd_conf conf = { .bind_addr = "127.0.0.1", .threads = 2, .max_body = 1024,
                           .routes = routes, .nroutes = ELEMENTSOF(routes) };
    assert_int_equal(fy_httpd_start(&conf, &d, &err), FY_E_OK);
    snprintf(sc.url, sizeof(sc.url), "http://127.0.0.1:%d/slow", fy_httpd_port(d));
    assert_int_equal(pthread_create(&t, NULL, call_slow, &sc), 0);
    usleep(300 * 1000);
    fy_httpd_stop(d);
    pthread_join(t, NULL);
    assert_int_equal(sc.code, FY_E_OK);
    assert_int_equal(sc.status, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_sent),
        cmocka_unit_test(test_ferry_error_roundtrip),
        cmocka_unit_test(test_nova_and_plain_errors),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_missing_upload),
        cmocka_unit_test(test_graceful_stop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
