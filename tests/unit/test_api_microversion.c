/* api-svc microversions: parsing, negotiation limits, the 406/400 messages, the
 * response headers, and negotiation through a real fy_httpd with the API's hooks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../api-svc/api.h"
#include "fy_httpc.h"
#include "fy_json.h"
#include "fy_log.h"

static void parse_ok(const char *s, int ma, int mi)
{
    fy_err err = {0};
    int a = -1, b = -1;
    assert_int_equal(api_mv_parse(s, &a, &b, &err), FY_E_OK);
    assert_int_equal(a, ma);
    assert_int_equal(b, mi);
}

static void parse_fails(const char *s, fy_code code)
{
    fy_err err = {0};
    int a, b;
    assert_int_equal(api_mv_parse(s, &a, &b, &err), code);
}

static void test_parse_valid(void **state)
{
    (void)state;
    parse_ok("2.1", 2, 1);
    parse_ok("2.53", 2, 53);
    parse_ok("2.90", 2, 90);
    parse_ok("latest", 2, API_MV_MAX_MINOR);
    parse_ok("LATEST", 2, API_MV_MAX_MINOR);
}

static void test_parse_bad_format(void **state)
{
    (void)state;
    const char *bad[] = {"", "2", "2.", ".1", "abc", "2.01", "02.1", "2.1.1", "2.x", "-2.1",
                         "2 .1", "v2.1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_fails(bad[i], FY_E_BAD_REQUEST);
    fy_err err = {0};
    int a, b;
    api_mv_parse("2.x", &a, &b, &err);
    assert_string_equal(err.msg, "API Version String 2.x is of invalid format. Must be of "
                                 "format MajorNum.MinorNum.");
}

static void test_parse_out_of_range(void **state)
{
    (void)state;
    fy_err err = {0};
    int a = 0, b = 0;
    assert_int_equal(api_mv_parse("2.999", &a, &b, &err), FY_E_NOT_ACCEPTABLE);
    /* Still reported so the 406 echoes what was asked for. */
    assert_int_equal(a, 2);
    assert_int_equal(b, 999);
    char want[160];
    snprintf(want, sizeof want,
             "Version 2.999 is not supported by the API. Minimum is 2.1 and maximum is 2.%d.",
             API_MV_MAX_MINOR);
    assert_string_equal(err.msg, want);
    parse_fails("2.0", FY_E_NOT_ACCEPTABLE);
    parse_fails("3.0", FY_E_NOT_ACCEPTABLE);
    parse_fails("1.1", FY_E_NOT_ACCEPTABLE);
    parse_fails("2.91", FY_E_NOT_ACCEPTABLE);
    parse_fails("2.99999999999999999999", FY_E_NOT_ACCEPTABLE);
}

static void test_ge(void **state)
{
    (void)state;
    fy_req req = {.mv_major = 2, .mv_minor = 55};
    assert_true(api_mv_ge(&req, 2, 1));
    assert_true(api_mv_ge(&req, 2, 55));
    assert_false(api_mv_ge(&req, 2, 56));
    assert_false(api_mv_ge(&req, 3, 0));
}

static const char *find_header(const fy_resp *resp, const char *line)
{
    for (int i = 0; i < resp->nheaders; i++)
        if (strcmp(resp->headers[i], line) == 0)
            return resp->headers[i];
    return NULL;
}

static void free_headers(fy_resp *resp)
{
    for (int i = 0; i < resp->nheaders; i++)
        free(resp->headers[i]);
    resp->nheaders = 0;
}

static void test_decorate(void **state)
{
    (void)state;
    fy_req req = {.path = "/v2.1/flavors", .request_id = "req-1", .mv_major = 2,
                  .mv_minor = 90};
    fy_resp resp = {.file_fd = -1};
    api_decorate(&req, &resp);
    assert_non_null(find_header(&resp, "OpenStack-API-Version: compute 2.90"));
    assert_non_null(find_header(&resp, "X-OpenStack-Nova-API-Version: 2.90"));
    assert_non_null(find_header(&resp, "Vary: OpenStack-API-Version"));
    assert_non_null(find_header(&resp, "Vary: X-OpenStack-Nova-API-Version"));
    assert_non_null(find_header(&resp, "x-compute-request-id: req-1"));
    free_headers(&resp);

    fy_req other = {.path = "/identity/v3", .request_id = "req-2"};
    api_decorate(&other, &resp);
    assert_int_equal(resp.nheaders, 1);
    assert_non_null(find_header(&resp, "x-compute-request-id: req-2"));
    free_headers(&resp);
}

/* ---- through the HTTP server ---- */

static fy_httpd *srv;
static char base[64];
static api_ctx ctx;

static fy_code h_probe(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)err;
    char v[16];
    snprintf(v, sizeof v, "%d.%d", req->mv_major, req->mv_minor);
    fy_resp_json(resp, 200, json_pack("{s:s}", "mv", v));
    return FY_E_OK;
}

static const fy_route routes[] = {
    {"GET", "/v2.1/probe", h_probe, FY_R_PUBLIC},
    {"GET", "/identity/probe", h_probe, FY_R_PUBLIC},
};

static int start(void **state)
{
    (void)state;
    fy_log_init("test", FY_LOG_ERROR, false);
    fy_httpc_global_init();
    ctx.cfg.public_url = (char *)"http://127.0.0.1";
    fy_httpd_conf conf = {.bind_addr = "127.0.0.1", .port = 0, .threads = 2,
                          .max_body = 1 << 20, .routes = routes, .nroutes = 2, .svc = &ctx,
                          .service_secret = "x", .authenticate = api_authenticate,
                          .pre_dispatch = api_pre_dispatch, .render_error = api_render_error,
                          .decorate = api_decorate};
    fy_err err = {0};
    if (fy_httpd_start(&conf, &srv, &err) != FY_E_OK)
        return -1;
    snprintf(base, sizeof base, "http://127.0.0.1:%d", fy_httpd_port(srv));
    return 0;
}

static int stop(void **state)
{
    (void)state;
    fy_httpd_stop(srv);
    return 0;
}

static long get(const char *path, const char *header, fy_http_result *res)
{
    char url[128];
    snprintf(url, sizeof url, "%s%s", base, path);
    fy_httpc_opts opts = {.extra_header = header};
    fy_err err = {0};
    memset(res, 0, sizeof *res);
    fy_httpc_call("GET", url, NULL, &opts, res, &err);
    return res->status;
}

static void expect_mv(const char *header, const char *mv)
{
    fy_http_result res;
    assert_int_equal(get("/v2.1/probe", header, &res), 200);
    assert_string_equal(fy_json_str(res.json, "mv"), mv);
    fy_http_result_clear(&res);
}

static void test_http_negotiation(void **state)
{
    (void)state;
    char latest[16];
    snprintf(latest, sizeof latest, "2.%d", API_MV_MAX_MINOR);
    expect_mv(NULL, "2.1");
    expect_mv("OpenStack-API-Version: compute 2.53", "2.53");
    expect_mv("OpenStack-API-Version: placement 1.2, compute 2.60", "2.60");
    expect_mv("X-OpenStack-Nova-API-Version: 2.25", "2.25");
    expect_mv("OpenStack-API-Version: compute latest", latest);

    fy_http_result res;
    assert_int_equal(get("/v2.1/probe", "OpenStack-API-Version: compute 2.999", &res), 406);
    json_t *fault = json_object_get(res.json, "computeFault");
    assert_non_null(fault);
    assert_int_equal(fy_json_int(fault, "code", 0), 406);
    fy_http_result_clear(&res);

    assert_int_equal(get("/v2.1/probe", "OpenStack-API-Version: compute 2.x", &res), 400);
    assert_non_null(json_object_get(res.json, "badRequest"));
    fy_http_result_clear(&res);

    /* Only compute paths negotiate. */
    assert_int_equal(get("/identity/probe", "OpenStack-API-Version: compute 2.999", &res), 200);
    assert_string_equal(fy_json_str(res.json, "mv"), "0.0");
    fy_http_result_clear(&res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_bad_format),
        cmocka_unit_test(test_parse_out_of_range),
        cmocka_unit_test(test_ge),
        cmocka_unit_test(test_decorate),
        cmocka_unit_test_setup_teardown(test_http_negotiation, start, stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
