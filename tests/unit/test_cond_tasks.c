/* The conductor's task engine against a real PostgreSQL (FERRY_TEST_DB_URL):
 * leased claims, take-over of expired leases, fencing, per-instance order,
 * release and renewal; plus the pure helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <cmocka.h>
#include "../../conductor-svc/cond.h"
#include "fy_cleanup.h"
#include "fy_db.h"

static const char *db_url;

static const fy_sql sql_add_task = {
    "t_cond_add_task",
    "INSERT INTO tasks (uuid, kind, instance_uuid, request_id)"
    " VALUES (gen_random_uuid(), $1, $2::uuid, 'req-test') RETURNING id",
    2};
static const fy_sql sql_task_row = {
    "t_cond_task_row",
    "SELECT state, step, owner, attempts, error, params::text AS params,"
    "       extract(epoch FROM lease_until - now())::float8 AS lease_left"
    "  FROM tasks WHERE id = $1::bigint",
    1};
static const fy_sql sql_expire = {
    "t_cond_expire", "UPDATE tasks SET lease_until = now() - interval '1 second' WHERE id = $1::bigint", 1};
static const fy_sql sql_add_instance = {
    "t_cond_add_instance",
    "INSERT INTO instances (uuid, display_name, project_id, user_id, flavor, task_state)"
    " VALUES ($1, 'vm', gen_random_uuid(), gen_random_uuid(),"
    "         '{\"vcpus\":1,\"memory_mb\":64,\"root_gb\":1}', $2)",
    2};

static int setup(void **state)
{
    (void)state;
    if (!db_url)
        return 0;
    fy_err e;
    if (fy_db_init(db_url, "test-cond-tasks", &e))
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
    assert_int_equal(fy_db_exec_script("DELETE FROM tasks; DELETE FROM instances;", &e), FY_E_OK);
    return 0;
}

#define NEED_DB() do { if (!db_url) skip(); } while (0)

static long long add_task(const char *kind, const char *instance)
{
    const char *p[] = {kind, instance};
    _cleanup_pgres_ PGresult *r = NULL;
    fy_err e;
    assert_int_equal(fy_db_exec_one(&sql_add_task, p, &r, &e), FY_E_OK);
    return fy_db_ll(r, 0, "id", 0);
}

static PGresult *task_row(long long id)
{
    char ids[24];
    snprintf(ids, sizeof(ids), "%lld", id);
    const char *p[] = {ids};
    PGresult *r = NULL;
    fy_err e;
    assert_int_equal(fy_db_exec_one(&sql_task_row, p, &r, &e), FY_E_OK);
    return r;
}

static void expire(long long id)
{
    char ids[24];
    snprintf(ids, sizeof(ids), "%lld", id);
    const char *p[] = {ids};
    _cleanup_pgres_ PGresult *r = NULL;
    fy_err e;
    assert_int_equal(fy_db_exec(&sql_expire, p, &r, &e), FY_E_OK);
}

static void add_instance(const char *uuid, const char *task_state)
{
    const char *p[] = {uuid, task_state};
    _cleanup_pgres_ PGresult *r = NULL;
    fy_err e;
    assert_int_equal(fy_db_exec(&sql_add_instance, p, &r, &e), FY_E_OK);
}

/* Claims as owner; returns the id or 0 when nothing was claimable. */
static long long claim(const char *owner, int lease_s, cond_task *ret)
{
    cond_task t = {0};
    bool found = false;
    fy_err e;
    assert_int_equal(cond_task_claim(owner, lease_s, &t, &found, &e), FY_E_OK);
    if (!found)
        return 0;
    long long id = t.id;
    if (ret)
        *ret = t;
    else
        cond_task_clear(&t);
    return id;
}

/* ---- pure helpers ---- */

static void test_flavor_resources(void **state)
{
    (void)state;
    cond_resources r;
    fy_err e;
    json_t *f = json_pack("{s:i,s:i,s:i,s:i}", "vcpus", 2, "memory_mb", 512, "root_gb", 10,
                          "ephemeral_gb", 5);
    assert_int_equal(cond_flavor_resources(f, &r, &e), FY_E_OK);
    assert_int_equal(r.vcpus, 2);
    assert_int_equal(r.memory_mb, 512);
    assert_int_equal(r.disk_gb, 15);
    json_decref(f);
    f = json_pack("{s:i,s:i}", "vcpus", 1, "memory_mb", 64);
    assert_int_equal(cond_flavor_resources(f, &r, &e), FY_E_OK);
    assert_int_equal(r.disk_gb, 0);
    json_decref(f);
    f = json_pack("{s:s,s:i}", "vcpus", "x", "memory_mb", 64);
    assert_int_equal(cond_flavor_resources(f, &r, &e), FY_E_INTERNAL);
    json_decref(f);
}

static void test_owner_and_kinds(void **state)
{
    (void)state;
    char owner[320];
    cond_owner_format(owner, sizeof(owner), "ctl1", 4242, 3);
    assert_string_equal(owner, "ctl1:4242:3");
    assert_non_null(cond_kind_find("build"));
    assert_non_null(cond_kind_find("delete"));
    assert_non_null(cond_kind_find("start"));
    assert_non_null(cond_kind_find("stop"));
    assert_null(cond_kind_find("frobnicate"));

    static const char *const steps[] = {"a", "b", "c"};
    cond_run run = {0};
    assert_int_equal(cond_step_index(&run, steps, 3), 0);
    snprintf(run.task.step, sizeof(run.task.step), "c");
    assert_int_equal(cond_step_index(&run, steps, 3), 2);
    snprintf(run.task.step, sizeof(run.task.step), "zz");
    assert_int_equal(cond_step_index(&run, steps, 3), 0);
}

/* ---- claims ---- */

static void test_claim_order_and_fields(void **state)
{
    (void)state;
    NEED_DB();
    long long a = add_task("start", NULL), b = add_task("stop", NULL);
    cond_task t = {0};
    assert_int_equal(claim("h:1:0", 30, &t), a);
    assert_string_equal(t.kind, "start");
    assert_string_equal(t.request_id, "req-test");
    assert_int_equal(t.attempts, 1);
    assert_string_equal(t.instance_uuid, "");
    assert_true(json_is_object(t.params));
    cond_task_clear(&t);
    _cleanup_pgres_ PGresult *r = task_row(a);
    assert_string_equal(fy_db_str(r, 0, "state"), "running");
    assert_string_equal(fy_db_str(r, 0, "owner"), "h:1:0");
    assert_true(fy_db_double(r, 0, "lease_left", 0) > 25);
    assert_int_equal(claim("h:1:1", 30, NULL), b);
    assert_int_equal(claim("h:1:2", 30, NULL), 0);
}

#define RACE_TASKS 200
#define RACE_THREADS 4

typedef struct racer {
    int n;
    long long ids[RACE_TASKS];
    int count;
} racer;

static void *race_main(void *arg)
{
    racer *r = arg;
    char owner[32];
    snprintf(owner, sizeof(owner), "race:%d:0", r->n);
    for (;;) {
        cond_task t = {0};
        bool found = false;
        fy_err e;
        if (cond_task_claim(owner, 30, &t, &found, &e) || !found)
            break;
        r->ids[r->count++] = t.id;
        cond_task_clear(&t);
    }
    fy_db_thread_cleanup();
    return NULL;
}

static void test_claimers_never_share(void **state)
{
    (void)state;
    NEED_DB();
    fy_err e;
    assert_int_equal(fy_db_exec_script("INSERT INTO tasks (uuid, kind, request_id)"
                                       " SELECT gen_random_uuid(), 'start', 'req-race'"
                                       "   FROM generate_series(1, 200)", &e), FY_E_OK);
    static racer racers[RACE_THREADS];
    pthread_t th[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        racers[i] = (racer){.n = i};
        assert_int_equal(pthread_create(&th[i], NULL, race_main, &racers[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < RACE_THREADS; i++) {
        pthread_join(th[i], NULL);
        total += racers[i].count;
    }
    assert_int_equal(total, RACE_TASKS);
    /* Every id exactly once across all claimers. */
    for (int i = 0; i < RACE_THREADS; i++)
        for (int j = 0; j < racers[i].count; j++)
            for (int k = i; k < RACE_THREADS; k++)
                for (int l = (k == i ? j + 1 : 0); l < racers[k].count; l++)
                    assert_true(racers[i].ids[j] != racers[k].ids[l]);
}

static void test_expired_lease_taken_over(void **state)
{
    (void)state;
    NEED_DB();
    long long id = add_task("start", NULL);
    cond_run a = {.lease_s = 30};
    snprintf(a.owner, sizeof(a.owner), "dead:1:0");
    assert_int_equal(claim(a.owner, 30, &a.task), id);
    fy_err e;
    assert_int_equal(cond_step(&a, "power_on", NULL, &e), FY_E_OK);
    /* A live lease is not taken. */
    assert_int_equal(claim("alive:2:0", 30, NULL), 0);

    expire(id);
    cond_task t = {0};
    assert_int_equal(claim("alive:2:0", 30, &t), id);
    assert_int_equal(t.attempts, 2);
    assert_string_equal(t.step, "power_on");    /* resumed from the recorded step */
    cond_task_clear(&t);

    /* The old owner is fenced off: its steps and outcome are refused. */
    assert_int_equal(cond_step(&a, "next", NULL, &e), FY_E_CONFLICT);
    assert_true(a.lost);
    assert_int_equal(cond_task_finish(&a.task, a.owner, true, NULL, &e), FY_E_CONFLICT);
    _cleanup_pgres_ PGresult *r = task_row(id);
    assert_string_equal(fy_db_str(r, 0, "owner"), "alive:2:0");
    assert_string_equal(fy_db_str(r, 0, "state"), "running");
    cond_task_clear(&a.task);
}

static void test_finished_never_rerun(void **state)
{
    (void)state;
    NEED_DB();
    long long ok = add_task("start", NULL), bad = add_task("stop", NULL);
    cond_task t1 = {0}, t2 = {0};
    fy_err e;
    assert_int_equal(claim("c:1:0", 30, &t1), ok);
    assert_int_equal(claim("c:1:1", 30, &t2), bad);
    assert_int_equal(cond_task_finish(&t1, "c:1:0", true, NULL, &e), FY_E_OK);
    assert_int_equal(cond_task_finish(&t2, "c:1:1", false, "agent down", &e), FY_E_OK);
    /* Finishing twice is refused: the task is no longer running. */
    assert_int_equal(cond_task_finish(&t1, "c:1:0", true, NULL, &e), FY_E_CONFLICT);
    expire(ok);
    expire(bad);
    assert_int_equal(claim("c:2:0", 30, NULL), 0);
    _cleanup_pgres_ PGresult *r1 = task_row(ok), *r2 = task_row(bad);
    assert_string_equal(fy_db_str(r1, 0, "state"), "done");
    assert_string_equal(fy_db_str(r2, 0, "state"), "failed");
    assert_string_equal(fy_db_str(r2, 0, "error"), "agent down");
    cond_task_clear(&t1);
    cond_task_clear(&t2);
}

static void test_instance_tasks_in_order(void **state)
{
    (void)state;
    NEED_DB();
    const char *inst = "11111111-2222-4333-8444-555555555555";
    long long build = add_task("build", inst), del = add_task("delete", inst);
    long long other = add_task("start", NULL);
    cond_task t = {0};
    fy_err e;
    assert_int_equal(claim("o:1:0", 30, &t), build);
    /* The delete waits for the build; unrelated work goes ahead. */
    assert_int_equal(claim("o:1:1", 30, NULL), other);
    assert_int_equal(claim("o:1:2", 30, NULL), 0);
    assert_int_equal(cond_task_finish(&t, "o:1:0", true, NULL, &e), FY_E_OK);
    assert_int_equal(claim("o:1:2", 30, NULL), del);
    cond_task_clear(&t);
}

static void test_release_and_renew(void **state)
{
    (void)state;
    NEED_DB();
    long long id = add_task("start", NULL);
    cond_task t = {0};
    fy_err e;
    assert_int_equal(claim("r:1:0", 30, &t), id);
    assert_int_equal(cond_task_release(&t, "r:1:0", 60, "later", &e), FY_E_OK);
    assert_int_equal(claim("r:2:0", 30, NULL), 0);     /* not before the delay */
    expire(id);
    cond_task_clear(&t);
    assert_int_equal(claim("r:2:0", 30, &t), id);
    assert_int_equal(cond_task_release(&t, "r:2:0", 0, "stopping", &e), FY_E_OK);
    cond_task_clear(&t);
    assert_int_equal(claim("r:3:0", 2, &t), id);       /* at once */
    assert_int_equal(t.attempts, 3);

    long renewed = 0;
    assert_int_equal(cond_task_renew("r:3:", 120, &renewed, &e), FY_E_OK);
    assert_int_equal(renewed, 1);
    _cleanup_pgres_ PGresult *r = task_row(id);
    assert_true(fy_db_double(r, 0, "lease_left", 0) > 100);
    /* Another process's prefix renews nothing of ours. */
    assert_int_equal(cond_task_renew("r:30:", 120, &renewed, &e), FY_E_OK);
    assert_int_equal(renewed, 0);
    cond_task_clear(&t);
}

static void test_step_saves_params(void **state)
{
    (void)state;
    NEED_DB();
    long long id = add_task("build", NULL);
    cond_run run = {.lease_s = 30};
    snprintf(run.owner, sizeof(run.owner), "p:1:0");
    assert_int_equal(claim(run.owner, 30, &run.task), id);
    json_t *params = json_pack("{s:{s:s}}", "build", "host", "h7");
    fy_err e;
    assert_int_equal(cond_step(&run, "bind", params, &e), FY_E_OK);
    json_decref(params);
    assert_string_equal(run.task.step, "bind");
    _cleanup_pgres_ PGresult *r = task_row(id);
    assert_string_equal(fy_db_str(r, 0, "step"), "bind");
    assert_non_null(strstr(fy_db_str(r, 0, "params"), "\"h7\""));
    cond_task_clear(&run.task);
}

static const fy_sql sql_add_action = {
    "t_cond_add_action",
    "INSERT INTO instance_actions (instance_uuid, action, request_id) VALUES ($1, 'migrate', 'req-test')",
    1};
static const fy_sql sql_events = {
    "t_cond_events",
    "SELECT e.event, e.result, e.host, (e.finish_time >= e.start_time) AS ordered,"
    "       (e.start_time < now() - interval '50 milliseconds') AS early"
    "  FROM instance_action_events e JOIN instance_actions a ON a.id = e.action_id"
    " WHERE a.instance_uuid = $1 ORDER BY e.id",
    1};

/* Queued event writes go out with the next step write, keeping the times at
 * which they were queued; a run without a queue writes them at once. */
static void test_events_ride_with_step(void **state)
{
    (void)state;
    NEED_DB();
    const char *uuid = "7d0f6a9e-5b1c-4d2e-9f3a-0b1c2d3e4f51";
    add_instance(uuid, NULL);
    const char *pa[] = {uuid};
    _cleanup_pgres_ PGresult *ra = NULL;
    fy_err e;
    assert_int_equal(fy_db_exec(&sql_add_action, pa, &ra, &e), FY_E_OK);
    long long id = add_task("migrate", uuid);
    cond_run run = {.lease_s = 30, .pending = cond_pending_new()};
    snprintf(run.owner, sizeof(run.owner), "p:1:0");
    assert_int_equal(claim(run.owner, 30, &run.task), id);

    cond_event_start_q(&run, "compute_prep_resize", "h1");
    cond_event_finish_q(&run, "compute_prep_resize", false, "boom");
    PGresult *r = NULL;
    assert_int_equal(fy_db_exec(&sql_events, pa, &r, &e), FY_E_OK);
    assert_int_equal(PQntuples(r), 0);            /* not written yet */
    PQclear(r);
    struct timespec ts = {0, 80 * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(cond_step(&run, "prep", NULL, &e), FY_E_OK);
    assert_int_equal(fy_db_exec(&sql_events, pa, &r, &e), FY_E_OK);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(fy_db_str(r, 0, "event"), "compute_prep_resize");
    assert_string_equal(fy_db_str(r, 0, "result"), "Error");
    assert_string_equal(fy_db_str(r, 0, "host"), "h1");
    assert_true(fy_db_bool(r, 0, "ordered"));
    assert_true(fy_db_bool(r, 0, "early"));       /* the time it was queued */
    PQclear(r);

    /* Without a queue: at once. */
    cond_pending_free(run.pending);
    run.pending = NULL;
    cond_event_start_q(&run, "compute_resize_instance", "h2");
    assert_int_equal(fy_db_exec(&sql_events, pa, &r, &e), FY_E_OK);
    assert_int_equal(PQntuples(r), 2);
    PQclear(r);
    cond_task_clear(&run.task);
}

static void test_unknown_kind_fails(void **state)
{
    (void)state;
    NEED_DB();
    long long id = add_task("frobnicate", NULL);
    cond_run run = {.lease_s = 30};
    snprintf(run.owner, sizeof(run.owner), "u:1:0");
    assert_int_equal(claim(run.owner, 30, &run.task), id);
    cond_task_execute(&run);
    cond_task_clear(&run.task);
    _cleanup_pgres_ PGresult *r = task_row(id);
    assert_string_equal(fy_db_str(r, 0, "state"), "failed");
    assert_non_null(strstr(fy_db_str(r, 0, "error"), "frobnicate"));
}

static void test_requeue_failed_deletes(void **state)
{
    (void)state;
    NEED_DB();
    const char *stuck = "aaaaaaaa-2222-4333-8444-555555555555";
    const char *fine = "bbbbbbbb-2222-4333-8444-555555555555";
    add_instance(stuck, "deleting");
    add_instance(fine, NULL);
    long long d1 = add_task("delete", stuck), d2 = add_task("delete", fine);
    fy_err e;
    cond_task t = {0};
    assert_int_equal(claim("q:1:0", 30, &t), d1);
    assert_int_equal(cond_task_finish(&t, "q:1:0", false, "agent down", &e), FY_E_OK);
    cond_task_clear(&t);
    assert_int_equal(claim("q:1:0", 30, &t), d2);
    assert_int_equal(cond_task_finish(&t, "q:1:0", false, "agent down", &e), FY_E_OK);
    cond_task_clear(&t);

    long n = 0;
    assert_int_equal(cond_task_requeue_deletes(&n, &e), FY_E_OK);
    assert_int_equal(n, 1);
    assert_int_equal(claim("q:2:0", 30, NULL), d1);
    assert_int_equal(claim("q:2:0", 30, NULL), 0);
}

static void test_delete_of_missing_instance_is_done(void **state)
{
    (void)state;
    NEED_DB();
    long long id = add_task("delete", "cccccccc-2222-4333-8444-555555555555");
    cond_run run = {.lease_s = 30};
    snprintf(run.owner, sizeof(run.owner), "m:1:0");
    assert_int_equal(claim(run.owner, 30, &run.task), id);
    cond_task_execute(&run);
    cond_task_clear(&run.task);
    _cleanup_pgres_ PGresult *r = task_row(id);
    assert_string_equal(fy_db_str(r, 0, "state"), "done");
}

int main(void)
{
    db_url = getenv("FERRY_TEST_DB_URL");
    if (db_url && !*db_url)
        db_url = NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flavor_resources),
        cmocka_unit_test(test_owner_and_kinds),
        cmocka_unit_test_setup(test_claim_order_and_fields, clean),
        cmocka_unit_test_setup(test_claimers_never_share, clean),
        cmocka_unit_test_setup(test_expired_lease_taken_over, clean),
        cmocka_unit_test_setup(test_finished_never_rerun, clean),
        cmocka_unit_test_setup(test_instance_tasks_in_order, clean),
        cmocka_unit_test_setup(test_release_and_renew, clean),
        cmocka_unit_test_setup(test_step_saves_params, clean),
        cmocka_unit_test_setup(test_events_ride_with_step, clean),
        cmocka_unit_test_setup(test_unknown_kind_fails, clean),
        cmocka_unit_test_setup(test_requeue_failed_deletes, clean),
        cmocka_unit_test_setup(test_delete_of_missing_instance_is_done, clean),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
