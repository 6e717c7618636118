/* cond_fault — crash points in the conductor, for the fault matrix (tests/fault/).
 *
 * A fault names a task step (tasks.step as the flows record it, e.g. "checks",
 * "resize_instance") and an action: "crash" ends the process with status 137
 * right after the step is recorded (so a restarted or other conductor resumes
 * exactly there); "delay" holds the task at that step for `ms` milliseconds (so a
 * test can kill a service the step calls).  Each fault fires `times` times
 * (default 1, 0 = every time).  Faults live in memory only: a restarted
 * conductor has none. */
#pragma once
#include <jansson.h>
#include "fy_err.h"
#include "fy_httpd.h"

/* Called once a step is recorded; returns at once when no fault is armed. */
void cond_fault_check(const char *step);
/* Replaces the armed faults from {"faults": [{"step", "action", "times", "ms"}]}. */
fy_code cond_fault_set(const json_t *body, fy_err *err);
/* {"faults": [...]}; NULL on allocation failure. */
json_t *cond_fault_list(void);
void cond_fault_clear(void);

fy_code cond_fault_handle_put(fy_req *req, fy_resp *resp, fy_err *err);
fy_code cond_fault_handle_get(fy_req *req, fy_resp *resp, fy_err *err);
fy_code cond_fault_handle_delete(fy_req *req, fy_resp *resp, fy_err *err);
