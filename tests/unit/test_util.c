/* Unit tests for fy_util. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <ftw.h>
#include <unistd.h>

#include <cmocka.h>

#include "fy_util.h"

static void test_uuid(void **state)
{
    (void)state;
    char a[FY_UUID_LEN + 1], b[FY_UUID_LEN + 1];
    fy_uuid_v4(a);
    fy_uuid_v4(b);
    assert_true(fy_uuid_valid(a));
    assert_true(fy_uuid_valid(b));
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));

    assert_true(fy_uuid_valid("123e4567-e89b-12d3-a456-426614174000"));
    assert_true(fy_uuid_valid("123E4567-E89B-12D3-A456-426614174000"));
    assert_false(fy_uuid_valid("123e4567-e89b-12d3-a456-42661417400"));
    assert_false(fy_uuid_valid("123e4567-e89b-12d3-a456-4266141740000"));
    assert_false(fy_uuid_valid("123e4567e89b-12d3-a456-4266141740000"));
    assert_false(fy_uuid_valid("123e4567-e89b-12d3-a456-42661417400g"));
    assert_false(fy_uuid_valid(""));
    assert_false(fy_uuid_valid(NULL));
}

static void test_request_id(void **state)
{
    (void)state;
    char r[48];
    fy_request_id_new(r);
    assert_int_equal(strncmp(r, "req-", 4), 0);
    assert_true(fy_uuid_valid(r + 4));
}

static void test_hex_and_time(void **state)
{
    (void)state;
    const uint8_t in[] = { 0x00, 0xab, 0xff };
    char out[7];
    fy_hex(in, sizeof in, out);
    assert_string_equal(out, "00abff");

    char iso[32];
    fy_time_iso(0, iso);
    assert_string_equal(iso, "1970-01-01T00:00:00Z");
    fy_time_iso(1795789073, iso);
    assert_string_equal(iso, "2026-11-27T14:17:53Z");

    uint64_t t0 = fy_now_us();
    uint64_t m0 = fy_now_ms();
    assert_true(fy_now_us() >= t0);
    assert_true(fy_now_ms() >= m0);
}

static void test_strings(void **state)
{
    (void)state;
    char *s = fy_strdup_printf("%s-%d", "a", 42);
    assert_string_equal(s, "a-42");
    free(s);
    assert_true(fy_streq(NULL, NULL));
    assert_false(fy_streq("a", NULL));
    assert_true(fy_streq("a", "a"));
    assert_true(fy_const_time_eq("secret", "secret"));
    assert_false(fy_const_time_eq("secret", "secreT"));
    assert_false(fy_const_time_eq("secret", "secret1"));
    assert_false(fy_const_time_eq("secret1", "secret"));
    assert_false(fy_const_time_eq("", "x"));
    assert_true(fy_const_time_eq("", ""));
    assert_false(fy_const_time_eq(NULL, "x"));
}

static void test_parse_ll(void **state)
{
    (void)state;
    long long v = 7;
    assert_true(fy_parse_ll("0", 0, 10, &v));
    assert_int_equal(v, 0);
    assert_true(fy_parse_ll("-5", -10, 10, &v));
    assert_int_equal(v, -5);
    assert_true(fy_parse_ll("+5", -10, 10, &v));
    assert_int_equal(v, 5);
    assert_true(fy_parse_ll("9223372036854775807", LLONG_MIN, LLONG_MAX, &v));
    assert_true(v == LLONG_MAX);
    assert_true(fy_parse_ll("-9223372036854775808", LLONG_MIN, LLONG_MAX, &v));
    assert_true(v == LLONG_MIN);
    v = 7;
    assert_false(fy_parse_ll("9223372036854775808", LLONG_MIN, LLONG_MAX, &v));
    assert_false(fy_parse_ll("", 0, 10, &v));
    assert_false(fy_parse_ll(NULL, 0, 10, &v));
    assert_false(fy_parse_ll(" 5", 0, 10, &v));
    assert_false(fy_parse_ll("5 ", 0, 10, &v));
    assert_false(fy_parse_ll("5x", 0, 10, &v));
    assert_false(fy_parse_ll("0x10", 0, 100, &v));
    assert_false(fy_parse_ll("-", 0, 10, &v));
    assert_false(fy_parse_ll("11", 0, 10, &v));
    assert_false(fy_parse_ll("-1", 0, 10, &v));
    assert_int_equal(v, 7); /* untouched on failure */
    assert_true(fy_parse_ll("010", 0, 100, &v));
    assert_int_equal(v, 10); /* base 10, not octal */
}

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/fy_util_test.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static int remove_tmpdir(void **state)
{
    (void)state;
    return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_mkdir_p(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/a/b/c", tmpdir);
    assert_int_equal(fy_mkdir_p(path, 0755), 0);
    assert_int_equal(fy_mkdir_p(path, 0755), 0); /* idempotent */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    char file[300];
    snprintf(file, sizeof file, "%s/a/file", tmpdir);
    fy_err e;
    assert_int_equal(fy_write_file_atomic(file, "x", 1, &e), FY_E_OK);
    snprintf(path, sizeof path, "%s/a/file/sub", tmpdir);
    assert_true(fy_mkdir_p(path, 0755) < 0);
    assert_int_equal(fy_mkdir_p("", 0755), -EINVAL);
}

static void test_atomic_write_read(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/domain.json", tmpdir);
    fy_err e;
    assert_int_equal(fy_write_file_atomic(path, "first", 5, &e), FY_E_OK);
    assert_int_equal(fy_write_file_atomic(path, "second\n", 7, &e), FY_E_OK);

    char *data = NULL;
    size_t len = 0;
    assert_int_equal(fy_read_file(path, 1024, &data, &len, &e), FY_E_OK);
    assert_int_equal(len, 7);
    assert_string_equal(data, "second\n");
    free(data);

    /* No temporary file is left behind next to the target. */
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    struct dirent *de;
    int entries = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        entries++;
        assert_null(strstr(de->d_name, ".tmp"));
    }
    closedir(d);
    assert_true(entries >= 1);

    data = NULL;
    assert_int_equal(fy_read_file(path, 3, &data, &len, &e), FY_E_TOO_LARGE);
    assert_null(data);
    snprintf(path, sizeof path, "%s/missing", tmpdir);
    assert_int_equal(fy_read_file(path, 3, &data, &len, &e), FY_E_NOT_FOUND);
    assert_non_null(strstr(e.msg, "missing"));
    snprintf(path, sizeof path, "%s/nodir/x", tmpdir);
    assert_int_equal(fy_write_file_atomic(path, "x", 1, &e), FY_E_IO);
}

static void test_read_large(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s/large", tmpdir);
    size_t n = 100000;
    char *buf = malloc(n);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)('a' + i % 26);
    fy_err e;
    assert_int_equal(fy_write_file_atomic(path, buf, n, &e), FY_E_OK);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(fy_read_file(path, n, &data, &len, &e), FY_E_OK);
    assert_int_equal(len, n);
    assert_memory_equal(data, buf, n);
    assert_int_equal(data[n], '\0');
    free(data);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_hex_and_time),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_parse_ll),
        cmocka_unit_test_setup_teardown(test_mkdir_p, make_tmpdir, remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_atomic_write_read, make_tmpdir, remove_tmpdir),
        cmocka_unit_test_setup_teardown(test_read_large, make_tmpdir, remove_tmpdir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
