/* Run-once step records in agent_steps. */
#include <string.h>
#include "compute_sql.h"
#include "compute_steps.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_util.h"

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

    fy_code rc = step_get(key, ret_result, err);
    if (rc != FY_E_NOT_FOUND)
        return rc;
    fy_err_clear(err);

    json_t *result = NULL;
    if (fn(arg, &result, err))
        return err->code;
    if (!result)
        result = json_object();
    bool won = false;
    rc = step_put(key, host, result, &won, err);
    if (rc == FY_E_OK && won) {
        *ret_result = result;
        return FY_E_OK;
    }
    json_decref(result);
    if (rc)
        return rc;
    /* A concurrent twin won the insert: answer with what it recorded. */
    return step_get(key, ret_result, err);
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
