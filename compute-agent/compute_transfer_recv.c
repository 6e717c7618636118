/* The disk data plane between agents: the receiving side.
 *
 * fy_httpd streams the body into a staging file and hashes it on the way in.
 * The digest (header or trailer) is checked before anything else is touched,
 * so a corrupted stream leaves nothing behind.  A dense disk (one extent
 * covering it) is the staging file itself and is renamed into place; a sparse
 * one is rebuilt: the file is sized to the logical size and each extent is
 * copied to its offset, leaving the holes unallocated. */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "compute_disk.h"
#include "compute_extents.h"
#include "compute_mig.h"
#include "compute_sql.h"
#include "fy_cleanup.h"
#include "fy_log.h"
#include "fy_util.h"

#define SHA_HEADER "X-Ferry-Sha256"
#define INSTANCE_HEADER "X-Ferry-Instance"
#define EXTENTS_HEADER "X-Ferry-Extents"
#define SIZE_HEADER "X-Ferry-Size"
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

/* Copies len bytes at *in_off of in to out_off of out, in the kernel when it can. */
static fy_code copy_range(int in, long long *in_off, int out, long long out_off, long long len,
                          fy_err *err)
{
    _cleanup_free_ char *buf = NULL;
    while (len > 0) {
        loff_t io = *in_off, oo = out_off;
        ssize_t n = buf ? -1 : copy_file_range(in, &io, out, &oo, (size_t)len, 0);
        if (n < 0 && !buf && errno != EINTR) {
            if (errno != EXDEV && errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
                return fy_fail(err, FY_E_IO, "copy_file_range: %s", strerror(errno));
            if (!(buf = malloc(COPY_BUF)))
                return fy_fail(err, FY_E_NOMEM, NULL);
        }
        if (buf) {
            n = pread(in, buf, (size_t)(len < COPY_BUF ? len : COPY_BUF), (off_t)*in_off);
            if (n > 0 && pwrite_all(out, buf, (size_t)n, (off_t)out_off) < 0)
                return fy_fail(err, FY_E_IO, "write: %s", strerror(errno));
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fy_fail(err, FY_E_IO, "copying the disk: %s",
                           n < 0 ? strerror(errno) : "the staged body is short");
        *in_off += n;
        out_off += n;
        len -= n;
    }
    return FY_E_OK;
}

/* Writes the sparse disk to part: the logical size, then each extent in place. */
static fy_code build_sparse(const compute_extents *m, const char *staged, const char *part,
                            fy_err *err)
{
    _cleanup_close_ int in = open(staged, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return fy_fail(err, FY_E_IO, "open %s: %s", staged, strerror(errno));
    _cleanup_close_ int out = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
        return fy_fail(err, FY_E_IO, "create %s: %s", part, strerror(errno));
    if (ftruncate(out, (off_t)m->size) < 0)
        return fy_fail(err, FY_E_IO, "size %s: %s", part, strerror(errno));
    long long at = 0;
    for (size_t i = 0; i < m->n; i++)
        if (copy_range(in, &at, out, m->v[i].off, m->v[i].len, err))
            return err->code;
    if (fsync(out) < 0)
        return fy_fail(err, FY_E_IO, "fsync %s: %s", part, strerror(errno));
    return FY_E_OK;
}

/* A dense disk: the staging file is the disk. */
static fy_code install_staged(const char *staged, const char *disk, fy_err *err)
{
    if (rename(staged, disk) == 0)
        return FY_E_OK;
    if (errno != EXDEV)
        return fy_fail(err, FY_E_IO, "rename %s: %s", disk, strerror(errno));
    /* Staging is on another file system: copy, then rename within the target. */
    _cleanup_free_ char *part = fy_strdup_printf("%s.part", disk);
    if (!part)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (compute_disk_create(part, staged, 0, err))
        return err->code;
    if (rename(part, disk) < 0) {
        unlink(part);
        return fy_fail(err, FY_E_IO, "rename %s: %s", disk, strerror(errno));
    }
    return FY_E_OK;
}

/* Puts the verified body in place as instances_path/<uuid>/disk. */
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
    if (compute_extents_dense(m) && m->size > 0)
        return install_staged(staged, disk, err);
    if (build_sparse(m, staged, part, err) == FY_E_OK && rename(part, disk) < 0)
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
    struct stat st;
    if (stat(req->upload_path, &st) < 0)
        return fy_fail(err, FY_E_IO, "stat %s: %s", req->upload_path, strerror(errno));
    _cleanup_(compute_extents_clear) compute_extents map = {0};
    if (body_extents(req, (long long)st.st_size, &map, err))
        return err->code;
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
