/* fy_migration — the typed migration statuses and the one transition table shared
 * by every service (docs/migrations.md).  Status writes in SQL are guarded by the
 * expected "from" status; this table says which pairs may be written at all. */
#pragma once
#include <stdbool.h>

typedef enum {
    FY_MIG_ACCEPTED,
    FY_MIG_QUEUED,
    FY_MIG_PREPARING,
    FY_MIG_RUNNING,
    FY_MIG_POST_MIGRATING,
    FY_MIG_COMPLETED,
    FY_MIG_PRE_MIGRATING,
    FY_MIG_MIGRATING,
    FY_MIG_FINISHED,
    FY_MIG_CONFIRMING,
    FY_MIG_CONFIRMED,
    FY_MIG_REVERTING,
    FY_MIG_REVERTED,
    FY_MIG_ERROR,
    FY_MIG_FAILED,
    FY_MIG_CANCELLED,
    FY_MIG__COUNT,
    FY_MIG_INVALID = -1,
} fy_mig_status;

const char *fy_mig_status_name(fy_mig_status s);      /* "post-migrating" */
fy_mig_status fy_mig_status_from_name(const char *name);  /* FY_MIG_INVALID if unknown */
bool fy_mig_can_transition(fy_mig_status from, fy_mig_status to);
bool fy_mig_is_terminal(fy_mig_status s);
/* Listed by GET /servers/{id}/migrations (Nova: the migration is still going on). */
bool fy_mig_is_in_progress(fy_mig_status s);
