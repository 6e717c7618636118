/* Scheduler claims and selection against a real PostgreSQL (FERRY_TEST_DB_URL). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fy_db.h"
#include "fy_util.h"
#include "../../scheduler-svc/sched.h"

static const char *db_url;

static const fy_sql sql_service = {
    "t_sched_service",
    "INSERT INTO services (uuid, host, \"binary\", url, zone, disabled, last_seen_up)"
    " VALUES (gen_random_uuid(), $1, 'ferry-compute', 'http://127.0.0.1:1/' || $1, $2,"
    " $3::boolean, now() - make_interval(secs => $4::float8)) RETURNING id",
    4,
};
static const fy_sql sql_node = {
    "t_sched_node",
    "INSERT INTO compute_nodes (uuid, service_id, host, hypervisor_hostname, hypervisor_type,"
    " hypervisor_version, vcpus, memory_mb, local_gb, cpu_allocation_ratio,"
    " ram_allocation_ratio, disk_allocation_ratio)"
    " VALUES (gen_random_uuid(), $1::int, $2, $2, 'fake', 1, $3::int, $4::int, $5::int,"
    " 1.0, 1.0, 1.0) RETURNING id",
    5,
};
static const fy_sql sql_usage = {
    "t_sched_usage",
    "SELECT vcpus_used, memory_mb_used, local_gb_used,"
    " (SELECT count(*) FROM allocations a WHERE a.node_id = cn.id) AS nalloc,"
    " (SELECT coalesce(sum(vcpus), 0) FROM allocations a WHERE a.node_id = cn.id) AS alloc_vcpus"
    " FROM compute_nodes cn WHERE host = $1",
    1,
};
static const fy_sql sql_alloc = {
    "t_sched_alloc",
    "SELECT a.vcpus, a.memory_mb, a.disk_gb FROM allocations a"
    " JOIN compute_nodes cn ON cn.id = a.node_id WHERE a.consumer_uuid = $1::uuid AND cn.host = $2",
    2,
};

#define NEED_DB() do { if (!db_url) skip(); } while (0)

static int group_setup(void **state)
{
    (void)state;
    if (!db_url)
        return 0;
    fy_err e;
    assert_int_equal(fy_db_init(db_url, "test-sched", &e), FY_E_OK);
    assert_int_equal(fy_db_exec_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public;", &e),
                     FY_E_OK);
    assert_int_equal(fy_schema_sync(&e), FY_E_OK);
    return 0;
}

static int group_teardown(void **state)
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
    assert_int_equal(fy_db_exec_script("DELETE FROM allocations; DELETE FROM compute_nodes;"
                                       " DELETE FROM services;", &e), FY_E_OK);
    return 0;
}

typedef struct host_spec {
    const char *zone;
    bool disabled;
    int age_s;
    int vcpus, memory_mb, disk_gb;
} host_spec;

static int add_host(const char *name, host_spec s)
{
    fy_err e;
    char dis[8], age[16], v[16], m[16], d[16], sid[16];
    snprintf(dis, sizeof dis, "%s", s.disabled ? "true" : "false");
    snprintf(age, sizeof age, "%d", s.age_s);
    snprintf(v, sizeof v, "%d", s.vcpus);
    snprintf(m, sizeof m, "%d", s.memory_mb);
    snprintf(d, sizeof d, "%d", s.disk_gb);
    const char *sp[] = { name, s.zone ? s.zone : "nova", dis, age };
    _cleanup_pgres_ PGresult *r1 = NULL;
    assert_int_equal(fy_db_exec_one(&sql_service, sp, &r1, &e), FY_E_OK);
    snprintf(sid, sizeof sid, "%s", fy_db_str(r1, 0, "id"));
    const char *np[] = { sid, name, v, m, d };
    _cleanup_pgres_ PGresult *r2 = NULL;
    assert_int_equal(fy_db_exec_one(&sql_node, np, &r2, &e), FY_E_OK);
    return (int)fy_db_ll(r2, 0, "id", -1);
}

static int add_simple(const char *name, int vcpus, int mem, int disk)
{
    return add_host(name, (host_spec){ .vcpus = vcpus, .memory_mb = mem, .disk_gb = disk });
}

typedef struct usage {
    long long vcpus, mem, disk, nalloc, alloc_vcpus;
} usage;

static usage get_usage(const char *host)
{
    fy_err e;
    const char *p[] = { host };
    _cleanup_pgres_ PGresult *r = NULL;
    usage u = { -1, -1, -1, -1, -1 };
    if (fy_db_exec_one(&sql_usage, p, &r, &e) != FY_E_OK)
        return u;
    u.vcpus = fy_db_ll(r, 0, "vcpus_used", -1);
    u.mem = fy_db_ll(r, 0, "memory_mb_used", -1);
    u.disk = fy_db_ll(r, 0, "local_gb_used", -1);
    u.nalloc = fy_db_ll(r, 0, "nalloc", -1);
    u.alloc_vcpus = fy_db_ll(r, 0, "alloc_vcpus", -1);
    return u;
}

static long long alloc_vcpus(const char *consumer, const char *host)
{
    fy_err e;
    const char *p[] = { consumer, host };
    _cleanup_pgres_ PGresult *r = NULL;
    if (fy_db_exec(&sql_alloc, p, &r, &e) != FY_E_OK || PQntuples(r) != 1)
        return -1;
    return fy_db_ll(r, 0, "vcpus", -1);
}

static const sched_resources one = { 1, 512, 1 };

/* ---- racing claims ---- */

#define RACERS 20
#define ROOM 10

typedef struct racer {
    pthread_barrier_t *start;
    int node_id;
    char consumer[FY_UUID_LEN + 1];
    fy_code rc;
} racer;

static void *race_claim(void *arg)
{
    racer *r = arg;
    fy_err e = { 0 };
    pthread_barrier_wait(r->start);
    r->rc = sched_claim(r->consumer, NULL, r->node_id, &one, NULL, &e);
    fy_db_thread_cleanup();
    return NULL;
}

typedef struct sampler {
    volatile bool stop;
    long long max_vcpus;
    int samples;
} sampler;

/* Watches the node while the claims race: usage must never pass the room. */
static void *sample_usage(void *arg)
{
    sampler *s = arg;
    while (!s->stop) {
        usage u = get_usage("race1");
        if (u.vcpus > s->max_vcpus)
            s->max_vcpus = u.vcpus;
        s->samples++;
    }
    fy_db_thread_cleanup();
    return NULL;
}

static void test_racing_claims(void **state)
{
    (void)state;
    NEED_DB();
    int node = add_simple("race1", ROOM, ROOM * 512, ROOM);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, RACERS);
    racer rs[RACERS];
    pthread_t th[RACERS], samp;
    sampler s = { 0 };
    assert_int_equal(pthread_create(&samp, NULL, sample_usage, &s), 0);
    for (int i = 0; i < RACERS; i++) {
        rs[i] = (racer){ .start = &start, .node_id = node };
        fy_uuid_v4(rs[i].consumer);
        assert_int_equal(pthread_create(&th[i], NULL, race_claim, &rs[i]), 0);
    }
    int ok = 0, conflict = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        ok += rs[i].rc == FY_E_OK;
        conflict += rs[i].rc == FY_E_CONFLICT;
    }
    s.stop = true;
    pthread_join(samp, NULL);
    pthread_barrier_destroy(&start);

    assert_int_equal(ok, ROOM);
    assert_int_equal(conflict, RACERS - ROOM);
    assert_true(s.max_vcpus <= ROOM);
    usage u = get_usage("race1");
    assert_int_equal(u.vcpus, ROOM);
    assert_int_equal(u.mem, ROOM * 512);
    assert_int_equal(u.disk, ROOM);
    assert_int_equal(u.nalloc, ROOM);
    assert_int_equal(u.alloc_vcpus, ROOM);
}

/* ---- idempotency ---- */

static void test_claim_twice_counts_once(void **state)
{
    (void)state;
    NEED_DB();
    int node = add_simple("idem1", 4, 4096, 40);
    char c[FY_UUID_LEN + 1];
    fy_uuid_v4(c);
    fy_err e;
    bool existing = true;
    assert_int_equal(sched_claim(c, NULL, node, &one, &existing, &e), FY_E_OK);
    assert_false(existing);
    assert_int_equal(sched_claim(c, NULL, node, &one, &existing, &e), FY_E_OK);
    assert_true(existing);
    usage u = get_usage("idem1");
    assert_int_equal(u.vcpus, 1);
    assert_int_equal(u.nalloc, 1);

    sched_resources big = { 5, 1, 1 };
    char c2[FY_UUID_LEN + 1];
    fy_uuid_v4(c2);
    assert_int_equal(sched_claim(c2, NULL, node, &big, NULL, &e), FY_E_CONFLICT);
    u = get_usage("idem1");
    assert_int_equal(u.vcpus, 1);
    assert_int_equal(u.nalloc, 1);    /* the lost claim left no allocation */

    assert_int_equal(sched_claim("not-a-uuid", NULL, node, &one, NULL, &e), FY_E_BAD_REQUEST);
}

static void test_release_idempotent(void **state)
{
    (void)state;
    NEED_DB();
    int n1 = add_simple("rel1", 4, 4096, 40), n2 = add_simple("rel2", 4, 4096, 40);
    char c[FY_UUID_LEN + 1];
    fy_uuid_v4(c);
    fy_err e;
    assert_int_equal(sched_claim(c, NULL, n1, &one, NULL, &e), FY_E_OK);
    assert_int_equal(sched_claim(c, NULL, n2, &one, NULL, &e), FY_E_OK);

    long nodes = -1;
    assert_int_equal(sched_release(c, "rel2", &nodes, &e), FY_E_OK);
    assert_int_equal(nodes, 1);
    assert_int_equal(get_usage("rel1").vcpus, 1);
    assert_int_equal(get_usage("rel2").vcpus, 0);
    assert_int_equal(sched_release(c, "rel2", &nodes, &e), FY_E_OK);
    assert_int_equal(nodes, 0);
    assert_int_equal(sched_release(c, "no-such-host", &nodes, &e), FY_E_OK);
    assert_int_equal(nodes, 0);

    assert_int_equal(sched_release(c, NULL, &nodes, &e), FY_E_OK);
    assert_int_equal(nodes, 1);
    assert_int_equal(sched_release(c, NULL, &nodes, &e), FY_E_OK);
    assert_int_equal(nodes, 0);
    usage u = get_usage("rel1");
    assert_int_equal(u.vcpus, 0);
    assert_int_equal(u.mem, 0);
    assert_int_equal(u.disk, 0);
    assert_int_equal(u.nalloc, 0);
}

static void test_move_idempotent_and_merges(void **state)
{
    (void)state;
    NEED_DB();
    int node = add_simple("mv1", 8, 8192, 80);
    char inst[FY_UUID_LEN + 1], mig[FY_UUID_LEN + 1];
    fy_uuid_v4(inst);
    fy_uuid_v4(mig);
    fy_err e;
    sched_resources two = { 2, 1024, 2 };
    assert_int_equal(sched_claim(inst, NULL, node, &two, NULL, &e), FY_E_OK);

    long moved = -1;
    assert_int_equal(sched_move(inst, mig, "mv1", &moved, &e), FY_E_OK);
    assert_int_equal(moved, 1);
    assert_int_equal(alloc_vcpus(mig, "mv1"), 2);
    assert_int_equal(alloc_vcpus(inst, "mv1"), -1);
    assert_int_equal(get_usage("mv1").vcpus, 2);
    assert_int_equal(sched_move(inst, mig, "mv1", &moved, &e), FY_E_OK);
    assert_int_equal(moved, 0);
    assert_int_equal(alloc_vcpus(mig, "mv1"), 2);

    /* to_consumer already holds some: the amounts add up. */
    assert_int_equal(sched_claim(inst, NULL, node, &one, NULL, &e), FY_E_OK);
    assert_int_equal(sched_move(inst, mig, NULL, &moved, &e), FY_E_OK);
    assert_int_equal(moved, 1);
    assert_int_equal(alloc_vcpus(mig, "mv1"), 3);
    usage u = get_usage("mv1");
    assert_int_equal(u.vcpus, 3);
    assert_int_equal(u.nalloc, 1);

    assert_int_equal(sched_move(mig, mig, "mv1", &moved, &e), FY_E_BAD_REQUEST);
}

/* ---- select_destinations ---- */

static const sched_policy spread = { SCHED_WEIGH_SPREAD, 64, 60 };

static void test_select_filters_and_weighs(void **state)
{
    (void)state;
    NEED_DB();
    add_simple("s-small", 8, 2048, 100);
    add_simple("s-big", 8, 16384, 100);
    add_simple("s-mid", 8, 8192, 100);
    add_host("s-down", (host_spec){ .vcpus = 64, .memory_mb = 65536, .disk_gb = 1000, .age_s = 600 });
    add_host("s-off", (host_spec){ .vcpus = 64, .memory_mb = 65536, .disk_gb = 1000, .disabled = true });
    add_host("s-az2", (host_spec){ .zone = "az2", .vcpus = 64, .memory_mb = 32768, .disk_gb = 1000 });

    char c[FY_UUID_LEN + 1];
    fy_uuid_v4(c);
    fy_err e;
    sched_request req = { .consumer_uuid = c, .res = { 1, 1024, 1 }, .availability_zone = "nova",
                          .num_alternates = 5, .claim = true };
    sched_result r = { 0 };
    assert_int_equal(sched_select_destinations(&spread, &req, &r, &e), FY_E_OK);
    assert_string_equal(r.hosts.hosts[r.chosen].host, "s-big");
    assert_true(r.claimed);
    assert_int_equal(r.n_alt, 2);
    assert_string_equal(r.hosts.hosts[r.alt_start].host, "s-mid");
    assert_string_equal(r.hosts.hosts[r.alt_start + 1].host, "s-small");
    sched_result_clear(&r);
    assert_int_equal(get_usage("s-big").mem, 1024);

    sched_policy pack = spread;
    pack.weigher = SCHED_WEIGH_PACK;
    req.claim = false;
    req.num_alternates = 0;
    assert_int_equal(sched_select_destinations(&pack, &req, &r, &e), FY_E_OK);
    assert_string_equal(r.hosts.hosts[r.chosen].host, "s-small");
    assert_false(r.claimed);
    assert_int_equal(r.n_alt, 0);
    sched_result_clear(&r);

    const char *ignore[] = { "s-big" };
    req.ignore_hosts = ignore;
    req.n_ignore_hosts = 1;
    assert_int_equal(sched_select_destinations(&spread, &req, &r, &e), FY_E_OK);
    assert_string_equal(r.hosts.hosts[r.chosen].host, "s-mid");
    sched_result_clear(&r);

    req.n_ignore_hosts = 0;
    req.availability_zone = NULL;
    assert_int_equal(sched_select_destinations(&spread, &req, &r, &e), FY_E_OK);
    assert_string_equal(r.hosts.hosts[r.chosen].host, "s-az2");
    sched_result_clear(&r);

    req.force_host = "s-small";
    assert_int_equal(sched_select_destinations(&spread, &req, &r, &e), FY_E_OK);
    assert_string_equal(r.hosts.hosts[r.chosen].host, "s-small");
    assert_int_equal(r.hosts.n, 1);
    sched_result_clear(&r);

    req.force_host = "s-down";
    assert_int_equal(sched_select_destinations(&spread, &req, &r, &e), FY_E_NO_VALID_HOST);
    assert_string_equal(e.msg, "No valid host was found. There are not enough hosts available.");
    req.force_host = NULL;
    req.res.memory_mb = 40000;
    assert_int_equal(sched_select_destinations(&spread, &req, &r, &e), FY_E_NO_VALID_HOST);
}

typedef struct selector {
    pthread_barrier_t *start;
    char consumer[FY_UUID_LEN + 1];
    fy_code rc;
    int lost;
} selector;

static void *race_select(void *arg)
{
    selector *s = arg;
    fy_err e = { 0 };
    sched_request req = { .consumer_uuid = s->consumer, .res = { 1, 512, 1 }, .claim = true };
    sched_result r = { 0 };
    pthread_barrier_wait(s->start);
    s->rc = sched_select_destinations(&spread, &req, &r, &e);
    s->lost = r.lost_races;
    sched_result_clear(&r);
    fy_db_thread_cleanup();
    return NULL;
}

/* Three hosts with room for 10 in all, 20 concurrent requests: lost races fall
 * through to the next host and exactly the room is handed out. */
static void test_racing_selects(void **state)
{
    (void)state;
    NEED_DB();
    add_simple("rs1", 4, 4 * 512, 4);
    add_simple("rs2", 3, 3 * 512, 3);
    add_simple("rs3", 3, 3 * 512, 3);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, RACERS);
    selector ss[RACERS];
    pthread_t th[RACERS];
    for (int i = 0; i < RACERS; i++) {
        ss[i] = (selector){ .start = &start };
        fy_uuid_v4(ss[i].consumer);
        assert_int_equal(pthread_create(&th[i], NULL, race_select, &ss[i]), 0);
    }
    int ok = 0, none = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        ok += ss[i].rc == FY_E_OK;
        none += ss[i].rc == FY_E_NO_VALID_HOST;
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(ok, ROOM);
    assert_int_equal(none, RACERS - ROOM);
    assert_int_equal(get_usage("rs1").vcpus, 4);
    assert_int_equal(get_usage("rs2").vcpus, 3);
    assert_int_equal(get_usage("rs3").vcpus, 3);
}

int main(void)
{
    db_url = getenv("FERRY_TEST_DB_URL");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_racing_claims, clean),
        cmocka_unit_test_setup(test_claim_twice_counts_once, clean),
        cmocka_unit_test_setup(test_release_idempotent, clean),
        cmocka_unit_test_setup(test_move_idempotent_and_merges, clean),
        cmocka_unit_test_setup(test_select_filters_and_weighs, clean),
        cmocka_unit_test_setup(test_racing_selects, clean),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
