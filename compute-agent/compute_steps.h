/* compute_steps — run-once records for agent steps (table agent_steps).
 *
 * A step whose effect cannot be recognised from the guest's state alone (the
 * migration steps) is keyed "<subject uuid>:<step>:<host>": the first
 * successful run records its result, and a repeated call gets that result
 * without running again.  Failures are not recorded, so a retry runs again. */
#pragma once
#include <jansson.h>
#include "fy_err.h"

/* Does the step's work; on success *ret_result (owned) is the answer to keep. */
typedef fy_code (*compute_step_fn)(void *arg, json_t **ret_result, fy_err *err);

fy_code compute_step_run(const char *host, const char *subject, const char *step,
                         compute_step_fn fn, void *arg, json_t **ret_result, fy_err *err);
/* Drops the records of every step of subject on host (when it is finished). */
fy_code compute_step_forget(const char *host, const char *subject, fy_err *err);
