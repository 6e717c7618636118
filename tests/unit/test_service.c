/* fy_service against a real PostgreSQL (FERRY_TEST_DB_URL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "fy_db.h"
#include "fy_service.h"

static const char *db_url;

static const fy_sql sql_row = {
    "t_service_row",
    "SELECT host, \"binary\", url, zone, uuid, report_count, " FY_SERVICE_UP_SQL("$2") " AS up"
    " FROM services WHERE id = $1::integer",
    2};
static const fy_sql sql_force_down = {
    "t_service_force_down", "UPDATE services SET forced_down = true WHERE id = $1::integer", 1};

static int setup(void **state)
{
    (void)state;
    if (!db_url)
        return 0;
    fy_err e;
    assert_int_equal(fy_db_init(db_url, "test-service", &e), FY_E_OK);
    assert_int_equal(fy_db_exec_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public;", &e),
                     FY_E_OK);
    assert_int_equal(fy_schema_sync(&e), FY_E_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fy_db_shutdown();
    return 0;
}

#define NEED_DB() do { if (!db_url) skip(); } while (0)

static PGresult *row(int id, const char *down_time)
{
    char ids[16];
    snprintf(ids, sizeof(ids), "%d", id);
    const char *p[] = {ids, down_time};
    PGresult *r = NULL;
    fy_err e;
    assert_int_equal(fy_db_exec_one(&sql_row, p, &r, &e), FY_E_OK);
    return r;
}

static void test_register(void **state)
{
    (void)state;
    NEED_DB();
    fy_err e;
    int id = 0, id2 = 0, other = 0;
    assert_int_equal(fy_service_register("h1", "ferry-compute", "http://127.0.0.1:1", NULL, &id, &e),
                     FY_E_OK);
    assert_true(id > 0);
    _cleanup_pgres_ PGresult *r1 = row(id, "60");
    char uuid[40];
    snprintf(uuid, sizeof(uuid), "%s", fy_db_str(r1, 0, "uuid"));
    assert_string_equal(fy_db_str(r1, 0, "zone"), "nova");
    assert_int_equal(fy_db_ll(r1, 0, "report_count", 0), 1);
    assert_true(fy_db_bool(r1, 0, "up"));

    assert_int_equal(fy_service_register("h1", "ferry-compute", "http://127.0.0.1:2", "az1", &id2, &e),
                     FY_E_OK);
    assert_int_equal(id2, id);
    _cleanup_pgres_ PGresult *r2 = row(id, "60");
    assert_string_equal(fy_db_str(r2, 0, "url"), "http://127.0.0.1:2");
    assert_string_equal(fy_db_str(r2, 0, "uuid"), uuid);
    assert_int_equal(fy_db_ll(r2, 0, "report_count", 0), 2);

    assert_int_equal(fy_service_register("h2", "ferry-compute", NULL, "az1", &other, &e), FY_E_OK);
    assert_true(other != id);
    assert_int_equal(fy_service_register("", "ferry-compute", NULL, NULL, &other, &e),
                     FY_E_BAD_REQUEST);
}

static void test_heartbeat(void **state)
{
    (void)state;
    NEED_DB();
    fy_err e;
    int id = 0;
    assert_int_equal(fy_service_register("h1", "ferry-conductor", NULL, NULL, &id, &e), FY_E_OK);
    assert_int_equal(fy_service_heartbeat(id, &e), FY_E_OK);
    _cleanup_pgres_ PGresult *r = row(id, "60");
    assert_int_equal(fy_db_ll(r, 0, "report_count", 0), 2);
    assert_int_equal(fy_service_heartbeat(id + 100, &e), FY_E_NOT_FOUND);

    /* A zero down time makes every service down; forced_down does too. */
    _cleanup_pgres_ PGresult *r0 = row(id, "0");
    assert_false(fy_db_bool(r0, 0, "up"));
    char ids[16];
    snprintf(ids, sizeof(ids), "%d", id);
    const char *p[] = {ids};
    assert_int_equal(fy_db_exec(&sql_force_down, p, NULL, &e), FY_E_OK);
    _cleanup_pgres_ PGresult *rf = row(id, "60");
    assert_false(fy_db_bool(rf, 0, "up"));
}

static void test_heartbeat_thread(void **state)
{
    (void)state;
    NEED_DB();
    fy_err e;
    int id = 0;
    assert_int_equal(fy_service_register("h1", "ferry-scheduler", NULL, NULL, &id, &e), FY_E_OK);
    assert_int_equal(fy_service_heartbeat_start(id, 0, &e), FY_E_CONFIG);
    assert_int_equal(fy_service_heartbeat_start(id, 1, &e), FY_E_OK);
    assert_int_equal(fy_service_heartbeat_start(id, 1, &e), FY_E_CONFLICT);
    usleep(2500 * 1000);
    fy_service_heartbeat_stop();
    fy_service_heartbeat_stop();
    _cleanup_pgres_ PGresult *r = row(id, "60");
    assert_true(fy_db_ll(r, 0, "report_count", 0) >= 3);
    /* It can be started again after a stop. */
    assert_int_equal(fy_service_heartbeat_start(id, 1, &e), FY_E_OK);
    fy_service_heartbeat_stop();
}

int main(void)
{
    db_url = getenv("FERRY_TEST_DB_URL");
    if (db_url && !*db_url)
        db_url = NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_thread, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
