/* fy_db internals shared by the fy_db_*.c files; not for use outside them. */
#pragma once
#include <libpq-fe.h>
#include <stdbool.h>
#include "fy_db.h"

/* Per-thread state: the connection, which fy_sql objects are prepared on it,
 * and whether a transaction is open. */
typedef struct fy_db_tls {
    PGconn *conn;
    const fy_sql **prepared;   /* open-addressed set of pointers */
    size_t prepared_cap;       /* power of two, or 0 */
    size_t prepared_len;
    bool in_txn;
    unsigned rng;              /* backoff jitter */
} fy_db_tls;

fy_db_tls *fy_db__tls(void);
/* Opens a new connection from the stored URL; app_suffix is appended to the
 * application name (NULL for none). */
fy_code fy_db__connect(const char *app_suffix, PGconn **ret, fy_err *err);
/* Drops the thread's connection and its prepared-statement set. */
void fy_db__reset(fy_db_tls *t);
/* Runs trusted text with the simple protocol on the thread's connection;
 * sent_ret (may be NULL) tells whether the text reached the server. */
fy_code fy_db__simple(const char *text, PGresult **ret, bool *sent_ret, fy_err *err);
/* fy_db.c's connection check, statement preparation and error mapping. */
fy_code fy_db__ensure_conn(fy_db_tls *t, fy_err *err);
fy_code fy_db__prepare(fy_db_tls *t, const fy_sql *s, bool *retry, fy_err *err);
fy_code fy_db__map_error(fy_db_tls *t, const char *what, PGresult *res, fy_err *err);
