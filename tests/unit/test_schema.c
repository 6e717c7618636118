/* fy_schema against a real PostgreSQL (FERRY_TEST_DB_URL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "fy_db.h"
#include "fy_schema_sql.h"

static const char *db_url;

static const fy_sql sql_count = {"t_schema_count", "SELECT count(*) AS n FROM schema_version", 0};
static const fy_sql sql_future = {
    "t_schema_future", "INSERT INTO schema_version (version, name) VALUES (9999, '9999_future')", 0};
static const fy_sql sql_flavors = {"t_schema_quota", "SELECT count(*) AS n FROM quota_defaults", 0};

static int setup(void **state)
{
    (void)state;
    if (!db_url)
        return 0;
    fy_err e;
    assert_int_equal(fy_db_init(db_url, "test-schema", &e), FY_E_OK);
    assert_int_equal(fy_db_exec_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public;", &e),
                     FY_E_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fy_db_shutdown();
    return 0;
}

#define NEED_DB() do { if (!db_url) skip(); } while (0)

static long long count(const fy_sql *s)
{
    fy_err e;
    _cleanup_pgres_ PGresult *r = NULL;
    assert_int_equal(fy_db_exec_one(s, NULL, &r, &e), FY_E_OK);
    return fy_db_ll(r, 0, "n", -1);
}

static void test_latest(void **state)
{
    (void)state;
    assert_true(fy_schema_nsteps >= 1);
    assert_true(fy_schema_latest() >= 1);
    assert_int_equal(fy_schema_steps[0].version, 1);
}

static void test_sync_idempotent(void **state)
{
    (void)state;
    NEED_DB();
    fy_err e;
    int cur = -1;
    assert_int_equal(fy_schema_current(&cur, &e), FY_E_OK);
    assert_int_equal(cur, 0);
    assert_int_equal(fy_schema_check(&e), FY_E_SCHEMA);
    assert_non_null(strstr(e.msg, "ferry-manage db sync"));

    assert_int_equal(fy_schema_sync(&e), FY_E_OK);
    assert_int_equal(fy_schema_current(&cur, &e), FY_E_OK);
    assert_int_equal(cur, fy_schema_latest());
    assert_int_equal(count(&sql_count), fy_schema_nsteps);
    assert_int_equal(fy_schema_check(&e), FY_E_OK);
    long long quotas = count(&sql_flavors);
    assert_true(quotas > 0);

    /* A second run changes nothing (the seed rows are not inserted twice). */
    assert_int_equal(fy_schema_sync(&e), FY_E_OK);
    assert_int_equal(count(&sql_count), fy_schema_nsteps);
    assert_int_equal(count(&sql_flavors), quotas);
}

static void test_newer_refused(void **state)
{
    (void)state;
    NEED_DB();
    fy_err e;
    assert_int_equal(fy_schema_sync(&e), FY_E_OK);
    assert_int_equal(fy_db_exec(&sql_future, NULL, NULL, &e), FY_E_OK);
    assert_int_equal(fy_schema_check(&e), FY_E_SCHEMA);
    assert_non_null(strstr(e.msg, "9999 is newer"));
    assert_int_equal(fy_schema_sync(&e), FY_E_SCHEMA);
    assert_non_null(strstr(e.msg, "newer than this binary"));
}

int main(void)
{
    db_url = getenv("FERRY_TEST_DB_URL");
    if (db_url && !*db_url)
        db_url = NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latest),
        cmocka_unit_test_setup_teardown(test_sync_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
