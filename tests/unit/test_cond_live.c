/* The live-migration task's pure rules (check order, candidate retries, the
 * rollback decision table) and, against PostgreSQL (FERRY_TEST_DB_URL), the
 * guarded migration record writes and the 'ferry_jobs' wake-ups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "../../conductor-svc/cond_live.h"
#include "fy_cleanup.h"
#include "fy_db.h"
#include "fy_json.h"
#include "fy_util.h"

static const char *db_url;

/* ---- check order ---- */

static live_host_facts good_host(void)
{
    return (live_host_facts){.exists = true, .up = true, .hypervisor_type = "fake",
                             .hypervisor_version = 1000, .memory_mb = 2048,
                             .memory_mb_used = 512, .ram_ratio = 1.0};
}

static fy_code given(const live_host_facts *src, const live_host_facts *dst, const char *dest,
                     long long mb, fy_err *err)
{
    return live_check_given_dest("u-1", "host1", dest, src, dst, mb, err);
}

static void test_given_dest_ok(void **state)
{
    (void)state;
    live_host_facts s = good_host(), d = good_host();
    fy_err err = {0};
    assert_int_equal(given(&s, &d, "host2", 1536, &err), FY_E_OK);  /* exactly the free RAM */
    d.hypervisor_version = 2000;                                    /* newer is fine */
    assert_int_equal(given(&s, &d, "host2", 64, &err), FY_E_OK);
}

static void test_given_dest_order(void **state)
{
    (void)state;
    live_host_facts s = good_host(), d = good_host();
    fy_err err = {0};
    /* Everything wrong at once: the first check in the seed's order wins. */
    d.exists = false;
    d.up = false;
    d.memory_mb = 1;
    d.hypervisor_type = "other";
    assert_int_equal(given(&s, &d, "host1", 64, &err), FY_E_MIGRATION_PRECHECK);
    assert_string_equal(err.msg, "Unable to migrate instance (u-1) to current host (host1).");
    assert_int_equal(given(&s, &d, "host2", 64, &err), FY_E_MIGRATION_PRECHECK);
    assert_string_equal(err.msg, "Compute host host2 could not be found.");
    d.exists = true;
    assert_int_equal(given(&s, &d, "host2", 64, &err), FY_E_MIGRATION_PRECHECK);
    assert_string_equal(err.msg, "Compute service of host2 is unavailable at this time.");
    d.up = true;
    assert_int_equal(given(&s, &d, "host2", 64, &err), FY_E_MIGRATION_PRECHECK);
    assert_non_null(strstr(err.msg, "Lack of memory"));
    d.memory_mb = 4096;
    assert_int_equal(given(&s, &d, "host2", 64, &err), FY_E_MIGRATION_PRECHECK);
    assert_string_equal(err.msg, "The supplied hypervisor type of is invalid.");
    d.hypervisor_type = "fake";
    d.hypervisor_version = 999;
    assert_int_equal(given(&s, &d, "host2", 64, &err), FY_E_MIGRATION_PRECHECK);
    assert_non_null(strstr(err.msg, "newer hypervisor version"));
}

static void test_memory_rule(void **state)
{
    (void)state;
    live_host_facts d = good_host();
    d.memory_mb = 1000;
    d.ram_ratio = 1.5;
    d.memory_mb_used = 1000;
    assert_true(live_dest_has_memory(&d, 500));     /* 1500 - 1000 */
    assert_false(live_dest_has_memory(&d, 501));
    assert_false(live_dest_has_memory(&d, 0));      /* Nova refuses a flavor without RAM */
}

static void test_candidate_retries(void **state)
{
    (void)state;
    int tried = 0;
    while (live_may_retry(tried, 3))
        tried++;
    assert_int_equal(tried, 3);
    assert_false(live_may_retry(0, 0));
    assert_true(live_may_retry(0, 1));
}

/* ---- rollback decision table ---- */

static void test_rollback_plan(void **state)
{
    (void)state;
    static const struct {
        bool block, shared, volume;
        bool event, destroy;
    } rows[] = {
        /* block shared volume -> Nova's cleanup, destroy_disks */
        {false, true, false, false, false},  /* shared instance path */
        {false, true, true, false, false},   /* volume-backed on shared storage */
        {false, false, true, true, true},    /* volume-backed, no shared storage */
        {false, false, false, false, true},  /* local storage (refused by the checks) */
        {true, false, false, true, true},    /* block migration */
        {true, false, true, true, true},
        {true, true, false, true, true},
        {true, true, true, true, true},
    };
    for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
        live_rollback_plan p = live_rollback_plan_for(rows[i].block, rows[i].shared,
                                                      rows[i].volume);
        assert_int_equal(p.nova_cleanup, rows[i].event);
        assert_int_equal(p.destroy_disks, rows[i].destroy);
    }
    assert_true(live_post_destroy_disks(true, true));
    assert_true(live_post_destroy_disks(false, false));
    assert_false(live_post_destroy_disks(false, true));     /* keep a shared disk */
}

/* ---- migration records (database) ---- */

#define NEED_DB() do { if (!db_url) skip(); } while (0)

static const fy_sql sql_add_instance = {
    "t_live_add_instance",
    "INSERT INTO instances (uuid, display_name, project_id, user_id, flavor, task_state)"
    " VALUES ($1, 'vm', gen_random_uuid(), gen_random_uuid(),"
    "         '{\"vcpus\":1,\"memory_mb\":64,\"root_gb\":1}', 'migrating')",
    1};
static const fy_sql sql_add_migration = {
    "t_live_add_migration",
    "INSERT INTO migrations (uuid, instance_uuid, migration_type, status, source_compute)"
    " VALUES ($1, $2, 'live-migration', $3, 'host1')",
    3};
static const fy_sql sql_force_status = {
    "t_live_force_status", "UPDATE migrations SET status = $2 WHERE uuid = $1", 2};
static const fy_sql sql_notify = {
    "t_live_notify", "SELECT pg_notify('ferry_jobs', $1)", 1};

static void exec_ok(const fy_sql *s, const char *const *p)
{
    fy_err e = {0};
    _cleanup_pgres_ PGresult *r = NULL;
    if (fy_db_exec(s, p, &r, &e))
        fail_msg("%s: %s", s->name, e.msg);
}

static void new_migration(char mig[FY_UUID_LEN + 1], const char *status)
{
    char inst[FY_UUID_LEN + 1];
    fy_uuid_v4(inst);
    fy_uuid_v4(mig);
    const char *pi[] = {inst};
    exec_ok(&sql_add_instance, pi);
    const char *pm[] = {mig, inst, status};
    exec_ok(&sql_add_migration, pm);
}

static void test_status_guarded(void **state)
{
    (void)state;
    NEED_DB();
    char mig[FY_UUID_LEN + 1];
    new_migration(mig, "accepted");
    fy_err err = {0};
    fy_mig_status now = FY_MIG_INVALID;
    assert_int_equal(cond_mig_set_status(mig, FY_MIG_ACCEPTED, FY_MIG_QUEUED, &now, &err),
                     FY_E_OK);
    assert_int_equal(now, FY_MIG_QUEUED);
    /* Repeating a write that is already done is fine (a resumed step). */
    assert_int_equal(cond_mig_set_status(mig, FY_MIG_ACCEPTED, FY_MIG_QUEUED, &now, &err),
                     FY_E_OK);
    /* The table refuses a pair outright. */
    assert_int_equal(cond_mig_set_status(mig, FY_MIG_QUEUED, FY_MIG_COMPLETED, NULL, &err),
                     FY_E_INTERNAL);
    /* Someone else moved it: the guard holds. */
    const char *pf[] = {mig, "cancelled"};
    exec_ok(&sql_force_status, pf);
    assert_int_equal(cond_mig_set_status(mig, FY_MIG_QUEUED, FY_MIG_PREPARING, &now, &err),
                     FY_E_CONFLICT);
    assert_int_equal(now, FY_MIG_CANCELLED);
}

static void test_fail_and_merge(void **state)
{
    (void)state;
    NEED_DB();
    char mig[FY_UUID_LEN + 1];
    new_migration(mig, "preparing");
    fy_err err = {0};
    json_auto_t *md = json_pack("{s:b,s:s}", "is_shared_instance_path", 1, "x", "y");
    assert_int_equal(cond_mig_merge_data(mig, md, &err), FY_E_OK);
    bool block = true;
    assert_int_equal(cond_mig_set_storage(mig, &block, NULL, &err), FY_E_OK);
    assert_int_equal(cond_mig_set_dest(mig, "host2", NULL, &err), FY_E_OK);
    static const fy_mig_status from[] = {FY_MIG_PREPARING, FY_MIG_RUNNING};
    assert_int_equal(cond_mig_fail(mig, from, 2, FY_MIG_FAILED, "boom", &err), FY_E_OK);
    /* Not from a terminal status. */
    assert_int_equal(cond_mig_fail(mig, from, 2, FY_MIG_CANCELLED, "late", &err),
                     FY_E_CONFLICT);

    cond_migration m = {0};
    assert_int_equal(cond_mig_load(mig, &m, &err), FY_E_OK);
    assert_int_equal(m.status, FY_MIG_FAILED);
    assert_true(m.block_migration);
    assert_false(m.shared_storage);
    assert_string_equal(m.dest_compute, "host2");
    assert_string_equal(m.dest_node, "host2");
    assert_string_equal(fy_json_str(m.migrate_data, "error"), "boom");
    assert_string_equal(fy_json_str(m.migrate_data, "x"), "y");
    assert_true(fy_json_bool(m.migrate_data, "is_shared_instance_path", false));
    json_auto_t *body = cond_mig_body_migration(&m);
    assert_string_equal(fy_json_str(body, "uuid"), mig);
    assert_string_equal(fy_json_str(body, "source_compute"), "host1");
    cond_mig_clear(&m);
    assert_int_equal(cond_mig_load("00000000-0000-4000-8000-000000000000", &m, &err),
                     FY_E_NOT_FOUND);
}

static void test_jobs_wakeup(void **state)
{
    (void)state;
    NEED_DB();
    fy_err err = {0};
    assert_int_equal(cond_jobs_start(&err), FY_E_OK);
    char mig[FY_UUID_LEN + 1], other[FY_UUID_LEN + 1];
    fy_uuid_v4(mig);
    fy_uuid_v4(other);
    cond_jobs_watch w;
    cond_jobs_watch_start(&w, mig);
    /* The listener's first connect wakes every watcher once. */
    cond_jobs_wait(&w, 2000);
    const char *po[] = {other};
    exec_ok(&sql_notify, po);
    assert_false(cond_jobs_wait(&w, 300));      /* another migration's news */
    const char *pm[] = {mig};
    exec_ok(&sql_notify, pm);
    uint64_t t0 = fy_now_ms();
    assert_true(cond_jobs_wait(&w, 5000));
    assert_true(fy_now_ms() - t0 < 2000);
    cond_jobs_watch_end(&w);
    cond_jobs_stop();
    assert_true(cond_jobs_stopping());
}

static int setup(void **state)
{
    (void)state;
    if (!db_url)
        return 0;
    fy_err e;
    if (fy_db_init(db_url, "test-cond-live", &e))
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
    if (db_url)
        fy_db_shutdown();
    return 0;
}

int main(void)
{
    db_url = getenv("FERRY_TEST_DB_URL");
    if (db_url && !*db_url)
        db_url = NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_given_dest_ok),
        cmocka_unit_test(test_given_dest_order),
        cmocka_unit_test(test_memory_rule),
        cmocka_unit_test(test_candidate_retries),
        cmocka_unit_test(test_rollback_plan),
        cmocka_unit_test(test_status_guarded),
        cmocka_unit_test(test_fail_and_merge),
        cmocka_unit_test(test_jobs_wakeup),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
