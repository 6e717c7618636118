/* The conductor's network and volume API against a real PostgreSQL
 * (FERRY_TEST_DB_URL): bindings through a migration, ACTIVE/INACTIVE rules,
 * idempotency, teardown, per-host volume connections, roll_detaching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "../../conductor-svc/cond_netvol.h"
#include "fy_cleanup.h"
#include "fy_db.h"
#include "fy_json.h"

static const char *db_url;

#define INST "11111111-1111-4111-8111-111111111111"
#define NET "22222222-2222-4222-8222-222222222222"
#define PORT_A "33333333-3333-4333-8333-333333333331"
#define PORT_B "33333333-3333-4333-8333-333333333332"
#define VOL_ROOT "44444444-4444-4444-8444-444444444441"
#define VOL_DATA "44444444-4444-4444-8444-444444444442"
#define ATT_ROOT "55555555-5555-4555-8555-555555555551"
#define ATT_DATA "55555555-5555-4555-8555-555555555552"

static const char fixture[] =
    "INSERT INTO instances (uuid, display_name, project_id, user_id, flavor)"
    " VALUES ('" INST "', 'vm', gen_random_uuid(), gen_random_uuid(), '{}');"
    "INSERT INTO networks (id, name, cidr) VALUES ('" NET "', 'private', '10.0.0.0/24');"
    "INSERT INTO ports (id, network_id, mac_address, fixed_ip, device_id) VALUES"
    " ('" PORT_A "', '" NET "', 'fa:16:3e:00:00:01', '10.0.0.5', '" INST "'),"
    " ('" PORT_B "', '" NET "', 'fa:16:3e:00:00:02', '10.0.0.6', '" INST "');"
    "INSERT INTO volumes (id, size_gb, status, path) VALUES"
    " ('" VOL_ROOT "', 1, 'attaching', '/srv/volumes/root'),"
    " ('" VOL_DATA "', 1, 'in-use', '/srv/volumes/data');"
    "INSERT INTO volume_attachments (id, volume_id, instance_uuid, device, boot_index) VALUES"
    " ('" ATT_ROOT "', '" VOL_ROOT "', '" INST "', '/dev/vda', 0),"
    " ('" ATT_DATA "', '" VOL_DATA "', '" INST "', '/dev/vdb', NULL);";

static const fy_sql sql_bindings = {
    "t_nv_bindings",
    "SELECT string_agg(p.id::text || '@' || b.host || '=' || b.status, ','"
    "                  ORDER BY p.id, b.host) AS s"
    "  FROM port_bindings b JOIN ports p ON p.id = b.port_id",
    0};
static const fy_sql sql_port_status = {
    "t_nv_port_status", "SELECT status FROM ports WHERE id = $1", 1};
static const fy_sql sql_volume_status = {
    "t_nv_volume_status", "SELECT status FROM volumes WHERE id = $1", 1};
static const fy_sql sql_set_volume_status = {
    "t_nv_set_volume_status", "UPDATE volumes SET status = $2 WHERE id = $1", 2};
static const fy_sql sql_connections = {
    "t_nv_connections",
    "SELECT coalesce(string_agg(attachment_id::text || '@' || host, ','"
    "                           ORDER BY attachment_id, host), '') AS s FROM volume_connections",
    0};

static int setup(void **state)
{
    (void)state;
    if (!db_url)
        return 0;
    fy_err e;
    if (fy_db_init(db_url, "test-cond-netvol", &e))
        fail_msg("fy_db_init: %s", e.msg);
    assert_int_equal(fy_db_exec_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public;", &e),
                     FY_E_OK);
    if (fy_schema_sync(&e))
        fail_msg("schema sync: %s", e.msg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fy_db_shutdown();
    return 0;
}

static int fresh(void **state)
{
    (void)state;
    if (!db_url)
        return 0;
    fy_err e;
    if (fy_db_exec_script("DELETE FROM volume_connections; DELETE FROM volume_attachments;"
                          "DELETE FROM volumes; DELETE FROM port_bindings; DELETE FROM ports;"
                          "DELETE FROM networks; DELETE FROM instances;",
                          &e) ||
        fy_db_exec_script(fixture, &e))
        fail_msg("fixture: %s", e.msg);
    return 0;
}

#define NEED_DB() do { if (!db_url) skip(); } while (0)
#define OK(call) do { fy_err _e = {0}; fy_code _rc = (call); \
        if (_rc) fail_msg("%s: %s", #call, _e.msg); } while (0)
#define E (&_e)

/* One column of a one-row query, copied into a static buffer. */
static const char *one(const fy_sql *q, const char *arg)
{
    static char buf[1024];
    const char *p[] = {arg};
    _cleanup_pgres_ PGresult *r = NULL;
    fy_err e;
    if (fy_db_exec_one(q, p, &r, &e))
        fail_msg("%s: %s", q->name, e.msg);
    const char *v = PQgetvalue(r, 0, 0);
    snprintf(buf, sizeof(buf), "%s", PQgetisnull(r, 0, 0) ? "" : v);
    return buf;
}

#define BIND(port, host, st) port "@" host "=" st

static void test_setup_first_host_active(void **state)
{
    (void)state;
    NEED_DB();
    OK(cond_net_setup_on_host(INST, "h1", E));
    assert_string_equal(one(&sql_bindings, NULL),
                        BIND(PORT_A, "h1", "ACTIVE") "," BIND(PORT_B, "h1", "ACTIVE"));
    assert_string_equal(one(&sql_port_status, PORT_A), "ACTIVE");
    /* Idempotent. */
    OK(cond_net_setup_on_host(INST, "h1", E));
    assert_string_equal(one(&sql_bindings, NULL),
                        BIND(PORT_A, "h1", "ACTIVE") "," BIND(PORT_B, "h1", "ACTIVE"));
}

static void test_live_migration_bindings(void **state)
{
    (void)state;
    NEED_DB();
    OK(cond_net_setup_on_host(INST, "h1", E));
    /* The destination is INACTIVE while the guest runs on the source. */
    OK(cond_net_setup_on_host(INST, "h2", E));
    OK(cond_net_setup_on_host(INST, "h2", E));
    assert_string_equal(one(&sql_bindings, NULL),
                        BIND(PORT_A, "h1", "ACTIVE") "," BIND(PORT_A, "h2", "INACTIVE") ","
                        BIND(PORT_B, "h1", "ACTIVE") "," BIND(PORT_B, "h2", "INACTIVE"));
    OK(cond_net_migrate_start(INST, "h1", "h2", E));
    OK(cond_net_migrate_start(INST, "h1", "h2", E));
    assert_string_equal(one(&sql_bindings, NULL),
                        BIND(PORT_A, "h1", "INACTIVE") "," BIND(PORT_A, "h2", "INACTIVE") ","
                        BIND(PORT_B, "h1", "INACTIVE") "," BIND(PORT_B, "h2", "INACTIVE"));
    OK(cond_net_migrate_finish(INST, "h2", E));
    OK(cond_net_migrate_finish(INST, "h2", E));
    assert_string_equal(one(&sql_bindings, NULL),
                        BIND(PORT_A, "h2", "ACTIVE") "," BIND(PORT_B, "h2", "ACTIVE"));
    assert_string_equal(one(&sql_port_status, PORT_B), "ACTIVE");
}

static void test_rollback_restores_source(void **state)
{
    (void)state;
    NEED_DB();
    OK(cond_net_setup_on_host(INST, "h1", E));
    OK(cond_net_setup_on_host(INST, "h2", E));
    OK(cond_net_migrate_start(INST, "h1", "h2", E));
    /* Rollback: the destination's bindings go, the source is set up again. */
    OK(cond_net_teardown_on_host(INST, "h2", E));
    OK(cond_net_teardown_on_host(INST, "h2", E));
    assert_string_equal(one(&sql_port_status, PORT_A), "DOWN");
    OK(cond_net_setup_on_host(INST, "h1", E));
    assert_string_equal(one(&sql_bindings, NULL),
                        BIND(PORT_A, "h1", "ACTIVE") "," BIND(PORT_B, "h1", "ACTIVE"));
    assert_string_equal(one(&sql_port_status, PORT_A), "ACTIVE");
}

static void test_cold_migration_and_revert(void **state)
{
    (void)state;
    NEED_DB();
    OK(cond_net_setup_on_host(INST, "h1", E));
    OK(cond_net_migrate_start(INST, "h1", "h2", E));
    /* No ACTIVE binding left anywhere: the destination becomes ACTIVE. */
    OK(cond_net_setup_on_host(INST, "h2", E));
    OK(cond_net_migrate_finish(INST, "h2", E));
    assert_string_equal(one(&sql_bindings, NULL),
                        BIND(PORT_A, "h2", "ACTIVE") "," BIND(PORT_B, "h2", "ACTIVE"));
    /* Revert goes the other way. */
    OK(cond_net_migrate_start(INST, "h2", "h1", E));
    OK(cond_net_setup_on_host(INST, "h1", E));
    OK(cond_net_migrate_finish(INST, "h1", E));
    assert_string_equal(one(&sql_bindings, NULL),
                        BIND(PORT_A, "h1", "ACTIVE") "," BIND(PORT_B, "h1", "ACTIVE"));
}

static void test_teardown_all_and_net_info(void **state)
{
    (void)state;
    NEED_DB();
    OK(cond_net_setup_on_host(INST, "h1", E));
    OK(cond_net_teardown_on_host(INST, "h1", E));
    assert_string_equal(one(&sql_bindings, NULL), "");
    assert_string_equal(one(&sql_port_status, PORT_A), "DOWN");

    json_t *info = NULL;
    OK(cond_net_info(INST, &info, E));
    assert_int_equal(json_array_size(info), 2);
    const char *ids[2] = {fy_json_str(json_array_get(info, 0), "port_id"),
                          fy_json_str(json_array_get(info, 1), "port_id")};
    assert_true((!strcmp(ids[0], PORT_A) && !strcmp(ids[1], PORT_B)) ||
                (!strcmp(ids[0], PORT_B) && !strcmp(ids[1], PORT_A)));
    json_t *a = !strcmp(ids[0], PORT_A) ? json_array_get(info, 0) : json_array_get(info, 1);
    assert_string_equal(fy_json_str(a, "mac_address"), "fa:16:3e:00:00:01");
    assert_string_equal(fy_json_str(a, "fixed_ip"), "10.0.0.5");
    assert_string_equal(fy_json_str(a, "network_id"), NET);
    json_decref(info);
}

static void test_bad_input(void **state)
{
    (void)state;
    NEED_DB();
    fy_err e;
    assert_int_equal(cond_net_setup_on_host("nope", "h1", &e), FY_E_BAD_REQUEST);
    assert_int_equal(cond_net_setup_on_host(INST, "", &e), FY_E_BAD_REQUEST);
    assert_int_equal(cond_net_migrate_start(INST, "h1", NULL, &e), FY_E_BAD_REQUEST);
    assert_int_equal(cond_vol_initialize_connection("x", "h1", NULL, &e), FY_E_BAD_REQUEST);
    assert_int_equal(
        cond_vol_initialize_connection("66666666-6666-4666-8666-666666666666", "h1", NULL, &e),
        FY_E_NOT_FOUND);
    assert_int_equal(cond_vol_roll_detaching("66666666-6666-4666-8666-666666666666", &e),
                     FY_E_NOT_FOUND);
}

static void test_connections_per_host(void **state)
{
    (void)state;
    NEED_DB();
    json_t *info = NULL;
    OK(cond_vol_initialize_connection(ATT_ROOT, "h1", &info, E));
    assert_string_equal(fy_json_str(info, "driver_volume_type"), "file");
    assert_string_equal(fy_json_str(info, "path"), "/srv/volumes/root");
    json_decref(info);
    /* The reserved volume is in use once connected. */
    assert_string_equal(one(&sql_volume_status, VOL_ROOT), "in-use");
    OK(cond_vol_initialize_connection(ATT_ROOT, "h1", NULL, E));
    OK(cond_vol_initialize_connection(ATT_ROOT, "h2", NULL, E));
    OK(cond_vol_initialize_connection(ATT_DATA, "h2", NULL, E));
    assert_string_equal(one(&sql_connections, NULL),
                        ATT_ROOT "@h1," ATT_ROOT "@h2," ATT_DATA "@h2");

    json_t *bdi = NULL;
    OK(cond_vol_block_device_info(INST, "h1", &bdi, E));
    assert_int_equal(json_array_size(bdi), 2);
    json_t *root = json_array_get(bdi, 0), *data = json_array_get(bdi, 1);
    assert_string_equal(fy_json_str(root, "attachment_id"), ATT_ROOT);
    assert_string_equal(fy_json_str(root, "volume_id"), VOL_ROOT);
    assert_string_equal(fy_json_str(root, "device"), "/dev/vda");
    assert_string_equal(fy_json_str(json_object_get(root, "connection_info"), "path"),
                        "/srv/volumes/root");
    assert_string_equal(fy_json_str(data, "device"), "/dev/vdb");
    assert_true(json_is_null(json_object_get(data, "connection_info")));
    json_decref(bdi);

    OK(cond_vol_terminate_connection(ATT_ROOT, "h1", E));
    OK(cond_vol_terminate_connection(ATT_ROOT, "h1", E));
    assert_string_equal(one(&sql_connections, NULL), ATT_ROOT "@h2," ATT_DATA "@h2");
    OK(cond_vol_block_device_info(INST, "h2", &bdi, E));
    assert_string_equal(fy_json_str(json_object_get(json_array_get(bdi, 1), "connection_info"),
                                    "path"),
                        "/srv/volumes/data");
    json_decref(bdi);
}

static void test_volume_backed_and_roll_detaching(void **state)
{
    (void)state;
    NEED_DB();
    bool backed = false;
    OK(cond_vol_is_volume_backed(INST, &backed, E));
    assert_true(backed);
    OK(cond_vol_is_volume_backed("66666666-6666-4666-8666-666666666666", &backed, E));
    assert_false(backed);

    const char *p[] = {VOL_DATA, "detaching"};
    _cleanup_pgres_ PGresult *r = NULL;
    fy_err e;
    assert_int_equal(fy_db_exec(&sql_set_volume_status, p, &r, &e), FY_E_OK);
    OK(cond_vol_roll_detaching(VOL_DATA, E));
    assert_string_equal(one(&sql_volume_status, VOL_DATA), "in-use");
    /* Nothing to roll back: unchanged. */
    OK(cond_vol_roll_detaching(VOL_DATA, E));
    assert_string_equal(one(&sql_volume_status, VOL_DATA), "in-use");
}

int main(void)
{
    db_url = getenv("FERRY_TEST_DB_URL");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_setup_first_host_active, fresh),
        cmocka_unit_test_setup(test_live_migration_bindings, fresh),
        cmocka_unit_test_setup(test_rollback_restores_source, fresh),
        cmocka_unit_test_setup(test_cold_migration_and_revert, fresh),
        cmocka_unit_test_setup(test_teardown_all_and_net_info, fresh),
        cmocka_unit_test_setup(test_bad_input, fresh),
        cmocka_unit_test_setup(test_connections_per_host, fresh),
        cmocka_unit_test_setup(test_volume_backed_and_roll_detaching, fresh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
