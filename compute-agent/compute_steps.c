/* Run-once step records in agent_steps. */
#include <string.h>
#include <time.h>
#include "compute_sql.h"
#include "compute_steps.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

/* A database restart must neither fail a step nor make it run twice (its
 * work done, its record lost): the record is read and written again after a
 * growing pause while the database is away, for up to this long, which stays
 * below the conductor's timeout for one step call. */
#define STEP_DB_WAIT_MS 45000ULL
#define STEP_DB_PAUSE_MS 100L
#define STEP_DB_PAUSE_MAX_MS 2000L

typedef struct db_wait {
    unsigned long long since_ms;
    long pause_ms;
} db_wait;

static bool db_again(db_wait *w, const char *key, const char *what, const fy_err *err)
{
    if (err->code != FY_E_UNAVAILABLE && err->code != FY_E_DB_RETRY)
        return false;
    unsigned long long now = fy_now_ms();
    if (!w->since_ms) {
        w->since_ms = now ? now : 1;
        w->pause_ms = STEP_DB_PAUSE_MS;
        fy_warn("step %s: cannot %s the record, waiting for the database: %s", key, what,
                err->msg);
    }
    if (now - w->since_ms >= STEP_DB_WAIT_MS)
        return false;
    struct timespec ts = {w->pause_ms / 1000, (w->pause_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    w->pause_ms = w->pause_ms * 2 > STEP_DB_PAUSE_MAX_MS ? STEP_DB_PAUSE_MAX_MS : w->pause_ms * 2;
    return true;
}

/* Looks the record up: FY_E_NOT_FOUND when the step has not run here. */
static fy_code step_get(const char *key, json_t **ret, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL;
    const char *params[] = {key};
    if (fy_db_exec(&compute_sql_step_get, params, &res, err))
        return err->code;
    if (PQntuples(res) == 0)
        return fy_fail(err, FY_E_NOT_FOUND, "step %s has no record", key);
    const char *text = fy_db_str(res, 0, "result");
    json_error_t jerr;
    json_t *j = text ? json_loads(text, 0, &jerr) : NULL;
    if (!j)
        return fy_fail(err, FY_E_DB, "step %s: unreadable record", key);
    *ret = j;
    return FY_E_OK;
}

/* *ret_won: this call's result is the recorded one (no concurrent twin won). */
static fy_code step_put(const char *key, const char *host, const json_t *result, bool *ret_won,
                        fy_err *err)
{
    _cleanup_free_ char *text = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return fy_fail(err, FY_E_NOMEM, NULL);
    const char *params[] = {key, host, text};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&compute_sql_step_put, params, &res, err))
        return err->code;
    *ret_won = fy_db_affected(res) == 1;
    return FY_E_OK;
}

fy_code compute_step_run(const char *host, const char *subject, const char *step,
                         compute_step_fn fn, void *arg, json_t **ret_result, fy_err *err)
{
    if (!host || !*host || !fy_uuid_valid(subject) || !step || !*step || strchr(step, ':'))
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid step key (%s, %s)",
                       subject ? subject : "", step ? step : "");
    _cleanup_free_ char *key = fy_strdup_printf("%s:%s:%s", subject, step, host);
    if (!key)
        return fy_fail(err, FY_E_NOMEM, NULL);

    db_wait w = {0};
    fy_code rc;
    while ((rc = step_get(key, ret_result, err)) != FY_E_OK && rc != FY_E_NOT_FOUND &&
           db_again(&w, key, "read", err))
        fy_err_clear(err);
    if (rc != FY_E_NOT_FOUND)
        return rc;
    fy_err_clear(err);

    json_t *result = NULL;
    if (fn(arg, &result, err))
        return err->code;
    if (!result)
        result = json_object();
    bool won = false;
    db_wait wp = {0};
    while ((rc = step_put(key, host, result, &won, err)) != FY_E_OK &&
           db_again(&wp, key, "write", err))
        fy_err_clear(err);
    if (rc == FY_E_OK && won) {
        *ret_result = result;
        return FY_E_OK;
    }
    json_decref(result);
    if (rc)
        return rc;
    /* A concurrent twin won the insert (or an insert whose answer was lost
     * landed): answer with what is recorded. */
    db_wait wg = {0};
    while ((rc = step_get(key, ret_result, err)) != FY_E_OK && db_again(&wg, key, "read", err))
        fy_err_clear(err);
    return rc;
}

fy_code compute_step_forget(const char *host, const char *subject, fy_err *err)
{
    if (!fy_uuid_valid(subject))
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid step subject '%s'", subject ? subject : "");
    _cleanup_free_ char *prefix = fy_strdup_printf("%s:", subject);
    if (!prefix)
        return fy_fail(err, FY_E_NOMEM, NULL);
    const char *params[] = {host, prefix};
    _cleanup_pgres_ PGresult *res = NULL;
    return fy_db_exec(&compute_sql_step_forget, params, &res, err);
}
