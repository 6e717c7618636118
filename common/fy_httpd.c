/* fy_httpd — the daemon and the one dispatch path every request takes.
 *
 * Routing, the service's pre-dispatch hook and authentication run as soon as the
 * headers are in, so a request that will be refused (404, 405, 401, 413 by
 * Content-Length, 415) is answered before its body is read.  The body is then
 * collected (JSON/RAW routes, bounded by max_body) or streamed to a temp file
 * (FY_R_UPLOAD, bounded by max_upload; fy_httpd_upload.c), and the handler runs on
 * the last call. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include "fy_cleanup.h"
#include "fy_httpd_priv.h"

#include <openssl/evp.h>
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

/* Large enough that uploads (disk transfers) arrive in big chunks. */
#define FY_HTTPD_CONN_MEMORY (512 * 1024)
#define FY_HTTPD_IDLE_TIMEOUT_S 300
#define FY_HTTPD_STOP_WAIT_MS 15000
#define FY_HTTPD_STOP_GRACE_MS 1000

static bool request_id_sane(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static void conn_client_ip(fy_httpd_conn *c, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    c->client_ip[0] = '\0';
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                  c->client_ip, sizeof(c->client_ip));
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                  c->client_ip, sizeof(c->client_ip));
}

static fy_httpd_conn *conn_new(fy_httpd *d, struct MHD_Connection *conn, const char *method,
                               const char *url)
{
    fy_httpd_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->path = strdup(url);
    if (!c->path) {
        free(c);
        return NULL;
    }
    c->d = d;
    c->upload_fd = -1;
    c->start_us = fy_now_us();
    fy_resp_init(&c->resp);
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-openstack-request-id");
    if (request_id_sane(rid))
        snprintf(c->request_id, sizeof(c->request_id), "%s", rid);
    else
        fy_request_id_new(c->request_id);
    conn_client_ip(c, conn);
    c->req = (fy_req){
        .method = method,
        .path = c->path,
        .request_id = c->request_id,
        .conn = conn,
        .svc = d->conf.svc,
        .client_ip = c->client_ip,
        .priv = c,
    };
    atomic_fetch_add(&d->inflight, 1);
    return c;
}

static void conn_free(fy_httpd_conn *c)
{
    json_decref(c->req.json);
    fy_resp_clear(&c->resp);
    for (int i = 0; i < FY_MAX_PARAMS; i++)
        free(c->params[i]);
    if (c->upload_fd >= 0)
        close(c->upload_fd);
    fy_httpd_upload_free(c);
    EVP_MD_CTX_free(c->upload_md);
    if (c->upload_path)
        unlink(c->upload_path);
    free(c->upload_path);
    free(c->body);
    free(c->path);
    fy_httpd_conn_free_args(c);
    atomic_fetch_sub(&c->d->inflight, 1);
    free(c);
}

static bool route_is_json(const fy_route *r)
{
    return !(r->flags & (FY_R_UPLOAD | FY_R_RAW));
}

static size_t body_limit(const fy_httpd_conn *c)
{
    return (c->route->flags & FY_R_UPLOAD) ? c->d->conf.max_upload : c->d->conf.max_body;
}

/* application/json or a +json type, ignoring parameters; a missing type is taken
 * as JSON, as Nova does. */
static bool content_type_json(const fy_httpd_conn *c)
{
    const char *ct = fy_req_header(&c->req, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct)
        return true;
    ct += strspn(ct, " \t");
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n == strlen("application/json") && strncasecmp(ct, "application/json", n) == 0)
        return true;
    return n > strlen("application/+json") && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

static fy_code authenticate(fy_httpd_conn *c, fy_err *err)
{
    const fy_httpd_conf *conf = &c->d->conf;
    unsigned flags = c->route->flags;

    if (flags & FY_R_PUBLIC)
        return FY_E_OK;
    if ((flags & FY_R_INTERNAL) || !conf->authenticate) {
        const char *token = fy_req_header(&c->req, "X-Service-Token");
        if (!conf->service_secret || !conf->service_secret[0] || !token ||
            !fy_const_time_eq(token, conf->service_secret))
            return fy_fail(err, FY_E_UNAUTHORIZED, "The request you have made requires authentication.");
        c->req.auth.authenticated = true;
        c->req.auth.is_service = true;
        return FY_E_OK;
    }
    return conf->authenticate(&c->req, err);
}

static fy_code open_upload(fy_httpd_conn *c, fy_err *err)
{
    /* The body's layout first: a refused one leaves no file behind. */
    fy_code r = fy_httpd_upload_begin(c, err);
    if (r)
        return r;
    const char *dir = c->d->conf.upload_dir ? c->d->conf.upload_dir : "/tmp";
    if (asprintf(&c->upload_path, "%s/.upload-XXXXXX", dir) < 0) {
        c->upload_path = NULL;
        return fy_fail(err, FY_E_NOMEM, "out of memory");
    }
    c->upload_fd = mkostemp(c->upload_path, O_CLOEXEC);
    if (c->upload_fd < 0) {
        int e = errno;
        free(c->upload_path);
        c->upload_path = NULL;
        return fy_fail(err, FY_E_IO, "cannot create upload file in %s: %s", dir, strerror(e));
    }
    /* Hashing as the body streams in spares the handler a second pass over it. */
    c->upload_md = EVP_MD_CTX_new();
    if (!c->upload_md || !EVP_DigestInit_ex(c->upload_md, EVP_sha256(), NULL))
        return fy_fail(err, FY_E_NOMEM, "cannot start the upload digest");
    return FY_E_OK;
}

/* Everything decided from the request line and headers alone. */
static fy_code begin(fy_httpd_conn *c, fy_err *err)
{
    const fy_httpd_conf *conf = &c->d->conf;
    fy_code r = fy_httpd_route_find(c, err);
    if (r)
        return r;
    if (conf->pre_dispatch && (r = conf->pre_dispatch(&c->req, &c->resp, err)))
        return r;
    if ((r = authenticate(c, err)))
        return r;
    const char *cl = fy_req_header(&c->req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    long long len = 0;
    if (cl && fy_parse_ll(cl, 0, INT64_MAX, &len) && (size_t)len > body_limit(c))
        return fy_fail(err, FY_E_TOO_LARGE, "Request body exceeds the limit of %zu bytes",
                       body_limit(c));
    if (len > 0 && route_is_json(c->route) && !content_type_json(c))
        return fy_fail(err, FY_E_UNSUPPORTED_MEDIA, "Unsupported Content-Type");
    if (c->route->flags & FY_R_UPLOAD)
        return open_upload(c, err);
    return FY_E_OK;
}

static fy_code append_body(fy_httpd_conn *c, const char *data, size_t n, fy_err *err)
{
    if (c->body_len + n + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        while (cap < c->body_len + n + 1)
            cap *= 2;
        char *grown = realloc(c->body, cap);
        if (!grown)
            return fy_fail(err, FY_E_NOMEM, "out of memory");
        c->body = grown;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, data, n);
    c->body_len += n;
    c->body[c->body_len] = '\0';
    return FY_E_OK;
}

/* One chunk of body.  Once refused, later chunks are dropped unread. */
static fy_code consume(fy_httpd_conn *c, const char *data, size_t n, fy_err *err)
{
    c->received += n;
    if (c->received > body_limit(c))
        return fy_fail(err, FY_E_TOO_LARGE, "Request body exceeds the limit of %zu bytes",
                       body_limit(c));
    if (c->upload_fd >= 0)
        return fy_httpd_upload_write(c, data, n, err);
    return append_body(c, data, n, err);
}

/* The handler may have renamed the file away; ENOENT is then expected. */
static void drop_upload(fy_httpd_conn *c)
{
    if (!c->upload_path)
        return;
    unlink(c->upload_path);
    free(c->upload_path);
    c->upload_path = NULL;
    c->req.upload_path = NULL;
}

static void drop_body(fy_httpd_conn *c)
{
    free(c->body);
    c->body = NULL;
    c->body_len = c->body_cap = 0;
    if (c->upload_fd >= 0) {
        close(c->upload_fd);
        c->upload_fd = -1;
    }
}

/* The whole body is in: parse it and run the handler. */
static fy_code run_handler(fy_httpd_conn *c, fy_err *err)
{
    if (c->upload_fd >= 0) {
        if (fy_httpd_upload_end(c, err))
            return err->code;
        int fd = TAKE_FD(c->upload_fd);
        if (close(fd) < 0)
            return fy_fail(err, FY_E_IO, "cannot write upload file: %s", strerror(errno));
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        if (!EVP_DigestFinal_ex(c->upload_md, md, &mdlen) || mdlen != 32)
            return fy_fail(err, FY_E_INTERNAL, "upload digest failed");
        fy_hex(md, mdlen, c->req.upload_sha256);
        c->req.upload_path = c->upload_path;
    } else if (c->body_len > 0) {
        c->req.body = c->body;
        c->req.body_len = c->body_len;
        if (route_is_json(c->route)) {
            if (!content_type_json(c))
                return fy_fail(err, FY_E_UNSUPPORTED_MEDIA, "Unsupported Content-Type");
            fy_code r = fy_json_load(c->body, c->body_len, &c->req.json, err);
            if (r)
                return r;
        }
    }
    return c->route->fn(&c->req, &c->resp, err);
}

/* While stopping, an answer also closes its connection: a keep-alive client then
 * reconnects, to another process when several share the port (reuse_port). */
static enum MHD_Result queue(fy_httpd_conn *c)
{
    if (atomic_load(&c->d->stopping))
        fy_resp_add_header(&c->resp, MHD_HTTP_HEADER_CONNECTION, "close");
    return fy_httpd_conn_queue(c);
}

static enum MHD_Result dispatch(fy_httpd_conn *c, const char *data, size_t *data_size,
                                bool first)
{
    fy_err err = { 0 };

    if (first) {
        if (begin(c, &err))
            fy_httpd_conn_fail(c, &err);
        return c->answered ? queue(c) : MHD_YES;
    }
    if (*data_size > 0) {
        if (!c->answered && consume(c, data, *data_size, &err)) {
            drop_body(c);
            drop_upload(c);
            fy_httpd_conn_fail(c, &err);
        }
        *data_size = 0;
        return MHD_YES;
    }
    if (c->queued)
        return MHD_YES;
    if (!c->answered) {
        if (run_handler(c, &err))
            fy_httpd_conn_fail(c, &err);
        c->answered = true;
        drop_upload(c);
    }
    return queue(c);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    fy_httpd_conn *c = *con_cls;
    bool first = !c;
    (void)version;

    if (first) {
        c = conn_new(cls, conn, method, url);
        if (!c)
            return MHD_NO;
        *con_cls = c;
    }
    fy_log_set_request_id(c->request_id);
    enum MHD_Result r = dispatch(c, upload_data, upload_data_size, first);
    fy_log_set_request_id(NULL);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    fy_httpd *d = cls;
    fy_httpd_conn *c = *con_cls;
    (void)conn;
    (void)toe;

    if (!c)
        return;
    *con_cls = NULL;
    /* status 0: the client went away before an answer was queued */
    int status = c->queued ? c->status : 0;
    double seconds = (double)(fy_now_us() - c->start_us) / 1e6;
    fy_log_set_request_id(c->request_id);
    /* One line per request served: with several processes behind one port (reuse_port)
     * this is how a request id is traced to the process that handled it. */
    fy_info("%s %s -> %d (%.3f s)", c->req.method ? c->req.method : "-", c->path, status,
            seconds);
    if (d->conf.finished)
        d->conf.finished(&c->req, status, seconds);
    fy_log_set_request_id(NULL);
    conn_free(c);
}

/* MHD must leave the path escaped so "%2F" cannot split a segment; the path
 * captures and the query arguments are decoded by us. */
static size_t keep_escaped(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

typedef union fy_sockaddr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
} fy_sockaddr;

static fy_code parse_bind(const fy_httpd_conf *conf, fy_sockaddr *sa, unsigned *flags, fy_err *err)
{
    const char *addr = conf->bind_addr && conf->bind_addr[0] ? conf->bind_addr : "127.0.0.1";

    if (conf->port < 0 || conf->port > 65535)
        return fy_fail(err, FY_E_CONFIG, "invalid port %d", conf->port);
    *sa = (fy_sockaddr){ 0 };
    if (inet_pton(AF_INET, addr, &sa->in4.sin_addr) == 1) {
        sa->in4.sin_family = AF_INET;
        sa->in4.sin_port = htons((uint16_t)conf->port);
        return FY_E_OK;
    }
    if (inet_pton(AF_INET6, addr, &sa->in6.sin6_addr) == 1) {
        sa->in6.sin6_family = AF_INET6;
        sa->in6.sin6_port = htons((uint16_t)conf->port);
        *flags |= MHD_USE_IPv6;
        return FY_E_OK;
    }
    return fy_fail(err, FY_E_CONFIG, "invalid bind address '%s' (need a numeric IPv4/IPv6 address)",
                   addr);
}

fy_code fy_httpd_start(const fy_httpd_conf *conf, fy_httpd **ret, fy_err *err)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC;
    fy_sockaddr sa;
    fy_code r;

    if (!conf->routes || conf->nroutes == 0)
        return fy_fail(err, FY_E_CONFIG, "no routes");
    if ((r = parse_bind(conf, &sa, &flags, err)))
        return r;
    fy_httpd *d = calloc(1, sizeof(*d));
    if (!d)
        return fy_fail(err, FY_E_NOMEM, "out of memory");
    d->conf = *conf;
    atomic_init(&d->inflight, 0);
    atomic_init(&d->stopping, false);
    unsigned threads = conf->threads > 0 ? conf->threads : 1;
    /* Only passed when wanted: MHD_OPTION_LISTENING_ADDRESS_REUSE with 0 would also drop
     * the SO_REUSEADDR MHD sets by default (a restart could then fail on TIME_WAIT). */
    struct MHD_OptionItem reuse[] = {
        { conf->reuse_port ? MHD_OPTION_LISTENING_ADDRESS_REUSE : MHD_OPTION_END, 1, NULL },
        { MHD_OPTION_END, 0, NULL },
    };
    d->mhd = MHD_start_daemon(
        flags, (uint16_t)conf->port, NULL, NULL, on_access, d,
        MHD_OPTION_SOCK_ADDR, &sa.sa,
        MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)FY_HTTPD_CONN_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)FY_HTTPD_IDLE_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, d,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
        MHD_OPTION_ARRAY, reuse,
        MHD_OPTION_END);
    if (!d->mhd) {
        int e = errno;
        free(d);
        return fy_fail(err, FY_E_IO, "cannot listen on %s:%d: %s%s",
                       conf->bind_addr ? conf->bind_addr : "127.0.0.1", conf->port,
                       e ? strerror(e) : "libmicrohttpd refused to start",
                       e == EADDRINUSE && !conf->reuse_port
                           ? " (to run several processes on one port, set reuse_port in each)"
                           : "");
    }
    *ret = d;
    return FY_E_OK;
}

int fy_httpd_port(const fy_httpd *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : -1;
}

static unsigned open_connections(fy_httpd *d)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info ? info->num_connections : 0;
}

void fy_httpd_stop(fy_httpd *d)
{
    if (!d)
        return;
    atomic_store(&d->stopping, true);
    MHD_socket lsock = MHD_quiesce_daemon(d->mhd);
    /* Stop listening now, not after the drain: a quiesced socket still receives its
     * share of new connections and would leave them unanswered until it is closed.
     * shutdown() takes it out of the port (siblings sharing it by reuse_port get every
     * new connection) while the descriptor stays valid for MHD's threads until
     * MHD_stop_daemon. */
    if (lsock != MHD_INVALID_SOCKET)
        shutdown(lsock, SHUT_RD);
    /* Let requests already being served finish and send their answers, and give a
     * connection accepted just before a moment to send its request: until then it
     * cannot be told from an idle keep-alive one. */
    uint64_t now = fy_now_ms(), grace = now + FY_HTTPD_STOP_GRACE_MS;
    uint64_t deadline = now + FY_HTTPD_STOP_WAIT_MS;
    while (now < deadline && (atomic_load(&d->inflight) > 0 ||
                              (now < grace && open_connections(d) > 0))) {
        nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
        now = fy_now_ms();
    }
    MHD_stop_daemon(d->mhd);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    free(d);
}
