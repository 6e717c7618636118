/* fy_db against a real PostgreSQL (FERRY_TEST_DB_URL). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "fy_db.h"

static const char *db_url;

static const fy_sql sql_insert = {"t_db_insert", "INSERT INTO kv (k, v) VALUES ($1, $2::integer)", 2};
static const fy_sql sql_get = {"t_db_get", "SELECT k, v, v > 0 AS pos, v / 2.0 AS half FROM kv WHERE k = $1", 1};
static const fy_sql sql_prepared = {
    "t_db_prepared", "SELECT count(*) AS n FROM pg_prepared_statements WHERE name = $1", 1};
static const fy_sql sql_pid = {"t_db_pid", "SELECT pg_backend_pid() AS pid", 0};
static const fy_sql sql_read = {"t_db_read", "SELECT v FROM kv WHERE k = $1", 1};
static const fy_sql sql_set = {"t_db_set", "UPDATE kv SET v = $2::integer WHERE k = $1", 2};
static const fy_sql sql_notify = {"t_db_notify", "SELECT pg_notify($1, $2)", 2};
static const fy_sql sql_bad = {"t_db_bad", "SELECT * FROM no_such_table", 0};

static int setup(void **state)
{
    (void)state;
    if (!db_url)
        return 0;
    fy_err e;
    assert_int_equal(fy_db_init(db_url, "test-db", &e), FY_E_OK);
    assert_int_equal(fy_db_exec_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
                                       "CREATE TABLE kv (k text PRIMARY KEY, v integer NOT NULL);",
                                       &e),
                     FY_E_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fy_db_shutdown();
    return 0;
}

#define NEED_DB() do { if (!db_url) skip(); } while (0)

static long long get_v(const char *k)
{
    fy_err e;
    _cleanup_pgres_ PGresult *r = NULL;
    const char *p[] = {k};
    if (fy_db_exec_one(&sql_read, p, &r, &e) != FY_E_OK)
        return -1;
    return fy_db_ll(r, 0, "v", -1);
}

static void test_exec_and_prepare_reuse(void **state)
{
    (void)state;
    NEED_DB();
    fy_err e;
    const char *a[] = {"a", "1"}, *b[] = {"b", "-4"};
    _cleanup_pgres_ PGresult *ins = NULL;
    assert_int_equal(fy_db_exec(&sql_insert, a, &ins, &e), FY_E_OK);
    assert_int_equal(fy_db_affected(ins), 1);
    assert_int_equal(fy_db_exec(&sql_insert, b, NULL, &e), FY_E_OK);

    const char *name[] = {"t_db_insert"};
    _cleanup_pgres_ PGresult *r = NULL;
    assert_int_equal(fy_db_exec_one(&sql_prepared, name, &r, &e), FY_E_OK);
    assert_int_equal(fy_db_ll(r, 0, "n", -1), 1);

    _cleanup_pgres_ PGresult *g = NULL;
    const char *k[] = {"b"};
    assert_int_equal(fy_db_exec_one(&sql_get, k, &g, &e), FY_E_OK);
    assert_string_equal(fy_db_str(g, 0, "k"), "b");
    assert_int_equal(fy_db_ll(g, 0, "v", 0), -4);
    assert_false(fy_db_bool(g, 0, "pos"));
    assert_true(fy_db_double(g, 0, "half", 0) == -2.0);
    assert_null(fy_db_str(g, 0, "nope"));
    assert_int_equal(fy_db_ll(g, 0, "nope", 77), 77);
    assert_null(fy_db_str(g, 5, "k"));

    const char *missing[] = {"zz"};
    assert_int_equal(fy_db_exec_one(&sql_get, missing, NULL, &e), FY_E_NOT_FOUND);
    assert_int_equal(fy_db_exec(&sql_bad, NULL, NULL, &e), FY_E_DB);
    assert_non_null(strstr(e.msg, "no_such_table"));
}

static void test_unique_conflict(void **state)
{
    (void)state;
    NEED_DB();
    fy_err e;
    const char *a[] = {"dup", "1"};
    assert_int_equal(fy_db_exec(&sql_insert, a, NULL, &e), FY_E_OK);
    assert_int_equal(fy_db_exec(&sql_insert, a, NULL, &e), FY_E_CONFLICT);
    assert_int_equal(e.code, FY_E_CONFLICT);
    /* The connection is still usable afterwards. */
    assert_int_equal(get_v("dup"), 1);
}

static fy_code txn_insert(void *arg, fy_err *err)
{
    const char *const *p = arg;
    assert_true(fy_db_in_txn());
    fy_code rc = fy_db_exec(&sql_insert, p, NULL, err);
    if (rc != FY_E_OK)
        return rc;
    if (strcmp(p[0], "fail") == 0)
        return fy_fail(err, FY_E_BAD_REQUEST, "callback refused");
    return FY_E_OK;
}

static fy_code txn_nested(void *arg, fy_err *err)
{
    return fy_db_txn(txn_insert, arg, true, err);
}

static fy_code txn_swallow(void *arg, fy_err *err)
{
    (void)arg;
    fy_err ignored;
    fy_db_exec(&sql_bad, NULL, NULL, &ignored);
    (void)err;
    return FY_E_OK;
}

static void test_txn_commit_rollback(void **state)
{
    (void)state;
    NEED_DB();
    fy_err e;
    const char *ok[] = {"ok", "5"}, *bad[] = {"fail", "6"}, *nest[] = {"nest", "7"};
    assert_false(fy_db_in_txn());
    assert_int_equal(fy_db_txn(txn_insert, ok, false, &e), FY_E_OK);
    assert_false(fy_db_in_txn());
    assert_int_equal(get_v("ok"), 5);

    assert_int_equal(fy_db_txn(txn_insert, bad, false, &e), FY_E_BAD_REQUEST);
    assert_string_equal(e.msg, "callback refused");
    assert_false(fy_db_in_txn());
    assert_int_equal(get_v("fail"), -1);

    assert_int_equal(fy_db_txn(txn_nested, nest, false, &e), FY_E_OK);
    assert_int_equal(get_v("nest"), 7);

    /* A callback that ignores a failed statement cannot commit. */
    assert_int_equal(fy_db_txn(txn_swallow, NULL, false, &e), FY_E_DB);
    assert_false(fy_db_in_txn());
}

/* Two serializable increments that read, meet, then write: one must fail with
 * 40001 on its first attempt and succeed when retried. */
typedef struct {
    pthread_barrier_t *barrier;
    int calls;
    int done;
} incr_arg;

static fy_code txn_incr(void *arg, fy_err *err)
{
    incr_arg *a = arg;
    a->calls++;
    const char *k[] = {"ctr"};
    _cleanup_pgres_ PGresult *r = NULL;
    fy_code rc = fy_db_exec_one(&sql_read, k, &r, err);
    if (rc != FY_E_OK)
        return rc;
    long long v = fy_db_ll(r, 0, "v", 0);
    if (a->calls == 1 && a->done == 0)
        pthread_barrier_wait(a->barrier);
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", v + 1);
    const char *p[] = {"ctr", buf};
    return fy_db_exec(&sql_set, p, NULL, err);
}

static void *incr_thread(void *arg)
{
    incr_arg *a = arg;
    for (int i = 0; i < 10; i++) {
        fy_err e;
        if (fy_db_txn(txn_incr, a, true, &e) != FY_E_OK) {
            fprintf(stderr, "increment failed: %s\n", e.msg);
            break;
        }
        a->done++;
    }
    fy_db_thread_cleanup();
    return NULL;
}

static void test_serialization_retry(void **state)
{
    (void)state;
    NEED_DB();
    fy_err e;
    const char *p[] = {"ctr", "0"};
    assert_int_equal(fy_db_exec(&sql_insert, p, NULL, &e), FY_E_OK);
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, 2);
    incr_arg a1 = {.barrier = &b}, a2 = {.barrier = &b};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, incr_thread, &a1);
    pthread_create(&t2, NULL, incr_thread, &a2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_barrier_destroy(&b);
    assert_int_equal(a1.done, 10);
    assert_int_equal(a2.done, 10);
    assert_true(a1.calls + a2.calls > 20);
    assert_int_equal(get_v("ctr"), 20);
}

static void terminate(long long pid)
{
    PGconn *c = PQconnectdb(db_url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    char q[96];
    snprintf(q, sizeof(q), "SELECT pg_terminate_backend(%lld, 5000)", pid);
    PGresult *r = PQexec(c, q);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    PQfinish(c);
}

static long long my_pid(void)
{
    fy_err e;
    _cleanup_pgres_ PGresult *r = NULL;
    assert_int_equal(fy_db_exec_one(&sql_pid, NULL, &r, &e), FY_E_OK);
    return fy_db_ll(r, 0, "pid", 0);
}

static fy_code txn_killed_once(void *arg, fy_err *err)
{
    int *calls = arg;
    if (++*calls == 1)
        terminate(my_pid());
    const char *p[] = {"after-kill", "3"};
    return fy_db_exec(&sql_insert, p, NULL, err);
}

static void test_reconnect(void **state)
{
    (void)state;
    NEED_DB();
    long long pid = my_pid();
    terminate(pid);
    long long pid2 = my_pid();
    assert_true(pid2 > 0);
    assert_true(pid2 != pid);

    /* Inside a transaction the loss surfaces and the whole callback is retried. */
    int calls = 0;
    fy_err e;
    assert_int_equal(fy_db_txn(txn_killed_once, &calls, false, &e), FY_E_OK);
    assert_int_equal(calls, 2);
    assert_int_equal(get_v("after-kill"), 3);
}

static fy_code txn_with_batch(void *arg, fy_err *err)
{
    (void)arg;
    const char *p1[] = {"in-txn", "7"};
    const fy_db_op ops[] = {{&sql_insert, p1, NULL}};
    if (fy_db_batch(ops, 1, err))
        return err->code;
    return fy_fail(err, FY_E_CONFLICT, "roll it back");
}

static void test_batch(void **state)
{
    (void)state;
    NEED_DB();
    fy_err e;
    /* Results come back per statement, in order. */
    const char *pa[] = {"b1", "1"}, *pb[] = {"b2", "2"}, *pg[] = {"b2"};
    PGresult *got = NULL, *ins = NULL;
    const fy_db_op ok_ops[] = {{&sql_insert, pa, &ins}, {&sql_insert, pb, NULL}, {&sql_get, pg, &got}};
    assert_int_equal(fy_db_batch(ok_ops, 3, &e), FY_E_OK);
    assert_non_null(got);
    assert_int_equal(fy_db_affected(ins), 1);
    assert_int_equal(PQntuples(got), 1);
    assert_int_equal(fy_db_ll(got, 0, "v", -1), 2);
    PQclear(got);
    PQclear(ins);

    /* All or nothing: a failing statement undoes the ones before it and no
     * result is handed out. */
    const char *pc[] = {"b3", "3"}, *pdup[] = {"b1", "9"}, *pg3[] = {"b3"};
    got = NULL;
    const fy_db_op bad_ops[] = {{&sql_insert, pc, NULL}, {&sql_insert, pdup, NULL}, {&sql_get, pg3, &got}};
    assert_int_equal(fy_db_batch(bad_ops, 3, &e), FY_E_CONFLICT);
    assert_null(got);
    assert_int_equal(get_v("b3"), -1);
    assert_int_equal(get_v("b1"), 1);

    const fy_db_op sql_err[] = {{&sql_bad, NULL, NULL}};
    assert_int_equal(fy_db_batch(sql_err, 1, &e), FY_E_DB);
    /* The connection is usable afterwards (out of pipeline mode). */
    assert_int_equal(get_v("b2"), 2);

    /* Inside fy_db_txn() a batch is part of the transaction. */
    assert_int_equal(fy_db_txn(txn_with_batch, NULL, false, &e), FY_E_CONFLICT);
    assert_int_equal(get_v("in-txn"), -1);

    /* A connection killed while idle: the batch goes out on a new one. */
    terminate(my_pid());
    const char *pk[] = {"after-kill-batch", "5"};
    const fy_db_op kill_ops[] = {{&sql_insert, pk, NULL}};
    assert_int_equal(fy_db_batch(kill_ops, 1, &e), FY_E_OK);
    assert_int_equal(get_v("after-kill-batch"), 5);

    /* Bad arguments are refused before anything is sent. */
    const fy_db_op none[] = {{NULL, NULL, NULL}};
    assert_int_equal(fy_db_batch(none, 1, &e), FY_E_INTERNAL);
}

static long long listener_pid(void)
{
    PGconn *c = PQconnectdb(db_url);
    PGresult *r = PQexec(c, "SELECT pid FROM pg_stat_activity WHERE application_name = 'test-db-listen'");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    long long pid = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return pid;
}

static void notify(const char *payload)
{
    fy_err e;
    const char *p[] = {"ferry_test", payload};
    assert_int_equal(fy_db_exec(&sql_notify, p, NULL, &e), FY_E_OK);
}

static void test_listen_notify(void **state)
{
    (void)state;
    NEED_DB();
    fy_err e;
    fy_db_listener *l = NULL;
    assert_int_equal(fy_db_listen("ferry_test", &l, &e), FY_E_OK);
    char payload[64] = "";
    assert_false(fy_db_wait_notify(l, 50, payload, sizeof(payload)));

    notify("hello");
    assert_true(fy_db_wait_notify(l, 2000, payload, sizeof(payload)));
    assert_string_equal(payload, "hello");
    notify("one");
    notify("two");
    assert_true(fy_db_wait_notify(l, 2000, payload, sizeof(payload)));
    assert_string_equal(payload, "one");
    assert_true(fy_db_wait_notify(l, 2000, payload, sizeof(payload)));
    assert_string_equal(payload, "two");

    /* A lost listener connection reports false once, then listens again. */
    terminate(listener_pid());
    assert_false(fy_db_wait_notify(l, 500, payload, sizeof(payload)));
    notify("again");
    assert_true(fy_db_wait_notify(l, 2000, payload, sizeof(payload)));
    assert_string_equal(payload, "again");
    fy_db_listener_free(l);
}

static void test_bad_url(void **state)
{
    (void)state;
    fy_err e;
    assert_int_equal(fy_db_init("postgresql://[bad", "x", &e), FY_E_CONFIG);
    fy_db_listener_free(NULL);
}

int main(void)
{
    db_url = getenv("FERRY_TEST_DB_URL");
    if (db_url && !*db_url)
        db_url = NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exec_and_prepare_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_commit_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serialization_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test(test_bad_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
