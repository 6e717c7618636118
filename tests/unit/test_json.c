/* Unit tests for fy_json: body loading limits and the declarative parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "fy_json.h"

static json_t *load_ok(const char *text)
{
    json_t *j = NULL;
    fy_err e;
    fy_code rc = fy_json_load(text, strlen(text), &j, &e);
    if (rc != FY_E_OK)
        fail_msg("load failed: %s", e.msg);
    return j;
}

static void expect_load_fail(const char *buf, size_t len, const char *needle)
{
    json_t *j = NULL;
    fy_err e;
    assert_int_equal(fy_json_load(buf, len, &j, &e), FY_E_BAD_REQUEST);
    assert_null(j);
    if (!strstr(e.msg, needle))
        fail_msg("message '%s' lacks '%s'", e.msg, needle);
}

static void test_load_good(void **state)
{
    (void)state;
    json_t *j = load_ok("{\"a\": [1, {\"b\": \"[{\\\"\"}], \"c\": \"\\u00e9\"}");
    assert_true(json_is_object(j));
    assert_string_equal(fy_json_str(j, "c"), "\xc3\xa9");
    json_decref(j);
}

static void test_load_bad(void **state)
{
    (void)state;
    expect_load_fail("{\"a\": 1} x", 10, "Malformed request body: ");
    expect_load_fail("{\"a\": 1} x", 10, "(line 1, column");
    expect_load_fail("{\"a\": 1, \"a\": 2}", 16, "duplicate");
    expect_load_fail("{\"a\": 123456789012345678901234567890}", 37, "too big");
    expect_load_fail("{\"a\": \"\xff\xfe\"}", 11, "Malformed request body");
    expect_load_fail("{\"a\": 1}\0", 9, "NUL");
    expect_load_fail("", 0, "Malformed request body");
    expect_load_fail("{\"a\": \"x\\u0000\"}", 15, "Malformed request body");
    expect_load_fail("{\"a\": ", 6, "Malformed request body");
}

static void test_load_depth(void **state)
{
    (void)state;
    size_t n = 100000;
    char *deep = malloc(n);
    assert_non_null(deep);
    memset(deep, '[', n);
    clock_t t0 = clock();
    expect_load_fail(deep, n, "nesting deeper than 64");
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 1.0);
    free(deep);

    /* Exactly 64 levels is fine; brackets inside strings do not count. */
    char ok[256];
    size_t i = 0;
    for (int k = 0; k < 64; k++)
        ok[i++] = '[';
    for (int k = 0; k < 64; k++)
        ok[i++] = ']';
    json_t *j = NULL;
    fy_err e;
    assert_int_equal(fy_json_load(ok, i, &j, &e), FY_E_OK);
    json_decref(j);

    char s[512];
    snprintf(s, sizeof s, "{\"x\": \"%.*s\\\"\"}", 200,
             "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
             "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
             "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{");
    j = load_ok(s);
    json_decref(j);

    i = 0;
    for (int k = 0; k < 65; k++)
        ok[i++] = k % 2 ? '[' : '{';
    ok[i] = '\0';
    expect_load_fail(ok, i, "nesting");
}

typedef struct {
    const char *name;
    const char *uuid;
    const char *desc;
    long long count;
    long long flavor;
    bool on;
    json_t *meta;
    json_t *list;
    json_t *any;
    bool has_desc, has_count, has_on;
} target;

static const fy_jspec spec[] = {
    { "name", FY_J_STRING, FY_J_REQUIRED | FY_J_NONEMPTY, offsetof(target, name), FY_JNOPRESENT,
      0, 10 },
    { "uuid", FY_J_STRING, FY_J_UUID, offsetof(target, uuid), FY_JNOPRESENT, 0, 0 },
    { "desc", FY_J_STRING, FY_J_NULLABLE, offsetof(target, desc), offsetof(target, has_desc), 0,
      0 },
    { "count", FY_J_INT, 0, offsetof(target, count), offsetof(target, has_count), 1, 100 },
    { "flavor", FY_J_INT, FY_J_INT_AS_STRING, offsetof(target, flavor), FY_JNOPRESENT, 0, 0 },
    { "on", FY_J_BOOL, 0, offsetof(target, on), offsetof(target, has_on), 0, 0 },
    { "meta", FY_J_OBJECT, FY_J_NULLABLE, offsetof(target, meta), FY_JNOPRESENT, 0, 0 },
    { "list", FY_J_ARRAY, 0, offsetof(target, list), FY_JNOPRESENT, 0, 0 },
    { "any", FY_J_ANY, 0, offsetof(target, any), FY_JNOPRESENT, 0, 0 },
};
#define NSPEC (sizeof spec / sizeof spec[0])

static target sentinel(void)
{
    target t;
    memset(&t, 0x5a, sizeof t);
    return t;
}

static void expect_parse_fail(const char *text, bool allow_extra, const char *where,
                              const char *msg)
{
    json_t *j = load_ok(text);
    target t = sentinel(), before = sentinel();
    fy_err e;
    assert_int_equal(fy_json_parse(j, spec, NSPEC, &t, allow_extra, where, &e), FY_E_BAD_REQUEST);
    assert_string_equal(e.msg, msg);
    assert_memory_equal(&t, &before, sizeof t); /* nothing written */
    json_decref(j);
}

static void test_parse_all_types(void **state)
{
    (void)state;
    json_t *j = load_ok("{\"name\": \"vm1\", \"uuid\": \"123e4567-e89b-12d3-a456-426614174000\","
                        " \"desc\": null, \"count\": 5, \"flavor\": \"42\", \"on\": true,"
                        " \"meta\": {\"k\": \"v\"}, \"list\": [1], \"any\": null}");
    target t;
    memset(&t, 0, sizeof t);
    t.desc = "unchanged";
    fy_err e;
    assert_int_equal(fy_json_parse(j, spec, NSPEC, &t, false, "server", &e), FY_E_OK);
    assert_string_equal(t.name, "vm1");
    assert_string_equal(t.uuid, "123e4567-e89b-12d3-a456-426614174000");
    assert_null(t.desc);
    assert_true(t.has_desc);
    assert_int_equal(t.count, 5);
    assert_true(t.has_count);
    assert_int_equal(t.flavor, 42);
    assert_true(t.on);
    assert_true(t.has_on);
    assert_true(json_is_object(t.meta));
    assert_true(json_is_array(t.list));
    assert_true(json_is_null(t.any));
    json_decref(j);

    /* Optional members absent: destination untouched, present flags false. */
    j = load_ok("{\"name\": \"x\", \"flavor\": 7, \"meta\": null}");
    memset(&t, 0, sizeof t);
    t.count = 99;
    t.has_count = true;
    assert_int_equal(fy_json_parse(j, spec, NSPEC, &t, false, NULL, &e), FY_E_OK);
    assert_int_equal(t.count, 99);
    assert_false(t.has_count);
    assert_false(t.has_on);
    assert_false(t.has_desc);
    assert_int_equal(t.flavor, 7);
    assert_null(t.meta);
    json_decref(j);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_parse_fail("{\"count\": 3}", false, "server",
                      "Invalid input for field/attribute server. Value: {\"count\":3}. "
                      "'name' is a required property");
    expect_parse_fail("{}", false, NULL,
                      "Invalid input for field/attribute name. Value: {}. "
                      "'name' is a required property");
    expect_parse_fail("{\"name\": 12}", false, NULL,
                      "Invalid input for field/attribute name. Value: 12. "
                      "12 is not of type 'string'");
    expect_parse_fail("{\"name\": \"a\", \"desc\": 1}", false, "server",
                      "Invalid input for field/attribute server.desc. Value: 1. "
                      "1 is not of type 'string', 'null'");
    expect_parse_fail("{\"name\": null}", false, NULL,
                      "Invalid input for field/attribute name. Value: null. "
                      "null is not of type 'string'");
    expect_parse_fail("{\"name\": \"a\", \"foo\": 1}", false, NULL,
                      "Additional properties are not allowed ('foo' was unexpected)");
    expect_parse_fail("{\"name\": \"a\", \"count\": 0}", false, NULL,
                      "Invalid input for field/attribute count. Value: 0. "
                      "0 is less than the minimum of 1");
    expect_parse_fail("{\"name\": \"a\", \"count\": 101}", false, NULL,
                      "Invalid input for field/attribute count. Value: 101. "
                      "101 is greater than the maximum of 100");
    expect_parse_fail("{\"name\": \"a\", \"count\": \"5\"}", false, NULL,
                      "Invalid input for field/attribute count. Value: \"5\". "
                      "\"5\" is not of type 'integer'");
    expect_parse_fail("{\"name\": \"a\", \"count\": 1.5}", false, NULL,
                      "Invalid input for field/attribute count. Value: 1.5. "
                      "1.5 is not of type 'integer'");
    expect_parse_fail("{\"name\": \"a\", \"flavor\": true}", false, NULL,
                      "Invalid input for field/attribute flavor. Value: true. "
                      "true is not of type 'integer', 'string'");
    expect_parse_fail("{\"name\": \"a\", \"flavor\": \"4x\"}", false, NULL,
                      "Invalid input for field/attribute flavor. Value: \"4x\". "
                      "\"4x\" is not a valid integer");
    expect_parse_fail("{\"name\": \"\"}", false, NULL,
                      "Invalid input for field/attribute name. Value: \"\". "
                      "\"\" is too short");
    expect_parse_fail("{\"name\": \"abcdefghijk\"}", false, NULL,
                      "Invalid input for field/attribute name. Value: \"abcdefghijk\". "
                      "\"abcdefghijk\" is too long");
    expect_parse_fail("{\"name\": \"a\", \"uuid\": \"nope\"}", false, NULL,
                      "Invalid input for field/attribute uuid. Value: \"nope\". "
                      "\"nope\" is not a 'uuid'");
    expect_parse_fail("{\"name\": \"a\", \"on\": 1}", false, NULL,
                      "Invalid input for field/attribute on. Value: 1. "
                      "1 is not of type 'boolean'");
    expect_parse_fail("{\"name\": \"a\", \"meta\": []}", false, NULL,
                      "Invalid input for field/attribute meta. Value: []. "
                      "[] is not of type 'object', 'null'");
    expect_parse_fail("{\"name\": \"a\", \"list\": {}}", false, NULL,
                      "Invalid input for field/attribute list. Value: {}. "
                      "{} is not of type 'array'");
    /* A later error still leaves earlier valid fields unwritten. */
    expect_parse_fail("{\"name\": \"ok\", \"count\": 5, \"list\": 3}", false, NULL,
                      "Invalid input for field/attribute list. Value: 3. "
                      "3 is not of type 'array'");
}

static void test_parse_misc(void **state)
{
    (void)state;
    /* Extras allowed when asked. */
    json_t *j = load_ok("{\"name\": \"\xc3\xa9\xc3\xa9\", \"extra\": 1}");
    target t;
    memset(&t, 0, sizeof t);
    fy_err e;
    assert_int_equal(fy_json_parse(j, spec, NSPEC, &t, true, NULL, &e), FY_E_OK);
    assert_string_equal(t.name, "\xc3\xa9\xc3\xa9");
    json_decref(j);

    /* Length counts characters, not bytes: 10 two-byte characters fit max 10. */
    j = load_ok("{\"name\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}");
    assert_int_equal(fy_json_parse(j, spec, NSPEC, &t, false, NULL, &e), FY_E_OK);
    json_decref(j);

    /* Objects built in code may hold NUL inside strings; they are refused too. */
    j = json_pack("{s:s%}", "name", "a\0b", (size_t)3);
    assert_non_null(j);
    assert_int_equal(fy_json_parse(j, spec, NSPEC, &t, false, NULL, &e), FY_E_BAD_REQUEST);
    assert_non_null(strstr(e.msg, "contains a NUL character"));
    json_decref(j);

    /* Not an object at all. */
    j = load_ok("[1]");
    assert_int_equal(fy_json_parse(j, spec, NSPEC, &t, false, "server", &e), FY_E_BAD_REQUEST);
    assert_string_equal(e.msg, "Invalid input for field/attribute server. Value: [1]. "
                               "[1] is not of type 'object'");
    json_decref(j);
    assert_int_equal(fy_json_parse(NULL, spec, NSPEC, &t, false, NULL, &e), FY_E_BAD_REQUEST);

    /* Long values are shortened in messages, on a character boundary. */
    char big[1200];
    memset(big, 'x', sizeof big);
    memcpy(big, "{\"name\": \"", 10);
    for (size_t k = 10; k + 4 < sizeof big; k += 2)
        memcpy(big + k, "\xc3\xa9", 2);
    memcpy(big + sizeof big - 3, "\"}", 3);
    j = load_ok(big);
    assert_int_equal(fy_json_parse(j, spec, NSPEC, &t, true, NULL, &e), FY_E_BAD_REQUEST);
    assert_true(strlen(e.msg) < 400);
    assert_non_null(strstr(e.msg, "... is too long"));
    json_t *back = json_string(e.msg); /* still valid UTF-8 */
    assert_non_null(back);
    json_decref(back);
    json_decref(j);
}

static void test_getters(void **state)
{
    (void)state;
    json_t *j = load_ok("{\"s\": \"v\", \"i\": 3, \"b\": true}");
    assert_string_equal(fy_json_str(j, "s"), "v");
    assert_null(fy_json_str(j, "i"));
    assert_null(fy_json_str(j, "missing"));
    assert_int_equal(fy_json_int(j, "i", -1), 3);
    assert_int_equal(fy_json_int(j, "s", -1), -1);
    assert_true(fy_json_bool(j, "b", false));
    assert_true(fy_json_bool(j, "x", true));
    assert_null(fy_json_str(NULL, "s"));
    char *d = fy_json_dump(j);
    assert_string_equal(d, "{\"s\":\"v\",\"i\":3,\"b\":true}");
    free(d);
    d = fy_json_dump(NULL);
    assert_string_equal(d, "null");
    free(d);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_good),
        cmocka_unit_test(test_load_bad),
        cmocka_unit_test(test_load_depth),
        cmocka_unit_test(test_parse_all_types),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_misc),
        cmocka_unit_test(test_getters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
