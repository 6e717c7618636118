/* compute_mig — the agent's side of live and cold migration: step handlers
 * (compute_live.c, compute_cold.c), the live-migration job and its monitor
 * (compute_live_job.c), the disk data plane (compute_transfer.c) and the
 * run-time settings (compute_settings.c).  docs/migrations.md is the contract. */
#pragma once
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include "compute.h"
#include "compute_driver.h"
#include "fy_err.h"
#include "fy_httpd.h"

/* ---- run-time settings (compute_settings.c) ---- */

typedef struct compute_settings {
    long long lm_downtime_ms;
    long long lm_downtime_steps;
    long long lm_downtime_delay_s;
    long long lm_completion_timeout_s;
    bool lm_timeout_force;            /* timeout action force_complete (else abort) */
    long long lm_progress_timeout_s;
    long long fake_memory_copy_ms;
    double fake_dirty_rate;
    long long fake_bandwidth_mbps;
    long long lm_bandwidth_mibps;     /* hypervisor's migration bandwidth cap, 0 = none */
} compute_settings;

/* Starts from the configuration (again: drops earlier overrides). */
void compute_settings_init(const compute_config *cfg);
void compute_settings_get(compute_settings *ret);
/* Applies {"key": value, ...}; all or nothing, FY_E_BAD_REQUEST naming a bad key. */
fy_code compute_settings_apply(const json_t *obj, fy_err *err);
json_t *compute_settings_json(void);
fy_code compute_settings_handle_put(fy_req *req, fy_resp *resp, fy_err *err);
fy_code compute_settings_handle_get(fy_req *req, fy_resp *resp, fy_err *err);

/* ---- the convergence monitor, as pure functions (compute_live_job.c) ---- */

/* The allowed downtime after elapsed_s seconds: Nova's ramp from
 * downtime/steps up to downtime in `steps` steps, one every delay_s. */
long long compute_lm_downtime_at(long long downtime_ms, long long steps, long long delay_s,
                                 double elapsed_s);

typedef enum { COMPUTE_LM_ACT_NONE, COMPUTE_LM_ACT_ABORT, COMPUTE_LM_ACT_FORCE } compute_lm_act;
/* What the completion timeout asks for after elapsed_s (timeout 0 = never). */
compute_lm_act compute_lm_timeout_action(long long timeout_s, bool force, double elapsed_s);

/* Stall detection: remaining data that has not shrunk for timeout_s. */
typedef struct compute_lm_stall {
    long long watermark;    /* lowest remaining seen; -1 before the first sample */
    double since_s;         /* when it last went down */
} compute_lm_stall;
void compute_lm_stall_init(compute_lm_stall *s, double now_s);
/* Feeds one sample; true when stalled (timeout_s 0 = never). */
bool compute_lm_stall_check(compute_lm_stall *s, long long remaining, double now_s,
                            long long timeout_s);

/* ---- the live-migration job (compute_live_job.c) ---- */

/* Starts the job for spec->migration_uuid unless one already ran or runs for
 * it (then FY_E_OK without starting another). */
fy_code compute_live_job_start(compute_ctx *ctx, const compute_mig_spec *spec, fy_err *err);
/* Acts on the running job: FY_E_NOT_FOUND when there is none here;
 * *ret_state is its state ("running", or the recorded end). */
fy_code compute_live_job_abort(const char *migration_uuid, const char **ret_state, fy_err *err);
fy_code compute_live_job_force_complete(const char *migration_uuid, const char **ret_state,
                                        fy_err *err);
/* A migration the hypervisor went on with while the agent was away (a
 * driver's restart reconcile): it gets a monitor again and its end is recorded
 * as any job's; abort_it/force_it apply a request made meanwhile.  Takes
 * handle in every case. */
fy_code compute_live_job_adopt(compute_driver *drv, const char *host, const char *migration_uuid,
                               const char *instance_uuid, compute_lm_job *handle, bool abort_it,
                               bool force_it, fy_err *err);
/* A driver's migration ended (its own thread saw it): the job monitors look
 * now rather than at their next poll. */
void compute_live_job_kick(void);
/* Marks the jobs this host left running (before a restart) failed. */
fy_code compute_live_job_recover(const char *host, fy_err *err);
/* Aborts and waits for every job (at shutdown). */
void compute_live_job_shutdown(void);

/* ---- the disk data plane (compute_transfer.c) ---- */

typedef struct compute_xfer {
    const char *dest_url;        /* the destination agent's base URL */
    const char *service_secret;
    const char *migration_uuid;
    const char *instance_uuid;
    const char *path;            /* the file to send */
    atomic_llong *done;          /* bytes sent so far (may be NULL) */
    atomic_bool *cancel;         /* set to stop the transfer (may be NULL) */
    const char *host;            /* this host: when set, the transfer is recorded in
                                  * migration_jobs (kind disk_transfer) */
} compute_xfer;

/* Streams the file's data extents to PUT dest_url/internal/v1/transfer/<migration>/disk
 * with the sha256 of the body (hashed while reading); holes are not sent.  The
 * fault transfer_corrupt flips a byte in flight.  *ret_sha256 (65 bytes, may be
 * NULL) receives the hex digest of the body as sent (the file's own sha256 when
 * it has no holes).  *done counts the file's logical bytes covered. */
fy_code compute_transfer_push(const compute_xfer *x, char *ret_sha256, fy_err *err);
fy_code compute_transfer_handle_put(fy_req *req, fy_resp *resp, fy_err *err);
/* Hex sha256 of a whole file. */
fy_code compute_sha256_file(const char *path, char out[65], fy_err *err);

/* ---- step requests (compute_mig_req.c) ---- */

typedef struct compute_mig_req {
    compute_ctx *ctx;
    compute_mig_spec spec;
    const json_t *body;
    const char *source_compute, *dest_compute;
    json_t *owned_vifs;
    json_t *owned_md;
    json_t *owned_volumes;
} compute_mig_req;

/* Validates the step body against the path's migration uuid. */
fy_code compute_mig_req_parse(fy_req *req, compute_mig_req *m, fy_err *err);
void compute_mig_req_clear(compute_mig_req *m);

/* A step's work: fills *ret_answer (owned) with the answer body. */
typedef fy_code (*compute_mig_fn)(compute_mig_req *m, json_t **ret_answer, fy_err *err);
/* Parses, checks injected faults, runs fn once per "<migration>:<step>:<host>"
 * (a repeated call gets the recorded answer) and answers with `status`. */
fy_code compute_mig_run(fy_req *req, fy_resp *resp, const char *step, compute_mig_fn fn,
                        int status, fy_err *err);
/* true when migrate_data says the instance path is shared. */
bool compute_md_bool(const json_t *md, const char *key, bool def);

/* Route handlers. */
/* *handled is false when the step is not one of theirs. */
fy_code compute_live_handle_step(fy_req *req, fy_resp *resp, bool *handled, fy_err *err);
fy_code compute_cold_handle_step(fy_req *req, fy_resp *resp, bool *handled, fy_err *err);
/* Dispatches POST /internal/v1/migrations/{uuid}/{step} to the live or cold table. */
fy_code compute_mig_handle_step(fy_req *req, fy_resp *resp, fy_err *err);
