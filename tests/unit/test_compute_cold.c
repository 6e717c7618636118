/* Cold migration / resize with the fake driver: two hosts, the disk pushed to
 * the destination's in-process transfer endpoint; confirm and revert. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "compute.h"
#include "compute_driver.h"
#include "compute_fault.h"
#include "compute_mig.h"
#include "fy_cleanup.h"
#include "fy_httpc.h"
#include "fy_httpd.h"
#include "fy_json.h"
#include "fy_util.h"

#define MIG "abababab-1111-4222-8333-444444444444"
#define INST "cdcdcdcd-1111-4222-8333-444444444444"
#define SECRET "cold-secret"
#define GiB (1LL << 30)

typedef struct fixture {
    char dir[64];
    char ia[128], ib[128], sa[128], sb[128], url[64];
    compute_driver *src, *dst;
    compute_config cfg;
    compute_ctx ctx;
    fy_httpd *httpd;
    json_t *old_flavor, *new_flavor, *vifs, *vols, *md;
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/ferry-cold-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->sa, sizeof(f->sa), "%s/a", f->dir);
    snprintf(f->sb, sizeof(f->sb), "%s/b", f->dir);
    snprintf(f->ia, sizeof(f->ia), "%s/a/instances", f->dir);
    snprintf(f->ib, sizeof(f->ib), "%s/b/instances", f->dir);
    compute_driver_conf ca = {.instances_path = f->ia, .state_dir = f->sa};
    compute_driver_conf cb = {.instances_path = f->ib, .state_dir = f->sb};
    fy_err err = {0};
    if (compute_driver_new("fake", &ca, &f->src, &err) ||
        compute_driver_new("fake", &cb, &f->dst, &err))
        return -1;
    f->cfg = (compute_config){.host = "hostB", .state_dir = f->sb, .instances_path = f->ib,
                              .service_secret = SECRET};
    f->ctx = (compute_ctx){.cfg = &f->cfg, .driver = f->dst};
    fy_httpd_conf hc = {
        .bind_addr = "127.0.0.1", .threads = 2, .max_body = 1 << 20,
        .max_upload = (size_t)1 << 34, .upload_dir = f->sb, .routes = compute_routes,
        .nroutes = compute_nroutes, .svc = &f->ctx, .service_secret = SECRET,
    };
    if (fy_httpd_start(&hc, &f->httpd, &err))
        return -1;
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", fy_httpd_port(f->httpd));
    f->old_flavor = json_pack("{s:s, s:i, s:i, s:i}", "flavorid", "1", "vcpus", 1, "memory_mb",
                              64, "root_gb", 1);
    f->new_flavor = json_pack("{s:s, s:i, s:i, s:i}", "flavorid", "2", "vcpus", 2, "memory_mb",
                              128, "root_gb", 2);
    f->vifs = json_array();
    f->vols = json_array();
    f->md = json_object();
    compute_spawn_spec sp = {.uuid = INST, .instance_id = 9, .flavor = f->old_flavor,
                             .root_gb = 1, .vifs = f->vifs};
    json_t *info = NULL;
    if (f->src->ops->spawn(f->src, &sp, &info, &err))
        return -1;
    json_decref(info);
    /* Some data in the disk, so the copy is checked for real. */
    _cleanup_free_ char *disk = fy_strdup_printf("%s/%s/disk", f->ia, INST);
    FILE *d = fopen(disk, "r+");
    fputs("ferry cold migration payload", d);
    fclose(d);
    compute_fault_clear();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    fy_httpd_stop(f->httpd);
    compute_driver_free(f->src);
    compute_driver_free(f->dst);
    json_decref(f->old_flavor);
    json_decref(f->new_flavor);
    json_decref(f->vifs);
    json_decref(f->vols);
    json_decref(f->md);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static compute_mig_spec spec_of(const fixture *f, const json_t *flavor, bool power_on)
{
    return (compute_mig_spec){
        .migration_uuid = MIG, .uuid = INST, .instance_id = 9, .flavor = flavor,
        .vifs = f->vifs, .volumes = f->vols, .migrate_data = f->md, .power_on = power_on,
        .host = "host", .peer_url = f->url, .service_secret = SECRET,
        .host_memory_mb = 4096, .disk_available_mb = 100000,
    };
}

static char *path(const char *base, const char *rest)
{
    return fy_strdup_printf("%s/%s", base, rest);
}

static void resize(fixture *f)
{
    fy_err err = {0};
    compute_mig_spec s = spec_of(f, f->new_flavor, true);
    json_t *md = NULL, *di = NULL, *info = NULL;
    assert_int_equal(f->dst->ops->check_can_live_migrate_destination(f->dst, &s, &md, &err),
                     FY_E_OK);
    json_object_update(f->md, md);
    json_decref(md);
    assert_int_equal(f->src->ops->migrate_disk_and_power_off(f->src, &s, &di, &err), FY_E_OK);
    assert_true(json_is_false(json_object_get(di, "shared_storage")));
    assert_int_equal(strlen(fy_json_str(di, "sha256")), 64);
    json_decref(di);
    /* The source's guest is set aside, not listed. */
    assert_int_equal(f->src->ops->get_info(f->src, INST, &info, &err), FY_E_NOT_FOUND);
    assert_int_equal(f->dst->ops->finish_migration(f->dst, &s, &info, &err), FY_E_OK);
    assert_int_equal(json_integer_value(json_object_get(info, "disk_size")), 2 * GiB);
    assert_int_equal(json_integer_value(json_object_get(info, "power_state")),
                     COMPUTE_POWER_RUNNING);
    assert_int_equal(fy_json_int(json_object_get(info, "flavor"), "memory_mb", 0), 128);
    json_decref(info);
    _cleanup_free_ char *disk = fy_strdup_printf("%s/%s/disk", f->ib, INST);
    char buf[64] = "";
    FILE *d = fopen(disk, "r");
    assert_non_null(fgets(buf, sizeof(buf), d));
    fclose(d);
    assert_memory_equal(buf, "ferry cold migration payload", 28);
}

static void test_resize_then_confirm(void **state)
{
    fixture *f = *state;
    resize(f);
    fy_err err = {0};
    compute_mig_spec s = spec_of(f, f->new_flavor, true);
    assert_int_equal(f->src->ops->confirm_migration(f->src, &s, &err), FY_E_OK);
    _cleanup_free_ char *kept = fy_strdup_printf("%s/%s_resize", f->ia, INST);
    assert_int_equal(access(kept, F_OK), -1);
    _cleanup_free_ char *dom = path(f->sa, "domains/" INST ".resize.json");
    assert_int_equal(access(dom, F_OK), -1);
    json_t *list = NULL;
    assert_int_equal(f->src->ops->list(f->src, &list, &err), FY_E_OK);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    assert_int_equal(f->dst->ops->list(f->dst, &list, &err), FY_E_OK);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
}

static void test_resize_then_revert(void **state)
{
    fixture *f = *state;
    resize(f);
    fy_err err = {0};
    compute_mig_spec s = spec_of(f, f->old_flavor, false);
    json_t *info = NULL;
    assert_int_equal(f->dst->ops->revert_migration_dest(f->dst, &s, &err), FY_E_OK);
    _cleanup_free_ char *ddir = fy_strdup_printf("%s/%s", f->ib, INST);
    assert_int_equal(access(ddir, F_OK), -1);
    assert_int_equal(f->src->ops->finish_revert_migration(f->src, &s, &info, &err), FY_E_OK);
    assert_int_equal(json_integer_value(json_object_get(info, "power_state")),
                     COMPUTE_POWER_SHUTDOWN);
    assert_int_equal(fy_json_int(json_object_get(info, "flavor"), "memory_mb", 0), 64);
    assert_int_equal(json_integer_value(json_object_get(info, "disk_size")), GiB);
    json_decref(info);
    /* Repeated: the same end state. */
    assert_int_equal(f->src->ops->finish_revert_migration(f->src, &s, &info, &err), FY_E_OK);
    json_decref(info);
}

static void test_corrupt_transfer_fails_and_restores(void **state)
{
    fixture *f = *state;
    json_t *faults = json_pack("{s:[{s:s, s:s}]}", "faults", "step", "transfer_corrupt",
                               "action", "error");
    fy_err err = {0};
    assert_int_equal(compute_fault_set(faults, &err), FY_E_OK);
    json_decref(faults);
    compute_mig_spec s = spec_of(f, f->new_flavor, true);
    json_t *di = NULL, *info = NULL;
    assert_int_equal(f->src->ops->migrate_disk_and_power_off(f->src, &s, &di, &err),
                     FY_E_BAD_REQUEST);
    _cleanup_free_ char *ddir = fy_strdup_printf("%s/%s", f->ib, INST);
    assert_int_equal(access(ddir, F_OK), -1);
    /* The source guest is back as it was, running. */
    assert_int_equal(f->src->ops->get_info(f->src, INST, &info, &err), FY_E_OK);
    assert_int_equal(json_integer_value(json_object_get(info, "power_state")),
                     COMPUTE_POWER_RUNNING);
    json_decref(info);
}

static void test_resize_down_refused(void **state)
{
    fixture *f = *state;
    json_t *small = json_pack("{s:s, s:i, s:i, s:i}", "flavorid", "0", "vcpus", 1, "memory_mb",
                              64, "root_gb", 0);
    compute_mig_spec s = spec_of(f, small, true);
    json_t *di = NULL;
    fy_err err = {0};
    assert_int_equal(f->src->ops->migrate_disk_and_power_off(f->src, &s, &di, &err),
                     FY_E_BAD_REQUEST);
    assert_string_equal(err.msg, "Unable to resize disk down.");
    json_decref(small);
}

static void test_same_host_resize(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    compute_mig_spec s = spec_of(f, f->new_flavor, true);
    s.same_host = true;
    json_t *di = NULL, *info = NULL;
    assert_int_equal(f->src->ops->migrate_disk_and_power_off(f->src, &s, &di, &err), FY_E_OK);
    assert_true(json_is_true(json_object_get(di, "shared_storage")));
    json_decref(di);
    assert_int_equal(f->src->ops->finish_migration(f->src, &s, &info, &err), FY_E_OK);
    json_decref(info);
    assert_int_equal(f->src->ops->confirm_migration(f->src, &s, &err), FY_E_OK);
    assert_int_equal(f->src->ops->get_info(f->src, INST, &info, &err), FY_E_OK);
    assert_int_equal(fy_json_int(json_object_get(info, "flavor"), "memory_mb", 0), 128);
    json_decref(info);
}

int main(void)
{
    fy_httpc_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resize_then_confirm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resize_then_revert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_transfer_fails_and_restores, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resize_down_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_host_resize, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
