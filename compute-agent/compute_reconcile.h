/* compute_reconcile — the agent's reconciliation at start (Nova's _init_instance,
 * made complete).  Live-migration jobs that died with the agent are marked failed
 * (the conductor rolls back); guests the database does not place here are
 * destroyed; instances placed here whose guest is gone go ERROR with a fault; a
 * task state nobody will finish is cleared.  Instances with an unfinished task or
 * a move in flight through this host are the conductor's and are left alone.
 * Each change is recorded as the instance action "reconcile". */
#pragma once
#include "compute_driver.h"
#include "fy_err.h"

/* Fails only when the jobs cannot be recovered; the rest is logged and retried
 * at the next start. */
fy_code compute_reconcile_at_start(compute_driver *drv, const char *host, fy_err *err);
