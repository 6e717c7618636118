/* Unit tests for fy_err: the error table and the fill helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "fy_err.h"

static void test_fail_formats(void **state)
{
    (void)state;
    fy_err e;
    fy_err_clear(&e);
    assert_int_equal(fy_fail(&e, FY_E_NOT_FOUND, "instance %s not found", "abc"), FY_E_NOT_FOUND);
    assert_int_equal(e.code, FY_E_NOT_FOUND);
    assert_string_equal(e.msg, "instance abc not found");
}

static void test_fail_hint(void **state)
{
    (void)state;
    fy_err e;
    fy_fail(&e, FY_E_TIMEOUT, NULL);
    assert_string_equal(e.msg, "timed out");
    fy_fail(&e, FY_E_CONFLICT, "%s", "");
    assert_string_equal(e.msg, "the resource is in a conflicting state");
    assert_int_equal(fy_fail(NULL, FY_E_IO, "x"), FY_E_IO);
}

static void test_prefix(void **state)
{
    (void)state;
    fy_err e;
    fy_fail(&e, FY_E_DB, "connection refused");
    assert_int_equal(fy_err_prefix(&e, "loading %s", "instance"), FY_E_DB);
    assert_string_equal(e.msg, "loading instance: connection refused");
    fy_err_clear(&e);
    assert_int_equal(e.code, FY_E_OK);
    assert_string_equal(e.msg, "");
}

static void test_truncation_keeps_utf8(void **state)
{
    (void)state;
    char big[FY_ERR_MSG_MAX * 2];
    /* "é" is two bytes; an odd prefix forces the cut into the middle of one. */
    size_t i = 0;
    big[i++] = 'x';
    while (i + 2 < sizeof big) {
        big[i++] = (char)0xc3;
        big[i++] = (char)0xa9;
    }
    big[i] = '\0';
    fy_err e;
    fy_fail(&e, FY_E_BAD_REQUEST, "%s", big);
    size_t len = strlen(e.msg);
    assert_true(len < FY_ERR_MSG_MAX);
    assert_int_equal((unsigned char)e.msg[len - 1], 0xa9);
}

static void test_lookups(void **state)
{
    (void)state;
    assert_string_equal(fy_code_name(FY_E_NOT_FOUND), "NOT_FOUND");
    assert_int_equal(fy_code_http(FY_E_NOT_FOUND), 404);
    assert_string_equal(fy_code_nova_key(FY_E_NOT_FOUND), "itemNotFound");
    assert_int_equal(fy_code_http(FY_E_UNAVAILABLE), 503);
    assert_true(fy_code_retryable(FY_E_DB_RETRY));
    assert_false(fy_code_retryable(FY_E_BAD_REQUEST));
    assert_int_equal(fy_code_from_name("CONFLICT"), FY_E_CONFLICT);
    assert_int_equal(fy_code_from_name("OK"), FY_E_OK);
    assert_int_equal(fy_code_from_name("NOPE"), FY_E_INTERNAL);
    assert_int_equal(fy_code_from_name(NULL), FY_E_INTERNAL);
    assert_string_equal(fy_code_name((fy_code)9999), "INTERNAL");
    for (int c = 0; c < FY_E__COUNT; c++)
        assert_int_equal(fy_code_from_name(fy_code_name((fy_code)c)), c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_formats),
        cmocka_unit_test(test_fail_hint),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_truncation_keeps_utf8),
        cmocka_unit_test(test_lookups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
