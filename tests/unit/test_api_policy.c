/* api-svc policy: Nova's defaults (admin_api, admin_or_owner), the service
 * credential, and overrides from a policy file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../api-svc/api.h"

#define PROJ_A "11111111-1111-1111-1111-111111111111"
#define PROJ_B "22222222-2222-2222-2222-222222222222"

static fy_req caller(const char *project, const char *roles, bool admin)
{
    fy_req req = {0};
    req.auth.authenticated = true;
    req.auth.is_admin = admin;
    snprintf(req.auth.project_id, sizeof req.auth.project_id, "%s", project);
    snprintf(req.auth.roles, sizeof req.auth.roles, "%s", roles);
    return req;
}

static bool allowed(const fy_req *req, const char *rule, const char *owner)
{
    fy_err err = {0};
    return api_policy_check(req, rule, owner, &err) == FY_E_OK;
}

static int reset(void **state)
{
    (void)state;
    fy_err err = {0};
    return api_policy_load(NULL, &err) == FY_E_OK ? 0 : -1;
}

static void test_defaults(void **state)
{
    (void)state;
    fy_req admin = caller(PROJ_A, "admin,member", true);
    fy_req member = caller(PROJ_A, "member", false);
    const char *live = "os_compute_api:os-migrate-server:migrate_live";
    const char *resize = "os_compute_api:servers:resize";

    assert_true(allowed(&admin, live, PROJ_B));
    assert_false(allowed(&member, live, PROJ_A));
    assert_true(allowed(&member, resize, PROJ_A));
    assert_false(allowed(&member, resize, PROJ_B));
    assert_true(allowed(&admin, resize, PROJ_B));
    /* No target: checked against the caller's own project, as Nova does. */
    assert_true(allowed(&member, resize, NULL));
    assert_true(allowed(&member, "os_compute_api:os-availability-zone:list", NULL));
    assert_false(allowed(&member, "os_compute_api:os-flavor-manage:create", NULL));
    assert_true(allowed(&admin, "os_compute_api:os-flavor-manage:create", NULL));
    /* Unregistered names are admin-only. */
    assert_false(allowed(&member, "os_compute_api:no-such-rule", NULL));

    fy_req anon = {0};
    assert_false(allowed(&anon, "os_compute_api:os-availability-zone:list", NULL));
}

static void test_message(void **state)
{
    (void)state;
    fy_req member = caller(PROJ_A, "member", false);
    fy_err err = {0};
    assert_int_equal(api_policy_check(&member, "os_compute_api:os-migrations:index", NULL, &err),
                     FY_E_FORBIDDEN);
    assert_string_equal(err.msg,
                        "Policy doesn't allow os_compute_api:os-migrations:index to be performed.");
}

static void test_service_caller(void **state)
{
    (void)state;
    fy_req svc = caller("", "admin,service", true);
    svc.auth.is_service = true;
    assert_true(allowed(&svc, "download_image", PROJ_B));
    assert_true(allowed(&svc, "publicize_image", NULL));
    assert_true(allowed(&svc, "os_compute_api:os-migrate-server:migrate", NULL));
}

static char *write_policy(const char *text)
{
    char *path = strdup("/tmp/ferry-policy-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_overrides(void **state)
{
    (void)state;
    char *path = write_policy(
        "{\"os_compute_api:os-migrate-server:migrate_live\": \"rule:admin_or_owner\","
        " \"os_compute_api:servers:resize\": \"!\","
        " \"os_compute_api:os-services:list\": \"role:operator or rule:admin_api\","
        " \"os_compute_api:os-flavor-manage:create\": \"@\"}");
    fy_err err = {0};
    assert_int_equal(api_policy_load(path, &err), FY_E_OK);
    unlink(path);
    free(path);

    fy_req admin = caller(PROJ_A, "admin", true);
    fy_req member = caller(PROJ_A, "member", false);
    fy_req oper = caller(PROJ_A, "operator", false);
    const char *live = "os_compute_api:os-migrate-server:migrate_live";
    assert_true(allowed(&member, live, PROJ_A));
    assert_false(allowed(&member, live, PROJ_B));
    assert_false(allowed(&admin, "os_compute_api:servers:resize", PROJ_A));
    assert_true(allowed(&oper, "os_compute_api:os-services:list", NULL));
    assert_true(allowed(&admin, "os_compute_api:os-services:list", NULL));
    assert_false(allowed(&member, "os_compute_api:os-services:list", NULL));
    assert_true(allowed(&member, "os_compute_api:os-flavor-manage:create", NULL));
    /* Rules not in the file keep their defaults. */
    assert_false(allowed(&member, "os_compute_api:os-migrate-server:migrate", NULL));

    /* Reloading without a file restores every default. */
    assert_int_equal(api_policy_load(NULL, &err), FY_E_OK);
    assert_false(allowed(&member, live, PROJ_A));
    assert_true(allowed(&member, "os_compute_api:servers:resize", PROJ_A));
}

static void test_bad_files(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"os_compute_api:no-such-rule\": \"@\"}",
        "{\"os_compute_api:servers:resize\": \"rule:nonexistent\"}",
        "{\"os_compute_api:servers:resize\": \"tenant:foo\"}",
        "{\"os_compute_api:servers:resize\": 1}",
        "[\"@\"]",
        "{not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *path = write_policy(bad[i]);
        fy_err err = {0};
        assert_int_equal(api_policy_load(path, &err), FY_E_CONFIG);
        assert_true(strlen(err.msg) > 0);
        unlink(path);
        free(path);
    }
    fy_err err = {0};
    assert_int_equal(api_policy_load("/nonexistent/policy.json", &err), FY_E_CONFIG);
    /* A failed load leaves the defaults in force. */
    fy_req member = caller(PROJ_A, "member", false);
    assert_true(allowed(&member, "os_compute_api:servers:resize", PROJ_A));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, reset),
        cmocka_unit_test_setup(test_message, reset),
        cmocka_unit_test_setup(test_service_caller, reset),
        cmocka_unit_test_setup(test_overrides, reset),
        cmocka_unit_test_setup(test_bad_files, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
