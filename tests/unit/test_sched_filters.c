/* Scheduler filters: pure functions over host states, no database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../scheduler-svc/sched.h"

static sched_host_state host(const char *name)
{
    return (sched_host_state){
        .node_id = 1,
        .host = (char *)name,
        .node = (char *)name,
        .zone = (char *)"nova",
        .vcpus = 4, .memory_mb = 8192, .local_gb = 100,
        .cpu_ratio = 16.0, .ram_ratio = 1.5, .disk_ratio = 1.0,
        .heartbeat_age_s = 5,
    };
}

static sched_request request(long long vcpus, long long mem, long long disk)
{
    return (sched_request){ .res = { vcpus, mem, disk }, .claim = true };
}

static void test_compute_filter(void **state)
{
    (void)state;
    sched_request req = request(1, 1, 1);
    sched_filter_ctx ctx = { &req, 60 };
    sched_host_state hs = host("h1");
    assert_true(sched_filter_compute(&hs, &ctx));
    hs.heartbeat_age_s = 60;
    assert_true(sched_filter_compute(&hs, &ctx));
    hs.heartbeat_age_s = 60.5;
    assert_false(sched_filter_compute(&hs, &ctx));
    hs.heartbeat_age_s = -1;    /* never reported */
    assert_false(sched_filter_compute(&hs, &ctx));
    hs = host("h1");
    hs.forced_down = true;
    assert_false(sched_filter_compute(&hs, &ctx));
    hs = host("h1");
    hs.disabled = true;
    assert_false(sched_filter_compute(&hs, &ctx));
}

static void test_ram_filter_uses_ratio(void **state)
{
    (void)state;
    sched_host_state hs = host("h1");   /* 8192 x 1.5 = 12288 usable */
    hs.memory_mb_used = 4096;
    sched_request req = request(1, 8192, 0);
    sched_filter_ctx ctx = { &req, 60 };
    assert_true(sched_filter_ram(&hs, &ctx));        /* exactly fits */
    req.res.memory_mb = 8193;
    assert_false(sched_filter_ram(&hs, &ctx));
    hs.memory_mb_used = 13000;                        /* already over */
    req.res.memory_mb = 0;
    assert_false(sched_filter_ram(&hs, &ctx));
}

static void test_core_filter(void **state)
{
    (void)state;
    sched_host_state hs = host("h1");   /* 4 x 16 = 64 */
    hs.vcpus_used = 60;
    sched_request req = request(4, 0, 0);
    sched_filter_ctx ctx = { &req, 60 };
    assert_true(sched_filter_core(&hs, &ctx));
    req.res.vcpus = 5;
    assert_false(sched_filter_core(&hs, &ctx));
    hs.cpu_ratio = 1.0;
    hs.vcpus_used = 0;
    req.res.vcpus = 4;
    assert_true(sched_filter_core(&hs, &ctx));
}

static void test_disk_filter(void **state)
{
    (void)state;
    sched_host_state hs = host("h1");
    hs.local_gb_used = 90;
    sched_request req = request(0, 0, 10);
    sched_filter_ctx ctx = { &req, 60 };
    assert_true(sched_filter_disk(&hs, &ctx));
    req.res.disk_gb = 11;
    assert_false(sched_filter_disk(&hs, &ctx));
    hs.disk_ratio = 2.0;
    assert_true(sched_filter_disk(&hs, &ctx));
}

static void test_az_filter(void **state)
{
    (void)state;
    sched_host_state hs = host("h1");
    sched_request req = request(0, 0, 0);
    sched_filter_ctx ctx = { &req, 60 };
    assert_true(sched_filter_az(&hs, &ctx));
    req.availability_zone = "nova";
    assert_true(sched_filter_az(&hs, &ctx));
    req.availability_zone = "az2";
    assert_false(sched_filter_az(&hs, &ctx));
}

static void test_ignore_hosts_filter(void **state)
{
    (void)state;
    const char *ignore[] = { "h2", "h3" };
    sched_request req = request(0, 0, 0);
    req.ignore_hosts = ignore;
    req.n_ignore_hosts = 2;
    sched_filter_ctx ctx = { &req, 60 };
    sched_host_state h1 = host("h1"), h3 = host("h3");
    assert_true(sched_filter_ignore_hosts(&h1, &ctx));
    assert_false(sched_filter_ignore_hosts(&h3, &ctx));
}

static void test_force_host_filter(void **state)
{
    (void)state;
    sched_request req = request(0, 0, 0);
    sched_filter_ctx ctx = { &req, 60 };
    sched_host_state hs = host("h1");
    hs.node = (char *)"h1.example";
    assert_true(sched_filter_force_host(&hs, &ctx));
    req.force_host = "h1";
    assert_true(sched_filter_force_host(&hs, &ctx));
    req.force_host = "h1.example";
    assert_true(sched_filter_force_host(&hs, &ctx));
    req.force_host = "h2";
    assert_false(sched_filter_force_host(&hs, &ctx));
}

static void test_reject_names_filter(void **state)
{
    (void)state;
    sched_request req = request(1, 100000, 1);
    sched_filter_ctx ctx = { &req, 60 };
    sched_host_state hs = host("h1");
    assert_string_equal(sched_filters_reject(&hs, &ctx), "RamFilter");
    req.res.memory_mb = 1;
    assert_null(sched_filters_reject(&hs, &ctx));
    hs.forced_down = true;
    assert_string_equal(sched_filters_reject(&hs, &ctx), "ComputeFilter");
}

static sched_host_state owned_host(const char *name, long long mem_used)
{
    sched_host_state hs = host(name);
    hs.host = strdup(name);
    hs.node = strdup(name);
    hs.zone = strdup("nova");
    hs.memory_mb_used = mem_used;
    return hs;
}

static void test_filter_hosts_keeps_order(void **state)
{
    (void)state;
    sched_host_list l = { calloc(4, sizeof(sched_host_state)), 4 };
    assert_non_null(l.hosts);
    l.hosts[0] = owned_host("a", 0);
    l.hosts[1] = owned_host("b", 12288);   /* full */
    l.hosts[2] = owned_host("c", 100);
    l.hosts[3] = owned_host("d", 12000);   /* full for 512 */
    sched_request req = request(1, 512, 1);
    sched_filter_ctx ctx = { &req, 60 };
    sched_filter_hosts(&l, &ctx);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.hosts[0].host, "a");
    assert_string_equal(l.hosts[1].host, "c");
    sched_host_list_clear(&l);
    assert_null(l.hosts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compute_filter),
        cmocka_unit_test(test_ram_filter_uses_ratio),
        cmocka_unit_test(test_core_filter),
        cmocka_unit_test(test_disk_filter),
        cmocka_unit_test(test_az_filter),
        cmocka_unit_test(test_ignore_hosts_filter),
        cmocka_unit_test(test_force_host_filter),
        cmocka_unit_test(test_reject_names_filter),
        cmocka_unit_test(test_filter_hosts_keeps_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
