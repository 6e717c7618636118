/* Unit tests for fy_auth: password hashes, tokens, digests, secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <ctype.h>
#include <string.h>

#include <cmocka.h>

#include "fy_auth.h"

static void test_hash_verify(void **state)
{
    (void)state;
    char h1[256], h2[256];
    fy_err e;
    assert_int_equal(fy_password_hash("correct horse", h1, sizeof h1, &e), FY_E_OK);
    assert_int_equal(strncmp(h1, "$y$", 3), 0);
    assert_true(fy_password_verify("correct horse", h1));
    assert_false(fy_password_verify("correct horsE", h1));
    assert_false(fy_password_verify("", h1));
    assert_int_equal(fy_password_hash("correct horse", h2, sizeof h2, &e), FY_E_OK);
    assert_string_not_equal(h1, h2); /* salted */
    assert_true(fy_password_verify("correct horse", h2));

    assert_false(fy_password_verify("x", ""));
    assert_false(fy_password_verify("x", "not-a-hash"));
    assert_false(fy_password_verify(NULL, h1));
    assert_false(fy_password_verify("x", NULL));
}

static void test_hash_small_buffer(void **state)
{
    (void)state;
    char small[8];
    fy_err e;
    assert_int_equal(fy_password_hash("pw", small, sizeof small, &e), FY_E_INTERNAL);
    assert_int_equal(fy_password_hash(NULL, small, sizeof small, &e), FY_E_BAD_REQUEST);
}

static void test_tokens(void **state)
{
    (void)state;
    char a[FY_TOKEN_LEN + 1], b[FY_TOKEN_LEN + 1];
    fy_token_new(a);
    fy_token_new(b);
    assert_int_equal(strlen(a), FY_TOKEN_LEN);
    assert_string_not_equal(a, b);
    for (size_t i = 0; i < FY_TOKEN_LEN; i++)
        assert_non_null(strchr("0123456789abcdef", a[i]));

    char d[65];
    fy_token_digest("abc", d);
    assert_string_equal(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    fy_token_digest("", d);
    assert_string_equal(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_secret(void **state)
{
    (void)state;
    char s[33], t[33];
    fy_secret_new(s, sizeof s);
    fy_secret_new(t, sizeof t);
    assert_int_equal(strlen(s), 32);
    assert_string_not_equal(s, t);
    for (size_t i = 0; i < 32; i++)
        assert_true(isalnum((unsigned char)s[i]));
    char one[1] = { 'x' };
    fy_secret_new(one, sizeof one);
    assert_int_equal(one[0], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_verify),
        cmocka_unit_test(test_hash_small_buffer),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
