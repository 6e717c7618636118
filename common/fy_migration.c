#include "fy_migration.h"

#include <string.h>

static const char *const names[FY_MIG__COUNT] = {
    [FY_MIG_ACCEPTED] = "accepted",
    [FY_MIG_QUEUED] = "queued",
    [FY_MIG_PREPARING] = "preparing",
    [FY_MIG_RUNNING] = "running",
    [FY_MIG_POST_MIGRATING] = "post-migrating",
    [FY_MIG_COMPLETED] = "completed",
    [FY_MIG_PRE_MIGRATING] = "pre-migrating",
    [FY_MIG_MIGRATING] = "migrating",
    [FY_MIG_FINISHED] = "finished",
    [FY_MIG_CONFIRMING] = "confirming",
    [FY_MIG_CONFIRMED] = "confirmed",
    [FY_MIG_REVERTING] = "reverting",
    [FY_MIG_REVERTED] = "reverted",
    [FY_MIG_ERROR] = "error",
    [FY_MIG_FAILED] = "failed",
    [FY_MIG_CANCELLED] = "cancelled",
};

#define B(s) (1u << (s))

/* allowed[from] = set of statuses it may move to. */
static const unsigned allowed[FY_MIG__COUNT] = {
    [FY_MIG_ACCEPTED] = B(FY_MIG_QUEUED) | B(FY_MIG_PREPARING) | B(FY_MIG_ERROR) | B(FY_MIG_CANCELLED),
    [FY_MIG_QUEUED] = B(FY_MIG_PREPARING) | B(FY_MIG_ERROR) | B(FY_MIG_CANCELLED),
    [FY_MIG_PREPARING] = B(FY_MIG_RUNNING) | B(FY_MIG_ERROR) | B(FY_MIG_FAILED) | B(FY_MIG_CANCELLED),
    [FY_MIG_RUNNING] = B(FY_MIG_POST_MIGRATING) | B(FY_MIG_FAILED) | B(FY_MIG_CANCELLED),
    [FY_MIG_POST_MIGRATING] = B(FY_MIG_COMPLETED) | B(FY_MIG_FINISHED) | B(FY_MIG_ERROR),
    [FY_MIG_PRE_MIGRATING] = B(FY_MIG_MIGRATING) | B(FY_MIG_ERROR),
    [FY_MIG_MIGRATING] = B(FY_MIG_POST_MIGRATING) | B(FY_MIG_ERROR),
    [FY_MIG_FINISHED] = B(FY_MIG_CONFIRMING) | B(FY_MIG_REVERTING),
    [FY_MIG_CONFIRMING] = B(FY_MIG_CONFIRMED) | B(FY_MIG_ERROR),
    [FY_MIG_REVERTING] = B(FY_MIG_REVERTED) | B(FY_MIG_ERROR),
};

const char *fy_mig_status_name(fy_mig_status s)
{
    return s >= 0 && s < FY_MIG__COUNT ? names[s] : "invalid";
}

fy_mig_status fy_mig_status_from_name(const char *name)
{
    for (int i = 0; name && i < FY_MIG__COUNT; i++)
        if (strcmp(names[i], name) == 0)
            return (fy_mig_status)i;
    return FY_MIG_INVALID;
}

bool fy_mig_can_transition(fy_mig_status from, fy_mig_status to)
{
    if (from < 0 || from >= FY_MIG__COUNT || to < 0 || to >= FY_MIG__COUNT)
        return false;
    return (allowed[from] & B(to)) != 0;
}

bool fy_mig_is_terminal(fy_mig_status s)
{
    return s == FY_MIG_COMPLETED || s == FY_MIG_CONFIRMED || s == FY_MIG_REVERTED ||
           s == FY_MIG_ERROR || s == FY_MIG_FAILED || s == FY_MIG_CANCELLED;
}

bool fy_mig_is_in_progress(fy_mig_status s)
{
    return s != FY_MIG_INVALID && !fy_mig_is_terminal(s);
}
