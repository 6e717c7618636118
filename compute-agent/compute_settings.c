/* Run-time overrides of the live-migration and fake-driver settings. */
#include <math.h>
#include <stddef.h>
#include <pthread.h>
#include <string.h>
#include "compute_mig.h"
#include "fy_cleanup.h"
#include "fy_log.h"
#include "fy_util.h"

static pthread_mutex_t settings_lock = PTHREAD_MUTEX_INITIALIZER;
static compute_settings current = {
    .lm_downtime_ms = 500, .lm_downtime_steps = 10, .lm_downtime_delay_s = 75,
    .lm_completion_timeout_s = 800, .fake_bandwidth_mbps = 1000,
};

typedef enum { S_INT, S_DOUBLE, S_ACTION } setting_type;

typedef struct setting {
    const char *key;
    setting_type type;
    size_t offset;
    double min, max;
} setting;

#define S(key, type, field, min, max) {key, type, offsetof(compute_settings, field), min, max}

static const setting settings[] = {
    S("live_migration_downtime_ms", S_INT, lm_downtime_ms, 10, 3600000),
    S("live_migration_downtime_steps", S_INT, lm_downtime_steps, 1, 1000),
    S("live_migration_downtime_delay_s", S_INT, lm_downtime_delay_s, 0, 86400),
    S("live_migration_completion_timeout_s", S_INT, lm_completion_timeout_s, 0, 864000),
    S("live_migration_timeout_action", S_ACTION, lm_timeout_force, 0, 0),
    S("live_migration_progress_timeout_s", S_INT, lm_progress_timeout_s, 0, 864000),
    S("fake_memory_copy_ms", S_INT, fake_memory_copy_ms, 0, 3600000),
    S("fake_dirty_rate", S_DOUBLE, fake_dirty_rate, 0, 100),
    S("fake_bandwidth_mbps", S_INT, fake_bandwidth_mbps, 1, 100000000),
    S("live_migration_bandwidth_mibps", S_INT, lm_bandwidth_mibps, 0, 1000000),
};

void compute_settings_init(const compute_config *cfg)
{
    compute_settings s = {
        .lm_downtime_ms = cfg->live_migration_downtime_ms,
        .lm_downtime_steps = cfg->live_migration_downtime_steps,
        .lm_downtime_delay_s = cfg->live_migration_downtime_delay_s,
        .lm_completion_timeout_s = cfg->live_migration_completion_timeout_s,
        .lm_timeout_force = fy_streq(cfg->live_migration_timeout_action, "force_complete"),
        .lm_progress_timeout_s = cfg->live_migration_progress_timeout_s,
        .fake_memory_copy_ms = cfg->fake_memory_copy_ms,
        .fake_dirty_rate = cfg->fake_dirty_rate,
        .fake_bandwidth_mbps = cfg->fake_bandwidth_mbps,
        .lm_bandwidth_mibps = cfg->live_migration_bandwidth_mibps,
    };
    pthread_mutex_lock(&settings_lock);
    current = s;
    pthread_mutex_unlock(&settings_lock);
}

void compute_settings_get(compute_settings *ret)
{
    pthread_mutex_lock(&settings_lock);
    *ret = current;
    pthread_mutex_unlock(&settings_lock);
}

static const setting *find(const char *key)
{
    for (size_t i = 0; i < ELEMENTSOF(settings); i++)
        if (!strcmp(settings[i].key, key))
            return &settings[i];
    return NULL;
}

static fy_code set_one(compute_settings *s, const setting *d, const json_t *v, fy_err *err)
{
    char *field = (char *)s + d->offset;
    if (d->type == S_ACTION) {
        const char *a = json_string_value(v);
        if (!fy_streq(a, "abort") && !fy_streq(a, "force_complete"))
            return fy_fail(err, FY_E_BAD_REQUEST, "%s must be \"abort\" or \"force_complete\"",
                           d->key);
        *(bool *)field = fy_streq(a, "force_complete");
        return FY_E_OK;
    }
    if (!json_is_number(v) || (d->type == S_INT && !json_is_integer(v)))
        return fy_fail(err, FY_E_BAD_REQUEST, "%s must be %s", d->key,
                       d->type == S_INT ? "an integer" : "a number");
    double x = json_number_value(v);
    if (!isfinite(x) || x < d->min || x > d->max)
        return fy_fail(err, FY_E_BAD_REQUEST, "%s: %g is out of range [%g, %g]", d->key, x,
                       d->min, d->max);
    if (d->type == S_INT)
        *(long long *)field = json_integer_value(v);
    else
        *(double *)field = x;
    return FY_E_OK;
}

fy_code compute_settings_apply(const json_t *obj, fy_err *err)
{
    if (!json_is_object(obj))
        return fy_fail(err, FY_E_BAD_REQUEST, "The request body must be a JSON object");
    pthread_mutex_lock(&settings_lock);
    compute_settings s = current;
    fy_code rc = FY_E_OK;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        const setting *d = find(key);
        if (!d) {
            rc = fy_fail(err, FY_E_BAD_REQUEST, "Unknown setting '%s'", key);
            break;
        }
        if ((rc = set_one(&s, d, v, err)))
            break;
    }
    if (rc == FY_E_OK)
        current = s;
    pthread_mutex_unlock(&settings_lock);
    return rc;
}

json_t *compute_settings_json(void)
{
    compute_settings s;
    compute_settings_get(&s);
    json_t *o = json_object();
    for (size_t i = 0; o && i < ELEMENTSOF(settings); i++) {
        const setting *d = &settings[i];
        const char *field = (const char *)&s + d->offset;
        json_t *v = d->type == S_INT      ? json_integer(*(const long long *)field)
                    : d->type == S_DOUBLE ? json_real(*(const double *)field)
                    : json_string(*(const bool *)field ? "force_complete" : "abort");
        json_object_set_new(o, d->key, v);
    }
    return o;
}

static fy_code answer(fy_resp *resp, fy_err *err)
{
    json_t *o = compute_settings_json();
    json_t *body = o ? json_pack("{s:o}", "settings", o) : NULL;
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code compute_settings_handle_put(fy_req *req, fy_resp *resp, fy_err *err)
{
    if (compute_settings_apply(req->json, err))
        return err->code;
    fy_info("settings changed at run time");
    return answer(resp, err);
}

fy_code compute_settings_handle_get(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req;
    return answer(resp, err);
}
