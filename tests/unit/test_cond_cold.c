/* The cold-migration tasks: the pure decisions (power state kept, hosts the
 * scheduler ignores, reschedule to alternates, the status order a resumed step
 * accepts) and, against a real PostgreSQL (FERRY_TEST_DB_URL), the guarded
 * task-state writes, quota commit/rollback and the auto-confirm pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "../../conductor-svc/cond_cold.h"
#include "fy_cleanup.h"
#include "fy_db.h"
#include "fy_migration.h"
#include "fy_util.h"

static const char *db_url;

#define INST "11111111-1111-4111-8111-111111111111"
#define MIG "22222222-2222-4222-8222-222222222222"
#define MIG2 "33333333-3333-4333-8333-333333333333"

/* ---- pure decisions ---- */

/* A database restart or a peer away a moment is retried with a growing pause,
 * for a bounded time; anything else (or a timeout) is not. */
static void test_retry_transient(void **state)
{
    (void)state;
    cond_run run = {0};
    fy_err e = {0};
    cond_cold_retry r = {0};
    fy_fail(&e, FY_E_MIGRATION_PRECHECK, "refused");
    assert_false(cond_cold_retry_again(&run, &r, &e, "test"));
    assert_int_equal(r.since_ms, 0);
    fy_fail(&e, FY_E_TIMEOUT, "took too long");
    assert_false(cond_cold_retry_again(&run, &r, &e, "test"));
    fy_fail(&e, FY_E_CONFLICT, "taken");
    assert_false(cond_cold_retry_again(&run, &r, &e, "test"));

    static const fy_code transient[] = {FY_E_UNAVAILABLE, FY_E_DB, FY_E_DB_RETRY,
                                        FY_E_UPSTREAM};
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
        cond_cold_retry t = {.since_ms = fy_now_ms(), .pause_ms = 1};
        fy_fail(&e, transient[i], "away");
        assert_true(cond_cold_retry_again(&run, &t, &e, "test"));
        assert_int_equal(t.pause_ms, 2);
        assert_true(cond_cold_retry_again(&run, &t, &e, "test"));
        assert_int_equal(t.pause_ms, 4);
    }
    /* The first failure starts the clock and the first pause (250 ms). */
    fy_fail(&e, FY_E_UNAVAILABLE, "away");
    uint64_t t0 = fy_now_ms();
    assert_true(cond_cold_retry_again(&run, &r, &e, "test"));
    assert_true(fy_now_ms() - t0 >= 240);
    assert_int_equal(r.pause_ms, 500);
    /* Spent: COND_COLD_TRANSIENT_MS after the first failure it gives up. */
    cond_cold_retry spent = {.since_ms = fy_now_ms() - COND_COLD_TRANSIENT_MS - 1,
                             .pause_ms = 1};
    assert_false(cond_cold_retry_again(&run, &spent, &e, "test"));
    assert_false(run.release);
    /* COND_COLD_RETRYING repeats the call until it succeeds. */
    int calls = 0;
    fy_code rc = COND_COLD_RETRYING(&run, "test", &e,
                                    ++calls < 3 ? fy_fail(&e, FY_E_DB, "down") : FY_E_OK);
    assert_int_equal(rc, FY_E_OK);
    assert_int_equal(calls, 3);
    calls = 0;
    rc = COND_COLD_RETRYING(&run, "test", &e, (++calls, fy_fail(&e, FY_E_BAD_REQUEST, "no")));
    assert_int_equal(rc, FY_E_BAD_REQUEST);
    assert_int_equal(calls, 1);
}

static void test_was_running(void **state)
{
    (void)state;
    assert_true(cond_cold_was_running("active", 1));
    assert_false(cond_cold_was_running("stopped", 4));
    assert_false(cond_cold_was_running("stopped", 1));
    assert_false(cond_cold_was_running("active", 4));
    assert_string_equal(cond_cold_final_vm_state(true), "active");
    assert_string_equal(cond_cold_final_vm_state(false), "stopped");
}

static void test_ignore_hosts(void **state)
{
    (void)state;
    const char *out[2] = {NULL, NULL};
    assert_int_equal(cond_cold_ignore_hosts("host1", false, NULL, out), 1);
    assert_string_equal(out[0], "host1");
    out[0] = NULL;
    assert_int_equal(cond_cold_ignore_hosts("host1", true, NULL, out), 0);
    assert_null(out[0]);
    /* A given host is forced: the same-host rule is then prep_resize's check. */
    assert_int_equal(cond_cold_ignore_hosts("host1", false, "host2", out), 0);
    assert_int_equal(cond_cold_ignore_hosts("host1", false, "", out), 1);
    assert_int_equal(cond_cold_ignore_hosts(NULL, false, NULL, out), 0);
}

static cond_selection three_alts(void)
{
    cond_selection sel = {.nalts = 3};
    snprintf(sel.dest.host, sizeof(sel.dest.host), "h0");
    for (int i = 0; i < 3; i++) {
        snprintf(sel.alts[i].host, sizeof(sel.alts[i].host), "h%d", i + 1);
        snprintf(sel.alts[i].node, sizeof(sel.alts[i].node), "n%d", i + 1);
    }
    return sel;
}

static void test_take_alternate(void **state)
{
    (void)state;
    cond_selection sel = three_alts();
    cond_dest d;
    assert_true(cond_cold_take_alternate(&sel, 1, 3, &d));
    assert_string_equal(d.host, "h1");
    assert_string_equal(d.node, "n1");
    assert_int_equal(sel.nalts, 2);
    assert_string_equal(sel.alts[0].host, "h2");
    assert_true(cond_cold_take_alternate(&sel, 2, 3, &d));
    assert_string_equal(d.host, "h2");
    /* max_attempts hosts tried: no further reschedule though one is left. */
    assert_false(cond_cold_take_alternate(&sel, 3, 3, &d));
    assert_int_equal(sel.nalts, 1);
    assert_true(cond_cold_take_alternate(&sel, 1, 9, &d));
    assert_string_equal(d.host, "h3");
    assert_false(cond_cold_take_alternate(&sel, 1, 9, &d));
    /* max_attempts 1: never rescheduled. */
    cond_selection one = three_alts();
    assert_false(cond_cold_take_alternate(&one, 1, 1, &d));
    assert_int_equal(one.nalts, 3);
}

static void test_rank_and_transitions(void **state)
{
    (void)state;
    assert_int_equal(cond_cold_rank(FY_MIG_PRE_MIGRATING), 0);
    assert_int_equal(cond_cold_rank(FY_MIG_MIGRATING), 1);
    assert_int_equal(cond_cold_rank(FY_MIG_POST_MIGRATING), 2);
    assert_int_equal(cond_cold_rank(FY_MIG_FINISHED), 3);
    assert_int_equal(cond_cold_rank(FY_MIG_ERROR), -1);
    assert_int_equal(cond_cold_rank(FY_MIG_CONFIRMING), -1);
    /* Every write the cold tasks make is in the shared table. */
    static const fy_mig_status pairs[][2] = {
        {FY_MIG_PRE_MIGRATING, FY_MIG_MIGRATING}, {FY_MIG_MIGRATING, FY_MIG_POST_MIGRATING},
        {FY_MIG_POST_MIGRATING, FY_MIG_FINISHED}, {FY_MIG_FINISHED, FY_MIG_CONFIRMING},
        {FY_MIG_CONFIRMING, FY_MIG_CONFIRMED},    {FY_MIG_REVERTING, FY_MIG_REVERTED},
        {FY_MIG_PRE_MIGRATING, FY_MIG_ERROR},     {FY_MIG_MIGRATING, FY_MIG_ERROR},
        {FY_MIG_POST_MIGRATING, FY_MIG_ERROR},    {FY_MIG_CONFIRMING, FY_MIG_ERROR},
        {FY_MIG_REVERTING, FY_MIG_ERROR},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        assert_true(fy_mig_can_transition(pairs[i][0], pairs[i][1]));
    assert_false(fy_mig_can_transition(FY_MIG_FINISHED, FY_MIG_ERROR));
}

/* ---- against the database ---- */

#define NEED_DB() do { if (!db_url) skip(); } while (0)

static const fy_sql sql_add_instance = {
    "t_cold_add_instance",
    "INSERT INTO instances (uuid, display_name, project_id, user_id, flavor, vm_state,"
    "                       task_state, host, node)"
    " VALUES ($1, 'vm', gen_random_uuid(), gen_random_uuid(),"
    "         '{\"vcpus\":1,\"memory_mb\":64,\"root_gb\":1}', $2, $3, 'host1', 'host1')",
    3};
static const fy_sql sql_add_migration = {
    "t_cold_add_migration",
    "INSERT INTO migrations (uuid, instance_uuid, migration_type, status, source_compute,"
    "                        dest_compute, updated_at)"
    " VALUES ($1, $2, 'resize', $3, 'host1', 'host2', now() - $4::interval)",
    4};
static const fy_sql sql_add_reservation = {
    "t_cold_add_reservation",
    "INSERT INTO quota_reservations (uuid, project_id, resource, delta, consumer_uuid,"
    "                                expires_at)"
    " VALUES (gen_random_uuid(), gen_random_uuid(), 'cores', 2, $1, now() + interval '1 hour')",
    1};
static const fy_sql sql_count = {
    "t_cold_count",
    "SELECT (SELECT count(*) FROM quota_reservations) AS reservations,"
    "       (SELECT count(*) FROM tasks WHERE kind = 'confirm') AS tasks,"
    "       (SELECT count(*) FROM instance_actions WHERE action = 'confirmResize') AS actions,"
    "       (SELECT status FROM migrations WHERE uuid = $1) AS status,"
    "       (SELECT task_state FROM instances WHERE uuid = $2) AS task_state",
    2};

static int setup(void **state)
{
    (void)state;
    if (!db_url)
        return 0;
    fy_err e;
    if (fy_db_init(db_url, "test-cond-cold", &e))
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
    fy_db_shutdown();
    return 0;
}

static int clean(void **state)
{
    (void)state;
    if (!db_url)
        return 0;
    fy_err e;
    assert_int_equal(fy_db_exec_script("DELETE FROM tasks; DELETE FROM quota_reservations;"
                                       " DELETE FROM instances;", &e),
                     FY_E_OK);
    return 0;
}

static void exec_ok(const fy_sql *stmt, const char *const *p)
{
    _cleanup_pgres_ PGresult *r = NULL;
    fy_err e;
    if (fy_db_exec(stmt, p, &r, &e))
        fail_msg("%s: %s", stmt->name, e.msg);
}

static void add_instance(const char *vm_state, const char *task_state)
{
    const char *p[] = {INST, vm_state, task_state};
    exec_ok(&sql_add_instance, p);
}

static void add_migration(const char *uuid, const char *status, const char *age)
{
    const char *p[] = {uuid, INST, status, age};
    exec_ok(&sql_add_migration, p);
}

static PGresult *counts(const char *mig)
{
    const char *p[] = {mig, INST};
    PGresult *r = NULL;
    fy_err e;
    if (fy_db_exec_one(&sql_count, p, &r, &e))
        fail_msg("count: %s", e.msg);
    return r;
}

static void test_task_state_guard(void **state)
{
    (void)state;
    NEED_DB();
    add_instance("active", "resize_prep");
    static const char *const from[] = {"resize_prep", "resize_migrating"};
    bool ok = false;
    fy_err e;
    assert_int_equal(cond_cold_task_state(INST, from, 2, "resize_migrating", &ok, &e), FY_E_OK);
    assert_true(ok);
    /* Repeating the step (a resumed run) is accepted. */
    assert_int_equal(cond_cold_task_state(INST, from, 2, "resize_migrating", &ok, &e), FY_E_OK);
    assert_true(ok);
    static const char *const other[] = {"resize_finish"};
    assert_int_equal(cond_cold_task_state(INST, other, 1, "resize_migrated", &ok, &e), FY_E_OK);
    assert_false(ok);
    static const char *const none[] = {""};
    assert_int_equal(cond_cold_task_state(INST, none, 1, "x", &ok, &e), FY_E_OK);
    assert_false(ok);
}

static void test_quota(void **state)
{
    (void)state;
    NEED_DB();
    add_instance("active", "resize_prep");
    add_migration(MIG, "pre-migrating", "0 seconds");
    add_migration(MIG2, "pre-migrating", "0 seconds");
    const char *p1[] = {MIG}, *p2[] = {MIG2};
    exec_ok(&sql_add_reservation, p1);
    exec_ok(&sql_add_reservation, p1);
    exec_ok(&sql_add_reservation, p2);
    fy_err e;
    assert_int_equal(cond_quota_rollback(MIG, &e), FY_E_OK);
    _cleanup_pgres_ PGresult *r1 = counts(MIG);
    assert_int_equal(fy_db_ll(r1, 0, "reservations", -1), 1);
    assert_int_equal(cond_quota_commit(MIG2, &e), FY_E_OK);
    assert_int_equal(cond_quota_commit(MIG2, &e), FY_E_OK);
    _cleanup_pgres_ PGresult *r2 = counts(MIG);
    assert_int_equal(fy_db_ll(r2, 0, "reservations", -1), 0);
}

static const fy_sql sql_downsized = {
    "t_cold_downsized",
    "UPDATE instances SET old_flavor = '{\"vcpus\":4,\"memory_mb\":512}',"
    "       flavor = '{\"vcpus\":1,\"memory_mb\":1024}' WHERE uuid = $1",
    1};
static const fy_sql sql_held = {
    "t_cold_held",
    "SELECT resource, delta FROM quota_reservations WHERE consumer_uuid = $1 ORDER BY resource",
    1};

static void test_quota_hold_downsize(void **state)
{
    (void)state;
    NEED_DB();
    add_instance("active", "resize_migrated");
    add_migration(MIG, "post-migrating", "0 seconds");
    const char *pm[] = {MIG}, *pi[] = {INST};
    exec_ok(&sql_add_reservation, pm);
    exec_ok(&sql_downsized, pi);
    fy_err e;
    /* Twice: a resumed step holds the same difference, not twice as much. */
    assert_int_equal(cond_quota_commit_hold(MIG, INST, &e), FY_E_OK);
    assert_int_equal(cond_quota_commit_hold(MIG, INST, &e), FY_E_OK);
    _cleanup_pgres_ PGresult *r = NULL;
    assert_int_equal(fy_db_exec(&sql_held, pm, &r, &e), FY_E_OK);
    /* Fewer cores are held; more RAM is not a decrease and holds nothing. */
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(fy_db_str(r, 0, "resource"), "cores");
    assert_int_equal(fy_db_ll(r, 0, "delta", 0), 3);
}

static void test_autoconfirm(void **state)
{
    (void)state;
    NEED_DB();
    add_instance("resized", NULL);
    add_migration(MIG, "finished", "30 seconds");
    long n = -1;
    fy_err e;
    /* Not yet due. */
    assert_int_equal(cond_autoconfirm_once(60, &n, &e), FY_E_OK);
    assert_int_equal(n, 0);
    assert_int_equal(cond_autoconfirm_once(10, &n, &e), FY_E_OK);
    assert_int_equal(n, 1);
    _cleanup_pgres_ PGresult *r = counts(MIG);
    assert_string_equal(fy_db_str(r, 0, "status"), "confirming");
    assert_int_equal(fy_db_ll(r, 0, "tasks", -1), 1);
    assert_int_equal(fy_db_ll(r, 0, "actions", -1), 1);
    /* Exactly once. */
    assert_int_equal(cond_autoconfirm_once(10, &n, &e), FY_E_OK);
    assert_int_equal(n, 0);
    _cleanup_pgres_ PGresult *r2 = counts(MIG);
    assert_int_equal(fy_db_ll(r2, 0, "tasks", -1), 1);
}

static void test_autoconfirm_skips_busy(void **state)
{
    (void)state;
    NEED_DB();
    /* A revert already asked for (task_state set) is left alone. */
    add_instance("resized", "resize_reverting");
    add_migration(MIG, "finished", "1 hour");
    long n = -1;
    fy_err e;
    assert_int_equal(cond_autoconfirm_once(1, &n, &e), FY_E_OK);
    assert_int_equal(n, 0);
    _cleanup_pgres_ PGresult *r = counts(MIG);
    assert_string_equal(fy_db_str(r, 0, "status"), "finished");
}

int main(void)
{
    db_url = getenv("FERRY_TEST_DB_URL");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_was_running),
        cmocka_unit_test(test_retry_transient),
        cmocka_unit_test(test_ignore_hosts),
        cmocka_unit_test(test_take_alternate),
        cmocka_unit_test(test_rank_and_transitions),
        cmocka_unit_test_setup(test_task_state_guard, clean),
        cmocka_unit_test_setup(test_quota, clean),
        cmocka_unit_test_setup(test_quota_hold_downsize, clean),
        cmocka_unit_test_setup(test_autoconfirm, clean),
        cmocka_unit_test_setup(test_autoconfirm_skips_busy, clean),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
