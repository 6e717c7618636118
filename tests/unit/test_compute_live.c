/* Live migration on the agent: the convergence policy as pure functions, the
 * fake driver's model and its steps between two hosts, and the job. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "compute.h"
#include "compute_driver.h"
#include "compute_fake_priv.h"
#include "compute_mig.h"
#include "compute_sql.h"
#include "fy_cleanup.h"
#include "fy_db.h"
#include "fy_json.h"
#include "fy_util.h"

#define MIG "8c8c8c8c-1111-4222-8333-444444444444"
#define INST "9d9d9d9d-1111-4222-8333-444444444444"
#define MiB (1LL << 20)

/* ---- policy ---- */

static void test_downtime_ramp(void **state)
{
    (void)state;
    assert_int_equal(compute_lm_downtime_at(500, 10, 75, 0), 50);
    assert_int_equal(compute_lm_downtime_at(500, 10, 75, 74.9), 50);
    assert_int_equal(compute_lm_downtime_at(500, 10, 75, 75), 95);
    assert_int_equal(compute_lm_downtime_at(500, 10, 75, 5 * 75 + 1), 50 + 45 * 5);
    assert_int_equal(compute_lm_downtime_at(500, 10, 75, 10 * 75), 500);
    assert_int_equal(compute_lm_downtime_at(500, 10, 75, 1e6), 500);
    assert_int_equal(compute_lm_downtime_at(500, 10, 0, 0), 500);   /* no delay: at once */
    assert_int_equal(compute_lm_downtime_at(300, 1, 10, 0), 300);
}

static void test_timeout_action(void **state)
{
    (void)state;
    assert_int_equal(compute_lm_timeout_action(0, false, 1e9), COMPUTE_LM_ACT_NONE);
    assert_int_equal(compute_lm_timeout_action(5, false, 4.9), COMPUTE_LM_ACT_NONE);
    assert_int_equal(compute_lm_timeout_action(5, false, 5.1), COMPUTE_LM_ACT_ABORT);
    assert_int_equal(compute_lm_timeout_action(5, true, 5.1), COMPUTE_LM_ACT_FORCE);
}

static void test_stall_detection(void **state)
{
    (void)state;
    compute_lm_stall s;
    compute_lm_stall_init(&s, 0);
    assert_false(compute_lm_stall_check(&s, 1000, 0.0, 2));
    assert_false(compute_lm_stall_check(&s, 900, 1.0, 2));
    assert_false(compute_lm_stall_check(&s, 950, 2.5, 2));   /* up, but within 2 s */
    assert_true(compute_lm_stall_check(&s, 950, 3.1, 2));
    assert_false(compute_lm_stall_check(&s, 100, 3.2, 2));   /* progress resets */
    assert_false(compute_lm_stall_check(&s, 100, 100, 0));   /* 0 = never */
}

static void test_fake_model(void **state)
{
    (void)state;
    long long p, r;
    fake_lm_sim(512 * MiB, 1000, 0.0, 0, 0, &p, &r);   /* no copy time: done at once */
    assert_int_equal(r, 0);
    assert_int_equal(p, 512 * MiB);
    fake_lm_sim(512 * MiB, 1000, 1.0, 0, 50, &p, &r);   /* dirtying at bandwidth */
    assert_int_equal(r, 512 * MiB);
    fake_lm_sim(512 * MiB, 1000, 0.0, 1000, 500, &p, &r);
    assert_true(r > 255 * MiB && r < 257 * MiB);
    fake_lm_sim(512 * MiB, 1000, 0.5, 1000, 1000, &p, &r);   /* half the net speed */
    assert_true(r > 255 * MiB && r < 257 * MiB);
    assert_int_equal(fake_lm_copy_ms(125000, 1000), 1);
    assert_int_equal(fake_lm_copy_ms(0, 1000), 0);
}

/* ---- driver steps ---- */

typedef struct fixture {
    char dir[64];
    compute_driver *src, *dst;
    json_t *flavor, *vifs, *vols, *md;
    bool shared;
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int make_hosts(void **state, bool shared)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/ferry-live-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    f->shared = shared;
    _cleanup_free_ char *ia = fy_strdup_printf("%s/a/instances", f->dir);
    _cleanup_free_ char *ib = shared ? fy_strdup_printf("%s/a/instances", f->dir)
                                     : fy_strdup_printf("%s/b/instances", f->dir);
    _cleanup_free_ char *sa = fy_strdup_printf("%s/a", f->dir);
    _cleanup_free_ char *sb = fy_strdup_printf("%s/b", f->dir);
    compute_driver_conf ca = {.instances_path = ia, .state_dir = sa};
    compute_driver_conf cb = {.instances_path = ib, .state_dir = sb};
    fy_err err = {0};
    if (compute_driver_new("fake", &ca, &f->src, &err) ||
        compute_driver_new("fake", &cb, &f->dst, &err))
        return -1;
    f->flavor = json_pack("{s:s, s:i, s:i, s:i}", "flavorid", "1", "vcpus", 1, "memory_mb", 64,
                          "root_gb", 1);
    f->vifs = json_pack("[{s:s, s:s}]", "port_id", "9f0e7c1a-1111-4222-8333-444444444444",
                        "mac_address", "fa:16:3e:00:00:01");
    f->vols = json_array();
    f->md = json_object();
    compute_spawn_spec sp = {.uuid = INST, .instance_id = 7, .flavor = f->flavor, .root_gb = 1,
                             .vifs = f->vifs};
    json_t *info = NULL;
    if (f->src->ops->spawn(f->src, &sp, &info, &err))
        return -1;
    json_decref(info);
    *state = f;
    return 0;
}

static int setup_local(void **state)
{
    return make_hosts(state, false);
}

static int setup_shared(void **state)
{
    return make_hosts(state, true);
}

static int teardown(void **state)
{
    fixture *f = *state;
    compute_driver_free(f->src);
    compute_driver_free(f->dst);
    json_decref(f->flavor);
    json_decref(f->vifs);
    json_decref(f->vols);
    json_decref(f->md);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static compute_mig_spec spec_of(const fixture *f, const char *block)
{
    return (compute_mig_spec){
        .migration_uuid = MIG, .uuid = INST, .instance_id = 7, .flavor = f->flavor,
        .image_id = NULL, .vifs = f->vifs, .volumes = f->vols, .migrate_data = f->md,
        .block_migration = block, .destroy_disks = true, .host = "host", .power_on = true,
        .host_memory_mb = 4096, .disk_available_mb = 100000,
    };
}

/* Runs the destination check and the source check; md accumulates. */
static fy_code checks(fixture *f, const char *block, fy_err *err)
{
    compute_mig_spec s = spec_of(f, block);
    json_t *md = NULL;
    assert_int_equal(f->dst->ops->check_can_live_migrate_destination(f->dst, &s, &md, err),
                     FY_E_OK);
    json_object_update(f->md, md);
    json_decref(md);
    fy_code rc = f->src->ops->check_can_live_migrate_source(f->src, &s, &md, err);
    if (rc == FY_E_OK) {
        json_object_update(f->md, md);
        json_decref(md);
    }
    return rc;
}

static void test_local_storage_needs_block(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    assert_int_equal(checks(f, "false", &err), FY_E_MIGRATION_PRECHECK);
    assert_non_null(strstr(err.msg, "is not on shared storage"));
    assert_int_equal(checks(f, "auto", &err), FY_E_OK);
    assert_true(json_is_true(json_object_get(f->md, "block_migration")));
    assert_true(json_is_false(json_object_get(f->md, "is_shared_instance_path")));

    compute_mig_spec s = spec_of(f, "true");
    _cleanup_free_ char *test = fy_strdup_printf(
        "%s/b/instances/%s", f->dir, fy_json_str(f->md, "shared_test_file"));
    assert_int_equal(access(test, F_OK), 0);
    assert_int_equal(f->dst->ops->check_can_live_migrate_destination_cleanup(f->dst, &s, &err),
                     FY_E_OK);
    assert_int_equal(access(test, F_OK), -1);
}

static void test_shared_storage_refuses_block(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    assert_int_equal(checks(f, "true", &err), FY_E_MIGRATION_PRECHECK);
    assert_non_null(strstr(err.msg, "is not on local storage"));
    assert_int_equal(checks(f, "auto", &err), FY_E_OK);
    assert_true(json_is_true(json_object_get(f->md, "is_shared_instance_path")));
    assert_true(json_is_false(json_object_get(f->md, "block_migration")));
}

/* Booted from a volume: no image and an empty local disk (flavor root_gb 0).
 * Once the source agent decided it is volume-backed (migrate_data, as Nova's
 * manager does from block_device_info) it needs neither shared storage nor
 * block migration; a guest with a local root disk still does. */
#define INST_VB "9d9d9d9d-5555-4666-8777-888888888888"

static fy_code source_check(fixture *f, compute_mig_spec *s, fy_err *err)
{
    json_t *md = NULL;
    assert_int_equal(f->dst->ops->check_can_live_migrate_destination(f->dst, s, &md, err),
                     FY_E_OK);
    json_object_update(f->md, md);
    json_decref(md);
    fy_code rc = f->src->ops->check_can_live_migrate_source(f->src, s, &md, err);
    if (rc == FY_E_OK) {
        json_object_update(f->md, md);
        json_decref(md);
    }
    return rc;
}

static void test_volume_backed_needs_no_block(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    json_auto_t *flavor0 = json_pack("{s:s, s:i, s:i, s:i}", "flavorid", "0", "vcpus", 1,
                                     "memory_mb", 64, "root_gb", 0);
    compute_spawn_spec sp = {.uuid = INST_VB, .instance_id = 8, .flavor = flavor0, .root_gb = 0,
                             .vifs = f->vifs};
    json_t *info = NULL;
    assert_int_equal(f->src->ops->spawn(f->src, &sp, &info, &err), FY_E_OK);
    json_decref(info);
    compute_mig_spec s = spec_of(f, "false");
    s.uuid = INST_VB;
    s.flavor = flavor0;

    /* Not decided volume-backed (no mapping): the local disk must be copied. */
    json_object_set_new(f->md, "is_volume_backed", json_false());
    assert_int_equal(source_check(f, &s, &err), FY_E_MIGRATION_PRECHECK);
    assert_non_null(strstr(err.msg, "is not on shared storage"));

    json_object_set_new(f->md, "is_volume_backed", json_true());
    assert_int_equal(source_check(f, &s, &err), FY_E_OK);
    assert_true(json_is_false(json_object_get(f->md, "block_migration")));
    assert_true(json_is_true(json_object_get(f->md, "is_volume_backed")));
    assert_true(json_is_true(json_object_get(f->md, "is_shared_block_storage")));
    assert_true(json_is_false(json_object_get(f->md, "is_shared_instance_path")));
    s.block_migration = "auto";
    json_object_del(f->md, "block_migration");
    assert_int_equal(source_check(f, &s, &err), FY_E_OK);
    assert_true(json_is_false(json_object_get(f->md, "block_migration")));
    /* Block migration stays allowed: the caller asked for it. */
    s.block_migration = "true";
    assert_int_equal(source_check(f, &s, &err), FY_E_OK);
    assert_true(json_is_true(json_object_get(f->md, "block_migration")));

    /* A guest whose root disk is local is refused even if called volume-backed. */
    compute_mig_spec local = spec_of(f, "false");
    assert_int_equal(source_check(f, &local, &err), FY_E_MIGRATION_PRECHECK);
}

static void test_dest_lacks_memory(void **state)
{
    fixture *f = *state;
    compute_mig_spec s = spec_of(f, "auto");
    s.host_memory_mb = 32;
    json_t *md = NULL;
    fy_err err = {0};
    assert_int_equal(f->dst->ops->check_can_live_migrate_destination(f->dst, &s, &md, &err),
                     FY_E_MIGRATION_PRECHECK);
    assert_non_null(strstr(err.msg, "Lack of memory"));
}

static compute_lm_stats wait_end(compute_driver *d, compute_lm_job *j)
{
    compute_lm_stats st = {0};
    fy_err err = {0};
    for (int i = 0; i < 500; i++) {
        assert_int_equal(d->ops->live_migration_stats(d, j, &st, &err), FY_E_OK);
        if (st.state != COMPUTE_LM_RUNNING)
            break;
        usleep(10000);
    }
    return st;
}

static void test_shared_flow_moves_guest(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    assert_int_equal(checks(f, "auto", &err), FY_E_OK);
    compute_mig_spec s = spec_of(f, "false");
    json_t *md = NULL, *list = NULL, *info = NULL;
    assert_int_equal(f->dst->ops->pre_live_migration(f->dst, &s, &md, &err), FY_E_OK);
    json_decref(md);
    /* Incoming: defined but not a guest of the destination yet. */
    assert_int_equal(f->dst->ops->list(f->dst, &list, &err), FY_E_OK);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);

    compute_lm_params p = {.max_downtime_ms = 500, .fake_bandwidth_mbps = 1000};
    compute_lm_job *j = NULL;
    uint64_t t0 = fy_now_us();
    assert_int_equal(f->src->ops->live_migration_start(f->src, &s, &p, &j, &err), FY_E_OK);
    compute_lm_stats st = wait_end(f->src, j);
    assert_true(fy_now_us() - t0 < 20000);
    assert_int_equal(st.state, COMPUTE_LM_COMPLETED);
    assert_int_equal(st.memory_total, 64 * MiB);
    assert_int_equal(st.memory_remaining, 0);
    f->src->ops->live_migration_release(f->src, j);

    assert_int_equal(f->dst->ops->post_live_migration_at_destination(f->dst, &s, &info, &err),
                     FY_E_OK);
    assert_int_equal(json_integer_value(json_object_get(info, "power_state")),
                     COMPUTE_POWER_RUNNING);
    json_decref(info);
    s.destroy_disks = false;
    assert_int_equal(f->src->ops->post_live_migration_source(f->src, &s, &err), FY_E_OK);
    assert_int_equal(f->src->ops->get_info(f->src, INST, &info, &err), FY_E_NOT_FOUND);
    /* The shared disk stays: it is the destination's guest's disk. */
    assert_int_equal(f->dst->ops->get_info(f->dst, INST, &info, &err), FY_E_OK);
    assert_int_equal(json_integer_value(json_object_get(info, "disk_size")), 1LL << 30);
    json_decref(info);
}

static void test_dirty_guest_needs_force(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    compute_mig_spec s = spec_of(f, "false");
    json_object_set_new(f->md, "is_shared_instance_path", json_true());
    compute_lm_params p = {.max_downtime_ms = 50, .fake_bandwidth_mbps = 1000,
                           .fake_dirty_rate = 1.0};
    compute_lm_job *j = NULL;
    assert_int_equal(f->src->ops->live_migration_start(f->src, &s, &p, &j, &err), FY_E_OK);
    compute_lm_stats st = {0};
    usleep(30000);
    assert_int_equal(f->src->ops->live_migration_stats(f->src, j, &st, &err), FY_E_OK);
    assert_int_equal(st.state, COMPUTE_LM_RUNNING);
    assert_int_equal(st.memory_remaining, 64 * MiB);
    /* A larger allowed downtime lets it converge: 64 MiB at 1000 Mbit/s ~ 537 ms. */
    assert_int_equal(f->src->ops->live_migration_set_max_downtime(f->src, j, 600, &err), FY_E_OK);
    st = wait_end(f->src, j);
    assert_int_equal(st.state, COMPUTE_LM_COMPLETED);
    assert_true(st.downtime_ms > 500 && st.downtime_ms <= 600);
    f->src->ops->live_migration_release(f->src, j);

    assert_int_equal(f->src->ops->live_migration_start(f->src, &s, &p, &j, &err), FY_E_OK);
    assert_int_equal(f->src->ops->live_migration_force_complete(f->src, j, &err), FY_E_OK);
    st = wait_end(f->src, j);
    assert_int_equal(st.state, COMPUTE_LM_COMPLETED);
    f->src->ops->live_migration_release(f->src, j);

    assert_int_equal(f->src->ops->live_migration_start(f->src, &s, &p, &j, &err), FY_E_OK);
    assert_int_equal(f->src->ops->live_migration_abort(f->src, j, &err), FY_E_OK);
    st = wait_end(f->src, j);
    assert_int_equal(st.state, COMPUTE_LM_CANCELLED);
    assert_int_equal(f->src->ops->live_migration_abort(f->src, j, &err), FY_E_CONFLICT);
    f->src->ops->live_migration_release(f->src, j);
    /* Aborted: the guest still runs on the source. */
    json_t *info = NULL;
    assert_int_equal(f->src->ops->get_info(f->src, INST, &info, &err), FY_E_OK);
    assert_int_equal(json_integer_value(json_object_get(info, "power_state")),
                     COMPUTE_POWER_RUNNING);
    json_decref(info);

    p.fail_half_way = true;
    p.fake_dirty_rate = 0;
    assert_int_equal(f->src->ops->live_migration_start(f->src, &s, &p, &j, &err), FY_E_OK);
    st = wait_end(f->src, j);
    assert_int_equal(st.state, COMPUTE_LM_FAILED);
    assert_string_equal(st.error.msg, "injected fault at live_migration_job");
    f->src->ops->live_migration_release(f->src, j);
}

static void test_rollback_at_destination(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    assert_int_equal(checks(f, "auto", &err), FY_E_OK);
    compute_mig_spec s = spec_of(f, "true");
    json_t *md = NULL, *info = NULL;
    assert_int_equal(f->dst->ops->pre_live_migration(f->dst, &s, &md, &err), FY_E_OK);
    json_decref(md);
    _cleanup_free_ char *dir = fy_strdup_printf("%s/b/instances/%s", f->dir, INST);
    _cleanup_free_ char *disk = fy_strdup_printf("%s/disk", dir);
    assert_int_equal(access(disk, F_OK), 0);   /* block migration: an empty disk waits */
    assert_int_equal(f->dst->ops->rollback_live_migration_at_destination(f->dst, &s, &err),
                     FY_E_OK);
    assert_int_equal(access(dir, F_OK), -1);
    assert_int_equal(f->dst->ops->get_info(f->dst, INST, &info, &err), FY_E_NOT_FOUND);
    /* The source is untouched. */
    assert_int_equal(f->src->ops->get_info(f->src, INST, &info, &err), FY_E_OK);
    json_decref(info);
}

/* ---- the job, with the database ---- */

static void test_job_records_end(void **state)
{
    fixture *f = *state;
    const char *url = getenv("FERRY_TEST_DB_URL");
    if (!url)
        skip();
    fy_err err = {0};
    assert_int_equal(fy_db_init(url, "test_compute_live", &err), FY_E_OK);
    assert_int_equal(fy_schema_sync(&err), FY_E_OK);
    compute_config cfg = {.host = "hostA", .service_secret = "x",
                          .live_migration_timeout_action = "abort",
                          .live_migration_downtime_ms = 500,
                          .live_migration_downtime_steps = 10,
                          .live_migration_downtime_delay_s = 75,
                          .live_migration_completion_timeout_s = 1,
                          .fake_bandwidth_mbps = 1000};
    compute_settings_init(&cfg);
    compute_ctx ctx = {.cfg = &cfg, .driver = f->src};
    json_object_set_new(f->md, "is_shared_instance_path", json_true());
    compute_mig_spec s = spec_of(f, "false");
    char mig[FY_UUID_LEN + 1];
    fy_uuid_v4(mig);
    s.migration_uuid = mig;
    assert_int_equal(compute_live_job_start(&ctx, &s, &err), FY_E_OK);
    const char *st = NULL;
    for (int i = 0; i < 200; i++) {
        assert_int_equal(compute_live_job_abort(mig, &st, &err), FY_E_OK);
        if (strcmp(st, "running") != 0)
            break;
        usleep(5000);
    }
    /* (The abort above may land first; either end is recorded.) */
    assert_true(!strcmp(st, "completed") || !strcmp(st, "cancelled"));
    /* A second start does not run the job again. */
    assert_int_equal(compute_live_job_start(&ctx, &s, &err), FY_E_OK);

    /* Dirtying at bandwidth never converges: the completion timeout aborts. */
    json_t *set = json_pack("{s:f}", "fake_dirty_rate", 2.0);
    assert_int_equal(compute_settings_apply(set, &err), FY_E_OK);
    json_decref(set);
    fy_uuid_v4(mig);
    uint64_t t0 = fy_now_ms();
    assert_int_equal(compute_live_job_start(&ctx, &s, &err), FY_E_OK);
    char *end = NULL;
    while (!end && fy_now_ms() - t0 < 5000) {
        usleep(20000);
        const char *params[] = {mig, "live_migration"};
        _cleanup_pgres_ PGresult *res = NULL;
        assert_int_equal(fy_db_exec(&compute_sql_job_get, params, &res, &err), FY_E_OK);
        if (PQntuples(res) == 1 && !fy_streq(fy_db_str(res, 0, "state"), "running"))
            end = strdup(fy_db_str(res, 0, "error_code"));
    }
    assert_non_null(end);
    assert_string_equal(end, "TIMEOUT");
    free(end);
    assert_true(fy_now_ms() - t0 >= 1000);
    compute_live_job_shutdown();
    fy_err_clear(&err);
    assert_int_equal(compute_live_job_abort(mig, &st, &err), FY_E_OK);
    assert_string_equal(st, "failed");
    fy_db_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_downtime_ramp),
        cmocka_unit_test(test_timeout_action),
        cmocka_unit_test(test_stall_detection),
        cmocka_unit_test(test_fake_model),
        cmocka_unit_test_setup_teardown(test_local_storage_needs_block, setup_local, teardown),
        cmocka_unit_test_setup_teardown(test_shared_storage_refuses_block, setup_shared,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dest_lacks_memory, setup_local, teardown),
        cmocka_unit_test_setup_teardown(test_volume_backed_needs_no_block, setup_local, teardown),
        cmocka_unit_test_setup_teardown(test_shared_flow_moves_guest, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_dirty_guest_needs_force, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_at_destination, setup_local, teardown),
        cmocka_unit_test_setup_teardown(test_job_records_end, setup_shared, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
