/* Fault injection and run-time settings of the agent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "compute.h"
#include "compute_fault.h"
#include "compute_mig.h"

static void test_error_fires_times(void **state)
{
    (void)state;
    json_t *b = json_pack("{s:[{s:s, s:s, s:i}]}", "faults", "step", "pre_live_migration",
                          "action", "error", "times", 2);
    fy_err err = {0};
    assert_int_equal(compute_fault_set(b, &err), FY_E_OK);
    json_decref(b);
    assert_int_equal(compute_fault_check("live_migration", &err), FY_E_OK);
    assert_int_equal(compute_fault_check("pre_live_migration", &err), FY_E_DRIVER);
    assert_string_equal(err.msg, "injected fault at pre_live_migration");
    json_t *l = compute_fault_list();
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(l, "faults"), 0), "times")), 1);
    json_decref(l);
    assert_int_equal(compute_fault_check("pre_live_migration", &err), FY_E_DRIVER);
    assert_int_equal(compute_fault_check("pre_live_migration", &err), FY_E_OK);
}

static void test_unlimited_and_clear(void **state)
{
    (void)state;
    json_t *b = json_pack("{s:[{s:s, s:s, s:i}]}", "faults", "step", "spawn", "action", "error",
                          "times", 0);
    fy_err err = {0};
    assert_int_equal(compute_fault_set(b, &err), FY_E_OK);
    json_decref(b);
    for (int i = 0; i < 5; i++)
        assert_int_equal(compute_fault_check("spawn", &err), FY_E_DRIVER);
    compute_fault_clear();
    assert_int_equal(compute_fault_check("spawn", &err), FY_E_OK);
}

static void test_bad_faults(void **state)
{
    (void)state;
    const char *bodies[] = {
        "{}", "{\"faults\": {}}", "{\"faults\": [{\"step\": \"x\", \"action\": \"boom\"}]}",
        "{\"faults\": [{\"step\": \"../x\", \"action\": \"error\"}]}",
        "{\"faults\": [{\"step\": \"x\", \"action\": \"error\", \"times\": -1}]}",
        "{\"faults\": [{\"action\": \"error\"}]}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        json_t *b = json_loads(bodies[i], 0, NULL);
        fy_err err = {0};
        assert_int_equal(compute_fault_set(b, &err), FY_E_BAD_REQUEST);
        json_decref(b);
    }
}

static void test_config_spec(void **state)
{
    (void)state;
    fy_err err = {0};
    assert_int_equal(compute_fault_init("spawn:error, finish_migration:error", &err), FY_E_OK);
    assert_int_equal(compute_fault_check("finish_migration", &err), FY_E_DRIVER);
    assert_int_equal(compute_fault_check("finish_migration", &err), FY_E_OK);
    assert_int_equal(compute_fault_check("spawn", &err), FY_E_DRIVER);
    assert_int_equal(compute_fault_init("spawn", &err), FY_E_CONFIG);
    assert_int_equal(compute_fault_init("spawn:explode", &err), FY_E_CONFIG);
    assert_int_equal(compute_fault_init("", &err), FY_E_OK);
}

static void test_crash_exits_137(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fy_err err = {0};
        compute_fault_init("live_migration:crash", &err);
        compute_fault_check("live_migration", &err);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 137);
}

static void test_settings(void **state)
{
    (void)state;
    compute_config cfg = {.live_migration_downtime_ms = 500, .live_migration_downtime_steps = 10,
                          .live_migration_downtime_delay_s = 75,
                          .live_migration_completion_timeout_s = 800,
                          .live_migration_timeout_action = "abort",
                          .fake_bandwidth_mbps = 1000};
    compute_settings_init(&cfg);
    json_t *b = json_pack("{s:i, s:f, s:s}", "fake_memory_copy_ms", 250, "fake_dirty_rate", 1.5,
                          "live_migration_timeout_action", "force_complete");
    fy_err err = {0};
    assert_int_equal(compute_settings_apply(b, &err), FY_E_OK);
    json_decref(b);
    compute_settings s;
    compute_settings_get(&s);
    assert_int_equal(s.fake_memory_copy_ms, 250);
    assert_true(s.fake_dirty_rate > 1.49 && s.fake_dirty_rate < 1.51);
    assert_true(s.lm_timeout_force);
    assert_int_equal(s.lm_downtime_ms, 500);

    /* All or nothing: one bad key changes nothing. */
    b = json_pack("{s:i, s:i}", "fake_memory_copy_ms", 1, "no_such_key", 2);
    assert_int_equal(compute_settings_apply(b, &err), FY_E_BAD_REQUEST);
    json_decref(b);
    b = json_pack("{s:i}", "live_migration_downtime_steps", 0);
    assert_int_equal(compute_settings_apply(b, &err), FY_E_BAD_REQUEST);
    json_decref(b);
    b = json_pack("{s:s}", "live_migration_completion_timeout_s", "5");
    assert_int_equal(compute_settings_apply(b, &err), FY_E_BAD_REQUEST);
    json_decref(b);
    compute_settings_get(&s);
    assert_int_equal(s.fake_memory_copy_ms, 250);

    json_t *j = compute_settings_json();
    assert_string_equal(json_string_value(json_object_get(j, "live_migration_timeout_action")),
                        "force_complete");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_fires_times),
        cmocka_unit_test(test_unlimited_and_clear),
        cmocka_unit_test(test_bad_faults),
        cmocka_unit_test(test_config_spec),
        cmocka_unit_test(test_crash_exits_137),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
