/* cond_cold — what the cold-migration family of tasks (migrate, resize,
 * confirm, revert, and the auto-confirm timer) shares: the loaded records,
 * the agent step bodies, volume connections on a host, quota reservations,
 * and the pure decisions that unit tests pin down. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "cond.h"
#include "cond_migration.h"
#include "fy_err.h"

/* Agent steps copy nothing big except migrate_disk_and_power_off (the disk). */
#define COND_COLD_STEP_TIMEOUT_MS 120000L
#define COND_COLD_DISK_TIMEOUT_MS 1800000L
#define COND_COLD_STEP_RETRIES 2

/* ---- pure decisions (cond_cold_common.c) ---- */

/* The power state a guest had before the move: a stopped server stays stopped. */
bool cond_cold_was_running(const char *vm_state, int power_state);
/* vm_state after confirm or revert. */
const char *cond_cold_final_vm_state(bool power_on);
/* The hosts the scheduler must not pick: the source unless same-host moves
 * are allowed or the host was given (a given host is forced, the same-host
 * rule is then the destination's prep_resize check).  Returns the count put
 * in out[0..1]. */
size_t cond_cold_ignore_hosts(const char *source, bool allow_same_host, const char *forced,
                              const char **out);
/* Takes the next alternate after a failed prep_resize: false when attempts
 * are used up (tries counts the hosts tried so far) or none is left.  The
 * alternate is removed from sel->alts either way it is taken. */
bool cond_cold_take_alternate(cond_selection *sel, int tries, int max_attempts, cond_dest *ret);
/* Rank of a cold status along the main path (pre-migrating 0 .. finished 3),
 * -1 for any other: a resumed step accepts a record already further along. */
int cond_cold_rank(fy_mig_status s);

/* ---- transient failures (cond_cold_common.c) ----
 * A database restart, or an agent or the scheduler away for a moment, is not
 * the move's failure: an idempotent call that fails with a retryable code
 * (fy_code_retryable: the database, an unreachable or failing peer, a
 * timeout) is made again after a growing pause (0.25 s doubling up to 5 s)
 * until it succeeds, fails otherwise, the conductor stops, or
 * COND_COLD_TRANSIENT_MS have passed since its first failure. */
#define COND_COLD_TRANSIENT_MS 120000L

typedef struct cond_cold_retry {
    unsigned long long since_ms;   /* first failure (monotonic), 0 before it */
    long pause_ms;
} cond_cold_retry;

/* Called after a failed call with its error: true (after the pause) when the
 * call should be made again.  false when the failure is not transient, the
 * time is spent, or the conductor is stopping (run->release is then set, so
 * the task is given back instead of failed). */
bool cond_cold_retry_again(cond_run *run, cond_cold_retry *r, const fy_err *err,
                           const char *what);
/* Evaluates the idempotent call `expr` (an fy_code expression that fills the
 * fy_err *e) again while cond_cold_retry_again() says so; yields its last code. */
#define COND_COLD_RETRYING(run, what, e, expr)                                         \
    ({                                                                                 \
        cond_cold_retry rt_ = {0};                                                     \
        fy_code rc_;                                                                   \
        while ((rc_ = (expr)) != FY_E_OK && cond_cold_retry_again((run), &rt_, (e), (what))) \
            fy_err_clear(e);                                                           \
        rc_;                                                                           \
    })

/* ---- a loaded cold task (cond_cold_common.c) ---- */

typedef struct cond_cold {
    cond_run *run;
    cond_instance inst;
    cond_migration mig;
    bool have_inst, have_mig;
} cond_cold;

/* Loads the task's instance and migration.  FY_E_NOT_FOUND when either is gone. */
fy_code cond_cold_load(cond_run *run, cond_cold *c, fy_err *err);
/* Reloads the migration (after writes that the next body must carry). */
fy_code cond_cold_reload_mig(cond_cold *c, fy_err *err);
void cond_cold_clear(cond_cold *c);

/* Moves the migration status from -> to, accepting a record already further
 * along the cold path (a resumed step). */
fy_code cond_cold_advance(cond_cold *c, fy_mig_status from, fy_mig_status to, fy_err *err);

/* The common agent-step body (docs/migrations.md "Bodies of the agent calls").
 * bdi (may be NULL) becomes block_device_info; flavor (may be NULL) "flavor". */
fy_code cond_cold_body(const cond_cold *c, const json_t *bdi, const json_t *flavor,
                       json_t **ret, fy_err *err);
/* POST the step to host's agent; the answer's migrate_data (if any) is merged
 * into the migration record.  Transient failures (the agent's or this
 * conductor's database restarting, the agent restarting) are retried as
 * above: agent steps are run-once, a repeated call gets the recorded answer.
 * When the conductor stops meanwhile, run->release is set. */
fy_code cond_cold_agent(cond_cold *c, const char *host, const char *step, const json_t *body,
                        long timeout_ms, json_t **ret_json, fy_err *err);

/* Volume connections: initialize every attachment's connection on host and
 * return the block_device_info; or terminate them all there. */
fy_code cond_cold_connect_volumes(const char *instance_uuid, const char *host, json_t **ret_bdi,
                                  fy_err *err);
fy_code cond_cold_disconnect_volumes(const char *instance_uuid, const char *host, fy_err *err);

/* Sets the instance's task_state to `to` when it is one of from[] ("" in
 * from[] stands for NULL); *ret_updated false when it was not. */
fy_code cond_cold_task_state(const char *uuid, const char *const *from, size_t nfrom,
                             const char *to, bool *ret_updated, fy_err *err);

/* The instance's old_flavor snapshot (*ret NULL when there is none). */
fy_code cond_cold_old_flavor(const char *uuid, json_t **ret, fy_err *err);

/* ---- quota reservations (cond_quota.c) ----
 * A move's reservations are rows of quota_reservations whose consumer_uuid is
 * the migration.  Committing and rolling back both remove them: a commit runs
 * in the transaction that changes the flavor the usage is counted from. */
fy_code cond_quota_commit(const char *migration_uuid, fy_err *err);
fy_code cond_quota_rollback(const char *migration_uuid, fy_err *err);
/* Commit at the flavor change of a move: the reservations go, and a downsize
 * holds the difference under the migration until the confirm or revert
 * commits it in turn.  Runs after the instance's flavor was written. */
fy_code cond_quota_commit_hold(const char *migration_uuid, const char *instance_uuid,
                               fy_err *err);

/* ---- auto-confirm (cond_autoconfirm.c) ---- */

typedef struct cond_autoconfirm cond_autoconfirm;
/* Starts the periodic task when resize_confirm_window > 0 (*ret NULL otherwise). */
fy_code cond_autoconfirm_start(const cond_ctx *ctx, cond_autoconfirm **ret, fy_err *err);
void cond_autoconfirm_stop(cond_autoconfirm *ac);
/* One pass: queues a confirm task for every migration finished longer than
 * window_s ago.  *ret_count (may be NULL) receives how many. */
fy_code cond_autoconfirm_once(long long window_s, long *ret_count, fy_err *err);

/* ---- SQL (cond_cold_sql.c) ---- */

extern const fy_sql cond_sql_cold_quota_delete, cond_sql_cold_quota_hold, cond_sql_cold_task_state,
    cond_sql_cold_instance_unprep, cond_sql_cold_apply_flavor, cond_sql_cold_restore_flavor,
    cond_sql_cold_resized, cond_sql_cold_confirmed, cond_sql_cold_revert_flavor,
    cond_sql_cold_reverted, cond_sql_cold_old_flavor, cond_sql_cold_power;
extern const fy_sql cond_sql_cold_due, cond_sql_cold_confirming, cond_sql_cold_action_add,
    cond_sql_cold_task_add, cond_sql_cold_notify;
