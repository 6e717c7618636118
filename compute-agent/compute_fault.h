/* compute_fault — injected faults for testing failure handling.
 *
 * A fault names a step (an agent step, "spawn", "live_migration_job",
 * "transfer_corrupt") and an action: "error" makes the step fail with
 * FY_E_DRIVER "injected fault at <step>", "crash" ends the process at once with
 * status 137.  Each fault fires `times` times (0 = every time). */
#pragma once
#include <jansson.h>
#include "fy_err.h"
#include "fy_httpd.h"

/* Loads the faults of the config key fault_inject ("step:action[,step:action]");
 * each fires once.  FY_E_CONFIG when malformed. */
fy_code compute_fault_init(const char *spec, fy_err *err);
/* Called at the start of every step: FY_E_OK when no fault is armed for it. */
fy_code compute_fault_check(const char *step, fy_err *err);
/* Replaces the armed faults from {"faults": [...]}; FY_E_BAD_REQUEST when invalid. */
fy_code compute_fault_set(const json_t *body, fy_err *err);
/* {"faults": [{"step", "action", "times"}]} */
json_t *compute_fault_list(void);
void compute_fault_clear(void);

fy_code compute_fault_handle_put(fy_req *req, fy_resp *resp, fy_err *err);
fy_code compute_fault_handle_get(fy_req *req, fy_resp *resp, fy_err *err);
fy_code compute_fault_handle_delete(fy_req *req, fy_resp *resp, fy_err *err);
