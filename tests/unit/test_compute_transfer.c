/* The disk data plane: a push into an in-process agent server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "compute.h"
#include "compute_extents.h"
#include "compute_fault.h"
#include "compute_mig.h"
#include "fy_cleanup.h"
#include "fy_httpc.h"
#include "fy_httpd.h"
#include "fy_metrics.h"
#include "fy_util.h"

#define MIG "7a1b2c3d-1111-4222-8333-444444444444"
#define INST "5e5e5e5e-1111-4222-8333-444444444444"
#define INST2 "6f6f6f6f-1111-4222-8333-444444444444"
#define SECRET "transfer-secret"

typedef struct fixture {
    char dir[64];
    char state[128], instances[160], src[160];
    char url[64];
    compute_config cfg;
    compute_ctx ctx;
    fy_httpd *httpd;
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void write_pattern(const char *path, size_t size)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    unsigned x = 12345;
    for (size_t i = 0; i < size; i++) {
        x = x * 1103515245u + 12345u;
        fputc((int)(x >> 16) & 0xff, f);
    }
    fclose(f);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/ferry-xfer-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->state, sizeof(f->state), "%s/dest", f->dir);
    snprintf(f->instances, sizeof(f->instances), "%s/instances", f->state);
    snprintf(f->src, sizeof(f->src), "%s/source-disk", f->dir);
    fy_mkdir_p(f->instances, 0755);
    f->cfg.host = "hostB";
    f->cfg.state_dir = f->state;
    f->cfg.instances_path = f->instances;
    f->cfg.service_secret = SECRET;
    f->ctx.cfg = &f->cfg;
    fy_httpd_conf hc = {
        .bind_addr = "127.0.0.1", .threads = 2, .max_body = 1 << 20,
        .max_upload = (size_t)1 << 34, .upload_dir = f->state, .routes = compute_routes,
        .nroutes = compute_nroutes, .svc = &f->ctx, .service_secret = SECRET,
    };
    fy_err err = {0};
    if (fy_httpd_start(&hc, &f->httpd, &err))
        return -1;
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", fy_httpd_port(f->httpd));
    compute_fault_clear();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    fy_httpd_stop(f->httpd);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static compute_xfer xfer_for(const fixture *f, const char *inst, atomic_llong *done)
{
    return (compute_xfer){.dest_url = f->url, .service_secret = SECRET, .migration_uuid = MIG,
                          .instance_uuid = inst, .path = f->src, .done = done};
}

static int count_uploads(const fixture *f)
{
    DIR *d = opendir(f->state);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strncmp(de->d_name, ".upload", 7) == 0;
    closedir(d);
    return n;
}

static void test_push_arrives_verified(void **state)
{
    fixture *f = *state;
    write_pattern(f->src, 3 * 1024 * 1024 + 17);
    atomic_llong done = 0;
    compute_xfer x = xfer_for(f, INST, &done);
    char sha[65], want[65];
    fy_err err = {0};
    assert_int_equal(compute_transfer_push(&x, sha, &err), FY_E_OK);
    assert_int_equal(compute_sha256_file(f->src, want, &err), FY_E_OK);
    assert_string_equal(sha, want);
    assert_int_equal(atomic_load(&done), 3 * 1024 * 1024 + 17);

    _cleanup_free_ char *disk = fy_strdup_printf("%s/%s/disk", f->instances, INST);
    char got[65];
    assert_int_equal(compute_sha256_file(disk, got, &err), FY_E_OK);
    assert_string_equal(got, want);
    assert_int_equal(count_uploads(f), 0);
    /* The receiver timed its one sync. */
    size_t len = 0;
    _cleanup_free_ char *text = fy_metrics_render(&len);
    const char *count = strstr(text, "ferry_disk_transfer_sync_seconds_count ");
    assert_non_null(count);
    assert_true(atof(count + strlen("ferry_disk_transfer_sync_seconds_count ")) >= 1);
}

static void test_corrupt_transfer_is_refused(void **state)
{
    fixture *f = *state;
    write_pattern(f->src, 1024 * 1024);
    json_t *faults = json_pack("{s:[{s:s, s:s}]}", "faults", "step", "transfer_corrupt",
                               "action", "error");
    fy_err err = {0};
    assert_int_equal(compute_fault_set(faults, &err), FY_E_OK);
    json_decref(faults);

    compute_xfer x = xfer_for(f, INST2, NULL);
    assert_int_equal(compute_transfer_push(&x, NULL, &err), FY_E_BAD_REQUEST);
    assert_non_null(strstr(err.msg, "checksum"));
    _cleanup_free_ char *dir = fy_strdup_printf("%s/%s", f->instances, INST2);
    struct stat st;
    assert_int_equal(stat(dir, &st), -1);
    assert_int_equal(count_uploads(f), 0);

    /* The fault fired once: the next transfer goes through. */
    fy_err_clear(&err);
    assert_int_equal(compute_transfer_push(&x, NULL, &err), FY_E_OK);
}

static void test_push_needs_credential(void **state)
{
    fixture *f = *state;
    write_pattern(f->src, 100);
    compute_xfer x = xfer_for(f, INST, NULL);
    x.service_secret = "wrong";
    fy_err err = {0};
    assert_int_equal(compute_transfer_push(&x, NULL, &err), FY_E_UNAUTHORIZED);
}

static void test_push_missing_file(void **state)
{
    fixture *f = *state;
    compute_xfer x = xfer_for(f, INST, NULL);
    x.path = "/nonexistent/disk";
    fy_err err = {0};
    assert_int_equal(compute_transfer_push(&x, NULL, &err), FY_E_IO);
}

static void test_empty_file(void **state)
{
    fixture *f = *state;
    write_pattern(f->src, 0);
    compute_xfer x = xfer_for(f, INST, NULL);
    char sha[65];
    fy_err err = {0};
    assert_int_equal(compute_transfer_push(&x, sha, &err), FY_E_OK);
    assert_string_equal(sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* Writes `len` pattern bytes at each of offs[] into a file of `size` bytes
 * that is otherwise a hole. */
static void write_sparse(const char *path, long long size, const long long *offs, size_t n,
                         size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    char *buf = malloc(len);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < len; k++)
            buf[k] = (char)(i * 31 + k * 7 + 1);
        assert_int_equal(pwrite(fd, buf, len, offs[i]), (ssize_t)len);
    }
    free(buf);
    close(fd);
}

static void assert_same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "r"), *fb = fopen(b, "r");
    assert_non_null(fa);
    assert_non_null(fb);
    enum { BUF = 1 << 20 };
    char *ba = malloc(BUF), *bb = malloc(BUF);
    for (;;) {
        size_t na = fread(ba, 1, BUF, fa), nb = fread(bb, 1, BUF, fb);
        assert_int_equal(na, nb);
        assert_memory_equal(ba, bb, na);
        if (na < BUF)
            break;
    }
    free(ba);
    free(bb);
    fclose(fa);
    fclose(fb);
}

static void test_sparse_disk_stays_sparse(void **state)
{
    fixture *f = *state;
    const long long size = 256LL << 20;
    const long long offs[] = {0, 5LL << 20, 100LL << 20, size - (1 << 20)};
    write_sparse(f->src, size, offs, ELEMENTSOF(offs), 1 << 20);
    atomic_llong done = 0;
    compute_xfer x = xfer_for(f, INST, &done);
    fy_err err = {0};
    char sha[65];
    assert_int_equal(compute_transfer_push(&x, sha, &err), FY_E_OK);
    assert_int_equal(atomic_load(&done), size);

    _cleanup_free_ char *disk = fy_strdup_printf("%s/%s/disk", f->instances, INST);
    assert_same_file(f->src, disk);
    struct stat st;
    assert_int_equal(stat(disk, &st), 0);
    /* 4 MiB of data; a dense copy would hold 256 MiB. */
    assert_true((long long)st.st_blocks * 512 <= 8LL << 20);
    _cleanup_free_ char *part = fy_strdup_printf("%s.part", disk);
    assert_int_equal(access(part, F_OK), -1);
    assert_int_equal(count_uploads(f), 0);
}

static void test_all_hole_disk(void **state)
{
    fixture *f = *state;
    write_sparse(f->src, 64LL << 20, NULL, 0, 0);
    compute_xfer x = xfer_for(f, INST, NULL);
    fy_err err = {0};
    char sha[65];
    assert_int_equal(compute_transfer_push(&x, sha, &err), FY_E_OK);
    /* Nothing but the map is sent: the digest is that of an empty body. */
    assert_string_equal(sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    _cleanup_free_ char *disk = fy_strdup_printf("%s/%s/disk", f->instances, INST);
    struct stat st;
    assert_int_equal(stat(disk, &st), 0);
    assert_int_equal(st.st_size, 64LL << 20);
    assert_int_equal(st.st_blocks, 0);
}

/* A dense disk is the staged body itself: same inode, renamed into place. */
static void test_dense_disk_takes_fast_path(void **state)
{
    fixture *f = *state;
    write_pattern(f->src, 2 * 1024 * 1024 + 5);
    compute_xfer x = xfer_for(f, INST, NULL);
    fy_err err = {0};
    assert_int_equal(compute_transfer_push(&x, NULL, &err), FY_E_OK);
    _cleanup_free_ char *disk = fy_strdup_printf("%s/%s/disk", f->instances, INST);
    assert_same_file(f->src, disk);
    _cleanup_free_ char *part = fy_strdup_printf("%s.part", disk);
    assert_int_equal(access(part, F_OK), -1);
}

/* More islands than the map may hold: the smallest holes are sent as zeros,
 * just enough of them, and the disk still arrives exact and mostly sparse. */
static void test_many_extents(void **state)
{
    fixture *f = *state;
    enum { N = COMPUTE_EXTENTS_MAX + 400, STRIDE = 72 << 10, ISLAND = 4096 };
    long long *offs = malloc(N * sizeof(*offs));
    for (size_t i = 0; i < N; i++)
        offs[i] = (long long)i * STRIDE + (i % 7 == 0 ? 2048 : 0);
    write_sparse(f->src, (long long)N * STRIDE, offs, N, ISLAND);
    free(offs);
    compute_xfer x = xfer_for(f, INST, NULL);
    fy_err err = {0};
    assert_int_equal(compute_transfer_push(&x, NULL, &err), FY_E_OK);
    _cleanup_free_ char *disk = fy_strdup_printf("%s/%s/disk", f->instances, INST);
    assert_same_file(f->src, disk);
    struct stat st;
    assert_int_equal(stat(disk, &st), 0);
    /* 400 holes of < 72 KiB filled, the rest of the 4496 holes kept. */
    assert_true((long long)st.st_blocks * 512 <= (long long)N * ISLAND + 400LL * STRIDE + (4 << 20));
}

static void test_extents_bound(void **state)
{
    (void)state;
    int fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    assert_true(fd >= 0);
    enum { N = COMPUTE_EXTENTS_MAX + 10 };
    assert_int_equal(ftruncate(fd, (off_t)N << 20), 0);
    for (long long i = 0; i < N; i++)
        assert_int_equal(pwrite(fd, "x", 1, (i << 20) + (i == 3 ? 4096 : 0)), 1);
    compute_extents m = {0};
    fy_err err = {0};
    assert_int_equal(compute_extents_scan(fd, (long long)N << 20, &m, &err), FY_E_OK);
    close(fd);
    assert_int_equal(m.n, COMPUTE_EXTENTS_MAX);
    long long sum = 0;
    for (size_t i = 0; i < m.n; i++)
        sum += m.v[i].len;
    assert_int_equal(sum, m.data);
    /* The hole shortened by the shifted island (before block 3) is among those merged. */
    assert_true(m.v[2].off + m.v[2].len > 3LL << 20);
    compute_extents_clear(&m);
}

static void test_extents_scan_and_bound(void **state)
{
    (void)state;
    compute_extents m = {0};
    fy_err err = {0};
    for (long long i = 0; i < 10000; i++)
        assert_int_equal(compute_extents_add(&m, i * 1000000, 10, &err), FY_E_OK);
    m.size = 10000LL * 1000000;
    compute_extents_coalesce(&m, 999990);
    assert_int_equal(m.n, 10000);
    compute_extents_coalesce(&m, 999991);
    assert_int_equal(m.n, 1);
    assert_int_equal(m.data, 9999LL * 1000000 + 10);
    compute_extents_clear(&m);
}

static void test_extents_parse(void **state)
{
    (void)state;
    fy_err err = {0};
    compute_extents m = {0};
    assert_int_equal(compute_extents_parse("0:10,20:5,25:5", 100, &m, &err), FY_E_OK);
    assert_int_equal(m.n, 2);   /* 20:5 and 25:5 touch */
    assert_int_equal(m.data, 20);
    assert_false(compute_extents_dense(&m));
    _cleanup_free_ char *s = compute_extents_format(&m);
    assert_string_equal(s, "0:10,20:10");
    compute_extents_clear(&m);
    assert_int_equal(compute_extents_parse("", 100, &m, &err), FY_E_OK);
    assert_int_equal(m.n, 0);
    compute_extents_clear(&m);
    assert_int_equal(compute_extents_parse("0:100", 100, &m, &err), FY_E_OK);
    assert_true(compute_extents_dense(&m));
    compute_extents_clear(&m);
    static const char *const bad[] = {"0:10,5:10", "0:0", "90:20", "-1:5", "0:5,", "a:b",
                                      "0:5;6:1", "0:5,,7:1", " 0:5", "0:99999999999999999999"};
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        fy_err_clear(&err);
        assert_int_equal(compute_extents_parse(bad[i], 100, &m, &err), FY_E_BAD_REQUEST);
        compute_extents_clear(&m);
    }
}

/* The staging file is written sparse where the body arrives; instances on
 * another file system get a copy of its extents, still sparse. */
static void test_instances_on_other_fs(void **state)
{
    fixture *f = *state;
    char other[] = "/dev/shm/ferry-xfer-XXXXXX";
    assert_non_null(mkdtemp(other));
    f->cfg.instances_path = other;
    const long long size = 64LL << 20;
    const long long offs[] = {4096, 9LL << 20, size - 8192};
    write_sparse(f->src, size, offs, ELEMENTSOF(offs), 8192);
    compute_xfer x = xfer_for(f, INST, NULL);
    fy_err err = {0};
    assert_int_equal(compute_transfer_push(&x, NULL, &err), FY_E_OK);
    _cleanup_free_ char *disk = fy_strdup_printf("%s/%s/disk", other, INST);
    assert_same_file(f->src, disk);
    struct stat st;
    assert_int_equal(stat(disk, &st), 0);
    assert_int_equal(st.st_size, size);
    assert_true((long long)st.st_blocks * 512 <= 1LL << 20);
    _cleanup_free_ char *part = fy_strdup_printf("%s.part", disk);
    assert_int_equal(access(part, F_OK), -1);
    assert_int_equal(count_uploads(f), 0);
    nftw(other, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A body that does not match its map is refused; nothing lands. */
static void test_bad_map_refused(void **state)
{
    fixture *f = *state;
    _cleanup_free_ char *url = fy_strdup_printf("%s/internal/v1/transfer/%s/disk", f->url, MIG);
    static const char *const cases[][2] = {
        {"100", "0:10,50:10"},      /* 20 bytes of map, 16 of body */
        {"100", "0:8,50:4"},        /* 12 bytes of map, 16 of body */
        {"10", "0:16"},             /* past the size */
        {"x", "0:16"},
        {"", "0:16"},               /* a map needs the size */
        {"100", "0:16,"},
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        _cleanup_free_ char *cmd = fy_strdup_printf(
            "printf 0123456789abcdef | curl -s -o /dev/null -w '%%{http_code}' -X PUT "
            "-H 'X-Service-Token: %s' -H 'X-Ferry-Instance: %s' -H 'X-Ferry-Size: %s' "
            "-H 'X-Ferry-Extents: %s' "
            "-H 'X-Ferry-Sha256: 5e6c0a4bd8f3f7b6c3a0a5a0de1c55a7b4a8a2e0d0c6b0a5e4e2c4a1b0f0e0d0' "
            "--data-binary @- %s",
            SECRET, INST, cases[i][0], cases[i][1], url);
        FILE *p = popen(cmd, "r");
        char code[8] = "";
        assert_non_null(fgets(code, sizeof(code), p));
        pclose(p);
        assert_string_equal(code, "400");
    }
    _cleanup_free_ char *dir = fy_strdup_printf("%s/%s", f->instances, INST);
    assert_int_equal(access(dir, F_OK), -1);
    assert_int_equal(count_uploads(f), 0);
}

int main(void)
{
    fy_httpc_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_push_arrives_verified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_transfer_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_needs_credential, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sparse_disk_stays_sparse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_hole_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dense_disk_takes_fast_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_extents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instances_on_other_fs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_map_refused, setup, teardown),
        cmocka_unit_test(test_extents_scan_and_bound),
        cmocka_unit_test(test_extents_bound),
        cmocka_unit_test(test_extents_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
