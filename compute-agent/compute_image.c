/* The image cache: one download per image, complete files only. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "compute_image.h"
#include "fy_httpc.h"
#include "fy_log.h"
#include "fy_util.h"

/* Images can be large; the whole call may take a while on a slow link. */
#define IMAGE_TIMEOUT_MS (30L * 60 * 1000)

struct compute_image_cache {
    char *dir;
    char *image_url;
    char *service_secret;
};

void compute_image_cache_free(compute_image_cache *c)
{
    if (!c)
        return;
    free(c->dir);
    free(c->image_url);
    free(c->service_secret);
    free(c);
}

fy_code compute_image_cache_new(const char *base_dir, const char *image_url,
                                const char *service_secret, compute_image_cache **ret,
                                fy_err *err)
{
    int r = fy_mkdir_p(base_dir, 0755);
    if (r < 0)
        return fy_fail(err, FY_E_IO, "mkdir %s: %s", base_dir, strerror(-r));
    _cleanup_(compute_image_cache_freep) compute_image_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return fy_fail(err, FY_E_NOMEM, NULL);
    c->dir = strdup(base_dir);
    /* Drop a trailing slash so URLs join cleanly. */
    size_t n = strlen(image_url);
    while (n > 0 && image_url[n - 1] == '/')
        n--;
    c->image_url = strndup(image_url, n);
    c->service_secret = service_secret ? strdup(service_secret) : NULL;
    if (!c->dir || !c->image_url || (service_secret && !c->service_secret))
        return fy_fail(err, FY_E_NOMEM, NULL);
    *ret = TAKE_PTR(c);
    return FY_E_OK;
}

static bool cached(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static fy_code download(compute_image_cache *c, const char *image_id, const char *part,
                        fy_err *err)
{
    _cleanup_free_ char *url = fy_strdup_printf("%s/v2/images/%s/file", c->image_url, image_id);
    if (!url)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_httpc_opts opts = {
        .timeout_ms = IMAGE_TIMEOUT_MS,
        .retries = 2,
        .service_secret = c->service_secret,
        .download_path = part,
    };
    fy_http_result res = {0};
    fy_code rc = fy_httpc_call("GET", url, NULL, &opts, &res, err);
    fy_http_result_clear(&res);
    if (rc) {
        unlink(part);
        if (!fy_code_retryable(rc))
            err->code = FY_E_UPSTREAM;
        return fy_err_prefix(err, "fetching image %s", image_id);
    }
    /* The rename that follows must not publish data still in flight. */
    _cleanup_close_ int fd = open(part, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
        rc = fy_fail(err, FY_E_IO, "sync %s: %s", part, strerror(errno));
        unlink(part);
        return rc;
    }
    return FY_E_OK;
}

fy_code compute_image_get(compute_image_cache *c, const char *image_id, char **ret_path,
                          fy_err *err)
{
    if (!fy_uuid_valid(image_id))
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid image id '%s'", image_id ? image_id : "");
    _cleanup_free_ char *path = fy_strdup_printf("%s/%s", c->dir, image_id);
    _cleanup_free_ char *lockp = fy_strdup_printf("%s/.%s.lock", c->dir, image_id);
    _cleanup_free_ char *part = fy_strdup_printf("%s/.%s.part", c->dir, image_id);
    if (!path || !lockp || !part)
        return fy_fail(err, FY_E_NOMEM, NULL);

    if (!cached(path)) {
        _cleanup_close_ int lfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lfd < 0)
            return fy_fail(err, FY_E_IO, "open %s: %s", lockp, strerror(errno));
        while (flock(lfd, LOCK_EX) < 0)
            if (errno != EINTR)
                return fy_fail(err, FY_E_IO, "flock %s: %s", lockp, strerror(errno));
        /* Someone else may have finished the download while we waited. */
        if (!cached(path)) {
            fy_debug("downloading image %s", image_id);
            if (download(c, image_id, part, err))
                return err->code;
            if (rename(part, path) < 0)
                return fy_fail(err, FY_E_IO, "rename %s: %s", part, strerror(errno));
        }
        /* The lock file stays: removing it would race with a waiter's open(). */
    }
    *ret_path = TAKE_PTR(path);
    return FY_E_OK;
}
