/* Guest disk files for the fake driver (and, later, cold-migration copies). */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include "compute_disk.h"
#include "fy_cleanup.h"

#define COPY_CHUNK (1 << 20)

static fy_code copy_rw(int in_fd, int out_fd, fy_err *err)
{
    _cleanup_free_ char *buf = malloc(COPY_CHUNK);
    if (!buf)
        return fy_fail(err, FY_E_NOMEM, NULL);
    for (;;) {
        ssize_t n = read(in_fd, buf, COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fy_fail(err, FY_E_IO, "read: %s", strerror(errno));
        if (n == 0)
            return FY_E_OK;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out_fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return fy_fail(err, FY_E_IO, "write: %s", strerror(errno));
            off += w;
        }
    }
}

fy_code compute_disk_copy_fd(int in_fd, int out_fd, fy_err *err)
{
    if (ioctl(out_fd, FICLONE, in_fd) == 0)
        return FY_E_OK;
    for (bool first = true;; first = false) {
        ssize_t n = copy_file_range(in_fd, NULL, out_fd, NULL, COPY_CHUNK * 64, 0);
        if (n == 0)
            return FY_E_OK;
        if (n > 0)
            continue;
        if (errno == EINTR)
            continue;
        /* Not supported between these files: fall back, but only before any
         * data moved (offsets are shared with the read/write path anyway). */
        if (first && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP))
            return copy_rw(in_fd, out_fd, err);
        return fy_fail(err, FY_E_IO, "copy_file_range: %s", strerror(errno));
    }
}

static fy_code disk_create(const char *path, const char *src, off_t size, bool durable,
                           fy_err *err)
{
    _cleanup_close_ int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
        return fy_fail(err, FY_E_IO, "create %s: %s", path, strerror(errno));
    if (src) {
        _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
        if (in < 0)
            return fy_fail(err, FY_E_IO, "open %s: %s", src, strerror(errno));
        if (compute_disk_copy_fd(in, out, err))
            return fy_err_prefix(err, "copying %s to %s", src, path);
    }
    struct stat st;
    if (fstat(out, &st) < 0)
        return fy_fail(err, FY_E_IO, "stat %s: %s", path, strerror(errno));
    if (st.st_size < size && ftruncate(out, size) < 0)
        return fy_fail(err, FY_E_IO, "extend %s to %lld bytes: %s", path, (long long)size,
                       strerror(errno));
    if (durable && fdatasync(out) < 0)
        return fy_fail(err, FY_E_IO, "sync %s: %s", path, strerror(errno));
    return FY_E_OK;
}

fy_code compute_disk_create(const char *path, const char *src, off_t size, fy_err *err)
{
    return disk_create(path, src, size, true, err);
}

fy_code compute_disk_create_empty(const char *path, off_t size, fy_err *err)
{
    return disk_create(path, NULL, size, false, err);
}
