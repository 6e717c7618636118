/* Run-once step records against a real PostgreSQL (FERRY_TEST_DB_URL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include "compute_steps.h"
#include "fy_db.h"
#include "fy_util.h"

#define HOST "steps-test-host"

typedef struct counter {
    int runs;
    fy_code fail_with;
} counter;

static fy_code count_step(void *arg, json_t **ret, fy_err *err)
{
    counter *c = arg;
    c->runs++;
    if (c->fail_with)
        return fy_fail(err, c->fail_with, "step failed on purpose");
    *ret = json_pack("{s:i}", "run", c->runs);
    return FY_E_OK;
}

static int group_setup(void **state)
{
    (void)state;
    const char *url = getenv("FERRY_TEST_DB_URL");
    if (!url)
        return 0;
    fy_err err = {0};
    if (fy_db_init(url, "test_compute_steps", &err) || fy_schema_sync(&err)) {
        fprintf(stderr, "database: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (getenv("FERRY_TEST_DB_URL"))
        fy_db_shutdown();
    return 0;
}

static void need_db(void)
{
    if (!getenv("FERRY_TEST_DB_URL"))
        skip();
}

static void test_second_call_returns_first_result(void **state)
{
    (void)state;
    need_db();
    char subject[FY_UUID_LEN + 1];
    fy_uuid_v4(subject);
    counter c = {0};
    fy_err err = {0};
    json_t *a = NULL, *b = NULL;
    assert_int_equal(compute_step_run(HOST, subject, "pre_live_migration", count_step, &c, &a,
                                      &err), FY_E_OK);
    assert_int_equal(compute_step_run(HOST, subject, "pre_live_migration", count_step, &c, &b,
                                      &err), FY_E_OK);
    assert_int_equal(c.runs, 1);
    assert_int_equal(json_integer_value(json_object_get(b, "run")), 1);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);

    /* Another step, or the same step on another host, is another record. */
    assert_int_equal(compute_step_run(HOST, subject, "live_migration", count_step, &c, &a, &err),
                     FY_E_OK);
    assert_int_equal(compute_step_run("other-host", subject, "live_migration", count_step, &c,
                                      &b, &err), FY_E_OK);
    assert_int_equal(c.runs, 3);
    json_decref(a);
    json_decref(b);
}

static void test_failure_is_not_recorded(void **state)
{
    (void)state;
    need_db();
    char subject[FY_UUID_LEN + 1];
    fy_uuid_v4(subject);
    counter c = {.fail_with = FY_E_DRIVER};
    fy_err err = {0};
    json_t *r = NULL;
    assert_int_equal(compute_step_run(HOST, subject, "s", count_step, &c, &r, &err), FY_E_DRIVER);
    assert_non_null(strstr(err.msg, "on purpose"));
    c.fail_with = FY_E_OK;
    assert_int_equal(compute_step_run(HOST, subject, "s", count_step, &c, &r, &err), FY_E_OK);
    assert_int_equal(c.runs, 2);
    assert_int_equal(json_integer_value(json_object_get(r, "run")), 2);
    json_decref(r);
}

static void test_forget(void **state)
{
    (void)state;
    need_db();
    char subject[FY_UUID_LEN + 1];
    fy_uuid_v4(subject);
    counter c = {0};
    fy_err err = {0};
    json_t *r = NULL;
    assert_int_equal(compute_step_run(HOST, subject, "s", count_step, &c, &r, &err), FY_E_OK);
    json_decref(r);
    assert_int_equal(compute_step_forget(HOST, subject, &err), FY_E_OK);
    assert_int_equal(compute_step_run(HOST, subject, "s", count_step, &c, &r, &err), FY_E_OK);
    assert_int_equal(c.runs, 2);
    json_decref(r);
}

static void test_bad_keys(void **state)
{
    (void)state;
    counter c = {0};
    fy_err err = {0};
    json_t *r = NULL;
    assert_int_equal(compute_step_run(HOST, "not-a-uuid", "s", count_step, &c, &r, &err),
                     FY_E_BAD_REQUEST);
    assert_int_equal(compute_step_run(HOST, "5b7d6a1e-0c1f-4a6e-9e3b-2f4a5c6d7e8f", "a:b",
                                      count_step, &c, &r, &err), FY_E_BAD_REQUEST);
    assert_int_equal(compute_step_forget(HOST, "x", &err), FY_E_BAD_REQUEST);
    assert_int_equal(c.runs, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_call_returns_first_result),
        cmocka_unit_test(test_failure_is_not_recorded),
        cmocka_unit_test(test_forget),
        cmocka_unit_test(test_bad_keys),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
