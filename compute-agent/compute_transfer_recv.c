/* The disk data plane between agents: the receiving side.
 *
 * fy_httpd streams the body into a staging file, hashing it on the way in and
 * writing each extent's bytes straight to the extent's offset (a sparse upload,
 * see fy_httpd.h), so the staging file already is the disk, holes unallocated,
 * and its write-back runs while the body streams in.  The digest (header or
 * trailer) and the map are checked before anything else is touched, so a
 * corrupted stream leaves nothing behind; the file is then sized to the logical
 * size, synced once and renamed into place.  Only a staging file on another file
 * system than the instances is copied into a new file, extent by extent. */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "compute_extents.h"
#include "compute_mig.h"
#include "compute_sql.h"
#include "fy_cleanup.h"
#include "fy_log.h"
#include "fy_metrics.h"
#include "fy_util.h"

#define SHA_HEADER "X-Ferry-Sha256"
#define INSTANCE_HEADER "X-Ferry-Instance"
#define EXTENTS_HEADER FY_UPLOAD_EXTENTS_HEADER
#define SIZE_HEADER FY_UPLOAD_SIZE_HEADER
#define COPY_BUF (1 << 20)
/* The largest disk a flavor may ask for (16 TiB). */
#define MAX_DISK ((long long)16384 << 30)

static bool hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
            return false;
    return true;
}

/* The sender names the instance; without the header the migration row does. */
static fy_code target_instance(const fy_req *req, const char *mig, char out[37], fy_err *err)
{
    const char *h = fy_req_header(req, INSTANCE_HEADER);
    if (h) {
        if (!fy_uuid_valid(h))
            return fy_fail(err, FY_E_BAD_REQUEST, "%s must be a uuid", INSTANCE_HEADER);
        snprintf(out, 37, "%s", h);
        return FY_E_OK;
    }
    _cleanup_pgres_ PGresult *res = NULL;
    const char *params[] = {mig};
    if (fy_db_exec_one(&compute_sql_mig_instance, params, &res, err))
        return err->code == FY_E_NOT_FOUND
                   ? fy_fail(err, FY_E_NOT_FOUND, "Migration %s not found", mig)
                   : err->code;
    snprintf(out, 37, "%s", fy_db_str(res, 0, "instance_uuid"));
    return FY_E_OK;
}

static const char *sent_digest(const fy_req *req)
{
    const char *d = fy_req_header(req, SHA_HEADER);
    if (!d && req->conn)
        d = MHD_lookup_connection_value(req->conn, MHD_FOOTER_KIND, SHA_HEADER);
    return d;
}

/* The extent map of the body (body bytes long).  Without the headers the body
 * is the whole disk. */
static fy_code body_extents(const fy_req *req, long long body, compute_extents *m, fy_err *err)
{
    const char *sz = fy_req_header(req, SIZE_HEADER);
    const char *ext = fy_req_header(req, EXTENTS_HEADER);
    long long size = body;
    if (sz) {
        char *end = NULL;
        errno = 0;
        size = strtoll(sz, &end, 10);
        if (errno || *sz < '0' || *sz > '9' || *end || size > MAX_DISK)
            return fy_fail(err, FY_E_BAD_REQUEST, "%s must be a size in bytes up to %lld",
                           SIZE_HEADER, MAX_DISK);
    }
    if (!ext) {
        if (size != body)
            return fy_fail(err, FY_E_BAD_REQUEST, "%s %lld without %s needs a body of that size",
                           SIZE_HEADER, size, EXTENTS_HEADER);
        m->size = size;
        return compute_extents_add(m, 0, size, err);
    }
    if (compute_extents_parse(ext, size, m, err))
        return err->code;
    if (m->data != body)
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "The extents add up to %lld bytes but the body has %lld", m->data, body);
    return FY_E_OK;
}

static int pwrite_all(int fd, const char *buf, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, buf, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        buf += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

/* Copies len bytes at off of in to the same offset of out, in the kernel when it can. */
static fy_code copy_range(int in, int out, long long off, long long len, fy_err *err)
{
    _cleanup_free_ char *buf = NULL;
    while (len > 0) {
        loff_t io = off, oo = off;
        ssize_t n = buf ? -1 : copy_file_range(in, &io, out, &oo, (size_t)len, 0);
        if (n < 0 && !buf && errno != EINTR) {
            if (errno != EXDEV && errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
                return fy_fail(err, FY_E_IO, "copy_file_range: %s", strerror(errno));
            if (!(buf = malloc(COPY_BUF)))
                return fy_fail(err, FY_E_NOMEM, NULL);
        }
        if (buf) {
            n = pread(in, buf, (size_t)(len < COPY_BUF ? len : COPY_BUF), (off_t)off);
            if (n > 0 && pwrite_all(out, buf, (size_t)n, (off_t)off) < 0)
                return fy_fail(err, FY_E_IO, "write: %s", strerror(errno));
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fy_fail(err, FY_E_IO, "copying the disk: %s",
                           n < 0 ? strerror(errno) : "the staged body is short");
        off += n;
        len -= n;
    }
    return FY_E_OK;
}

/* How long making a received disk durable takes: the part of a transfer that a
 * copy without sync (cp) does not pay. */
static const fy_metric_def m_sync = {
    "ferry_disk_transfer_sync_seconds",
    "Time a received disk took to reach stable storage (its final fdatasync).",
    FY_METRIC_HISTOGRAM, {NULL},
    {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};

/* Sizes the staged disk, makes it durable (one sync) and readable as disks are. */
static fy_code finish_disk(int fd, const compute_extents *m, const char *path, fy_err *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return fy_fail(err, FY_E_IO, "stat %s: %s", path, strerror(errno));
    if (st.st_size != (off_t)m->size && ftruncate(fd, (off_t)m->size) < 0)
        return fy_fail(err, FY_E_IO, "size %s: %s", path, strerror(errno));
    if (fchmod(fd, 0644) < 0)
        return fy_fail(err, FY_E_IO, "chmod %s: %s", path, strerror(errno));
    uint64_t t0 = fy_now_us();
    if (fdatasync(fd) < 0)
        return fy_fail(err, FY_E_IO, "sync %s: %s", path, strerror(errno));
    fy_metric_observe(&m_sync, NULL, (double)(fy_now_us() - t0) / 1e6);
    return FY_E_OK;
}

/* The staging file is on another file system than the disk: a new file in
 * the disk's directory gets each extent copied to its offset. */
static fy_code copy_staged(const compute_extents *m, const char *staged, const char *part,
                           fy_err *err)
{
    _cleanup_close_ int in = open(staged, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return fy_fail(err, FY_E_IO, "open %s: %s", staged, strerror(errno));
    _cleanup_close_ int out = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
        return fy_fail(err, FY_E_IO, "create %s: %s", part, strerror(errno));
    for (size_t i = 0; i < m->n; i++)
        if (copy_range(in, out, m->v[i].off, m->v[i].len, err))
            return err->code;
    return finish_disk(out, m, part, err);
}

static bool same_fs(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev;
}

/* Puts the verified body in place as instances_path/<uuid>/disk.  The staging
 * file already holds the disk's layout (each extent at its offset, holes never
 * written): it is sized, synced once and renamed into place. */
static fy_code install(const compute_config *cfg, const char *staged, const compute_extents *m,
                       const char *uuid, fy_err *err)
{
    _cleanup_free_ char *dir = fy_strdup_printf("%s/%s", cfg->instances_path, uuid);
    _cleanup_free_ char *disk = fy_strdup_printf("%s/%s/disk", cfg->instances_path, uuid);
    _cleanup_free_ char *part = fy_strdup_printf("%s/%s/disk.part", cfg->instances_path, uuid);
    if (!dir || !disk || !part)
        return fy_fail(err, FY_E_NOMEM, NULL);
    int r = fy_mkdir_p(dir, 0755);
    if (r < 0)
        return fy_fail(err, FY_E_IO, "mkdir %s: %s", dir, strerror(-r));
    if (same_fs(staged, dir)) {
        _cleanup_close_ int fd = open(staged, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            return fy_fail(err, FY_E_IO, "open %s: %s", staged, strerror(errno));
        if (finish_disk(fd, m, staged, err))
            return err->code;
        if (rename(staged, disk) < 0)
            return fy_fail(err, FY_E_IO, "rename %s: %s", disk, strerror(errno));
        return FY_E_OK;
    }
    if (copy_staged(m, staged, part, err) == FY_E_OK && rename(part, disk) < 0)
        fy_fail(err, FY_E_IO, "rename %s: %s", disk, strerror(errno));
    if (err->code)
        unlink(part);
    return err->code;
}

fy_code compute_transfer_handle_put(fy_req *req, fy_resp *resp, fy_err *err)
{
    compute_ctx *ctx = req->svc;
    const char *mig = req->nparams > 0 ? req->params[0] : NULL;
    if (!fy_uuid_valid(mig))
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid migration uuid in the path");
    if (!req->upload_path)
        return fy_fail(err, FY_E_BAD_REQUEST, "The disk transfer has no body");
    const char *want = sent_digest(req);
    if (!hex64(want))
        return fy_fail(err, FY_E_BAD_REQUEST, "%s (header or trailer) must be a sha256 hex digest",
                       SHA_HEADER);
    _cleanup_(compute_extents_clear) compute_extents map = {0};
    if (body_extents(req, (long long)req->upload_len, &map, err))
        return err->code;
    /* With a map, fy_httpd wrote the body at its extents' offsets (and refused it
     * if it did not fit); without one, the body is the whole disk. */
    if (fy_req_header(req, EXTENTS_HEADER) && !req->upload_sparse)
        return fy_fail(err, FY_E_INTERNAL, "The disk transfer was not written at its extents");
    char uuid[37];
    if (target_instance(req, mig, uuid, err))
        return err->code;
    if (strcasecmp(req->upload_sha256, want) != 0)
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Disk transfer for migration %s failed its checksum (sent %s, got %s)",
                       mig, want, req->upload_sha256);
    if (install(ctx->cfg, req->upload_path, &map, uuid, err))
        return err->code;
    fy_info("migration %s: received disk of %s (%lld bytes, %lld of them data in %zu extents)",
            mig, uuid, map.size, map.data, map.n);
    json_t *body = json_pack("{s:s, s:s, s:I}", "instance_uuid", uuid, "sha256",
                             req->upload_sha256, "size", (json_int_t)map.size);
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}
