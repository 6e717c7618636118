/* fy_db — per-thread libpq connections and prepared statement execution. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fy_cleanup.h"
#include "fy_db_int.h"
#include "fy_log.h"
#include "fy_metrics.h"
#include "fy_util.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static char *g_url;
static char *g_app;

static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;

static void tls_free(void *p)
{
    fy_db_tls *t = p;
    if (!t)
        return;
    fy_db__reset(t);
    free(t);
}

static void key_create(void)
{
    /* The destructor covers threads that exit without fy_db_thread_cleanup(). */
    if (pthread_key_create(&g_key, tls_free) != 0)
        abort();
}

fy_db_tls *fy_db__tls(void)
{
    pthread_once(&g_key_once, key_create);
    fy_db_tls *t = pthread_getspecific(g_key);
    if (t)
        return t;
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->rng = (unsigned)(uintptr_t)t ^ (unsigned)fy_now_us();
    if (pthread_setspecific(g_key, t) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

fy_code fy_db_init(const char *url, const char *app_name, fy_err *err)
{
    if (!url || !*url)
        return fy_fail(err, FY_E_CONFIG, "database URL is empty");
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (!opts) {
        fy_code rc = fy_fail(err, FY_E_CONFIG, "bad database URL: %s",
                             perr ? perr : "out of memory");
        PQfreemem(perr);
        return rc;
    }
    PQconninfoFree(opts);

    char *u = strdup(url), *a = strdup(app_name && *app_name ? app_name : "ferry");
    if (!u || !a) {
        free(u);
        free(a);
        return fy_fail(err, FY_E_NOMEM, NULL);
    }
    pthread_mutex_lock(&g_lock);
    free(g_url);
    free(g_app);
    g_url = u;
    g_app = a;
    pthread_mutex_unlock(&g_lock);
    return FY_E_OK;
}

static void quiet_notice(void *arg, const char *msg)
{
    (void)arg;
    fy_debug("db notice: %s", msg);
}

/* Copies libpq's message without its trailing newline. */
static void copy_msg(char *out, size_t n, const char *msg)
{
    snprintf(out, n, "%s", msg && *msg ? msg : "unknown error");
    size_t len = strlen(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
        out[--len] = '\0';
}

fy_code fy_db__connect(const char *app_suffix, PGconn **ret, fy_err *err)
{
    _cleanup_free_ char *url = NULL;
    _cleanup_free_ char *app = NULL;
    pthread_mutex_lock(&g_lock);
    if (g_url) {
        url = strdup(g_url);
        app = fy_strdup_printf("%s%s", g_app, app_suffix ? app_suffix : "");
    }
    pthread_mutex_unlock(&g_lock);
    if (!url)
        return fy_fail(err, FY_E_CONFIG, "database not configured (fy_db_init not called)");
    if (!app)
        return fy_fail(err, FY_E_NOMEM, NULL);

    /* Later keywords win: the URL may override the timeout, not our name. */
    const char *const kw[] = {"connect_timeout", "dbname", "application_name", NULL};
    const char *const val[] = {"10", url, app, NULL};
    PGconn *c = PQconnectdbParams(kw, val, 1);
    if (!c)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[FY_ERR_MSG_MAX - 64];
        copy_msg(msg, sizeof(msg), PQerrorMessage(c));
        PQfinish(c);
        return fy_fail(err, FY_E_UNAVAILABLE, "cannot connect to the database: %s", msg);
    }
    PQsetnonblocking(c, 0);
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    *ret = c;
    return FY_E_OK;
}

void fy_db__reset(fy_db_tls *t)
{
    if (t->conn) {
        PQfinish(t->conn);
        t->conn = NULL;
    }
    free(t->prepared);
    t->prepared = NULL;
    t->prepared_cap = t->prepared_len = 0;
}

void fy_db_shutdown(void)
{
    pthread_once(&g_key_once, key_create);
    fy_db_tls *t = pthread_getspecific(g_key);
    if (t) {
        fy_db__reset(t);
        t->in_txn = false;
    }
}

void fy_db_thread_cleanup(void)
{
    pthread_once(&g_key_once, key_create);
    fy_db_tls *t = pthread_getspecific(g_key);
    pthread_setspecific(g_key, NULL);
    tls_free(t);
}

bool fy_db_in_txn(void)
{
    pthread_once(&g_key_once, key_create);
    fy_db_tls *t = pthread_getspecific(g_key);
    return t && t->in_txn;
}

/* An idle connection killed by the server has an error and EOF waiting on its
 * socket; reading them now lets us reconnect before sending anything. */
static bool conn_alive(PGconn *c)
{
    for (int i = 0; i < 4; i++) {
        if (PQstatus(c) != CONNECTION_OK)
            return false;
        struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
        int r = poll(&p, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return true;
        if (!PQconsumeInput(c))
            return false;
    }
    return PQstatus(c) == CONNECTION_OK;
}

static fy_code ensure_conn(fy_db_tls *t, fy_err *err)
{
    /* Never reconnect silently inside a transaction: its BEGIN would be lost. */
    if (t->in_txn) {
        if (t->conn && PQstatus(t->conn) == CONNECTION_OK)
            return FY_E_OK;
        fy_db__reset(t);
        return fy_fail(err, FY_E_UNAVAILABLE, "database connection lost in a transaction");
    }
    if (t->conn && !conn_alive(t->conn)) {
        fy_debug("db: connection found broken, reconnecting");
        fy_db__reset(t);
    }
    if (t->conn)
        return FY_E_OK;
    return fy_db__connect(NULL, &t->conn, err);
}

fy_code fy_db_conn(PGconn **ret, fy_err *err)
{
    fy_db_tls *t = fy_db__tls();
    if (!t)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_code rc = ensure_conn(t, err);
    if (rc == FY_E_OK)
        *ret = t->conn;
    return rc;
}

static bool sqlstate_is(const char *s, const char *want)
{
    return s && strcmp(s, want) == 0;
}

static bool sqlstate_broken(const char *s)
{
    return s && (strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 ||
                 strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0);
}

/* Maps a failed result (res may be NULL) to our codes; resets the thread's
 * connection when it is unusable. */
static fy_code map_error(fy_db_tls *t, const char *what, PGresult *res, fy_err *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    char msg[FY_ERR_MSG_MAX - 64];
    if (primary && detail)
        snprintf(msg, sizeof(msg), "%s (%s)", primary, detail);
    else
        copy_msg(msg, sizeof(msg), primary ? primary : PQerrorMessage(t->conn));

    if (PQstatus(t->conn) != CONNECTION_OK || sqlstate_broken(state)) {
        fy_db__reset(t);
        return fy_fail(err, FY_E_UNAVAILABLE, "database connection lost: %s", msg);
    }
    if (sqlstate_is(state, "23505"))
        return fy_fail(err, FY_E_CONFLICT, "%s", msg);
    if (sqlstate_is(state, "40001") || sqlstate_is(state, "40P01"))
        return fy_fail(err, FY_E_DB_RETRY, "%s", msg);
    return fy_fail(err, FY_E_DB, "%s: %s%s%s", what, msg, state ? " SQLSTATE " : "",
                   state ? state : "");
}

static size_t ptr_slot(const void *p, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & (cap - 1);
}

static bool prepared_has(const fy_db_tls *t, const fy_sql *s)
{
    if (!t->prepared_cap)
        return false;
    for (size_t i = ptr_slot(s, t->prepared_cap);; i = (i + 1) & (t->prepared_cap - 1)) {
        if (t->prepared[i] == s)
            return true;
        if (!t->prepared[i])
            return false;
    }
}

static void set_put(const fy_sql **tab, size_t cap, const fy_sql *s)
{
    size_t i = ptr_slot(s, cap);
    while (tab[i])
        i = (i + 1) & (cap - 1);
    tab[i] = s;
}

static bool prepared_add(fy_db_tls *t, const fy_sql *s)
{
    if ((t->prepared_len + 1) * 2 > t->prepared_cap) {
        size_t cap = t->prepared_cap ? t->prepared_cap * 2 : 64;
        const fy_sql **tab = calloc(cap, sizeof(*tab));
        if (!tab)
            return false;
        for (size_t i = 0; i < t->prepared_cap; i++)
            if (t->prepared[i])
                set_put(tab, cap, t->prepared[i]);
        free(t->prepared);
        t->prepared = tab;
        t->prepared_cap = cap;
    }
    set_put(t->prepared, t->prepared_cap, s);
    t->prepared_len++;
    return true;
}

/* Preparing has no side effects, so a broken connection found here is retryable. */
static fy_code prepare(fy_db_tls *t, const fy_sql *s, bool *retry, fy_err *err)
{
    if (prepared_has(t, s))
        return FY_E_OK;
    _cleanup_pgres_ PGresult *r = PQprepare(t->conn, s->name, s->text, s->nparams, NULL);
    if (r && PQresultStatus(r) == PGRES_COMMAND_OK)
        return prepared_add(t, s) ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
    *retry = PQstatus(t->conn) != CONNECTION_OK;
    if (r && sqlstate_is(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42P05"))
        return fy_fail(err, FY_E_INTERNAL, "two statements are named %s", s->name);
    return map_error(t, s->name, r, err);
}

/* Collects the results of the command in flight; keeps the first error, else the last. */
static PGresult *collect(PGconn *c)
{
    PGresult *keep = NULL, *r;
    while ((r = PQgetResult(c))) {
        bool keep_err = keep && PQresultStatus(keep) == PGRES_FATAL_ERROR;
        if (keep_err) {
            PQclear(r);
        } else {
            PQclear(keep);
            keep = r;
        }
    }
    return keep;
}

static bool result_ok(const PGresult *r)
{
    ExecStatusType s = PQresultStatus(r);
    return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_EMPTY_QUERY;
}

/* One attempt.  *sent tells whether the command reached the server; *retry is
 * set when it did not because the connection broke, so a reconnect may help. */
static fy_code exec_once(fy_db_tls *t, const fy_sql *stmt, const char *text,
                         const char *const *params, PGresult **ret, bool *retry, bool *sent,
                         fy_err *err)
{
    *retry = *sent = false;
    fy_code rc = ensure_conn(t, err);
    if (rc != FY_E_OK)
        return rc;
    if (stmt) {
        rc = prepare(t, stmt, retry, err);
        if (rc != FY_E_OK)
            return rc;
    }
    int ok = stmt ? PQsendQueryPrepared(t->conn, stmt->name, stmt->nparams, params, NULL,
                                        NULL, 0)
                  : PQsendQuery(t->conn, text);
    if (!ok) {
        *retry = PQstatus(t->conn) != CONNECTION_OK;
        return map_error(t, stmt ? stmt->name : "query", NULL, err);
    }
    *sent = true;
    _cleanup_pgres_ PGresult *res = collect(t->conn);
    if (!res || !result_ok(res))
        return map_error(t, stmt ? stmt->name : "query", res, err);
    if (ret)
        *ret = TAKE_PTR(res);
    return FY_E_OK;
}

static fy_code exec_any(const fy_sql *stmt, const char *text, const char *const *params,
                        PGresult **ret, bool *sent_ret, fy_err *err)
{
    fy_db_tls *t = fy_db__tls();
    if (!t)
        return fy_fail(err, FY_E_NOMEM, NULL);
    bool retry = false, sent = false;
    uint64_t start = fy_now_us();
    fy_code rc = exec_once(t, stmt, text, params, ret, &retry, &sent, err);
    if (rc != FY_E_OK && retry && !t->in_txn) {
        /* Nothing reached the server, so sending again cannot apply it twice. */
        fy_debug("db: connection lost before sending %s, retrying", stmt ? stmt->name : "query");
        rc = exec_once(t, stmt, text, params, ret, &retry, &sent, err);
    }
    fy_metrics_db_done(stmt ? stmt->name : NULL, rc, (double)(fy_now_us() - start) / 1e6);
    if (sent_ret)
        *sent_ret = sent;
    return rc;
}

fy_code fy_db_exec(const fy_sql *stmt, const char *const *params, PGresult **ret, fy_err *err)
{
    if (!stmt || !stmt->name || !stmt->text || stmt->nparams < 0 || (stmt->nparams && !params))
        return fy_fail(err, FY_E_INTERNAL, "bad statement or parameters");
    return exec_any(stmt, NULL, params, ret, NULL, err);
}

fy_code fy_db__simple(const char *text, PGresult **ret, bool *sent_ret, fy_err *err)
{
    return exec_any(NULL, text, NULL, ret, sent_ret, err);
}

fy_code fy_db_exec_script(const char *sql, fy_err *err)
{
    if (!sql)
        return fy_fail(err, FY_E_INTERNAL, "no SQL text");
    return fy_db__simple(sql, NULL, NULL, err);
}

fy_code fy_db_exec_one(const fy_sql *stmt, const char *const *params, PGresult **ret, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = fy_db_exec(stmt, params, &res, err);
    if (rc != FY_E_OK)
        return rc;
    int n = PQntuples(res);
    if (n == 0)
        return fy_fail(err, FY_E_NOT_FOUND, NULL);
    if (n > 1)
        return fy_fail(err, FY_E_INTERNAL, "%s: expected one row, got %d", stmt->name, n);
    if (ret)
        *ret = TAKE_PTR(res);
    return FY_E_OK;
}

long fy_db_affected(PGresult *res)
{
    const char *s = res ? PQcmdTuples(res) : "";
    return *s ? strtol(s, NULL, 10) : 0;
}

/* For the other fy_db_*.c files (fy_db_int.h). */
fy_code fy_db__ensure_conn(fy_db_tls *t, fy_err *err)
{
    return ensure_conn(t, err);
}

fy_code fy_db__prepare(fy_db_tls *t, const fy_sql *s, bool *retry, fy_err *err)
{
    return prepare(t, s, retry, err);
}

fy_code fy_db__map_error(fy_db_tls *t, const char *what, PGresult *res, fy_err *err)
{
    return map_error(t, what, res, err);
}
