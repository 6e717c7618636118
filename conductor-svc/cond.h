/* cond — ferry-conductor: runs every accepted request as a durable task.
 *
 * The API writes a `tasks` row; worker threads claim it with a lease, run the
 * handler for its kind step by step (recording `step` before each one so that
 * another conductor can resume it), and mark it done or failed.  Handlers only
 * call idempotent steps on the scheduler and the compute agents. */
#pragma once
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include "fy_config.h"
#include "fy_db.h"
#include "fy_err.h"
#include "fy_httpd.h"

/* ---- configuration (cond_config.c) ---- */

typedef struct cond_config {
    char *db_url;
    char *service_secret;
    char *host;
    char *bind;
    long long port;
    long long threads;
    char *log_level;
    char *log_format;
    long long report_interval;
    long long service_down_time;
    long long workers;          /* task threads */
    long long lease_seconds;
    char *scheduler_url;
    long long max_attempts;     /* hosts tried for one build */
    char *advertise_url;        /* where other services reach this conductor */
    long long live_migration_retries;   /* candidate hosts tried without a given host */
    long long live_migration_step_timeout_s;
    bool allow_resize_to_same_host;     /* cold moves may stay on the source host */
    long long resize_confirm_window;    /* auto-confirm after this many seconds (0 = off) */
} cond_config;

/* cfg is overwritten; on failure free it with cond_config_free all the same. */
fy_code cond_config_load(cond_config *cfg, const char *file, fy_err *err);
void cond_config_free(cond_config *cfg);

/* The service context shared by the HTTP server and the task engine. */
typedef struct cond_ctx {
    cond_config cfg;
} cond_ctx;

/* ---- SQL (cond_sql.c) ---- */

extern const fy_sql cond_sql_task_claim, cond_sql_task_step, cond_sql_task_step_params,
    cond_sql_task_finish, cond_sql_task_release, cond_sql_task_renew, cond_sql_task_get,
    cond_sql_task_requeue_deletes;
extern const fy_sql cond_sql_instance_get, cond_sql_instance_bind, cond_sql_instance_active,
    cond_sql_instance_error, cond_sql_instance_deleted, cond_sql_instance_power,
    cond_sql_instance_task_clear;
extern const fy_sql cond_sql_bindings_drop_other, cond_sql_bindings_add, cond_sql_ports_activate,
    cond_sql_ports_list, cond_sql_bindings_drop_all, cond_sql_ports_delete_owned,
    cond_sql_ports_detach, cond_sql_volumes_free, cond_sql_attachments_drop;
extern const fy_sql cond_sql_fault_add, cond_sql_event_start, cond_sql_event_finish,
    cond_sql_action_finish, cond_sql_service_url, cond_sql_pending_move;

/* ---- tasks (cond_tasks.c) ---- */

typedef struct cond_task {
    long long id;
    char uuid[40];
    char kind[32];
    char instance_uuid[40];     /* "" when NULL */
    char migration_uuid[40];    /* "" when NULL */
    char request_id[128];
    char step[64];
    int attempts;               /* claims so far, this one included */
    json_t *params;             /* owned; always an object */
} cond_task;

void cond_task_clear(cond_task *t);

/* Claims the oldest claimable task: queued, or running with an expired lease,
 * and not behind an unfinished older task of the same instance (tasks of one
 * instance run in order).  *ret_found false (and *ret untouched) when none. */
fy_code cond_task_claim(const char *owner, int lease_s, cond_task *ret, bool *ret_found,
                        fy_err *err);
/* Final states; FY_E_CONFLICT when the task is no longer ours (lease lost). */
fy_code cond_task_finish(const cond_task *t, const char *owner, bool ok, const char *error,
                         fy_err *err);
/* Gives the task back: claimable again after delay_s (0 = at once). */
fy_code cond_task_release(const cond_task *t, const char *owner, int delay_s, const char *why,
                          fy_err *err);
/* Extends the lease of every running task whose owner starts with prefix. */
fy_code cond_task_renew(const char *owner_prefix, int lease_s, long *ret_renewed, fy_err *err);
/* Failed deletes of instances still marked deleting are queued again. */
fy_code cond_task_requeue_deletes(long *ret_count, fy_err *err);

/* One run of a claimed task, handed to its handler. */
typedef struct cond_engine cond_engine;
/* cond_pending.c: best-effort writes (instance-action events) held back to
 * go out with the run's next step or outcome write, in one round trip. */
typedef struct cond_pending cond_pending;
cond_pending *cond_pending_new(void);
void cond_pending_free(cond_pending *q);
/* Copies the n params, the one at time_at replaced by the current time; false
 * (nothing queued) when q is NULL or full. */
bool cond_pending_add(cond_pending *q, const fy_sql *stmt, const char *const *p, int n,
                      int time_at);
/* Runs the queued writes before `then` (may be NULL) in one batch; a failing
 * queued write is dropped with a warning and `then` runs alone. */
fy_code cond_pending_flush(cond_pending *q, const fy_sql *then, const char *const *then_p,
                           PGresult **then_res, fy_err *err);

typedef struct cond_run {
    const cond_ctx *ctx;
    cond_engine *eng;           /* NULL when run outside the engine (tests) */
    cond_pending *pending;      /* NULL: event writes go out at once */
    cond_task task;
    char owner[320];
    int lease_s;
    bool release;               /* handler: give the task back instead of failing it */
    bool lost;                  /* the lease went to someone else: write nothing more */
} cond_run;

/* Records `step` (renewing the lease) before the step runs.  Fails with
 * FY_E_UNAVAILABLE when the conductor is stopping (the task is then released)
 * and FY_E_CONFLICT when the lease was lost.  params (may be NULL) replaces
 * tasks.params in the same statement: state a resumed run needs. */
fy_code cond_step(cond_run *run, const char *step, const json_t *params, fy_err *err);
/* Index of run->task.step in steps[] (the first step when unknown or empty). */
size_t cond_step_index(const cond_run *run, const char *const *steps, size_t n);
/* Marks the run for release (a transient failure such as a database outage)
 * and returns err->code. */
fy_code cond_retry_later(cond_run *run, fy_err *err);
/* True once SIGTERM asked the engine to stop. */
bool cond_stopping(const cond_run *run);
/* Sleeps up to ms, returning early (false) when the conductor is stopping. */
bool cond_sleep(const cond_run *run, long ms);

typedef fy_code (*cond_task_fn)(cond_run *run, fy_err *err);
typedef struct cond_kind {
    const char *kind;
    cond_task_fn run;
} cond_kind;

/* The kinds this conductor runs (cond_kinds.c). */
extern const cond_kind cond_kinds[];
extern const size_t cond_nkinds;
const cond_kind *cond_kind_find(const char *kind);

/* Runs one claimed task to its end (done, failed or released); the engine's
 * worker body, also used by tests. */
void cond_task_execute(cond_run *run);

fy_code cond_engine_start(const cond_ctx *ctx, cond_engine **ret, fy_err *err);
/* Stops claiming, lets running tasks finish or release at their next step, joins. */
void cond_engine_stop(cond_engine *eng);

/* Owner string "<host>:<pid>:<n>" (out must hold 320 bytes). */
void cond_owner_format(char *out, size_t size, const char *host, long pid, int n);

/* ---- migration job notifications (cond_jobs.c) ---- */

/* A task thread watching one migration's 'ferry_jobs' notifications. */
typedef struct cond_jobs_watch {
    char migration_uuid[40];
    unsigned long hits, seen;   /* under the module's lock */
    struct cond_jobs_watch *next;
} cond_jobs_watch;

/* The LISTEN thread, started and stopped with the engine.  Stop also wakes
 * every watcher so that waiting tasks can release themselves. */
fy_code cond_jobs_start(fy_err *err);
void cond_jobs_stop(void);
bool cond_jobs_stopping(void);
/* Register before reading the state that is waited on, so no wake-up is lost. */
void cond_jobs_watch_start(cond_jobs_watch *w, const char *migration_uuid);
void cond_jobs_watch_end(cond_jobs_watch *w);
/* Blocks until a notification for the watched migration (true) or ms elapse. */
bool cond_jobs_wait(cond_jobs_watch *w, long ms);

/* ---- handlers ---- */

fy_code cond_build_run(cond_run *run, fy_err *err);     /* cond_build.c */
fy_code cond_delete_run(cond_run *run, fy_err *err);    /* cond_delete.c */
fy_code cond_start_run(cond_run *run, fy_err *err);     /* cond_power.c */
fy_code cond_stop_run(cond_run *run, fy_err *err);
fy_code cond_live_run(cond_run *run, fy_err *err);     /* cond_live.c */
fy_code cond_migrate_run(cond_run *run, fy_err *err);  /* cond_cold.c */
fy_code cond_resize_run(cond_run *run, fy_err *err);
fy_code cond_confirm_run(cond_run *run, fy_err *err);  /* cond_confirm.c */
fy_code cond_revert_run(cond_run *run, fy_err *err);   /* cond_revert.c */

/* ---- clients (cond_clients.c) ---- */

typedef struct cond_resources {
    long long vcpus, memory_mb, disk_gb;
} cond_resources;

#define COND_HOST_MAX 256
typedef struct cond_dest {
    char host[COND_HOST_MAX];
    char node[COND_HOST_MAX];
} cond_dest;

#define COND_MAX_ALTERNATES 8
typedef struct cond_select {
    const char *consumer_uuid;
    const char *project_id;
    cond_resources res;
    const char *zone;           /* NULL = any */
    const char *force_host;     /* NULL = any */
    int num_alternates;
    const char *const *ignore_hosts;    /* hosts never chosen (may be NULL) */
    size_t n_ignore_hosts;
} cond_select;

typedef struct cond_selection {
    cond_dest dest;
    cond_dest alts[COND_MAX_ALTERNATES];
    int nalts;
} cond_selection;

/* Claims on the chosen host.  FY_E_NO_VALID_HOST with the scheduler's message. */
fy_code cond_sched_select(const cond_ctx *ctx, const cond_select *req, cond_selection *ret,
                          fy_err *err);
/* FY_E_CONFLICT when the host has no room. */
fy_code cond_sched_claim(const cond_ctx *ctx, const char *consumer_uuid, const char *project_id,
                         const char *host, const cond_resources *res, fy_err *err);
/* host NULL releases the consumer everywhere; idempotent. */
fy_code cond_sched_release(const cond_ctx *ctx, const char *consumer_uuid, const char *host,
                           fy_err *err);

/* Hands from_consumer's allocations (on host; all hosts when NULL) to
 * to_consumer; idempotent (docs/migrations.md: a move's source allocation). */
fy_code cond_sched_move(const cond_ctx *ctx, const char *from_consumer, const char *to_consumer,
                        const char *host, fy_err *err);

/* The compute agent URL of host from `services` (FY_E_NOT_FOUND when none). */
fy_code cond_agent_url(const char *host, char **ret, fy_err *err);
/* cond_urlcache.c: agent URLs remembered for a few seconds. */
bool cond_urlcache_get(const char *host, char *out, size_t size);
void cond_urlcache_put(const char *host, const char *url);
void cond_urlcache_forget(const char *host);
/* POST <agent>/internal/v1/instances/<uuid>/<action>.  body NULL sends {}.
 * *ret_json (may be NULL) receives the answer, owned by the caller. */
fy_code cond_agent_post(const cond_ctx *ctx, const char *host, const char *instance_uuid,
                        const char *action, const json_t *body, int retries, long timeout_ms,
                        json_t **ret_json, fy_err *err);

/* POST <agent of host><path> (path starts with "/").  body NULL sends {}. */
fy_code cond_agent_post_path(const cond_ctx *ctx, const char *host, const char *path,
                             const json_t *body, int retries, long timeout_ms,
                             json_t **ret_json, fy_err *err);

/* ---- instances (cond_instance.c) ---- */

typedef struct cond_instance {
    PGresult *res;              /* owns every string below */
    const char *uuid, *display_name, *project_id, *user_id, *image_ref;
    const char *vm_state, *task_state, *host, *node, *availability_zone, *requested_host;
    long long id;
    int power_state;
    bool deleted;
    json_t *flavor;             /* owned */
} cond_instance;

fy_code cond_instance_load(const char *uuid, cond_instance *ret, fy_err *err);
/* The move a resized instance waits on (status finished): its uuid in ret
 * (37 bytes), or FY_E_NOT_FOUND. */
fy_code cond_instance_pending_move(const char *instance_uuid, char *ret, fy_err *err);
void cond_instance_clear(cond_instance *inst);

/* vcpus, memory_mb and disk_gb = root_gb + ephemeral_gb from a flavor snapshot. */
fy_code cond_flavor_resources(const json_t *flavor, cond_resources *ret, fy_err *err);

/* Instance-action events, found by instance uuid + request id.  A missing
 * action row is not an error (the event is then not recorded). */
fy_code cond_event_start(const char *instance_uuid, const char *request_id, const char *event,
                         const char *host, fy_err *err);
fy_code cond_event_finish(const char *instance_uuid, const char *request_id, const char *event,
                          bool ok, const char *traceback, fy_err *err);
/* finish_time = now(); message "Error" when !ok. */
fy_code cond_action_finish(const char *instance_uuid, const char *request_id, bool ok,
                           fy_err *err);

/* vm_state error (task_state cleared unless a delete is pending) + a fault row. */
fy_code cond_instance_set_error(const char *uuid, int code, const char *message,
                                const char *host, fy_err *err);
fy_code cond_fault_add(const char *uuid, int code, const char *message, const char *host,
                       fy_err *err);
/* Best effort: events and the action are bookkeeping; a failure is logged, not fatal. */
void cond_event_start_q(const cond_run *run, const char *event, const char *host);
void cond_event_finish_q(const cond_run *run, const char *event, bool ok, const char *tb);
void cond_action_finish_q(const cond_run *run, bool ok);

/* ---- HTTP server and service life cycle (cond_server.c) ---- */

extern const fy_route cond_routes[];
extern const size_t cond_nroutes;
fy_code cond_healthz(fy_req *req, fy_resp *resp, fy_err *err);
fy_code cond_task_show(fy_req *req, fy_resp *resp, fy_err *err);

/* The whole service: config, database, HTTP, registration, engine; returns the exit code. */
int cond_main(int argc, char **argv);
