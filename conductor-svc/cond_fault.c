/* Conductor fault points: a small table of armed faults behind one lock. */
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cond_fault.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

#define FAULT_MAX 32
#define FAULT_STEP_MAX 64
/* A delay longer than this would outlive any test's patience. */
#define FAULT_DELAY_MAX_MS 600000

typedef enum { FAULT_CRASH, FAULT_DELAY } fault_action;

typedef struct fault {
    char step[FAULT_STEP_MAX];
    fault_action action;
    long long times;     /* remaining firings; 0 = unlimited */
    long long ms;        /* FAULT_DELAY */
} fault;

static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static fault faults[FAULT_MAX];
static size_t nfaults;

static const char *action_name(fault_action a)
{
    return a == FAULT_CRASH ? "crash" : "delay";
}

static bool step_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= FAULT_STEP_MAX)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    return true;
}

static fy_code int_member(const json_t *f, const char *key, long long lo, long long hi,
                          long long dflt, long long *ret, fy_err *err)
{
    const json_t *v = json_object_get(f, key);
    if (!v) {
        *ret = dflt;
        return FY_E_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return fy_fail(err, FY_E_BAD_REQUEST, "'%s' must be an integer from %lld to %lld", key,
                       lo, hi);
    *ret = json_integer_value(v);
    return FY_E_OK;
}

static fy_code parse_one(const json_t *f, size_t i, fault *out, fy_err *err)
{
    const char *step = json_is_object(f) ? fy_json_str(f, "step") : NULL;
    if (!step_name_ok(step))
        return fy_fail(err, FY_E_BAD_REQUEST, "faults.%zu: 'step' must be a step name", i);
    const char *action = fy_json_str(f, "action");
    if (fy_streq(action, "crash"))
        out->action = FAULT_CRASH;
    else if (fy_streq(action, "delay"))
        out->action = FAULT_DELAY;
    else
        return fy_fail(err, FY_E_BAD_REQUEST, "faults.%zu: 'action' must be crash or delay", i);
    if (int_member(f, "times", 0, 1000000, 1, &out->times, err) ||
        int_member(f, "ms", 0, FAULT_DELAY_MAX_MS, 1000, &out->ms, err))
        return fy_err_prefix(err, "faults.%zu", i);
    snprintf(out->step, sizeof(out->step), "%s", step);
    return FY_E_OK;
}

fy_code cond_fault_set(const json_t *body, fy_err *err)
{
    const json_t *list = json_object_get(body, "faults");
    if (!json_is_object(body) || !json_is_array(list))
        return fy_fail(err, FY_E_BAD_REQUEST, "The body must be {\"faults\": [...]}");
    if (json_array_size(list) > FAULT_MAX)
        return fy_fail(err, FY_E_BAD_REQUEST, "At most %d faults", FAULT_MAX);
    fault parsed[FAULT_MAX];
    size_t i;
    json_t *f;
    json_array_foreach(list, i, f)
        if (parse_one(f, i, &parsed[i], err))
            return err->code;
    pthread_mutex_lock(&fault_lock);
    memcpy(faults, parsed, json_array_size(list) * sizeof(fault));
    nfaults = json_array_size(list);
    pthread_mutex_unlock(&fault_lock);
    return FY_E_OK;
}

void cond_fault_clear(void)
{
    pthread_mutex_lock(&fault_lock);
    nfaults = 0;
    pthread_mutex_unlock(&fault_lock);
}

/* Takes one firing of the fault armed for step; false when none is. */
static bool take(const char *step, fault *ret)
{
    bool hit = false;
    pthread_mutex_lock(&fault_lock);
    for (size_t i = 0; i < nfaults && !hit; i++) {
        if (strcmp(faults[i].step, step) != 0)
            continue;
        hit = true;
        *ret = faults[i];
        if (faults[i].times > 0 && --faults[i].times == 0) {
            memmove(&faults[i], &faults[i + 1], (nfaults - i - 1) * sizeof(fault));
            nfaults--;
        }
    }
    pthread_mutex_unlock(&fault_lock);
    return hit;
}

void cond_fault_check(const char *step)
{
    fault f;
    if (!step || !take(step, &f))
        return;
    if (f.action == FAULT_CRASH) {
        fy_warn("injected crash at step %s", step);
        _exit(137);
    }
    fy_info("injected delay of %lld ms at step %s", f.ms, step);
    struct timespec ts = {f.ms / 1000, (f.ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

json_t *cond_fault_list(void)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&fault_lock);
    for (size_t i = 0; arr && i < nfaults; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:I}", "step", faults[i].step,
                                             "action", action_name(faults[i].action), "times",
                                             (json_int_t)faults[i].times, "ms",
                                             (json_int_t)faults[i].ms));
    pthread_mutex_unlock(&fault_lock);
    return arr ? json_pack("{s:o}", "faults", arr) : NULL;
}

static fy_code answer_list(fy_resp *resp, fy_err *err)
{
    json_t *body = cond_fault_list();
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code cond_fault_handle_put(fy_req *req, fy_resp *resp, fy_err *err)
{
    if (cond_fault_set(req->json, err))
        return err->code;
    fy_info("fault injection armed: %zu fault(s)",
            json_array_size(json_object_get(req->json, "faults")));
    return answer_list(resp, err);
}

fy_code cond_fault_handle_get(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req;
    return answer_list(resp, err);
}

fy_code cond_fault_handle_delete(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req;
    cond_fault_clear();
    return answer_list(resp, err);
}
