/* Unit tests for fy_config: precedence, parsing and the error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fy_config.h"

typedef struct {
    char *db_url;
    char *secret;
    char *bind;
    long long port;
    long long threads;
    bool debug;
    double ratio;
} test_cfg;

static const fy_cfg_opt table[] = {
    { "db_url", FY_CFG_STR, NULL, 0, 0, offsetof(test_cfg, db_url), FY_CFG_REQUIRED, "db" },
    { "service_secret", FY_CFG_SECRET, "s3cret", 0, 0, offsetof(test_cfg, secret), 0, "secret" },
    { "bind", FY_CFG_STR, "127.0.0.1", 0, 0, offsetof(test_cfg, bind), 0, "addr" },
    { "port", FY_CFG_INT, "8774", 1, 65535, offsetof(test_cfg, port), 0, "port" },
    { "threads", FY_CFG_INT, "4", 0, 0, offsetof(test_cfg, threads), 0, "threads" },
    { "debug", FY_CFG_BOOL, "false", 0, 0, offsetof(test_cfg, debug), 0, "debug" },
    { "cpu_allocation_ratio", FY_CFG_DOUBLE, "16.0", 0, 0, offsetof(test_cfg, ratio), 0, "r" },
};
#define NOPTS (sizeof table / sizeof table[0])

static const char *const env_vars[] = { "FERRY_DB_URL", "FERRY_SERVICE_SECRET", "FERRY_BIND",
                                        "FERRY_PORT", "FERRY_THREADS", "FERRY_DEBUG",
                                        "FERRY_CPU_ALLOCATION_RATIO" };

static char conf_path[64];

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
        unsetenv(env_vars[i]);
    snprintf(conf_path, sizeof conf_path, "/tmp/fy_config_test.XXXXXX");
    int fd = mkstemp(conf_path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(conf_path);
    return 0;
}

static void write_conf(const char *text)
{
    FILE *f = fopen(conf_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static fy_code load(test_cfg *c, const char *file, fy_err *e)
{
    memset(c, 0, sizeof *c);
    return fy_config_load(table, NOPTS, c, file, e);
}

static void test_defaults(void **state)
{
    (void)state;
    test_cfg c;
    fy_err e;
    setenv("FERRY_DB_URL", "postgresql://x", 1);
    assert_int_equal(load(&c, NULL, &e), FY_E_OK);
    assert_string_equal(c.db_url, "postgresql://x");
    assert_string_equal(c.bind, "127.0.0.1");
    assert_string_equal(c.secret, "s3cret");
    assert_int_equal(c.port, 8774);
    assert_int_equal(c.threads, 4);
    assert_false(c.debug);
    assert_true(c.ratio == 16.0);
    fy_config_free(table, NOPTS, &c);
    assert_null(c.db_url);
}

static void test_precedence(void **state)
{
    (void)state;
    write_conf("# comment\n\n  port = 9000  \nbind=\"0.0.0.0\"\r\n"
               "db_url = host=/run dbname=ferry\ndebug = yes\nthreads = 8\n"
               "service_secret = a#b=c\n");
    setenv("FERRY_PORT", "9100", 1);
    setenv("FERRY_DEBUG", "off", 1);
    test_cfg c;
    fy_err e;
    assert_int_equal(load(&c, conf_path, &e), FY_E_OK);
    assert_int_equal(c.port, 9100);            /* env beats file */
    assert_string_equal(c.bind, "0.0.0.0");    /* file beats default, quotes removed */
    assert_string_equal(c.db_url, "host=/run dbname=ferry");
    assert_false(c.debug);                     /* env beats file */
    assert_int_equal(c.threads, 8);            /* file beats default */
    assert_string_equal(c.secret, "a#b=c");    /* '#' inside a value is kept */
    assert_true(c.ratio == 16.0);

    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    assert_non_null(f);
    fy_config_dump(table, NOPTS, &c, f);
    fclose(f);
    assert_non_null(strstr(out, "service_secret = ****\n"));
    assert_null(strstr(out, "a#b=c"));
    assert_non_null(strstr(out, "port = 9100\n"));
    assert_non_null(strstr(out, "debug = false\n"));
    assert_non_null(strstr(out, "bind = 0.0.0.0\n"));
    free(out);
    fy_config_free(table, NOPTS, &c);
}

static void test_bad_int_env(void **state)
{
    (void)state;
    setenv("FERRY_DB_URL", "x", 1);
    setenv("FERRY_PORT", "abc", 1);
    test_cfg c;
    fy_err e;
    assert_int_equal(load(&c, NULL, &e), FY_E_CONFIG);
    assert_string_equal(e.msg, "port: value 'abc' from FERRY_PORT is not an integer");
    fy_config_free(table, NOPTS, &c);
}

static void test_int_bounds_file(void **state)
{
    (void)state;
    write_conf("db_url = x\n\nport = 70000\n");
    test_cfg c;
    fy_err e;
    assert_int_equal(load(&c, conf_path, &e), FY_E_CONFIG);
    char want[256];
    snprintf(want, sizeof want, "port: 70000 from %s:3 is out of range [1, 65535]", conf_path);
    assert_string_equal(e.msg, want);
    fy_config_free(table, NOPTS, &c);

    write_conf("db_url = x\nport = 0\n");
    assert_int_equal(load(&c, conf_path, &e), FY_E_CONFIG);
    assert_non_null(strstr(e.msg, "out of range"));
    fy_config_free(table, NOPTS, &c);

    /* Unbounded ints accept anything that fits. */
    write_conf("db_url = x\nthreads = -3\n");
    assert_int_equal(load(&c, conf_path, &e), FY_E_OK);
    assert_int_equal(c.threads, -3);
    fy_config_free(table, NOPTS, &c);
}

static void test_bad_bool_double(void **state)
{
    (void)state;
    setenv("FERRY_DB_URL", "x", 1);
    test_cfg c;
    fy_err e;
    const char *yes[] = { "true", "YES", "1", "on" };
    for (size_t i = 0; i < 4; i++) {
        setenv("FERRY_DEBUG", yes[i], 1);
        assert_int_equal(load(&c, NULL, &e), FY_E_OK);
        assert_true(c.debug);
        fy_config_free(table, NOPTS, &c);
    }
    setenv("FERRY_DEBUG", "maybe", 1);
    assert_int_equal(load(&c, NULL, &e), FY_E_CONFIG);
    assert_non_null(strstr(e.msg, "debug: value 'maybe' from FERRY_DEBUG is not a boolean"));
    fy_config_free(table, NOPTS, &c);
    unsetenv("FERRY_DEBUG");

    setenv("FERRY_CPU_ALLOCATION_RATIO", "1.5", 1);
    assert_int_equal(load(&c, NULL, &e), FY_E_OK);
    assert_true(c.ratio == 1.5);
    fy_config_free(table, NOPTS, &c);
    setenv("FERRY_CPU_ALLOCATION_RATIO", "1.5x", 1);
    assert_int_equal(load(&c, NULL, &e), FY_E_CONFIG);
    assert_string_equal(e.msg, "cpu_allocation_ratio: value '1.5x' from "
                               "FERRY_CPU_ALLOCATION_RATIO is not a number");
    fy_config_free(table, NOPTS, &c);
    setenv("FERRY_CPU_ALLOCATION_RATIO", "", 1);
    assert_int_equal(load(&c, NULL, &e), FY_E_CONFIG);
    fy_config_free(table, NOPTS, &c);
}

static void test_unknown_key(void **state)
{
    (void)state;
    write_conf("db_url = x\nprot = 80\n");
    test_cfg c;
    fy_err e;
    assert_int_equal(load(&c, conf_path, &e), FY_E_CONFIG);
    char want[256];
    snprintf(want, sizeof want, "%s:2: unknown key 'prot'", conf_path);
    assert_string_equal(e.msg, want);
    fy_config_free(table, NOPTS, &c);

    write_conf("db_url x\n");
    assert_int_equal(load(&c, conf_path, &e), FY_E_CONFIG);
    assert_non_null(strstr(e.msg, ":1: expected 'key = value'"));
    fy_config_free(table, NOPTS, &c);
}

static void test_missing_required(void **state)
{
    (void)state;
    test_cfg c;
    fy_err e;
    assert_int_equal(load(&c, NULL, &e), FY_E_CONFIG);
    assert_string_equal(e.msg, "db_url is required (set it in the config file or FERRY_DB_URL)");
    fy_config_free(table, NOPTS, &c);

    write_conf("db_url = \"\"\n");
    assert_int_equal(load(&c, conf_path, &e), FY_E_CONFIG);
    assert_non_null(strstr(e.msg, "db_url is required"));
    fy_config_free(table, NOPTS, &c);
}

static void test_missing_file(void **state)
{
    (void)state;
    setenv("FERRY_DB_URL", "x", 1);
    test_cfg c;
    fy_err e;
    assert_int_equal(load(&c, "/nonexistent/ferry.conf", &e), FY_E_CONFIG);
    assert_non_null(strstr(e.msg, "/nonexistent/ferry.conf"));
    fy_config_free(table, NOPTS, &c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_int_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_int_bounds_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_bool_double, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
