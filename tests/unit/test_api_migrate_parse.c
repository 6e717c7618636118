/* api-svc migration parsing: Python-style value rendering in Nova's messages, the
 * os-migrateLive schema across microversions (2.1, 2.25, 2.30, 2.68), and the
 * ISO 8601 query times of os-migrations / os-instance-actions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../api-svc/api_migrations.h"

static void repr_is(const char *json, const char *want)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    char out[256];
    api_pyrepr(v, out, sizeof out);
    assert_string_equal(out, want);
    json_decref(v);
}

static void test_pyrepr(void **state)
{
    (void)state;
    repr_is("{\"host\": \"host2\", \"block_migration\": false}",
            "{'host': 'host2', 'block_migration': False}");
    repr_is("{\"a\": null, \"b\": true, \"c\": [1, 2.5, \"x\"]}",
            "{'a': None, 'b': True, 'c': [1, 2.5, 'x']}");
    repr_is("\"it's\"", "\"it's\"");
    repr_is("\"a\\\\b\"", "'a\\\\b'");
    repr_is("\"line\\n\"", "'line\\n'");
    repr_is("1.0", "1.0");
    repr_is("0.1", "0.1");
    repr_is("{}", "{}");
    char tiny[8];
    json_t *v = json_string("a long string");
    api_pyrepr(v, tiny, sizeof tiny);
    assert_int_equal(strlen(tiny), 7); /* truncated, still terminated */
    json_decref(v);
}

static fy_code parse(const char *json, int mv, api_live_args *a, fy_err *err)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    fy_code rc = api_live_args_parse(v, mv, a, err);
    json_decref(v);
    return rc;
}

static void fails_with(const char *json, int mv, const char *msg)
{
    api_live_args a;
    fy_err err = {0};
    assert_int_equal(parse(json, mv, &a, &err), FY_E_BAD_REQUEST);
    assert_string_equal(err.msg, msg);
}

static void test_live_args_ok(void **state)
{
    (void)state;
    api_live_args a;
    fy_err err = {0};
    /* host is borrowed from the body, so the body must outlive it */
    json_t *body = json_loads("{\"host\": \"host2\", \"block_migration\": \"auto\"}", 0, NULL);
    assert_int_equal(api_live_args_parse(body, 90, &a, &err), FY_E_OK);
    assert_string_equal(a.host, "host2");
    json_decref(body);
    assert_int_equal(a.block_migration, API_BM_AUTO);
    assert_false(a.force);
    assert_int_equal(parse("{\"host\": null, \"block_migration\": \"yes\", \"force\": \"On\"}", 30,
                           &a, &err),
                     FY_E_OK);
    assert_null(a.host);
    assert_int_equal(a.block_migration, API_BM_TRUE);
    assert_true(a.force);
    assert_int_equal(parse("{\"host\": \"h\", \"block_migration\": false,"
                           " \"disk_over_commit\": \"0\"}",
                           1, &a, &err),
                     FY_E_OK);
    assert_int_equal(a.block_migration, API_BM_FALSE);
}

static void test_live_args_errors(void **state)
{
    (void)state;
    fails_with("{\"host\": \"host2\"}", 90,
               "Invalid input for field/attribute os-migrateLive. Value: {'host': 'host2'}. "
               "'block_migration' is a required property");
    fails_with("{\"block_migration\": \"auto\"}", 90,
               "Invalid input for field/attribute os-migrateLive. Value: {'block_migration': "
               "'auto'}. 'host' is a required property");
    fails_with("{\"host\": \"host2\", \"block_migration\": \"maybe\"}", 90,
               "Invalid input for field/attribute block_migration. Value: maybe. 'maybe' is not "
               "one of [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', "
               "'yes', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', "
               "'no', 'auto']");
    fails_with("{\"host\": \"host2\", \"block_migration\": \"auto\"}", 24,
               "Invalid input for field/attribute block_migration. Value: auto. 'auto' is not "
               "one of [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', "
               "'yes', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', "
               "'no']");
    fails_with("{\"host\": \"host2\", \"block_migration\": false}", 1,
               "Invalid input for field/attribute os-migrateLive. Value: {'host': 'host2', "
               "'block_migration': False}. 'disk_over_commit' is a required property");
    fails_with("{\"host\": \"host2\", \"block_migration\": \"auto\", \"force\": true}", 68,
               "Invalid input for field/attribute os-migrateLive. Value: {'host': 'host2', "
               "'block_migration': 'auto', 'force': True}. Additional properties are not "
               "allowed ('force' was unexpected)");
    fails_with("{\"host\": \"h\", \"block_migration\": true, \"force\": true}", 29,
               "Invalid input for field/attribute os-migrateLive. Value: {'host': 'h', "
               "'block_migration': True, 'force': True}. Additional properties are not allowed "
               "('force' was unexpected)");
    fails_with("{\"host\": \"h\", \"block_migration\": true, \"disk_over_commit\": false}", 25,
               "Invalid input for field/attribute os-migrateLive. Value: {'host': 'h', "
               "'block_migration': True, 'disk_over_commit': False}. Additional properties are "
               "not allowed ('disk_over_commit' was unexpected)");
    fails_with("{\"host\": 5, \"block_migration\": true}", 90,
               "Invalid input for field/attribute host. Value: 5. 5 is not of type 'string', "
               "'null'");
    fails_with("{\"host\": \"a b\", \"block_migration\": true}", 90,
               "Invalid input for field/attribute host. Value: a b. 'a b' does not match "
               "'^[a-zA-Z0-9-_.:]*$'");
    fails_with("{\"host\": \"h\", \"block_migration\": 1}", 90,
               "Invalid input for field/attribute block_migration. Value: 1. 1 is not one of "
               "[True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes', "
               "False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no', "
               "'auto']");
    fails_with("null", 90,
               "Invalid input for field/attribute os-migrateLive. Value: None. None is not of "
               "type 'object'");
    fails_with("{\"host\": \"h\", \"block_migration\": true, \"a\": 1, \"b\": 2}", 90,
               "Invalid input for field/attribute os-migrateLive. Value: {'host': 'h', "
               "'block_migration': True, 'a': 1, 'b': 2}. Additional properties are not allowed "
               "('a', 'b' were unexpected)");
}

static void time_is(const char *in, const char *want)
{
    char out[64];
    assert_true(api_parse_iso_time(in, out, sizeof out));
    assert_string_equal(out, want);
}

static void test_iso_time(void **state)
{
    (void)state;
    char out[64];
    time_is("2000-01-01T00:00:00Z", "2000-01-01T00:00:00Z");
    time_is("2026-11-27T14:37:55.716716", "2026-11-27T14:37:55.716716+00:00");
    time_is("2026-11-27T14:37:55+01:00", "2026-11-27T14:37:55+01:00");
    time_is("2026-11-27", "2026-11-27+00:00");
    time_is("2026-11-27 14:37", "2026-11-27 14:37+00:00");
    assert_false(api_parse_iso_time("yesterday", out, sizeof out));
    assert_false(api_parse_iso_time("2026-11-27T14", out, sizeof out));
    assert_false(api_parse_iso_time("2026-11-27T14:37:55Zjunk", out, sizeof out));
    assert_false(api_parse_iso_time("2026-11-27T14:37:55'; --", out, sizeof out));
    assert_false(api_parse_iso_time("", out, sizeof out));
    assert_false(api_parse_iso_time(NULL, out, sizeof out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pyrepr),
        cmocka_unit_test(test_live_args_ok),
        cmocka_unit_test(test_live_args_errors),
        cmocka_unit_test(test_iso_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
