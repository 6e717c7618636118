/* fy_httpc — calls between services over libcurl.
 *
 * Each thread keeps one easy handle so its connections stay alive between calls
 * (curl_easy_reset keeps the connection cache).  A 2xx body goes to memory or,
 * with download_path, to a temp file renamed into place on success. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "fy_cleanup.h"
#include "fy_httpc.h"
#include "fy_log.h"
#include "fy_metrics.h"
#include "fy_util.h"

#define FY_HTTPC_MAX_BODY ((size_t)64 * 1024 * 1024)
#define FY_HTTPC_BACKOFF_CAP_MS 5000

static pthread_key_t handle_key;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;

static void handle_free(void *h)
{
    curl_easy_cleanup(h);
}

static void handle_key_make(void)
{
    pthread_key_create(&handle_key, handle_free);
}

void fy_httpc_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_once(&handle_once, handle_key_make);
}

void fy_httpc_thread_done(void)
{
    pthread_once(&handle_once, handle_key_make);
    CURL *h = pthread_getspecific(handle_key);
    if (h) {
        pthread_setspecific(handle_key, NULL);
        curl_easy_cleanup(h);
    }
}

static CURL *thread_handle(void)
{
    pthread_once(&handle_once, handle_key_make);
    CURL *h = pthread_getspecific(handle_key);
    if (h) {
        curl_easy_reset(h);
        return h;
    }
    h = curl_easy_init();
    if (h && pthread_setspecific(handle_key, h) != 0) {
        curl_easy_cleanup(h);
        return NULL;
    }
    return h;
}

void fy_http_result_clear(fy_http_result *r)
{
    if (!r)
        return;
    free(r->body);
    json_decref(r->json);
    *r = (fy_http_result){ 0 };
}

/* One attempt's body sink. */
typedef struct sink {
    CURL *h;
    const char *download_path;
    bool decided, to_file, too_big;
    int fd;
    char *tmp_path;
    char *buf;
    size_t len, cap;
    int write_errno;
} sink;

static void sink_reset(sink *s)
{
    if (s->fd >= 0)
        close(s->fd);
    if (s->tmp_path)
        unlink(s->tmp_path);
    free(s->tmp_path);
    free(s->buf);
    *s = (sink){ .h = s->h, .download_path = s->download_path, .fd = -1 };
}

static bool sink_open_file(sink *s)
{
    if (asprintf(&s->tmp_path, "%s.part-XXXXXX", s->download_path) < 0) {
        s->tmp_path = NULL;
        return false;
    }
    s->fd = mkostemp(s->tmp_path, O_CLOEXEC);
    if (s->fd < 0) {
        s->write_errno = errno;
        free(s->tmp_path);
        s->tmp_path = NULL;
        return false;
    }
    return true;
}

static bool sink_mem(sink *s, const char *data, size_t n)
{
    if (s->len + n > FY_HTTPC_MAX_BODY) {
        s->too_big = true;
        return false;
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *grown = realloc(s->buf, cap);
        if (!grown)
            return false;
        s->buf = grown;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return true;
}

static bool sink_file(sink *s, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = write(s->fd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->write_errno = errno;
            return false;
        }
        data += w;
        n -= (size_t)w;
    }
    return true;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
    sink *s = arg;
    size_t n = size * nmemb;

    if (!s->decided) {
        long status = 0;
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
        s->decided = true;
        s->to_file = s->download_path && status >= 200 && status < 300;
        if (s->to_file && !sink_open_file(s))
            return 0;
    }
    bool ok = s->to_file ? sink_file(s, data, n) : sink_mem(s, data, n);
    return ok ? n : 0;
}

/* Moves the finished download into place (creating it when the body was empty). */
static fy_code sink_commit(sink *s, fy_err *err)
{
    if (!s->download_path)
        return FY_E_OK;
    if (!s->to_file && !sink_open_file(s))
        return fy_fail(err, FY_E_IO, "cannot create %s: %s", s->download_path,
                       strerror(s->write_errno));
    s->to_file = true;
    int fd = TAKE_FD(s->fd);
    if (close(fd) < 0 || rename(s->tmp_path, s->download_path) < 0)
        return fy_fail(err, FY_E_IO, "cannot write %s: %s", s->download_path, strerror(errno));
    free(s->tmp_path);
    s->tmp_path = NULL;
    return FY_E_OK;
}

typedef struct call {
    const char *method, *url;
    const fy_httpc_opts *o;
    const char *json;              /* serialised body or NULL */
    struct curl_slist *headers;
    FILE *up;
    curl_off_t up_size;
    char errbuf[CURL_ERROR_SIZE];
} call;

static struct curl_slist *add_header(struct curl_slist *l, bool *ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static struct curl_slist *add_header(struct curl_slist *l, bool *ok, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        *ok = false;
        return l;
    }
    struct curl_slist *next = curl_slist_append(l, line);
    if (!next) {
        *ok = false;
        return l;
    }
    return next;
}

static bool build_headers(call *c)
{
    const fy_httpc_opts *o = c->o;
    const char *rid = fy_log_request_id();
    bool ok = true;
    struct curl_slist *l = NULL;

    l = add_header(l, &ok, "Accept: application/json");
    if (o->upload_path)
        l = add_header(l, &ok, "Content-Type: application/octet-stream");
    else if (c->json)
        l = add_header(l, &ok, "Content-Type: application/json");
    if (c->json)
        l = add_header(l, &ok, "Expect:"); /* small bodies: no 100-continue round trip */
    if (rid && rid[0])
        l = add_header(l, &ok, "x-openstack-request-id: %s", rid);
    if (o->service_secret)
        l = add_header(l, &ok, "X-Service-Token: %s", o->service_secret);
    if (o->auth_token)
        l = add_header(l, &ok, "X-Auth-Token: %s", o->auth_token);
    if (o->extra_header)
        l = add_header(l, &ok, "%s", o->extra_header);
    c->headers = l;
    return ok;
}

static void set_method(CURL *h, call *c)
{
    bool post = strcmp(c->method, "POST") == 0;

    if (c->up) {
        if (post) {
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, c->up_size);
        } else {
            curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, c->up_size);
            if (strcmp(c->method, "PUT") != 0)
                curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
        }
        curl_easy_setopt(h, CURLOPT_READDATA, c->up);
        return;
    }
    if (strcmp(c->method, "GET") == 0 && !c->json) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        return;
    }
    if (strcmp(c->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        return;
    }
    bool has_body = c->json || post || strcmp(c->method, "PUT") == 0 ||
                    strcmp(c->method, "PATCH") == 0;
    if (has_body) {
        /* also sends "Content-Length: 0" for an empty POST/PUT/PATCH */
        const char *b = c->json ? c->json : "";
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(b));
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, b);
    }
    if (!post)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
}

static fy_code open_upload(call *c, fy_err *err)
{
    if (c->up)
        fclose(c->up);
    c->up = fopen(c->o->upload_path, "rbe");
    struct stat st;
    if (!c->up || fstat(fileno(c->up), &st) < 0)
        return fy_fail(err, FY_E_IO, "cannot read %s: %s", c->o->upload_path, strerror(errno));
    c->up_size = (curl_off_t)st.st_size;
    return FY_E_OK;
}

static CURLcode perform(CURL *h, call *c, sink *s)
{
    const fy_httpc_opts *o = c->o;

    c->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 30000L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 2000L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    set_method(h, c);
    return curl_easy_perform(h);
}

static bool curl_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
        return true;
    default:
        return false;
    }
}

static fy_code curl_fail(const call *c, CURLcode rc, const sink *s, fy_err *err)
{
    const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);

    if (rc == CURLE_OPERATION_TIMEDOUT)
        return fy_fail(err, FY_E_TIMEOUT, "%s %s: %s", c->method, c->url, why);
    if (rc == CURLE_WRITE_ERROR && s->too_big)
        return fy_fail(err, FY_E_UPSTREAM, "%s %s: response larger than %zu bytes", c->method,
                       c->url, FY_HTTPC_MAX_BODY);
    if (rc == CURLE_WRITE_ERROR)
        return fy_fail(err, FY_E_IO, "%s %s: cannot store the response: %s", c->method, c->url,
                       strerror(s->write_errno ? s->write_errno : ENOMEM));
    if (rc == CURLE_READ_ERROR)
        return fy_fail(err, FY_E_IO, "%s %s: cannot read the upload: %s", c->method, c->url, why);
    if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
        return fy_fail(err, FY_E_INTERNAL, "bad URL %s: %s", c->url, why);
    if (curl_retryable(rc))
        return fy_fail(err, FY_E_UNAVAILABLE, "%s (%s %s)", why, c->method, c->url);
    return fy_fail(err, FY_E_UPSTREAM, "%s (%s %s)", why, c->method, c->url);
}

static fy_code status_code(long status)
{
    switch (status) {
    case 400: return FY_E_BAD_REQUEST;
    case 401: return FY_E_UNAUTHORIZED;
    case 403: return FY_E_FORBIDDEN;
    case 404: return FY_E_NOT_FOUND;
    case 409: return FY_E_CONFLICT;
    default: return FY_E_UPSTREAM;
    }
}

/* Ferry's {"error": {"code": NAME, "message": M}} keeps its code; Nova's
 * {"<key>": {"code": N, "message": M}} keeps its message, coded by status. */
static fy_code answer_fail(const call *c, const fy_http_result *r, fy_err *err)
{
    const json_t *j = r->json, *e = json_object_get(j, "error");
    const char *name = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));

    if (name)
        return fy_fail(err, fy_code_from_name(name), "%s", msg ? msg : "");
    if (json_is_object(j) && json_object_size(j) == 1) {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)j, key, v) {
            msg = json_string_value(json_object_get(v, "message"));
        }
        if (msg)
            return fy_fail(err, status_code(r->status), "%s", msg);
    }
    return fy_fail(err, status_code(r->status), "%s %s: HTTP %ld%s%.200s", c->method, c->url,
                   r->status, r->body_len ? ": " : "", r->body ? r->body : "");
}

static void fill_result(CURL *h, sink *s, fy_http_result *r)
{
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (s->to_file || !s->buf) {
        r->body = strdup("");
        r->body_len = 0;
    } else {
        r->body = TAKE_PTR(s->buf);
        r->body_len = s->len;
        s->len = s->cap = 0;
    }
    if (r->body_len > 0)
        r->json = json_loadb(r->body, r->body_len, 0, NULL);
}

static bool status_retryable(long status)
{
    return status == 502 || status == 503 || status == 504;
}

static void backoff_sleep(long ms)
{
    uint32_t rnd = 0;
    fy_random_bytes(&rnd, sizeof(rnd));
    /* full delay halved plus jitter, so concurrent callers spread out */
    long wait = ms / 2 + (long)(rnd % (uint32_t)(ms / 2 + 1));
    struct timespec ts = { wait / 1000, (wait % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* One attempt; *ret_retry says whether another may help. */
static fy_code attempt(CURL *h, call *c, const char *download, fy_http_result *ret,
                       bool *ret_retry, fy_err *err)
{
    sink s = { .h = h, .download_path = download, .fd = -1 };
    fy_code r;

    *ret_retry = false;
    if (c->o->upload_path && (r = open_upload(c, err)))
        return r;
    CURLcode rc = perform(h, c, &s);
    if (rc != CURLE_OK) {
        *ret_retry = curl_retryable(rc);
        r = curl_fail(c, rc, &s, err);
        sink_reset(&s);
        return r;
    }
    fill_result(h, &s, ret);
    if (ret->status >= 200 && ret->status < 300)
        r = sink_commit(&s, err);
    else {
        *ret_retry = status_retryable(ret->status);
        r = answer_fail(c, ret, err);
    }
    sink_reset(&s);
    return r;
}

fy_code fy_httpc_call(const char *method, const char *url, const json_t *body,
                      const fy_httpc_opts *opts, fy_http_result *ret, fy_err *err)
{
    static const fy_httpc_opts defaults = { 0 };
    const fy_httpc_opts *o = opts ? opts : &defaults;
    _cleanup_free_ char *json = NULL;
    call c = { .method = method, .url = url, .o = o };
    fy_code r = FY_E_OK;

    *ret = (fy_http_result){ 0 };
    if (body && !o->upload_path) {
        json = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!json)
            return fy_fail(err, FY_E_NOMEM, "cannot serialise the request body");
        c.json = json;
    }
    CURL *h = thread_handle();
    if (!h)
        return fy_fail(err, FY_E_NOMEM, "cannot create a curl handle");
    if (!build_headers(&c)) {
        curl_slist_free_all(c.headers);
        return fy_fail(err, FY_E_BAD_REQUEST, "request header too long or out of memory");
    }
    int tries = 1 + (o->retries > 0 ? o->retries : 0);
    long backoff = o->backoff_ms > 0 ? o->backoff_ms : 100;
    uint64_t start = fy_now_us();
    int i;
    for (i = 0; i < tries; i++) {
        bool retry;
        if (i > 0) {
            fy_debug("retrying %s %s after: %s", method, url, err ? err->msg : "");
            fy_http_result_clear(ret);
            backoff_sleep(backoff);
            backoff = backoff * 2 > FY_HTTPC_BACKOFF_CAP_MS ? FY_HTTPC_BACKOFF_CAP_MS : backoff * 2;
        }
        r = attempt(h, &c, o->download_path, ret, &retry, err);
        if (r == FY_E_OK || !retry)
            break;
    }
    fy_metrics_httpc_done(method, url, r, ret->status, i < tries ? i + 1 : tries,
                          (double)(fy_now_us() - start) / 1e6);
    if (c.up)
        fclose(c.up);
    curl_slist_free_all(c.headers);
    return r;
}
