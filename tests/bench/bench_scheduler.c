/* bench_scheduler — select_destinations + claim latency among 1,000 and 10,000
 * hosts on a real PostgreSQL (FERRY_TEST_DB_URL), library calls and HTTP.
 *
 * Each measured call chooses and claims a host; the claim is released (not
 * timed) so capacity stays the same from one call to the next.  Host usage is
 * varied so the weigher has real work to do, and a few hosts are disabled or
 * down so the filters do too. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fy_cleanup.h"
#include "fy_db.h"
#include "fy_httpc.h"
#include "fy_httpd.h"
#include "fy_log.h"
#include "fy_util.h"
#include "../../scheduler-svc/sched.h"

#define WARMUP 50

static const fy_sql sql_add_hosts = {
    "bench_add_hosts",
    "WITH s AS ("
    " INSERT INTO services (uuid, host, \"binary\", url, zone, disabled, last_seen_up)"
    " SELECT gen_random_uuid(), 'bench-' || g, 'ferry-compute', 'http://127.0.0.1:9/' || g,"
    " 'nova', g % 17 = 0, CASE WHEN g % 23 = 0 THEN now() - interval '1 hour' ELSE now() END"
    " FROM generate_series($1::int, $2::int) g RETURNING id, host)"
    " INSERT INTO compute_nodes (uuid, service_id, host, hypervisor_hostname, hypervisor_type,"
    " hypervisor_version, vcpus, memory_mb, local_gb, vcpus_used, memory_mb_used, local_gb_used)"
    " SELECT gen_random_uuid(), s.id, s.host, s.host, 'fake', 1, 32, 131072, 2000,"
    " (random() * 16)::int, (random() * 98304)::int, (random() * 1000)::int FROM s",
    2,
};

static void die(const char *what, const fy_err *e)
{
    fprintf(stderr, "bench_scheduler: %s: %s: %s\n", what, fy_code_name(e->code), e->msg);
    exit(1);
}

/* What the compute agents' heartbeats would do: hosts stay up during a run. */
static const fy_sql sql_heartbeat = {
    "bench_heartbeat",
    "UPDATE services SET last_seen_up = now()"
    " WHERE host LIKE 'bench-%' AND substring(host from 7)::int % 23 <> 0",
    0,
};

static void heartbeat(void)
{
    fy_err e;
    if (fy_db_exec(&sql_heartbeat, NULL, NULL, &e) != FY_E_OK)
        die("heartbeat", &e);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct stats {
    double p50, p99, mean;
} stats;

static stats summarise(double *ms, int n)
{
    qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += ms[i];
    int i99 = (int)(0.99 * (n - 1));
    return (stats){ ms[(n - 1) / 2], ms[i99], sum / n };
}

static void add_hosts(int from, int to)
{
    fy_err e;
    char a[16], b[16];
    snprintf(a, sizeof a, "%d", from);
    snprintf(b, sizeof b, "%d", to);
    const char *p[] = { a, b };
    if (fy_db_exec(&sql_add_hosts, p, NULL, &e) != FY_E_OK)
        die("adding hosts", &e);
    if (fy_db_exec_script("ANALYZE services; ANALYZE compute_nodes;", &e) != FY_E_OK)
        die("analyze", &e);
}

static const sched_policy policy = { SCHED_WEIGH_SPREAD, 64, 60 };

/* One library-level select + claim; returns its time in ms. */
static double one_select(const char *consumer)
{
    fy_err e;
    sched_request req = { .consumer_uuid = consumer, .res = { 1, 2048, 20 },
                          .num_alternates = 2, .claim = true };
    sched_result r = { 0 };
    uint64_t t0 = fy_now_us();
    if (sched_select_destinations(&policy, &req, &r, &e) != FY_E_OK)
        die("select_destinations", &e);
    double ms = (double)(fy_now_us() - t0) / 1000.0;
    sched_result_clear(&r);
    if (sched_release(consumer, NULL, NULL, &e) != FY_E_OK)
        die("release", &e);
    return ms;
}

static stats run_library(int iterations)
{
    double *ms = calloc((size_t)iterations, sizeof(*ms));
    if (!ms)
        exit(1);
    char consumer[FY_UUID_LEN + 1];
    heartbeat();
    for (int i = 0; i < WARMUP; i++) {
        fy_uuid_v4(consumer);
        one_select(consumer);
    }
    for (int i = 0; i < iterations; i++) {
        if (i % 100 == 99)
            heartbeat();
        fy_uuid_v4(consumer);
        ms[i] = one_select(consumer);
    }
    stats s = summarise(ms, iterations);
    free(ms);
    return s;
}

/* select_destinations over HTTP against an in-process server: adds the
 * HTTP server, JSON and the client to the library time. */
static stats run_http(const char *db_url, int iterations)
{
    static const char secret[] = "bench-service-secret";
    sched_config cfg = { .db_url = (char *)db_url, .service_secret = (char *)secret,
                         .bind = (char *)"127.0.0.1", .port = 0, .threads = 2,
                         .weigher = (char *)"spread", .max_candidates = 64,
                         .service_down_time = 60 };
    sched_ctx ctx = { .cfg = &cfg, .policy = policy };
    fy_httpd *d = NULL;
    fy_err e;
    if (sched_server_start(&ctx, &d, &e) != FY_E_OK)
        die("http server", &e);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/internal/v1/select_destinations",
             fy_httpd_port(d));
    fy_httpc_opts opts = { .service_secret = secret, .timeout_ms = 10000 };
    heartbeat();
    double *ms = calloc((size_t)iterations, sizeof(*ms));
    if (!ms)
        exit(1);
    for (int i = 0; i < WARMUP + iterations; i++) {
        char consumer[FY_UUID_LEN + 1];
        fy_uuid_v4(consumer);
        json_t *body = json_pack("{s:s, s:{s:i, s:i, s:i}, s:i, s:b}", "consumer_uuid", consumer,
                                 "resources", "vcpus", 1, "memory_mb", 2048, "disk_gb", 20,
                                 "num_alternates", 2, "claim", 1);
        fy_http_result res = { 0 };
        uint64_t t0 = fy_now_us();
        fy_code rc = fy_httpc_call("POST", url, body, &opts, &res, &e);
        double t = (double)(fy_now_us() - t0) / 1000.0;
        json_decref(body);
        fy_http_result_clear(&res);
        if (rc != FY_E_OK)
            die("HTTP select_destinations", &e);
        if (i >= WARMUP)
            ms[i - WARMUP] = t;
        if (sched_release(consumer, NULL, NULL, &e) != FY_E_OK)
            die("release", &e);
        if (i % 100 == 99)
            heartbeat();
    }
    fy_httpd_stop(d);
    stats s = summarise(ms, iterations);
    free(ms);
    return s;
}

int main(int argc, char **argv)
{
    const char *db_url = getenv("FERRY_TEST_DB_URL");
    int iterations = argc > 1 ? atoi(argv[1]) : 1000;
    if (!db_url || iterations < 1) {
        fprintf(stderr, "usage: FERRY_TEST_DB_URL=... bench_scheduler [iterations]\n");
        return 2;
    }
    fy_log_init("bench-scheduler", FY_LOG_WARN, false);
    fy_httpc_global_init();
    fy_err e;
    if (fy_db_init(db_url, "bench-scheduler", &e) != FY_E_OK)
        die("db init", &e);
    if (fy_schema_sync(&e) != FY_E_OK)
        die("schema sync", &e);
    if (fy_db_exec_script("DELETE FROM allocations; DELETE FROM compute_nodes;"
                          " DELETE FROM services;", &e) != FY_E_OK)
        die("cleaning", &e);

    printf("select_destinations + claim (spread, max_candidates %d), %d calls each\n",
           policy.max_candidates, iterations);
    printf("%8s | %8s | %8s | %8s\n", "hosts", "p50 ms", "p99 ms", "mean ms");
    static const int sizes[] = { 1000, 10000 };
    int have = 0;
    for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
        add_hosts(have + 1, sizes[i]);
        have = sizes[i];
        stats s = run_library(iterations);
        printf("%8d | %8.3f | %8.3f | %8.3f\n", have, s.p50, s.p99, s.mean);
        fflush(stdout);
    }
    stats h = run_http(db_url, iterations);
    printf("HTTP round trip, %d hosts: p50 %.3f ms, p99 %.3f ms, mean %.3f ms\n", have, h.p50,
           h.p99, h.mean);
    fy_db_shutdown();
    return 0;
}
