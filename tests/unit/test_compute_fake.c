/* The fake virt driver against a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "compute_disk.h"
#include "compute_driver.h"
#include "fy_cleanup.h"
#include "fy_util.h"

#define GiB (1LL << 30)
#define UUID_A "11111111-2222-4333-8444-555555555555"
#define UUID_B "0aaaaaaa-2222-4333-8444-555555555555"

typedef struct fixture {
    char dir[64];
    char instances[128];
    compute_driver *drv;
    json_t *flavor;
    json_t *vifs;
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
    snprintf(f->dir, sizeof(f->dir), "/tmp/ferry-fake-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->instances, sizeof(f->instances), "%s/instances", f->dir);
    compute_driver_conf conf = {.instances_path = f->instances};
    fy_err err = {0};
    if (compute_driver_new("fake", &conf, &f->drv, &err))
        return -1;
    f->flavor = json_pack("{s:s, s:i, s:i, s:i}", "flavorid", "1", "vcpus", 1, "memory_mb", 512,
                          "root_gb", 1);
    f->vifs = json_pack("[{s:s, s:s}]", "port_id", "9f0e7c1a-1111-4222-8333-444444444444",
                        "mac_address", "fa:16:3e:00:00:01");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    compute_driver_free(f->drv);
    json_decref(f->flavor);
    json_decref(f->vifs);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static compute_spawn_spec spec_for(const fixture *f, const char *uuid, long long root_gb)
{
    return (compute_spawn_spec){
        .uuid = uuid, .instance_id = 42, .flavor = f->flavor, .root_gb = root_gb,
        .vifs = f->vifs,
    };
}

static char *path_in(const fixture *f, const char *uuid, const char *file)
{
    return fy_strdup_printf("%s/%s/%s", f->instances, uuid, file);
}

static void test_spawn_creates_sparse_disk(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    json_t *info = NULL;
    compute_spawn_spec spec = spec_for(f, UUID_A, 2);
    assert_int_equal(f->drv->ops->spawn(f->drv, &spec, &info, &err), FY_E_OK);

    assert_string_equal(json_string_value(json_object_get(info, "name")), "instance-0000002a");
    assert_int_equal(json_integer_value(json_object_get(info, "power_state")), 1);
    assert_string_equal(json_string_value(json_object_get(info, "state")), "running");
    assert_int_equal(json_integer_value(json_object_get(info, "disk_size")), 2 * GiB);
    json_t *vif = json_array_get(json_object_get(info, "vifs"), 0);
    assert_string_equal(json_string_value(json_object_get(vif, "mac_address")),
                        "fa:16:3e:00:00:01");

    _cleanup_free_ char *disk = path_in(f, UUID_A, "disk");
    assert_string_equal(json_string_value(json_object_get(info, "disk_path")), disk);
    struct stat st;
    assert_int_equal(stat(disk, &st), 0);
    assert_int_equal(st.st_size, 2 * GiB);
    assert_true((long long)st.st_blocks * 512 < 1024 * 1024);   /* sparse */

    _cleanup_free_ char *dom = fy_strdup_printf("%s/domains/%s.json", f->dir, UUID_A);
    json_t *d = json_load_file(dom, 0, NULL);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "uuid")), UUID_A);
    assert_int_equal(json_integer_value(json_object_get(d, "power_state")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(d, "flavor"), "vcpus")),
                     1);
    assert_non_null(json_object_get(d, "created_at"));
    json_decref(d);
    json_decref(info);
}

static void test_spawn_is_idempotent(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    json_t *a = NULL, *b = NULL;
    compute_spawn_spec spec = spec_for(f, UUID_A, 1);
    assert_int_equal(f->drv->ops->spawn(f->drv, &spec, &a, &err), FY_E_OK);
    spec.root_gb = 5;   /* a repeat answers with the first result */
    assert_int_equal(f->drv->ops->spawn(f->drv, &spec, &b, &err), FY_E_OK);
    assert_true(json_equal(a, b));
    assert_int_equal(json_integer_value(json_object_get(b, "disk_size")), GiB);
    json_decref(a);
    json_decref(b);
}

static void write_image(const char *path, size_t len)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (size_t i = 0; i < len; i++)
        fputc((int)(i * 7 % 251), fp);
    fclose(fp);
}

static bool same_prefix(const char *a, const char *b, size_t len)
{
    _cleanup_free_ char *x = NULL, *y = NULL;
    size_t lx = 0;
    fy_err err = {0};
    if (fy_read_file(a, 1 << 24, &x, &lx, &err) || lx < len)
        return false;
    int fd = open(b, O_RDONLY);
    if (fd < 0)
        return false;
    y = malloc(len);
    ssize_t n = read(fd, y, len);
    close(fd);
    return n == (ssize_t)len && memcmp(x, y, len) == 0;
}

static void test_spawn_copies_image(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    _cleanup_free_ char *image = fy_strdup_printf("%s/image", f->dir);
    write_image(image, 300000);

    json_t *info = NULL;
    compute_spawn_spec spec = spec_for(f, UUID_A, 0);
    spec.image_id = "22222222-2222-4333-8444-555555555555";
    spec.image_path = image;
    assert_int_equal(f->drv->ops->spawn(f->drv, &spec, &info, &err), FY_E_OK);
    assert_int_equal(json_integer_value(json_object_get(info, "disk_size")), 300000);
    assert_string_equal(json_string_value(json_object_get(info, "image_id")), spec.image_id);
    _cleanup_free_ char *disk = path_in(f, UUID_A, "disk");
    assert_true(same_prefix(image, disk, 300000));
    json_decref(info);

    /* A root disk larger than the image: the copy, extended sparsely. */
    spec.uuid = UUID_B;
    spec.root_gb = 1;
    assert_int_equal(f->drv->ops->spawn(f->drv, &spec, &info, &err), FY_E_OK);
    assert_int_equal(json_integer_value(json_object_get(info, "disk_size")), GiB);
    _cleanup_free_ char *disk_b = path_in(f, UUID_B, "disk");
    assert_true(same_prefix(image, disk_b, 300000));
    json_decref(info);
}

static void test_power_off_on(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    json_t *info = NULL;
    compute_spawn_spec spec = spec_for(f, UUID_A, 1);
    assert_int_equal(f->drv->ops->spawn(f->drv, &spec, &info, &err), FY_E_OK);
    json_decref(info);

    assert_int_equal(f->drv->ops->power_off(f->drv, UUID_A, &info, &err), FY_E_OK);
    assert_int_equal(json_integer_value(json_object_get(info, "power_state")), 4);
    assert_string_equal(json_string_value(json_object_get(info, "state")), "shutdown");
    json_decref(info);
    /* Twice is the same as once. */
    assert_int_equal(f->drv->ops->power_off(f->drv, UUID_A, &info, &err), FY_E_OK);
    assert_int_equal(json_integer_value(json_object_get(info, "power_state")), 4);
    json_decref(info);
    assert_int_equal(f->drv->ops->get_info(f->drv, UUID_A, &info, &err), FY_E_OK);
    assert_int_equal(json_integer_value(json_object_get(info, "power_state")), 4);
    json_decref(info);

    assert_int_equal(f->drv->ops->power_on(f->drv, UUID_A, &info, &err), FY_E_OK);
    assert_int_equal(json_integer_value(json_object_get(info, "power_state")), 1);
    json_decref(info);
}

static void test_destroy(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    json_t *info = NULL;
    compute_spawn_spec spec = spec_for(f, UUID_A, 1);
    assert_int_equal(f->drv->ops->spawn(f->drv, &spec, &info, &err), FY_E_OK);
    json_decref(info);

    assert_int_equal(f->drv->ops->destroy(f->drv, UUID_A, &err), FY_E_OK);
    _cleanup_free_ char *dir = fy_strdup_printf("%s/%s", f->instances, UUID_A);
    struct stat st;
    assert_int_equal(stat(dir, &st), -1);
    assert_int_equal(errno, ENOENT);
    /* Destroying what is not there succeeds. */
    assert_int_equal(f->drv->ops->destroy(f->drv, UUID_A, &err), FY_E_OK);
    assert_int_equal(f->drv->ops->get_info(f->drv, UUID_A, &info, &err), FY_E_NOT_FOUND);
}

static void test_missing_and_invalid(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    json_t *info = NULL;
    assert_int_equal(f->drv->ops->get_info(f->drv, UUID_B, &info, &err), FY_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, UUID_B));
    assert_int_equal(f->drv->ops->power_on(f->drv, UUID_B, &info, &err), FY_E_NOT_FOUND);
    assert_int_equal(f->drv->ops->power_off(f->drv, UUID_B, &info, &err), FY_E_NOT_FOUND);
    assert_int_equal(f->drv->ops->get_info(f->drv, "../../etc", &info, &err), FY_E_BAD_REQUEST);
    assert_int_equal(f->drv->ops->destroy(f->drv, "..", &err), FY_E_BAD_REQUEST);
    compute_spawn_spec spec = spec_for(f, "x/y", 1);
    assert_int_equal(f->drv->ops->spawn(f->drv, &spec, &info, &err), FY_E_BAD_REQUEST);
}

static void test_list_sorted(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    json_t *info = NULL, *list = NULL;
    assert_int_equal(f->drv->ops->list(f->drv, &list, &err), FY_E_OK);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);

    compute_spawn_spec spec = spec_for(f, UUID_A, 1);
    assert_int_equal(f->drv->ops->spawn(f->drv, &spec, &info, &err), FY_E_OK);
    json_decref(info);
    spec.uuid = UUID_B;
    assert_int_equal(f->drv->ops->spawn(f->drv, &spec, &info, &err), FY_E_OK);
    json_decref(info);
    /* Leftovers of an interrupted spawn are not guests. */
    _cleanup_free_ char *partial = fy_strdup_printf("%s/33333333-2222-4333-8444-555555555555",
                                                    f->instances);
    assert_int_equal(mkdir(partial, 0755), 0);

    assert_int_equal(f->drv->ops->list(f->drv, &list, &err), FY_E_OK);
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "uuid")),
                        UUID_B);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "uuid")),
                        UUID_A);
    json_decref(list);
}

static void test_spawn_after_interrupted_spawn(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    _cleanup_free_ char *dir = fy_strdup_printf("%s/%s", f->instances, UUID_A);
    _cleanup_free_ char *part = path_in(f, UUID_A, "disk.part");
    assert_int_equal(mkdir(dir, 0755), 0);
    write_image(part, 10);

    json_t *info = NULL;
    compute_spawn_spec spec = spec_for(f, UUID_A, 1);
    assert_int_equal(f->drv->ops->spawn(f->drv, &spec, &info, &err), FY_E_OK);
    assert_int_equal(json_integer_value(json_object_get(info, "disk_size")), GiB);
    json_decref(info);
    struct stat st;
    assert_int_equal(stat(part, &st), -1);
}

typedef struct spawn_thread {
    fixture *f;
    json_t *info;
    fy_code rc;
} spawn_thread;

static void *spawn_main(void *arg)
{
    spawn_thread *t = arg;
    fy_err err = {0};
    compute_spawn_spec spec = spec_for(t->f, UUID_A, 1);
    t->rc = t->f->drv->ops->spawn(t->f->drv, &spec, &t->info, &err);
    return NULL;
}

static void test_concurrent_spawns_agree(void **state)
{
    fixture *f = *state;
    spawn_thread t[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (spawn_thread){.f = f};
        assert_int_equal(pthread_create(&th[i], NULL, spawn_main, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(t[i].rc, FY_E_OK);
        assert_true(json_equal(t[i].info, t[0].info));
    }
    for (int i = 0; i < 4; i++)
        json_decref(t[i].info);
}

static void test_unknown_driver(void **state)
{
    (void)state;
    compute_driver *drv = NULL;
    compute_driver_conf conf = {.instances_path = "/tmp"};
    fy_err err = {0};
    assert_int_equal(compute_driver_new("xen", &conf, &drv, &err), FY_E_CONFIG);
    assert_non_null(strstr(err.msg, "xen"));
    assert_null(drv);
}

static void test_disk_copy_fd(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    _cleanup_free_ char *src = fy_strdup_printf("%s/src", f->dir);
    _cleanup_free_ char *dst = fy_strdup_printf("%s/dst", f->dir);
    write_image(src, 3 * 1024 * 1024 + 17);
    assert_int_equal(compute_disk_create(dst, src, 0, &err), FY_E_OK);
    struct stat st;
    assert_int_equal(stat(dst, &st), 0);
    assert_int_equal(st.st_size, 3 * 1024 * 1024 + 17);
    assert_true(same_prefix(src, dst, 3 * 1024 * 1024 + 17));
    assert_int_equal(compute_disk_create(dst, "/nonexistent/image", 0, &err), FY_E_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_spawn_creates_sparse_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spawn_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spawn_copies_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_off_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_sorted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spawn_after_interrupted_spawn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_spawns_agree, setup, teardown),
        cmocka_unit_test(test_unknown_driver),
        cmocka_unit_test_setup_teardown(test_disk_copy_fd, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
