/* fy_httpd_upload — how a FY_R_UPLOAD body reaches its temp file.
 *
 * The body is hashed (SHA-256) and written as it streams in: as it comes, or,
 * for a sparse body (FY_UPLOAD_SIZE_HEADER + FY_UPLOAD_EXTENTS_HEADER, see
 * fy_httpd.h), straight to its extents' offsets so the holes stay unallocated
 * and the handler has nothing to move.  A large chunk is hashed by a helper
 * thread while this one writes it, so a big upload is not one core's work.
 * Write-back of what was written is started every FY_UPLOAD_WRITEBACK bytes:
 * the disk writes while the rest streams in, and a handler that syncs the file
 * at the end finds little left. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fy_httpd_priv.h"

#define FY_UPLOAD_WRITEBACK ((long long)4 << 20)
/* Chunks from this size on are hashed beside their write. */
#define FY_UPLOAD_HASH_BESIDE ((size_t)64 << 10)

/* The helper thread of one upload: hashes the chunk it is given into md.  Only
 * one chunk is ever pending, and the writer waits for it before it returns the
 * chunk to the server (it is the server's buffer). */
struct fy_upload_hasher {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    EVP_MD_CTX *md;
    const char *data;
    size_t n;
    bool pending, stop, failed;
};

static void *hasher_main(void *arg)
{
    fy_upload_hasher *h = arg;
    pthread_mutex_lock(&h->lock);
    for (;;) {
        while (!h->pending && !h->stop)
            pthread_cond_wait(&h->cond, &h->lock);
        if (!h->pending)
            break;
        const char *data = h->data;
        size_t n = h->n;
        pthread_mutex_unlock(&h->lock);
        bool ok = EVP_DigestUpdate(h->md, data, n);
        pthread_mutex_lock(&h->lock);
        h->failed |= !ok;
        h->pending = false;
        pthread_cond_broadcast(&h->cond);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* The upload's helper, started on first use; NULL when it cannot be (the
 * chunk is then hashed in line). */
static fy_upload_hasher *hasher(fy_httpd_conn *c)
{
    if (c->up.hasher || c->up.no_hasher)
        return c->up.hasher;
    fy_upload_hasher *h = calloc(1, sizeof(*h));
    if (h) {
        h->md = c->upload_md;
        pthread_mutex_init(&h->lock, NULL);
        pthread_cond_init(&h->cond, NULL);
        if (pthread_create(&h->thread, NULL, hasher_main, h) == 0) {
            pthread_setname_np(h->thread, "upload-hash");
            return c->up.hasher = h;
        }
        pthread_cond_destroy(&h->cond);
        pthread_mutex_destroy(&h->lock);
        free(h);
    }
    c->up.no_hasher = true;
    return NULL;
}

static void hasher_post(fy_upload_hasher *h, const char *data, size_t n)
{
    pthread_mutex_lock(&h->lock);
    h->data = data;
    h->n = n;
    h->pending = true;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
}

/* Waits until the posted chunk is hashed; false when the digest failed. */
static bool hasher_wait(fy_upload_hasher *h)
{
    pthread_mutex_lock(&h->lock);
    while (h->pending)
        pthread_cond_wait(&h->cond, &h->lock);
    bool ok = !h->failed;
    pthread_mutex_unlock(&h->lock);
    return ok;
}

static void hasher_stop(fy_httpd_upload *u)
{
    fy_upload_hasher *h = u->hasher;
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_cond_broadcast(&h->cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL);
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->lock);
    free(h);
    u->hasher = NULL;
}

void fy_httpd_upload_free(fy_httpd_conn *c)
{
    hasher_stop(&c->up);
    free(c->up.ext);
    c->up = (fy_httpd_upload){0};
}

/* A decimal without sign or spaces, at most INT64_MAX; *end after it. */
static bool parse_num(const char *s, const char **end, long long *ret)
{
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    char *e = NULL;
    long long v = strtoll(s, &e, 10);
    if (errno)
        return false;
    *end = e;
    *ret = v;
    return true;
}

/* "off:len,off:len,..." for a file of size bytes: ascending, disjoint, within it. */
static fy_code parse_map(fy_httpd_conn *c, const char *map, long long size, fy_err *err)
{
    size_t cap = 1;
    for (const char *p = map; *p; p++)
        cap += *p == ',';
    if (!(c->up.ext = calloc(cap, sizeof(*c->up.ext))))
        return fy_fail(err, FY_E_NOMEM, "out of memory");
    long long end = 0;
    for (const char *p = map; *p;) {
        long long off, len;
        const char *q;
        if (!parse_num(p, &q, &off) || *q != ':' || !parse_num(q + 1, &q, &len) ||
            (*q != ',' && *q != '\0') || (*q == ',' && q[1] == '\0'))
            return fy_fail(err, FY_E_BAD_REQUEST, "%s is not \"off:len,...\"",
                           FY_UPLOAD_EXTENTS_HEADER);
        if (len == 0 || off < end || off > size || len > size - off)
            return fy_fail(err, FY_E_BAD_REQUEST,
                           "%s: extent %lld:%lld is empty, out of order, overlapping or past "
                           "the size %lld", FY_UPLOAD_EXTENTS_HEADER, off, len, size);
        c->up.ext[c->up.n++] = (fy_upload_extent){off, len};
        c->up.data += len;
        end = off + len;
        p = *q ? q + 1 : q;
    }
    return FY_E_OK;
}

fy_code fy_httpd_upload_begin(fy_httpd_conn *c, fy_err *err)
{
    const char *map = fy_req_header(&c->req, FY_UPLOAD_EXTENTS_HEADER);
    if (!map)
        return FY_E_OK;
    const char *sz = fy_req_header(&c->req, FY_UPLOAD_SIZE_HEADER);
    const char *end = NULL;
    long long size;
    if (!sz || !parse_num(sz, &end, &size) || *end)
        return fy_fail(err, FY_E_BAD_REQUEST, "%s needs %s: the size in bytes",
                       FY_UPLOAD_EXTENTS_HEADER, FY_UPLOAD_SIZE_HEADER);
    if (parse_map(c, map, size, err))
        return err->code;
    if ((unsigned long long)c->up.data > c->d->conf.max_upload)
        return fy_fail(err, FY_E_TOO_LARGE, "Request body exceeds the limit of %zu bytes",
                       c->d->conf.max_upload);
    c->up.sparse = true;
    return FY_E_OK;
}

static int pwrite_all(int fd, const char *data, size_t n, long long off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, data, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        data += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

/* [off, off+n) of the file was written: start the write-back of the window
 * when it is full.  Advisory: a failure shows at the handler's sync. */
static void written(fy_httpd_conn *c, long long off, size_t n)
{
    fy_httpd_upload *u = &c->up;
    if (u->dirty_end == u->dirty_start)
        u->dirty_start = off;
    u->dirty_end = off + (long long)n;
    if (u->dirty_end - u->dirty_start >= FY_UPLOAD_WRITEBACK) {
        (void)sync_file_range(c->upload_fd, (off_t)u->dirty_start,
                              (off_t)(u->dirty_end - u->dirty_start), SYNC_FILE_RANGE_WRITE);
        u->dirty_start = u->dirty_end;
    }
}

/* Writes one chunk where it goes. */
static fy_code place(fy_httpd_conn *c, const char *data, size_t n, fy_err *err)
{
    fy_httpd_upload *u = &c->up;
    if (!u->sparse) {
        if (pwrite_all(c->upload_fd, data, n, u->len) < 0)
            return fy_fail(err, FY_E_IO, "cannot write upload file: %s", strerror(errno));
        written(c, u->len, n);
        u->len += (long long)n;
        return FY_E_OK;
    }
    while (n > 0) {
        if (u->at == u->n)
            return fy_fail(err, FY_E_BAD_REQUEST, "The body is longer than the %lld bytes of "
                           "its %s", u->data, FY_UPLOAD_EXTENTS_HEADER);
        const fy_upload_extent *e = &u->ext[u->at];
        size_t k = (long long)n < e->len - u->in ? n : (size_t)(e->len - u->in);
        if (pwrite_all(c->upload_fd, data, k, e->off + u->in) < 0)
            return fy_fail(err, FY_E_IO, "cannot write upload file: %s", strerror(errno));
        written(c, e->off + u->in, k);
        u->in += (long long)k;
        u->len += (long long)k;
        if (u->in == e->len) {
            u->at++;
            u->in = 0;
        }
        data += k;
        n -= k;
    }
    return FY_E_OK;
}

fy_code fy_httpd_upload_write(fy_httpd_conn *c, const char *data, size_t n, fy_err *err)
{
    fy_upload_hasher *h = n >= FY_UPLOAD_HASH_BESIDE ? hasher(c) : NULL;
    if (h)
        hasher_post(h, data, n);
    else if (!EVP_DigestUpdate(c->upload_md, data, n))
        return fy_fail(err, FY_E_INTERNAL, "upload digest failed");
    fy_code rc = place(c, data, n, err);
    if (h && !hasher_wait(h) && rc == FY_E_OK)
        rc = fy_fail(err, FY_E_INTERNAL, "upload digest failed");
    return rc;
}

fy_code fy_httpd_upload_end(fy_httpd_conn *c, fy_err *err)
{
    hasher_stop(&c->up);
    if (c->up.sparse && c->up.len != c->up.data)
        return fy_fail(err, FY_E_BAD_REQUEST, "The extents add up to %lld bytes but the body "
                       "has %lld", c->up.data, c->up.len);
    c->req.upload_len = (size_t)c->up.len;
    c->req.upload_sparse = c->up.sparse;
    return FY_E_OK;
}
