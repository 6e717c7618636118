/* fy_db_listen — LISTEN/NOTIFY on a dedicated connection. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fy_cleanup.h"
#include "fy_db_int.h"
#include "fy_log.h"
#include "fy_util.h"

struct fy_db_listener {
    PGconn *conn;        /* NULL while disconnected */
    char *listen_sql;    /* LISTEN "<channel>" */
};

static fy_code listen_open(fy_db_listener *l, fy_err *err)
{
    PGconn *c = NULL;
    fy_code rc = fy_db__connect("-listen", &c, err);
    if (rc != FY_E_OK)
        return rc;
    _cleanup_pgres_ PGresult *r = PQexec(c, l->listen_sql);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        rc = fy_fail(err, FY_E_UNAVAILABLE, "LISTEN failed: %s",
                     r ? PQresultErrorMessage(r) : PQerrorMessage(c));
        PQfinish(c);
        return rc;
    }
    l->conn = c;
    return FY_E_OK;
}

static void listen_close(fy_db_listener *l)
{
    if (l->conn) {
        PQfinish(l->conn);
        l->conn = NULL;
    }
}

fy_code fy_db_listen(const char *channel, fy_db_listener **ret, fy_err *err)
{
    if (!channel || !*channel)
        return fy_fail(err, FY_E_INTERNAL, "empty channel name");
    fy_db_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return fy_fail(err, FY_E_NOMEM, NULL);
    /* Quote by hand (doubling '"') as PQescapeIdentifier needs a connection. */
    size_t n = strlen(channel);
    _cleanup_free_ char *quoted = malloc(2 * n + 3);
    if (!quoted) {
        free(l);
        return fy_fail(err, FY_E_NOMEM, NULL);
    }
    char *q = quoted;
    *q++ = '"';
    for (const char *p = channel; *p; p++) {
        if (*p == '"')
            *q++ = '"';
        *q++ = *p;
    }
    *q++ = '"';
    *q = '\0';
    l->listen_sql = fy_strdup_printf("LISTEN %s", quoted);
    if (!l->listen_sql) {
        free(l);
        return fy_fail(err, FY_E_NOMEM, NULL);
    }
    fy_code rc = listen_open(l, err);
    if (rc != FY_E_OK) {
        fy_db_listener_free(l);
        return rc;
    }
    *ret = l;
    return FY_E_OK;
}

void fy_db_listener_free(fy_db_listener *l)
{
    if (!l)
        return;
    listen_close(l);
    free(l->listen_sql);
    free(l);
}

static bool take_notify(fy_db_listener *l, char *payload, size_t size)
{
    PGnotify *n = PQnotifies(l->conn);
    if (!n)
        return false;
    if (payload && size)
        snprintf(payload, size, "%s", n->extra ? n->extra : "");
    PQfreemem(n);
    return true;
}

/* After a lost connection: try once to come back; if the database is down,
 * spend the wait here so callers polling in a loop do not spin. */
static bool recover(fy_db_listener *l, int timeout_ms)
{
    listen_close(l);
    fy_err e;
    if (listen_open(l, &e) == FY_E_OK) {
        fy_debug("db: listener reconnected");
        return false;
    }
    fy_debug("db: listener reconnect failed: %s", e.msg);
    if (timeout_ms > 0)
        poll(NULL, 0, timeout_ms);
    return false;
}

bool fy_db_wait_notify(fy_db_listener *l, int timeout_ms, char *payload, size_t payload_size)
{
    if (!l)
        return false;
    if (!l->conn || PQstatus(l->conn) != CONNECTION_OK)
        return recover(l, timeout_ms);
    if (take_notify(l, payload, payload_size))
        return true;
    uint64_t deadline = fy_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        uint64_t now = fy_now_ms();
        int wait = now >= deadline ? 0 : (int)(deadline - now);
        struct pollfd p = {.fd = PQsocket(l->conn), .events = POLLIN};
        int r = poll(&p, 1, wait);
        if (r < 0 && errno != EINTR)
            return recover(l, 0);
        if (r > 0 && (!PQconsumeInput(l->conn) || PQstatus(l->conn) != CONNECTION_OK))
            return recover(l, 0);
        if (take_notify(l, payload, payload_size))
            return true;
        if (r == 0 && wait == 0)
            return false;
    }
}
