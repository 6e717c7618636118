/* Scheduler weighers: Nova's RAM weigher, spread and pack, no database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "../../scheduler-svc/sched.h"

static sched_host_state host(const char *name, long long mem, long long used)
{
    return (sched_host_state){ .host = (char *)name, .memory_mb = mem, .memory_mb_used = used };
}

static void test_normalize(void **state)
{
    (void)state;
    double in[] = { 10, 20, 30 }, out[3];
    sched_normalize(in, 3, out);
    assert_float_equal(out[0], 0.0, 1e-12);
    assert_float_equal(out[1], 0.5, 1e-12);
    assert_float_equal(out[2], 1.0, 1e-12);
    double same[] = { 7, 7 }, zero[2];
    sched_normalize(same, 2, zero);
    assert_float_equal(zero[0], 0.0, 1e-12);
    assert_float_equal(zero[1], 0.0, 1e-12);
    sched_normalize(in, 0, out);   /* nothing to do */
}

static void test_names(void **state)
{
    (void)state;
    sched_weigher w;
    assert_true(sched_weigher_from_name("spread", &w));
    assert_int_equal(w, SCHED_WEIGH_SPREAD);
    assert_true(sched_weigher_from_name("pack", &w));
    assert_int_equal(w, SCHED_WEIGH_PACK);
    assert_false(sched_weigher_from_name("random", &w));
    assert_false(sched_weigher_from_name(NULL, &w));
    assert_string_equal(sched_weigher_name(SCHED_WEIGH_PACK), "pack");
}

static void test_raw_is_free_ram(void **state)
{
    (void)state;
    sched_host_state hs = host("a", 8192, 10000);   /* overcommitted */
    assert_float_equal(sched_weigh_ram_raw(&hs), -1808.0, 1e-9);
}

static void test_spread_prefers_free_ram(void **state)
{
    (void)state;
    sched_host_state hs[] = { host("a", 8192, 4096), host("b", 8192, 0), host("c", 8192, 8192) };
    fy_err err = { 0 };
    assert_int_equal(sched_weigh_hosts(hs, 3, SCHED_WEIGH_SPREAD, &err), FY_E_OK);
    assert_string_equal(hs[0].host, "b");
    assert_string_equal(hs[1].host, "a");
    assert_string_equal(hs[2].host, "c");
    assert_float_equal(hs[0].weight, 1.0, 1e-12);
    assert_float_equal(hs[1].weight, 0.5, 1e-12);
    assert_float_equal(hs[2].weight, 0.0, 1e-12);
}

static void test_pack_prefers_full_hosts(void **state)
{
    (void)state;
    sched_host_state hs[] = { host("a", 8192, 4096), host("b", 8192, 0), host("c", 8192, 8192) };
    fy_err err = { 0 };
    assert_int_equal(sched_weigh_hosts(hs, 3, SCHED_WEIGH_PACK, &err), FY_E_OK);
    assert_string_equal(hs[0].host, "c");
    assert_string_equal(hs[1].host, "a");
    assert_string_equal(hs[2].host, "b");
    assert_float_equal(hs[0].weight, -0.0, 1e-12);
    assert_float_equal(hs[2].weight, -1.0, 1e-12);
}

static void test_ties_keep_order(void **state)
{
    (void)state;
    sched_host_state hs[] = { host("a", 4096, 0), host("b", 8192, 4096), host("c", 2048, 0),
                              host("d", 4096, 0) };
    fy_err err = { 0 };
    assert_int_equal(sched_weigh_hosts(hs, 4, SCHED_WEIGH_SPREAD, &err), FY_E_OK);
    assert_string_equal(hs[0].host, "a");
    assert_string_equal(hs[1].host, "b");
    assert_string_equal(hs[2].host, "d");
    assert_string_equal(hs[3].host, "c");
    assert_int_equal(sched_weigh_hosts(hs, 0, SCHED_WEIGH_SPREAD, &err), FY_E_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_raw_is_free_ram),
        cmocka_unit_test(test_spread_prefers_free_ram),
        cmocka_unit_test(test_pack_prefers_full_hosts),
        cmocka_unit_test(test_ties_keep_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
