/* fy_util — small libc-only helpers: ids, clocks, strings, files. */
#include "fy_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fy_cleanup.h"

bool fy_random_bytes(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        p += r;
        n -= (size_t)r;
    }
    return true;
}

void fy_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

void fy_uuid_v4(char out[FY_UUID_LEN + 1])
{
    uint8_t b[16];
    /* getrandom on Linux >= 3.17 does not fail for small requests once the pool
     * is initialised; aborting is better than handing out predictable ids. */
    if (!fy_random_bytes(b, sizeof b))
        abort();
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    char hex[33];
    fy_hex(b, sizeof b, hex);
    snprintf(out, FY_UUID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
             hex + 20);
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool fy_uuid_valid(const char *s)
{
    if (!s)
        return false;
    for (int i = 0; i < FY_UUID_LEN; i++) {
        bool dash = (i == 8 || i == 13 || i == 18 || i == 23);
        if (dash ? s[i] != '-' : !is_hex(s[i]))
            return false;
    }
    return s[FY_UUID_LEN] == '\0';
}

void fy_request_id_new(char out[48])
{
    char u[FY_UUID_LEN + 1];
    fy_uuid_v4(u);
    snprintf(out, 48, "req-%s", u);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t fy_now_ms(void)
{
    return mono_ns() / 1000000ull;
}

uint64_t fy_now_us(void)
{
    return mono_ns() / 1000ull;
}

void fy_time_iso(time_t t, char out[32])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, 32, "1970-01-01T00:00:00Z");
        return;
    }
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *fy_strdup_printf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

bool fy_streq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Time depends only on the length of b (the secret supplied by the caller
 * as the reference), never on where the first difference is. */
bool fy_const_time_eq(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    size_t la = strlen(a), lb = strlen(b);
    volatile unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < lb; i++) {
        unsigned char ca = i < la ? (unsigned char)a[i] : 0;
        diff |= (unsigned char)(ca ^ (unsigned char)b[i]);
    }
    return diff == 0;
}

bool fy_parse_ll(const char *s, long long min, long long max, long long *ret)
{
    if (!s || !*s)
        return false;
    /* strtoll skips leading blanks; a config or URL value with them is not a number. */
    if (!(s[0] == '-' || s[0] == '+' || (s[0] >= '0' && s[0] <= '9')))
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    if (v < min || v > max)
        return false;
    if (ret)
        *ret = v;
    return true;
}

int fy_mkdir_p(const char *path, unsigned mode)
{
    if (!path || !*path)
        return -EINVAL;
    _cleanup_free_ char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    for (char *c = p + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return -errno;
        *c = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(p, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static fy_code write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return FY_E_IO;
        }
        p += w;
        len -= (size_t)w;
    }
    return FY_E_OK;
}

/* fsync of the directory makes the rename itself durable. */
static void sync_parent_dir(const char *path)
{
    _cleanup_free_ char *dir = strdup(path);
    if (!dir)
        return;
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash) {
        *slash = '\0';
        d = slash == dir ? "/" : dir;
    }
    _cleanup_close_ int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        (void)fsync(fd);
}

static fy_code write_replace(const char *path, const void *data, size_t len, bool durable,
                             fy_err *err)
{
    char tmp[PATH_MAX];
    char rnd[9];
    uint8_t rb[4];
    if (!fy_random_bytes(rb, sizeof rb))
        return fy_fail(err, FY_E_IO, "%s: getrandom failed: %s", path, strerror(errno));
    fy_hex(rb, sizeof rb, rnd);
    int n = snprintf(tmp, sizeof tmp, "%s.tmp-%s", path, rnd);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return fy_fail(err, FY_E_IO, "%s: path too long", path);

    _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return fy_fail(err, FY_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
    if (write_all(fd, data, len) != FY_E_OK || (durable && fsync(fd) < 0)) {
        int e = errno;
        unlink(tmp);
        return fy_fail(err, FY_E_IO, "%s: write failed: %s", tmp, strerror(e));
    }
    int fdc = TAKE_FD(fd);
    if (close(fdc) < 0) {
        int e = errno;
        unlink(tmp);
        return fy_fail(err, FY_E_IO, "%s: close failed: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return fy_fail(err, FY_E_IO, "%s: rename failed: %s", path, strerror(e));
    }
    if (durable)
        sync_parent_dir(path);
    return FY_E_OK;
}

fy_code fy_write_file_atomic(const char *path, const void *data, size_t len, fy_err *err)
{
    return write_replace(path, data, len, true, err);
}

fy_code fy_write_file_replace(const char *path, const void *data, size_t len, fy_err *err)
{
    return write_replace(path, data, len, false, err);
}

fy_code fy_read_file(const char *path, size_t max, char **ret, size_t *ret_len, fy_err *err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fy_fail(err, errno == ENOENT ? FY_E_NOT_FOUND : FY_E_IO, "%s: cannot open: %s",
                       path, strerror(errno));
    size_t cap = 4096, len = 0;
    _cleanup_free_ char *buf = malloc(cap);
    if (!buf)
        return fy_fail(err, FY_E_NOMEM, NULL);
    for (;;) {
        if (len + 1 >= cap) {
            size_t ncap = cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb)
                return fy_fail(err, FY_E_NOMEM, NULL);
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return fy_fail(err, FY_E_IO, "%s: read failed: %s", path, strerror(errno));
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > max)
            return fy_fail(err, FY_E_TOO_LARGE, "%s: larger than %zu bytes", path, max);
    }
    buf[len] = '\0';
    if (ret_len)
        *ret_len = len;
    *ret = TAKE_PTR(buf);
    return FY_E_OK;
}
