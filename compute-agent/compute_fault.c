/* Fault injection: a small table of armed faults behind one lock. */
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include "compute_fault.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

#define FAULT_MAX 32
#define FAULT_STEP_MAX 64

typedef enum { FAULT_ERROR, FAULT_CRASH } fault_action;

typedef struct fault {
    char step[FAULT_STEP_MAX];
    fault_action action;
    long long times;     /* remaining firings; 0 = unlimited */
} fault;

static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static fault faults[FAULT_MAX];
static size_t nfaults;

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

static fy_code parse_action(const char *s, fault_action *ret, fy_err *err)
{
    if (fy_streq(s, "error"))
        *ret = FAULT_ERROR;
    else if (fy_streq(s, "crash"))
        *ret = FAULT_CRASH;
    else
        return fy_fail(err, FY_E_BAD_REQUEST, "Invalid fault action '%s' (error or crash)",
                       s ? s : "");
    return FY_E_OK;
}

static fy_code parse_one(const json_t *f, size_t i, fault *out, fy_err *err)
{
    const char *step = fy_json_str(f, "step");
    if (!json_is_object(f) || !step_name_ok(step))
        return fy_fail(err, FY_E_BAD_REQUEST, "faults.%zu: 'step' must be a step name", i);
    json_t *times = json_object_get(f, "times");
    if (times && (!json_is_integer(times) || json_integer_value(times) < 0 ||
                  json_integer_value(times) > 1000000))
        return fy_fail(err, FY_E_BAD_REQUEST, "faults.%zu: 'times' must be an integer >= 0", i);
    if (parse_action(json_string_value(json_object_get(f, "action")), &out->action, err))
        return fy_err_prefix(err, "faults.%zu", i);
    snprintf(out->step, sizeof(out->step), "%s", step);
    out->times = times ? json_integer_value(times) : 1;
    return FY_E_OK;
}

fy_code compute_fault_set(const json_t *body, fy_err *err)
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

fy_code compute_fault_init(const char *spec, fy_err *err)
{
    compute_fault_clear();
    if (!spec || !*spec)
        return FY_E_OK;
    _cleanup_free_ char *copy = strdup(spec);
    if (!copy)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fault parsed[FAULT_MAX];
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        char *colon = strchr(tok, ':');
        if (colon)
            *colon = '\0';
        fy_err e2 = {0};
        if (n == FAULT_MAX || !colon || !step_name_ok(tok) ||
            parse_action(colon + 1, &parsed[n].action, &e2))
            return fy_fail(err, FY_E_CONFIG,
                           "fault_inject: '%s' is not step:action (action error or crash)", tok);
        snprintf(parsed[n].step, sizeof(parsed[n].step), "%s", tok);
        parsed[n++].times = 1;
    }
    pthread_mutex_lock(&fault_lock);
    memcpy(faults, parsed, n * sizeof(fault));
    nfaults = n;
    pthread_mutex_unlock(&fault_lock);
    return FY_E_OK;
}

void compute_fault_clear(void)
{
    pthread_mutex_lock(&fault_lock);
    nfaults = 0;
    pthread_mutex_unlock(&fault_lock);
}

/* Takes one firing of the fault armed for step; false when none is. */
static bool take(const char *step, fault_action *ret)
{
    bool hit = false;
    pthread_mutex_lock(&fault_lock);
    for (size_t i = 0; i < nfaults && !hit; i++) {
        if (strcmp(faults[i].step, step) != 0)
            continue;
        hit = true;
        *ret = faults[i].action;
        if (faults[i].times > 0 && --faults[i].times == 0) {
            memmove(&faults[i], &faults[i + 1], (nfaults - i - 1) * sizeof(fault));
            nfaults--;
        }
    }
    pthread_mutex_unlock(&fault_lock);
    return hit;
}

fy_code compute_fault_check(const char *step, fy_err *err)
{
    fault_action action;
    if (!step || !take(step, &action))
        return FY_E_OK;
    if (action == FAULT_CRASH) {
        fy_warn("injected crash at %s", step);
        _exit(137);
    }
    fy_info("injected fault at %s", step);
    return fy_fail(err, FY_E_DRIVER, "injected fault at %s", step);
}

json_t *compute_fault_list(void)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&fault_lock);
    for (size_t i = 0; arr && i < nfaults; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:I}", "step", faults[i].step,
                                             "action",
                                             faults[i].action == FAULT_CRASH ? "crash" : "error",
                                             "times", (json_int_t)faults[i].times));
    pthread_mutex_unlock(&fault_lock);
    return arr ? json_pack("{s:o}", "faults", arr) : NULL;
}

static fy_code answer_list(fy_resp *resp, fy_err *err)
{
    json_t *body = compute_fault_list();
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

fy_code compute_fault_handle_put(fy_req *req, fy_resp *resp, fy_err *err)
{
    if (compute_fault_set(req->json, err))
        return err->code;
    fy_info("fault injection armed: %zu fault(s)", json_array_size(json_object_get(req->json,
                                                                                     "faults")));
    return answer_list(resp, err);
}

fy_code compute_fault_handle_get(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req;
    return answer_list(resp, err);
}

fy_code compute_fault_handle_delete(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req;
    compute_fault_clear();
    return answer_list(resp, err);
}
