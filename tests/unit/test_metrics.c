/* Unit tests for fy_metrics: the registry, the text exposition format, the
 * HTTP hooks and (with FERRY_TEST_DB_URL) the scrape-time database gauges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fy_db.h"
#include "fy_metrics.h"
#include "fy_metrics_http.h"

static const char *db_url;

static int reset(void **state)
{
    (void)state;
    fy_metrics_reset();
    return 0;
}

static char *render(void)
{
    size_t len = 0;
    char *text = fy_metrics_render(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static void assert_has(const char *text, const char *line)
{
    if (!strstr(text, line))
        fail_msg("missing <%s> in:\n%s", line, text);
}

static const fy_metric_def m_req = {
    "t_requests_total", "Requests.", FY_METRIC_COUNTER, {"method", "status", NULL}, {0}};
static const fy_metric_def m_plain = {"t_plain_total", "No labels.", FY_METRIC_COUNTER,
                                      {NULL}, {0}};
static const fy_metric_def m_gauge = {"t_depth", "Depth.", FY_METRIC_GAUGE, {"host", NULL},
                                      {0}};
static const fy_metric_def m_hist = {"t_seconds", "Latency.", FY_METRIC_HISTOGRAM,
                                     {"op", NULL}, {0.1, 1, 10}};
static const fy_metric_def m_hist_default = {"t_default_seconds", "Default buckets.",
                                             FY_METRIC_HISTOGRAM, {NULL}, {0}};

static void test_counter(void **state)
{
    (void)state;
    fy_metric_inc(&m_req, FY_LV("GET", "200"), 1);
    fy_metric_inc(&m_req, FY_LV("GET", "200"), 2);
    fy_metric_inc(&m_req, FY_LV("POST", "202"), 1);
    fy_metric_inc(&m_req, FY_LV("POST", "202"), -5); /* counters never go down */
    fy_metric_inc(&m_plain, NULL, 0.5);
    assert_true(fy_metric_value(&m_req, FY_LV("GET", "200")) == 3);
    assert_true(fy_metric_value(&m_req, FY_LV("PUT", "200")) == 0);
    char *text = render();
    assert_has(text, "# HELP t_requests_total Requests.\n# TYPE t_requests_total counter\n");
    assert_has(text, "t_requests_total{method=\"GET\",status=\"200\"} 3\n");
    assert_has(text, "t_requests_total{method=\"POST\",status=\"202\"} 1\n");
    assert_has(text, "# TYPE t_plain_total counter\nt_plain_total 0.5\n");
    free(text);
}

static void test_gauge(void **state)
{
    (void)state;
    fy_metric_set(&m_gauge, FY_LV("a"), 7);
    fy_metric_inc(&m_gauge, FY_LV("a"), -2);
    fy_metric_set(&m_gauge, FY_LV("b"), 0.25);
    char *text = render();
    assert_has(text, "# TYPE t_depth gauge\nt_depth{host=\"a\"} 5\nt_depth{host=\"b\"} 0.25\n");
    free(text);
    fy_metric_clear(&m_gauge);
    text = render();
    assert_has(text, "# TYPE t_depth gauge\n");
    assert_null(strstr(text, "t_depth{"));
    free(text);
    /* a counter cannot be set */
    fy_metric_set(&m_plain, NULL, 9);
    assert_true(fy_metric_value(&m_plain, NULL) == 0);
}

static void test_histogram(void **state)
{
    (void)state;
    fy_metric_observe(&m_hist, FY_LV("x"), 0.05);
    fy_metric_observe(&m_hist, FY_LV("x"), 0.1);  /* le is inclusive */
    fy_metric_observe(&m_hist, FY_LV("x"), 5);
    fy_metric_observe(&m_hist, FY_LV("x"), 50);
    char *text = render();
    assert_has(text, "# TYPE t_seconds histogram\n"
                     "t_seconds_bucket{op=\"x\",le=\"0.1\"} 2\n"
                     "t_seconds_bucket{op=\"x\",le=\"1\"} 2\n"
                     "t_seconds_bucket{op=\"x\",le=\"10\"} 3\n"
                     "t_seconds_bucket{op=\"x\",le=\"+Inf\"} 4\n"
                     "t_seconds_sum{op=\"x\"} 55.15\n"
                     "t_seconds_count{op=\"x\"} 4\n");
    free(text);
    assert_true(fy_metric_value(&m_hist, FY_LV("x")) == 4);

    fy_metric_observe(&m_hist_default, NULL, 0.003);
    text = render();
    assert_has(text, "t_default_seconds_bucket{le=\"0.005\"} 1\n");
    assert_has(text, "t_default_seconds_bucket{le=\"10\"} 1\n");
    assert_has(text, "t_default_seconds_bucket{le=\"+Inf\"} 1\n");
    assert_has(text, "t_default_seconds_count 1\n");
    free(text);
}

static void test_escaping(void **state)
{
    (void)state;
    static const fy_metric_def m = {"t_escape", "Line one\\two\nthree", FY_METRIC_GAUGE,
                                    {"v", NULL}, {0}};
    fy_metric_set(&m, FY_LV("a\"b\\c\nd"), 1);
    fy_metric_set(&m, FY_LV(NULL), 2);
    char *text = render();
    assert_has(text, "# HELP t_escape Line one\\\\two\\nthree\n");
    assert_has(text, "t_escape{v=\"a\\\"b\\\\c\\nd\"} 1\n");
    assert_has(text, "t_escape{v=\"\"} 2\n");
    free(text);
}

static void test_invalid_defs(void **state)
{
    (void)state;
    static const fy_metric_def bad_name = {"1bad", "", FY_METRIC_COUNTER, {NULL}, {0}};
    static const fy_metric_def bad_label = {"t_ok", "", FY_METRIC_COUNTER, {"a-b", NULL}, {0}};
    static const fy_metric_def le_label = {"t_le", "", FY_METRIC_HISTOGRAM, {"le", NULL}, {0}};
    static const fy_metric_def clash = {"t_requests_total", "", FY_METRIC_GAUGE, {NULL}, {0}};
    static const fy_metric_def same = {
        "t_requests_total", "Requests.", FY_METRIC_COUNTER, {"method", "status", NULL}, {0}};
    assert_false(fy_metric_register(&bad_name));
    assert_false(fy_metric_register(&bad_label));
    assert_false(fy_metric_register(&le_label));
    assert_true(fy_metric_register(&m_req));
    assert_false(fy_metric_register(&clash));
    /* a second definition of the same shape shares the family */
    fy_metric_inc(&m_req, FY_LV("GET", "200"), 1);
    fy_metric_inc(&same, FY_LV("GET", "200"), 1);
    assert_true(fy_metric_value(&m_req, FY_LV("GET", "200")) == 2);
    char *text = render();
    assert_null(strstr(text, "1bad"));
    assert_null(strstr(text, "t_le"));
    free(text);
}

static void test_series_limit(void **state)
{
    (void)state;
    char v[32];
    for (int i = 0; i < FY_METRIC_MAX_SERIES + 10; i++) {
        snprintf(v, sizeof(v), "h%d", i);
        fy_metric_set(&m_gauge, FY_LV(v), i);
    }
    assert_true(fy_metric_value(&m_gauge, FY_LV("h0")) == 0);
    assert_true(fy_metric_value(&m_gauge, FY_LV("h1999")) == 1999);
    snprintf(v, sizeof(v), "h%d", FY_METRIC_MAX_SERIES);
    assert_true(fy_metric_value(&m_gauge, FY_LV(v)) == 0);
    char *text = render();
    assert_has(text, "ferry_metrics_dropped_series_total 10\n");
    free(text);
}

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        fy_metric_inc(&m_req, FY_LV("GET", i % 2 ? "200" : "500"), 1);
        fy_metric_observe(&m_hist, FY_LV("t"), 0.5);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < 4; i++) {
        char *text = render(); /* rendering concurrently with updates */
        free(text);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_true(fy_metric_value(&m_req, FY_LV("GET", "200")) == 40000);
    assert_true(fy_metric_value(&m_req, FY_LV("GET", "500")) == 40000);
    assert_true(fy_metric_value(&m_hist, FY_LV("t")) == 80000);
}

static int collected;

static void collector(void *arg)
{
    collected++;
    fy_metric_set(&m_gauge, FY_LV("scrape"), *(double *)arg);
}

static void test_collector(void **state)
{
    (void)state;
    static double value = 42;
    collected = 0;
    fy_metric_add_collector(collector, &value);
    fy_metric_add_collector(collector, &value); /* registering twice runs it once */
    char *text = render();
    assert_int_equal(collected, 1);
    assert_has(text, "t_depth{host=\"scrape\"} 42\n");
    free(text);
}

static void test_path_template(void **state)
{
    (void)state;
    char out[128];
    fy_metric_path_template("/v2.1/servers/6f1c9c5e-1b7a-4a3e-9d0e-0c3f4b1a2d3e/action", out,
                            sizeof(out));
    assert_string_equal(out, "/v2.1/servers/{}/action");
    fy_metric_path_template("/v2.1/os-migrations/12/detail", out, sizeof(out));
    assert_string_equal(out, "/v2.1/os-migrations/{}/detail");
    fy_metric_path_template("/internal/v1/instances", out, sizeof(out));
    assert_string_equal(out, "/internal/v1/instances");
    fy_metric_path_template("/image/v2/images/deadbeefcafe1234/file", out, sizeof(out));
    assert_string_equal(out, "/image/v2/images/{}/file");
    fy_metric_path_template("/v2.1/flavors/m1.small", out, sizeof(out));
    assert_string_equal(out, "/v2.1/flavors/m1.small");
    fy_metric_path_template("/abcdefghij", out, 5);
    assert_string_equal(out, "/abc");
}

static void test_recorders(void **state)
{
    (void)state;
    fy_metrics_db_done("api_server_get", FY_E_OK, 0.002);
    fy_metrics_db_done("api_server_get", FY_E_UNAVAILABLE, 0.2);
    fy_metrics_httpc_done("POST", "http://127.0.0.1:8780/internal/v1/instances/"
                                  "6f1c9c5e-1b7a-4a3e-9d0e-0c3f4b1a2d3e/spawn?x=1",
                          FY_E_OK, 200, 3, 0.01);
    fy_metrics_httpc_done("GET", "http://127.0.0.1:1", FY_E_UNAVAILABLE, 0, 1, 0.01);
    char *text = render();
    assert_has(text, "ferry_db_query_duration_seconds_count{statement=\"api_server_get\"} 2\n");
    assert_has(text,
               "ferry_db_errors_total{statement=\"api_server_get\",code=\"UNAVAILABLE\"} 1\n");
    assert_has(text, "ferry_http_client_request_duration_seconds_count{method=\"POST\","
                     "path=\"/internal/v1/instances/{}/spawn\",status=\"200\"} 1\n");
    assert_has(text, "ferry_http_client_retries_total{method=\"POST\","
                     "path=\"/internal/v1/instances/{}/spawn\"} 2\n");
    assert_has(text, "ferry_http_client_errors_total{method=\"GET\",path=\"/\","
                     "code=\"UNAVAILABLE\"} 1\n");
    free(text);
}

static void test_http_hooks(void **state)
{
    (void)state;
    fy_req req = {.method = "GET", .path = "/v2.1/servers/abc", .route = "/v2.1/servers/{}"};
    fy_metrics_http_finished(&req, 200, 0.03);
    fy_req unmatched = {.method = "GET", .path = "/nope"};
    fy_metrics_http_finished(&unmatched, 404, 0.001);

    fy_resp resp = {.status = 200, .file_fd = -1};
    fy_err err = {0};
    assert_int_equal(fy_metrics_handler(&req, &resp, &err), FY_E_OK);
    assert_int_equal(resp.status, 200);
    assert_non_null(resp.raw);
    assert_string_equal(resp.content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert_int_equal(strlen(resp.raw), resp.raw_len);
    assert_has(resp.raw, "ferry_http_requests_total{method=\"GET\",route=\"/v2.1/servers/{}\","
                         "status=\"200\"} 1\n");
    assert_has(resp.raw, "ferry_http_requests_total{method=\"GET\",route=\"unmatched\","
                         "status=\"404\"} 1\n");
    assert_has(resp.raw, "ferry_http_request_duration_seconds_bucket{method=\"GET\","
                         "route=\"/v2.1/servers/{}\",le=\"0.05\"} 1\n");
    free(resp.raw);
}

static void test_db_gauges(void **state)
{
    (void)state;
    if (!db_url)
        skip();
    fy_err e = {0};
    assert_int_equal(fy_db_init(db_url, "test-metrics", &e), FY_E_OK);
    assert_int_equal(fy_db_exec_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public;", &e),
                     FY_E_OK);
    assert_int_equal(fy_schema_sync(&e), FY_E_OK);
    assert_int_equal(
        fy_db_exec_script(
            "INSERT INTO services (uuid, host, \"binary\", last_seen_up) VALUES"
            " ('00000000-0000-0000-0000-000000000001', 'cmp1', 'ferry-compute',"
            "  now() - interval '30 seconds'),"
            " ('00000000-0000-0000-0000-000000000002', 'cmp2', 'ferry-compute', NULL);"
            "INSERT INTO tasks (uuid, kind, request_id, state) VALUES"
            " ('00000000-0000-0000-0000-00000000000a', 'build', 'req-1', 'queued'),"
            " ('00000000-0000-0000-0000-00000000000b', 'build', 'req-2', 'queued'),"
            " ('00000000-0000-0000-0000-00000000000c', 'stop', 'req-3', 'running'),"
            " ('00000000-0000-0000-0000-00000000000d', 'stop', 'req-4', 'done');",
            &e),
        FY_E_OK);
    fy_metrics_collect_heartbeats();
    fy_metrics_collect_tasks();
    char *text = render();
    double age = fy_metric_value(
        &(const fy_metric_def){"ferry_service_heartbeat_age_seconds", "", FY_METRIC_GAUGE,
                               {"binary", "host", NULL}, {0}},
        FY_LV("ferry-compute", "cmp1"));
    assert_true(age >= 29 && age < 120);
    assert_null(strstr(text, "host=\"cmp2\""));
    assert_has(text, "ferry_tasks{kind=\"build\",state=\"queued\"} 2\n");
    assert_has(text, "ferry_tasks{kind=\"stop\",state=\"running\"} 1\n");
    assert_null(strstr(text, "state=\"done\""));
    free(text);

    /* the database going away costs the gauges' freshness, not the scrape */
    fy_db_shutdown();
    assert_int_equal(fy_db_init("postgresql://127.0.0.1:1/none?connect_timeout=1", "test-metrics",
                                &e),
                     FY_E_OK);
    text = render();
    assert_has(text, "ferry_metrics_collect_errors_total{collector=\"tasks\"} 1\n");
    free(text);
    fy_db_shutdown();
}

int main(void)
{
    db_url = getenv("FERRY_TEST_DB_URL");
    if (db_url && !*db_url)
        db_url = NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_counter, reset),
        cmocka_unit_test_setup(test_gauge, reset),
        cmocka_unit_test_setup(test_histogram, reset),
        cmocka_unit_test_setup(test_escaping, reset),
        cmocka_unit_test_setup(test_invalid_defs, reset),
        cmocka_unit_test_setup(test_series_limit, reset),
        cmocka_unit_test_setup(test_threads, reset),
        cmocka_unit_test_setup(test_collector, reset),
        cmocka_unit_test_setup(test_path_template, reset),
        cmocka_unit_test_setup(test_recorders, reset),
        cmocka_unit_test_setup(test_http_hooks, reset),
        cmocka_unit_test_setup(test_db_gauges, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
