/* The image cache against a small image API served by fy_httpd on loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "compute_image.h"
#include "fy_httpc.h"
#include "fy_httpd.h"
#include "fy_util.h"

#define IMAGE_ID "5b7d6a1e-0c1f-4a6e-9e3b-2f4a5c6d7e8f"
#define MISSING_ID "00000000-0c1f-4a6e-9e3b-2f4a5c6d7e8f"
#define IMAGE_LEN 200000

static atomic_int downloads;
static char image_file[128];

static fy_code serve_image(fy_req *req, fy_resp *resp, fy_err *err)
{
    if (!fy_streq(req->params[0], IMAGE_ID))
        return fy_fail(err, FY_E_NOT_FOUND, "no image %s", req->params[0]);
    atomic_fetch_add(&downloads, 1);
    usleep(100 * 1000);   /* widen the window for concurrent requests */
    int fd = open(image_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fy_fail(err, FY_E_IO, "open image");
    struct stat st;
    fstat(fd, &st);
    resp->status = 200;
    resp->file_fd = fd;
    resp->file_size = st.st_size;
    resp->content_type = "application/octet-stream";
    return FY_E_OK;
}

static const fy_route image_routes[] = {
    {"GET", "/image/v2/images/{}/file", serve_image, FY_R_INTERNAL},
};

typedef struct fixture {
    char dir[64];
    char base[128];
    fy_httpd *httpd;
    compute_image_cache *cache;
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
    snprintf(f->dir, sizeof(f->dir), "/tmp/ferry-image-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->base, sizeof(f->base), "%s/_base", f->dir);
    snprintf(image_file, sizeof(image_file), "%s/served", f->dir);
    FILE *fp = fopen(image_file, "w");
    for (int i = 0; i < IMAGE_LEN; i++)
        fputc(i % 253, fp);
    fclose(fp);

    fy_httpd_conf hc = {
        .bind_addr = "127.0.0.1", .port = 0, .threads = 4, .max_body = 65536,
        .routes = image_routes, .nroutes = 1, .service_secret = "s3cret",
    };
    fy_err err = {0};
    if (fy_httpd_start(&hc, &f->httpd, &err))
        return -1;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/image/", fy_httpd_port(f->httpd));
    if (compute_image_cache_new(f->base, url, "s3cret", &f->cache, &err))
        return -1;
    atomic_store(&downloads, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    fy_httpd_stop(f->httpd);
    compute_image_cache_free(f->cache);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void test_download_once(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    _cleanup_free_ char *path = NULL, *again = NULL;
    assert_int_equal(compute_image_get(f->cache, IMAGE_ID, &path, &err), FY_E_OK);
    _cleanup_free_ char *want = fy_strdup_printf("%s/%s", f->base, IMAGE_ID);
    assert_string_equal(path, want);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, IMAGE_LEN);
    assert_int_equal(compute_image_get(f->cache, IMAGE_ID, &again, &err), FY_E_OK);
    assert_int_equal(atomic_load(&downloads), 1);
}

typedef struct getter {
    compute_image_cache *cache;
    fy_code rc;
} getter;

static void *get_main(void *arg)
{
    getter *g = arg;
    fy_err err = {0};
    char *path = NULL;
    g->rc = compute_image_get(g->cache, IMAGE_ID, &path, &err);
    free(path);
    return NULL;
}

static void test_concurrent_gets_share_one_download(void **state)
{
    fixture *f = *state;
    getter g[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        g[i] = (getter){.cache = f->cache};
        assert_int_equal(pthread_create(&th[i], NULL, get_main, &g[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(g[i].rc, FY_E_OK);
    }
    assert_int_equal(atomic_load(&downloads), 1);
}

static void test_missing_image(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    char *path = NULL;
    assert_int_equal(compute_image_get(f->cache, MISSING_ID, &path, &err), FY_E_UPSTREAM);
    assert_non_null(strstr(err.msg, MISSING_ID));
    assert_null(path);
    /* Nothing half-written is left in the cache. */
    _cleanup_free_ char *p = fy_strdup_printf("%s/%s", f->base, MISSING_ID);
    _cleanup_free_ char *part = fy_strdup_printf("%s/.%s.part", f->base, MISSING_ID);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(access(part, F_OK), -1);
}

static void test_bad_id(void **state)
{
    fixture *f = *state;
    fy_err err = {0};
    char *path = NULL;
    assert_int_equal(compute_image_get(f->cache, "../../etc/passwd", &path, &err),
                     FY_E_BAD_REQUEST);
    assert_int_equal(atomic_load(&downloads), 0);
}

int main(void)
{
    fy_httpc_global_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_download_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_gets_share_one_download, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_id, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
