/* Extent maps of sparse disks (see compute_extents.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "compute_extents.h"

void compute_extents_clear(compute_extents *m)
{
    free(m->v);
    *m = (compute_extents){0};
}

fy_code compute_extents_add(compute_extents *m, long long off, long long len, fy_err *err)
{
    if (len <= 0)
        return FY_E_OK;
    m->data += len;
    if (m->n > 0 && m->v[m->n - 1].off + m->v[m->n - 1].len == off) {
        m->v[m->n - 1].len += len;
        return FY_E_OK;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        compute_extent *v = realloc(m->v, cap * sizeof(*v));
        if (!v)
            return fy_fail(err, FY_E_NOMEM, NULL);
        m->v = v;
        m->cap = cap;
    }
    m->v[m->n++] = (compute_extent){off, len};
    return FY_E_OK;
}

void compute_extents_coalesce(compute_extents *m, long long gap)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) {
        compute_extent *last = k > 0 ? &m->v[k - 1] : NULL;
        long long end = last ? last->off + last->len : 0;
        if (last && m->v[i].off - end < gap) {
            m->data += m->v[i].off - end;   /* the hole is sent as zeros */
            last->len = m->v[i].off + m->v[i].len - last->off;
        } else {
            m->v[k++] = m->v[i];
        }
    }
    m->n = k;
}

/* The seek failed because the file system cannot tell holes from data. */
static bool no_seek_data(int e)
{
    return e == EINVAL || e == EOPNOTSUPP || e == ENOTSUP;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Merges the smallest holes, just enough of them to fit max extents: the
 * fewest zero bytes sent for the bound. */
static fy_code extents_bound(compute_extents *m, size_t max, fy_err *err)
{
    if (m->n <= max)
        return FY_E_OK;
    size_t ngaps = m->n - 1;
    long long *gaps = malloc(ngaps * sizeof(*gaps));
    if (!gaps)
        return fy_fail(err, FY_E_NOMEM, NULL);
    for (size_t i = 0; i < ngaps; i++)
        gaps[i] = m->v[i + 1].off - (m->v[i].off + m->v[i].len);
    qsort(gaps, ngaps, sizeof(*gaps), cmp_ll);
    size_t merge = m->n - max;
    long long limit = gaps[merge - 1];
    /* Holes below the limit all go; of those equal to it, only as many as needed. */
    size_t equal = 0;
    for (size_t i = 0; i < merge; i++)
        equal += gaps[i] == limit;
    free(gaps);
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) {
        compute_extent *last = k > 0 ? &m->v[k - 1] : NULL;
        long long gap = last ? m->v[i].off - (last->off + last->len) : 0;
        bool take = last && (gap < limit || (gap == limit && equal > 0));
        if (take && gap == limit)
            equal--;
        if (take) {
            m->data += gap;
            last->len = m->v[i].off + m->v[i].len - last->off;
        } else {
            m->v[k++] = m->v[i];
        }
    }
    m->n = k;
    return FY_E_OK;
}

fy_code compute_extents_scan(int fd, long long size, compute_extents *m, fy_err *err)
{
    m->size = size;
    for (long long pos = 0; pos < size;) {
        off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
        if (d < 0 && errno == ENXIO)
            break;
        off_t h = d < 0 ? -1 : lseek(fd, d, SEEK_HOLE);
        if (d < 0 || h < 0) {
            if (!no_seek_data(errno))
                return fy_fail(err, FY_E_IO, "seeking the data of the disk: %s", strerror(errno));
            m->n = 0;
            m->data = 0;
            return compute_extents_add(m, 0, size, err);
        }
        if (h > size)
            h = (off_t)size;
        if (compute_extents_add(m, d, h - d, err))
            return err->code;
        pos = h;
    }
    compute_extents_coalesce(m, COMPUTE_EXTENTS_MIN_HOLE);
    return extents_bound(m, COMPUTE_EXTENTS_MAX, err);
}

char *compute_extents_format(const compute_extents *m)
{
    /* Two 19-digit numbers, ':' and ',' per extent. */
    size_t cap = m->n * 40 + 1;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t at = 0;
    s[0] = '\0';
    for (size_t i = 0; i < m->n; i++)
        at += (size_t)snprintf(s + at, cap - at, "%s%lld:%lld", i ? "," : "", m->v[i].off,
                               m->v[i].len);
    return s;
}

/* A non-negative decimal without sign or spaces; *end after it. */
static bool parse_num(const char *s, const char **end, long long *ret)
{
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    char *e = NULL;
    long long v = strtoll(s, &e, 10);
    if (errno || v < 0)
        return false;
    *end = e;
    *ret = v;
    return true;
}

fy_code compute_extents_parse(const char *s, long long size, compute_extents *m, fy_err *err)
{
    m->size = size;
    long long end = 0;
    for (const char *p = s; *p;) {
        long long off, len;
        const char *q;
        if (!parse_num(p, &q, &off) || *q != ':' || !parse_num(q + 1, &q, &len) ||
            (*q != ',' && *q != '\0') || (*q == ',' && q[1] == '\0'))
            return fy_fail(err, FY_E_BAD_REQUEST, "X-Ferry-Extents is not \"off:len,...\"");
        if (len == 0 || off < end || off > size || len > size - off)
            return fy_fail(err, FY_E_BAD_REQUEST,
                           "X-Ferry-Extents: extent %lld:%lld is empty, out of order, "
                           "overlapping or past the size %lld", off, len, size);
        if (m->n >= COMPUTE_EXTENTS_MAX)
            return fy_fail(err, FY_E_BAD_REQUEST, "X-Ferry-Extents has more than %d extents",
                           COMPUTE_EXTENTS_MAX);
        /* Extents that touch are one run: merged, so the count stays honest. */
        if (compute_extents_add(m, off, len, err))
            return err->code;
        end = off + len;
        p = *q ? q + 1 : q;
    }
    return FY_E_OK;
}

bool compute_extents_dense(const compute_extents *m)
{
    return m->size == 0 || (m->n == 1 && m->v[0].off == 0 && m->v[0].len == m->size);
}
