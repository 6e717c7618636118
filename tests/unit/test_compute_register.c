/* Agent configuration and registration (services + compute_nodes rows). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "compute.h"
#include "fy_db.h"
#include "fy_util.h"

static char dir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static char *write_conf(const char *extra)
{
    char *path = fy_strdup_printf("%s/agent.conf", dir);
    FILE *fp = fopen(path, "w");
    fprintf(fp, "db_url = %s\nservice_secret = s\nstate_dir = %s/state\n%s",
            getenv("FERRY_TEST_DB_URL") ? getenv("FERRY_TEST_DB_URL") : "postgresql:///none",
            dir, extra);
    fclose(fp);
    return path;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/ferry-reg-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    const char *url = getenv("FERRY_TEST_DB_URL");
    fy_err err = {0};
    if (url && (fy_db_init(url, "test_compute_register", &err) || fy_schema_sync(&err))) {
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
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void test_config_defaults(void **state)
{
    (void)state;
    _cleanup_free_ char *path = write_conf("host = h1\nport = 9001\n");
    compute_config cfg;
    fy_err err = {0};
    assert_int_equal(compute_config_load(&cfg, path, &err), FY_E_OK);
    _cleanup_free_ char *inst = fy_strdup_printf("%s/state/instances", dir);
    assert_string_equal(cfg.instances_path, inst);
    assert_string_equal(cfg.advertise_url, "http://127.0.0.1:9001");
    assert_string_equal(cfg.driver, "fake");
    assert_int_equal(cfg.vcpus, 8);
    assert_int_equal(cfg.memory_mb, 16384);
    assert_int_equal(cfg.hypervisor_version, 1000000);
    assert_true(cfg.ram_allocation_ratio > 1.49 && cfg.ram_allocation_ratio < 1.51);
    compute_config_free(&cfg);
}

static void test_config_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "driver = libvirt2\n", "log_level = loud\n", "state_dir = relative\n",
        "image_url = ftp://x\n", "disk_allocation_ratio = 0\n",
    };
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        _cleanup_free_ char *path = write_conf(bad[i]);
        compute_config cfg;
        fy_err err = {0};
        assert_int_not_equal(compute_config_load(&cfg, path, &err), FY_E_OK);
        assert_true(err.msg[0] != '\0');
        compute_config_free(&cfg);
    }
}

static void test_node_uuid_kept(void **state)
{
    (void)state;
    _cleanup_free_ char *sd = fy_strdup_printf("%s/uuidstate", dir);
    char a[37], b[37];
    fy_err err = {0};
    assert_int_equal(compute_node_uuid(sd, a, &err), FY_E_OK);
    assert_true(fy_uuid_valid(a));
    assert_int_equal(compute_node_uuid(sd, b, &err), FY_E_OK);
    assert_string_equal(a, b);
}

static void test_register(void **state)
{
    (void)state;
    if (!getenv("FERRY_TEST_DB_URL"))
        skip();
    char host[64], extra[128];
    char rnd[37];
    fy_uuid_v4(rnd);
    snprintf(host, sizeof(host), "reg-%.8s", rnd);
    snprintf(extra, sizeof(extra), "host = %s\nvcpus = 3\n", host);
    _cleanup_free_ char *path = write_conf(extra);
    compute_config cfg;
    fy_err err = {0};
    assert_int_equal(compute_config_load(&cfg, path, &err), FY_E_OK);

    int id1 = 0, id2 = 0;
    assert_int_equal(compute_register(&cfg, &id1, &err), FY_E_OK);
    assert_int_equal(compute_register(&cfg, &id2, &err), FY_E_OK);
    assert_int_equal(id1, id2);

    char uuid[37];
    assert_int_equal(compute_node_uuid(cfg.state_dir, uuid, &err), FY_E_OK);
    static const fy_sql q = {"test_reg_node",
                             "SELECT uuid::text AS uuid, vcpus, service_id FROM compute_nodes"
                             " WHERE host = $1", 1};
    const char *params[] = {host};
    PGresult *res = NULL;
    assert_int_equal(fy_db_exec_one(&q, params, &res, &err), FY_E_OK);
    assert_string_equal(fy_db_str(res, 0, "uuid"), uuid);
    assert_int_equal(fy_db_ll(res, 0, "vcpus", 0), 3);
    assert_int_equal(fy_db_ll(res, 0, "service_id", 0), id1);
    PQclear(res);

    /* A lost node_uuid file: the row keeps its identity and the file follows it. */
    _cleanup_free_ char *file = fy_strdup_printf("%s/node_uuid", cfg.state_dir);
    assert_int_equal(unlink(file), 0);
    assert_int_equal(compute_register(&cfg, &id2, &err), FY_E_OK);
    char again[37];
    assert_int_equal(compute_node_uuid(cfg.state_dir, again, &err), FY_E_OK);
    assert_string_equal(again, uuid);
    compute_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_rejects),
        cmocka_unit_test(test_node_uuid_kept),
        cmocka_unit_test(test_register),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
