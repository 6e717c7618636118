/* The server view: Nova's status mapping, hostId, hostname, per-microversion shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include "../../api-svc/api_servers.h"

static void test_status_mapping(void **state)
{
    (void)state;
    assert_string_equal(api_server_status("building", "scheduling"), "BUILD");
    assert_string_equal(api_server_status("active", NULL), "ACTIVE");
    assert_string_equal(api_server_status("active", "deleting"), "ACTIVE");
    assert_string_equal(api_server_status("active", "powering-off"), "ACTIVE");
    assert_string_equal(api_server_status("active", "migrating"), "MIGRATING");
    assert_string_equal(api_server_status("active", "resize_prep"), "RESIZE");
    assert_string_equal(api_server_status("active", "resize_finish"), "RESIZE");
    assert_string_equal(api_server_status("stopped", NULL), "SHUTOFF");
    assert_string_equal(api_server_status("stopped", "resize_migrating"), "RESIZE");
    assert_string_equal(api_server_status("resized", NULL), "VERIFY_RESIZE");
    assert_string_equal(api_server_status("resized", "resize_reverting"), "REVERT_RESIZE");
    assert_string_equal(api_server_status("paused", "migrating"), "MIGRATING");
    assert_string_equal(api_server_status("error", "deleting"), "ERROR");
    assert_string_equal(api_server_status("deleted", NULL), "DELETED");
    assert_string_equal(api_server_status("bogus", NULL), "UNKNOWN");
    assert_string_equal(api_server_status(NULL, NULL), "UNKNOWN");
}

static bool contains(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach (arr, i, v)
        if (strcmp(json_string_value(v), s) == 0)
            return true;
    return false;
}

static void test_status_filter(void **state)
{
    (void)state;
    json_t *vm = json_array(), *task = json_array();
    bool any = false;
    assert_true(api_server_status_states("resize", vm, task, &any));
    assert_false(any);
    assert_true(contains(vm, "active") && contains(vm, "stopped"));
    assert_true(contains(task, "resize_migrated"));
    json_array_clear(vm);
    json_array_clear(task);
    assert_true(api_server_status_states("ACTIVE", vm, task, &any));
    assert_true(any);
    assert_int_equal(json_array_size(vm), 1);
    assert_false(api_server_status_states("NOPE", vm, task, &any));
    json_decref(vm);
    json_decref(task);
}

static void test_host_id(void **state)
{
    (void)state;
    char out[57];
    /* Recorded from Nova: project "admin" on host2. */
    api_server_host_id("admin", "host2", out);
    assert_string_equal(out, "bd7c1a3e941d0d7ab52f9240e523e3e78773eb12f9261f883bf892a8");
    api_server_host_id("admin", NULL, out);
    assert_string_equal(out, "");
    api_server_host_id("admin", "", out);
    assert_string_equal(out, "");
}

static void test_hostname(void **state)
{
    (void)state;
    char out[64];
    api_server_hostname("sample-a", out);
    assert_string_equal(out, "sample-a");
    api_server_hostname("My Server_1!", out);
    assert_string_equal(out, "my-server-1");
    api_server_hostname("--x--", out);
    assert_string_equal(out, "x");
    char longname[200];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    api_server_hostname(longname, out);
    assert_int_equal(strlen(out), 63);
}

static const api_server_row sample = {
    .uuid = "5092d420-f415-40ea-9411-5cdb24efd7ce",
    .name = "sample-a",
    .project_id = "admin",
    .user_id = "admin",
    .image_ref = "11111111-2222-3333-4444-555555555555",
    .flavor_json = "{\"flavorid\":\"1\",\"name\":\"m1.tiny\",\"vcpus\":1,\"memory_mb\":512,"
                   "\"root_gb\":1,\"ephemeral_gb\":0,\"swap_mb\":0,\"extra_specs\":{}}",
    .vm_state = "resized",
    .host = "host2",
    .node = "host2",
    .az = "nova",
    .metadata_json = "{}",
    .launched_at = "2026-11-27T14:38:06.000000",
    .created = "2026-11-27T14:37:53Z",
    .updated = "2026-11-27T14:38:06Z",
    .ports_json = "[{\"net\":\"private\",\"addr\":\"10.0.0.2\",\"mac\":\"fa:16:3e:00:00:01\"}]",
    .host_status = "UP",
    .id = 0x35,
    .power_state = 1,
};

static void test_view_290(void **state)
{
    (void)state;
    api_view_opts o = {.base_url = "http://127.0.0.1:8774",
                       .mv_major = 2,
                       .mv_minor = 90,
                       .ext_attrs = true,
                       .host_status = true};
    json_t *s = api_server_view_full(&o, &sample);
    assert_non_null(s);
    assert_string_equal(json_string_value(json_object_get(s, "status")), "VERIFY_RESIZE");
    assert_string_equal(json_string_value(json_object_get(s, "hostId")),
                        "bd7c1a3e941d0d7ab52f9240e523e3e78773eb12f9261f883bf892a8");
    json_t *flavor = json_object_get(s, "flavor");
    assert_int_equal(json_integer_value(json_object_get(flavor, "ram")), 512);
    assert_string_equal(json_string_value(json_object_get(flavor, "original_name")), "m1.tiny");
    assert_null(json_object_get(flavor, "id"));
    assert_string_equal(json_string_value(json_object_get(s, "OS-EXT-SRV-ATTR:instance_name")),
                        "instance-00000035");
    assert_string_equal(json_string_value(json_object_get(s, "host_status")), "UP");
    assert_true(json_is_array(json_object_get(s, "server_groups")));
    assert_true(json_is_null(json_object_get(s, "locked_reason")));
    json_t *addr = json_array_get(json_object_get(json_object_get(s, "addresses"), "private"), 0);
    assert_string_equal(json_string_value(json_object_get(addr, "OS-EXT-IPS-MAC:mac_addr")),
                        "fa:16:3e:00:00:01");
    assert_int_equal(json_integer_value(json_object_get(addr, "version")), 4);
    const char *href =
        json_string_value(json_object_get(json_array_get(json_object_get(s, "links"), 1), "href"));
    assert_string_equal(href, "http://127.0.0.1:8774/servers/5092d420-f415-40ea-9411-5cdb24efd7ce");
    assert_non_null(json_object_get(s, "security_groups"));
    assert_null(json_object_get(s, "fault"));
    json_decref(s);
}

static void test_view_21_non_admin(void **state)
{
    (void)state;
    api_view_opts o = {.base_url = "http://x", .mv_major = 2, .mv_minor = 1};
    api_server_row r = sample;
    r.vm_state = "error";
    r.ports_json = NULL;
    r.image_ref = "";
    r.fault_json = "{\"code\":500,\"message\":\"boom\",\"details\":\"trace\",\"created\":\"t\"}";
    json_t *s = api_server_view_full(&o, &r);
    assert_non_null(s);
    assert_string_equal(json_string_value(json_object_get(s, "status")), "ERROR");
    json_t *flavor = json_object_get(s, "flavor");
    assert_string_equal(json_string_value(json_object_get(flavor, "id")), "1");
    assert_null(json_object_get(flavor, "ram"));
    assert_string_equal(json_string_value(json_object_get(s, "image")), "");
    assert_null(json_object_get(s, "OS-EXT-SRV-ATTR:host"));
    assert_null(json_object_get(s, "locked"));
    assert_null(json_object_get(s, "host_status"));
    assert_null(json_object_get(s, "security_groups"));
    assert_null(json_object_get(s, "progress"));
    json_t *fault = json_object_get(s, "fault");
    assert_string_equal(json_string_value(json_object_get(fault, "message")), "boom");
    assert_null(json_object_get(fault, "details"));
    json_decref(s);
}

static void test_view_brief(void **state)
{
    (void)state;
    api_view_opts o = {.base_url = "http://x", .mv_major = 2, .mv_minor = 1};
    json_t *s = api_server_view_brief(&o, &sample);
    assert_int_equal(json_object_size(s), 3);
    assert_string_equal(json_string_value(json_object_get(s, "name")), "sample-a");
    json_decref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_mapping), cmocka_unit_test(test_status_filter),
        cmocka_unit_test(test_host_id),        cmocka_unit_test(test_hostname),
        cmocka_unit_test(test_view_290),       cmocka_unit_test(test_view_21_non_admin),
        cmocka_unit_test(test_view_brief),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
