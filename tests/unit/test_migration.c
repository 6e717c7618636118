/* The migration transition table: every path docs/migrations.md allows, and no other. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fy_migration.h"

static void test_names_roundtrip(void **state)
{
    (void)state;
    for (int i = 0; i < FY_MIG__COUNT; i++)
        assert_int_equal(fy_mig_status_from_name(fy_mig_status_name((fy_mig_status)i)), i);
    assert_int_equal(fy_mig_status_from_name("nope"), FY_MIG_INVALID);
    assert_int_equal(fy_mig_status_from_name(NULL), FY_MIG_INVALID);
    assert_string_equal(fy_mig_status_name(FY_MIG_POST_MIGRATING), "post-migrating");
}

static void test_live_path(void **state)
{
    (void)state;
    const fy_mig_status path[] = {FY_MIG_ACCEPTED, FY_MIG_QUEUED, FY_MIG_PREPARING,
                                  FY_MIG_RUNNING, FY_MIG_POST_MIGRATING, FY_MIG_COMPLETED};
    for (size_t i = 0; i + 1 < sizeof(path) / sizeof(path[0]); i++)
        assert_true(fy_mig_can_transition(path[i], path[i + 1]));
    assert_true(fy_mig_can_transition(FY_MIG_RUNNING, FY_MIG_CANCELLED));
    assert_true(fy_mig_can_transition(FY_MIG_PREPARING, FY_MIG_FAILED));
    assert_false(fy_mig_can_transition(FY_MIG_COMPLETED, FY_MIG_RUNNING));
    assert_false(fy_mig_can_transition(FY_MIG_ACCEPTED, FY_MIG_COMPLETED));
}

static void test_cold_paths(void **state)
{
    (void)state;
    assert_true(fy_mig_can_transition(FY_MIG_PRE_MIGRATING, FY_MIG_MIGRATING));
    assert_true(fy_mig_can_transition(FY_MIG_MIGRATING, FY_MIG_POST_MIGRATING));
    assert_true(fy_mig_can_transition(FY_MIG_POST_MIGRATING, FY_MIG_FINISHED));
    assert_true(fy_mig_can_transition(FY_MIG_FINISHED, FY_MIG_CONFIRMING));
    assert_true(fy_mig_can_transition(FY_MIG_CONFIRMING, FY_MIG_CONFIRMED));
    assert_true(fy_mig_can_transition(FY_MIG_FINISHED, FY_MIG_REVERTING));
    assert_true(fy_mig_can_transition(FY_MIG_REVERTING, FY_MIG_REVERTED));
    assert_false(fy_mig_can_transition(FY_MIG_CONFIRMED, FY_MIG_REVERTING));
    assert_false(fy_mig_can_transition(FY_MIG_REVERTED, FY_MIG_CONFIRMING));
}

static void test_terminal_states_are_final(void **state)
{
    (void)state;
    for (int from = 0; from < FY_MIG__COUNT; from++) {
        if (!fy_mig_is_terminal((fy_mig_status)from))
            continue;
        assert_false(fy_mig_is_in_progress((fy_mig_status)from));
        for (int to = 0; to < FY_MIG__COUNT; to++)
            assert_false(fy_mig_can_transition((fy_mig_status)from, (fy_mig_status)to));
    }
    assert_true(fy_mig_is_in_progress(FY_MIG_FINISHED));
    assert_false(fy_mig_can_transition(FY_MIG_INVALID, FY_MIG_ERROR));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_roundtrip),
        cmocka_unit_test(test_live_path),
        cmocka_unit_test(test_cold_paths),
        cmocka_unit_test(test_terminal_states_are_final),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
