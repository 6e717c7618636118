/* The disk data plane between agents: the sending side.
 *
 * Only the disk's data extents travel (SEEK_DATA/SEEK_HOLE): their map goes in
 * X-Ferry-Extents with the logical size in X-Ferry-Size, the body is their
 * concatenation.  The sender reads with large buffers, hashing as it reads, and
 * sends the sha256 of the body as the trailer X-Ferry-Sha256 of a chunked body
 * (it is known only at the end).  The hashing stays on the reading thread:
 * libcurl may free its buffer as soon as the transfer ends (an early answer),
 * so nothing may read that buffer later.  The receiver is
 * compute_transfer_recv.c. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "compute_extents.h"
#include "compute_fault.h"
#include "compute_mig.h"
#include "compute_sql.h"
#include "fy_cleanup.h"
#include "fy_db.h"
#include "fy_log.h"
#include "fy_util.h"

#define XFER_BUF (1 << 20)
/* libcurl's largest upload buffer: fewer, larger reads and chunks. */
#define XFER_UPLOAD_BUF (2L << 20)
/* Reads are hashed in steps that stay in a core's L2 cache. */
#define XFER_HASH_STEP ((size_t)256 << 10)
#define SHA_HEADER "X-Ferry-Sha256"
#define INSTANCE_HEADER "X-Ferry-Instance"
#define EXTENTS_HEADER FY_UPLOAD_EXTENTS_HEADER
#define SIZE_HEADER FY_UPLOAD_SIZE_HEADER
#define JOB_KIND "disk_transfer"

typedef struct push_state {
    const compute_xfer *x;
    int fd;
    compute_extents map;
    size_t at;             /* the extent being read */
    long long in_ext;      /* bytes of it already read */
    long long reported;    /* logical position last added to x->done */
    EVP_MD_CTX *md;
    bool corrupt;          /* flip one byte of the next chunk (after hashing it) */
    char hex[65];
    char trailer[128];
    fy_err io_err;
} push_state;

/* How far into the file (holes included) the reads have come. */
static long long logical_pos(const push_state *s)
{
    return s->at < s->map.n ? s->map.v[s->at].off + s->in_ext : s->map.size;
}

/* Fills buf from the current extent onwards, hashing each read while it is
 * still in the CPU's cache; -1 on a read error. */
static ssize_t read_extents(push_state *s, char *buf, size_t room)
{
    size_t got = 0;
    while (got < room && s->at < s->map.n) {
        const compute_extent *e = &s->map.v[s->at];
        long long left = e->len - s->in_ext;
        size_t want = room - got < XFER_HASH_STEP ? room - got : XFER_HASH_STEP;
        if ((long long)want > left)
            want = (size_t)left;
        ssize_t n = pread(s->fd, buf + got, want, (off_t)(e->off + s->in_ext));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fy_fail(&s->io_err, FY_E_IO, "read %s: %s", s->x->path,
                    n < 0 ? strerror(errno) : "the file shrank while it was sent");
            return -1;
        }
        EVP_DigestUpdate(s->md, buf + got, (size_t)n);
        got += (size_t)n;
        s->in_ext += n;
        if (s->in_ext == e->len) {
            s->at++;
            s->in_ext = 0;
        }
    }
    return (ssize_t)got;
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
    push_state *s = arg;
    if (s->x->cancel && atomic_load(s->x->cancel))
        return CURL_READFUNC_ABORT;
    ssize_t n = read_extents(s, buf, size * nitems);
    if (n < 0)
        return CURL_READFUNC_ABORT;
    if (n > 0 && s->corrupt) {
        buf[n / 2] ^= 0x5a;   /* after it was hashed: the receiver must notice */
        s->corrupt = false;
    }
    long long pos = logical_pos(s);
    if (s->x->done)
        atomic_fetch_add(s->x->done, pos - s->reported);
    s->reported = pos;
    return (size_t)n;
}

static int trailer_cb(struct curl_slist **list, void *arg)
{
    push_state *s = arg;
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(s->md, dig, &len);
    fy_hex(dig, len, s->hex);
    snprintf(s->trailer, sizeof(s->trailer), "%s: %s", SHA_HEADER, s->hex);
    *list = curl_slist_append(*list, s->trailer);
    return *list ? CURL_TRAILERFUNC_OK : CURL_TRAILERFUNC_ABORT;
}

static struct curl_slist *append_owned(struct curl_slist *h, char *line)
{
    struct curl_slist *r = line && h ? curl_slist_append(h, line) : NULL;
    free(line);
    if (!r)
        curl_slist_free_all(h);
    return r;
}

static struct curl_slist *push_headers(const push_state *s)
{
    const compute_xfer *x = s->x;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    h = append_owned(h, fy_strdup_printf("X-Service-Token: %s",
                                         x->service_secret ? x->service_secret : ""));
    h = append_owned(h, fy_strdup_printf("%s: %s", INSTANCE_HEADER, x->instance_uuid));
    h = append_owned(h, fy_strdup_printf("x-openstack-request-id: %s", fy_log_request_id()));
    h = append_owned(h, fy_strdup_printf("%s: %lld", SIZE_HEADER, s->map.size));
    _cleanup_free_ char *ext = compute_extents_format(&s->map);
    /* "Name;" is libcurl's way to send a header with an empty value (no extents). */
    h = append_owned(h, ext ? (ext[0] ? fy_strdup_printf("%s: %s", EXTENTS_HEADER, ext)
                                      : fy_strdup_printf("%s;", EXTENTS_HEADER))
                            : NULL);
    h = append_owned(h, fy_strdup_printf("Transfer-Encoding: chunked"));
    h = append_owned(h, fy_strdup_printf("Trailer: %s", SHA_HEADER));
    return append_owned(h, fy_strdup_printf("Expect:"));
}

/* The receiver's answer: 2xx, or its error shape carried back as fy_code. */
static fy_code check_answer(long status, const char *body, fy_err *err)
{
    if (status >= 200 && status < 300)
        return FY_E_OK;
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    json_t *e = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    fy_code c = code ? fy_code_from_name(code) : FY_E_UPSTREAM;
    fy_fail(err, c, "disk transfer refused (%ld): %s", status, msg ? msg : "no message");
    json_decref(j);
    return err->code;
}

typedef struct sink {
    char buf[4096];
    size_t len;
} sink;

static size_t write_cb(char *data, size_t size, size_t n, void *arg)
{
    sink *s = arg;
    size_t k = size * n;
    size_t room = sizeof(s->buf) - 1 - s->len;
    memcpy(s->buf + s->len, data, k < room ? k : room);
    s->len += k < room ? k : room;
    s->buf[s->len] = '\0';
    return k;
}

static fy_code perform(CURL *h, push_state *s, fy_err *err)
{
    _cleanup_free_ char *url = fy_strdup_printf("%s/internal/v1/transfer/%s/disk",
                                                s->x->dest_url, s->x->migration_uuid);
    struct curl_slist *hdr = push_headers(s);
    sink out = {.len = 0};
    if (!url || !hdr) {
        curl_slist_free_all(hdr);
        return fy_fail(err, FY_E_NOMEM, NULL);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(h, CURLOPT_READDATA, s);
    curl_easy_setopt(h, CURLOPT_TRAILERFUNCTION, trailer_cb);
    curl_easy_setopt(h, CURLOPT_TRAILERDATA, s);
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, XFER_UPLOAD_BUF);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    CURLcode cc = curl_easy_perform(h);
    curl_slist_free_all(hdr);
    if (s->io_err.code)
        return fy_fail(err, s->io_err.code, "%s", s->io_err.msg);
    if (cc == CURLE_ABORTED_BY_CALLBACK)
        return fy_fail(err, FY_E_CONFLICT, "disk transfer cancelled");
    if (cc != CURLE_OK)
        return fy_fail(err, FY_E_UNAVAILABLE, "disk transfer to %s: %s", s->x->dest_url,
                       curl_easy_strerror(cc));
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return check_answer(status, out.buf, err);
}

static fy_code push_file(push_state *s, fy_err *err)
{
    _cleanup_close_ int fd = open(s->x->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return fy_fail(err, FY_E_IO, "open %s: %s", s->x->path, strerror(errno));
    if (compute_extents_scan(fd, (long long)st.st_size, &s->map, err))
        return err->code;
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    s->fd = fd;
    s->md = EVP_MD_CTX_new();
    CURL *h = curl_easy_init();
    fy_code rc;
    if (!s->md || !h || !EVP_DigestInit_ex(s->md, EVP_sha256(), NULL))
        rc = fy_fail(err, FY_E_NOMEM, NULL);
    else
        rc = perform(h, s, err);
    if (h)
        curl_easy_cleanup(h);
    EVP_MD_CTX_free(s->md);
    s->fd = -1;
    return rc;
}

/* The transfer's own record (migration_jobs): bookkeeping, so a failed write
 * is logged, never the transfer's failure. */
static void job_record(const compute_xfer *x, const char *state, const fy_err *cause)
{
    if (!x->host)
        return;
    fy_err err = {0};
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc;
    if (!state) {
        const char *p[] = {x->migration_uuid, JOB_KIND, x->host};
        rc = fy_db_exec(&compute_sql_job_begin, p, &res, &err);
    } else {
        const char *p[] = {x->migration_uuid, JOB_KIND, x->host, state,
                           cause ? cause->msg : NULL,
                           cause ? fy_code_name(cause->code) : NULL, NULL};
        rc = fy_db_exec(&compute_sql_job_end, p, &res, &err);
    }
    if (rc)
        fy_warn("migration %s: disk transfer not recorded: %s", x->migration_uuid, err.msg);
}

fy_code compute_transfer_push(const compute_xfer *x, char *ret_sha256, fy_err *err)
{
    if (!x->dest_url || strncmp(x->dest_url, "http", 4) != 0)
        return fy_fail(err, FY_E_BAD_REQUEST, "dest_url is needed to transfer a disk");
    push_state s = {.x = x, .fd = -1};
    fy_err fe = {0};
    s.corrupt = compute_fault_check("transfer_corrupt", &fe) != FY_E_OK;
    job_record(x, NULL, NULL);
    uint64_t t0 = fy_now_us();
    fy_code rc = push_file(&s, err);
    job_record(x, rc ? (rc == FY_E_CONFLICT ? "cancelled" : "failed") : "completed",
               rc ? err : NULL);
    if (rc == FY_E_OK) {
        double ms = (double)(fy_now_us() - t0) / 1000.0;
        fy_debug("migration %s: sent %lld of %lld bytes in %zu extents, %.1f ms",
                 x->migration_uuid, s.map.data, s.map.size, s.map.n, ms);
        if (ret_sha256)
            memcpy(ret_sha256, s.hex, sizeof(s.hex));
    }
    compute_extents_clear(&s.map);
    return rc;
}

fy_code compute_sha256_file(const char *path, char out[65], fy_err *err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fy_fail(err, FY_E_IO, "open %s: %s", path, strerror(errno));
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    _cleanup_free_ unsigned char *buf = malloc(XFER_BUF);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    fy_code rc = FY_E_OK;
    if (!buf || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
        rc = fy_fail(err, FY_E_NOMEM, NULL);
    for (ssize_t n = 1; rc == FY_E_OK && n != 0;) {
        n = read(fd, buf, XFER_BUF);
        if (n < 0 && errno != EINTR)
            rc = fy_fail(err, FY_E_IO, "read %s: %s", path, strerror(errno));
        else if (n > 0)
            EVP_DigestUpdate(md, buf, (size_t)n);
    }
    if (rc == FY_E_OK) {
        unsigned char dig[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        EVP_DigestFinal_ex(md, dig, &len);
        fy_hex(dig, len, out);
    }
    EVP_MD_CTX_free(md);
    return rc;
}
