/* api_servers — shared pieces of the servers API: the server view, the state
 * transition used by every server action, conductor tasks, and the SQL of
 * servers, services and hypervisors (api_servers_sql.c). */
#pragma once
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include "api.h"
#include "fy_db.h"

/* ---- view (api_server_view.c) ---- */

/* One instance as the view needs it; strings are borrowed (NULL = SQL NULL). */
typedef struct api_server_row {
    const char *uuid, *name, *project_id, *user_id, *image_ref;
    const char *flavor_json; /* the instances.flavor snapshot */
    const char *vm_state, *task_state, *host, *node, *az, *key_name;
    const char *metadata_json;
    const char *launched_at, *terminated_at, *created, *updated;
    const char *ports_json;   /* [{"net","addr","mac"}] or NULL */
    const char *volumes_json; /* [volume uuid] or NULL */
    const char *fault_json;   /* {"code","message","details","created"} or NULL */
    const char *host_status;  /* UP, DOWN, MAINTENANCE, UNKNOWN or NULL */
    long long id, power_state;
    bool locked;
} api_server_row;

/* What the caller may see, decided from microversion and policy. */
typedef struct api_view_opts {
    const char *base_url; /* public URL without trailing slash */
    int mv_major, mv_minor;
    bool ext_attrs;     /* OS-EXT-SRV-ATTR:* (admin by default) */
    bool host_status;   /* host_status (2.16+, admin by default) */
    bool fault_details; /* fault.details (admin) */
} api_view_opts;

/* Nova's API status from vm_state and task_state ("UNKNOWN" if unmapped). */
const char *api_server_status(const char *vm_state, const char *task_state);
/* Status filter: appends the vm_states and task_states that map to status
 * (case-insensitive); *ret_any_task set when a "default" entry matched, which
 * means task_state must not be filtered.  False when nothing maps. */
bool api_server_status_states(const char *status, json_t *vm_states, json_t *task_states,
                              bool *ret_any_task);
/* Nova's hostId: sha224 hex of project_id + host; "" when host is NULL/empty. */
void api_server_host_id(const char *project_id, const char *host, char out[57]);
/* Nova's hostname sanitisation of a display name (at most 63 chars). */
void api_server_hostname(const char *display_name, char out[64]);

/* Fills row from a result of api_sql_servers_select (see api_servers_sql.c). */
void api_server_row_from_pg(PGresult *res, int i, api_server_row *ret);
/* {"id","name","links"} */
json_t *api_server_view_brief(const api_view_opts *o, const api_server_row *r);
/* The full show/detail object. */
json_t *api_server_view_full(const api_view_opts *o, const api_server_row *r);
/* Self/bookmark links of a server. */
json_t *api_server_links(const char *base_url, const char *uuid);
/* The public URL of this API (config), without a trailing slash, into out. */
void api_base_url(const fy_req *req, char *out, size_t size);
/* View options for this request (microversion + policy). */
void api_view_opts_for(const fy_req *req, char *base_buf, size_t base_size, api_view_opts *ret);

/* ---- instance load and transitions (api_servers.c) ---- */

/* Loads a non-deleted instance visible to the caller (other projects are
 * invisible to non-admins, as in Nova): FY_E_NOT_FOUND
 * "Instance <id> could not be found." otherwise.  *ret owns the row. */
fy_code api_server_load(const fy_req *req, const char *uuid, PGresult **ret, fy_err *err);

/* A guarded change of an instance's task_state with its conductor task.
 * Nova's `check_instance_state`: vm_state must be one of vm_states (NULL = any),
 * and task_state must be NULL unless any_task_state. */
typedef struct api_transition {
    const char *rule;             /* policy rule, checked against the owner */
    const char *conflict_name;    /* "stop" in "Cannot 'stop' instance ..." */
    const char *const *vm_states; /* NULL-terminated, or NULL */
    bool any_task_state;
    const char *new_task_state;
    const char *task_kind;      /* tasks.kind */
    const char *action;         /* instance_actions.action */
    const char *migration_uuid; /* tasks.migration_uuid, or NULL */
    const char *params_json;    /* tasks.params, or NULL for {} */
    /* Optional extra writes in the same transaction (after the state checks). */
    fy_code (*extra)(PGresult *inst, void *arg, fy_err *err);
    void *extra_arg;
} api_transition;

/* Loads, checks policy, then in one transaction: locks the row, checks state and
 * lock, sets task_state, records the action, queues the task and notifies.
 * A transition to the task_state the instance already has is a no-op success. */
fy_code api_server_transition(fy_req *req, const char *uuid, const api_transition *t, fy_err *err);

/* ---- server actions (api_servers_action.c) ---- */

/* arg is the action's member value (may be json null). */
typedef fy_code (*api_action_fn)(fy_req *req, fy_resp *resp, const char *server_id, json_t *arg,
                                 fy_err *err);
typedef struct api_server_action {
    const char *name; /* body key: "os-stop" */
    api_action_fn fn;
} api_server_action;

fy_code api_action_start(fy_req *, fy_resp *, const char *, json_t *, fy_err *);
fy_code api_action_stop(fy_req *, fy_resp *, const char *, json_t *, fy_err *);

/* ---- tasks and instance actions (api_tasks.c); call inside fy_db_txn ---- */

/* Inserts a queued task and NOTIFYs ferry_tasks with its uuid (delivered at commit). */
fy_code api_task_enqueue(const char *kind, const char *instance_uuid, const char *migration_uuid,
                         const char *request_id, const char *params_json, char ret_uuid[37],
                         fy_err *err);
/* Records an instance action (Nova's os-instance-actions) for this request. */
fy_code api_instance_action_record(const fy_req *req, const char *instance_uuid, const char *action,
                                   fy_err *err);

/* ---- small shared helpers ---- */

/* service_down_time as a decimal string for SQL parameters. */
void api_down_time_param(const fy_req *req, char out[24]);
/* True for "1", "true", "True", "yes", "on" (Nova's bool_from_string). */
bool api_bool_str(const char *s);

/* ---- SQL (api_servers_sql.c) ---- */
extern const fy_sql api_sql_servers_select;
extern const fy_sql api_sql_server_marker;
extern const fy_sql api_sql_server_get;
extern const fy_sql api_sql_server_lock;
extern const fy_sql api_sql_server_set_task;
extern const fy_sql api_sql_task_insert;
extern const fy_sql api_sql_task_notify;
extern const fy_sql api_sql_action_insert;
extern const fy_sql api_sql_srv_flavor_get;
extern const fy_sql api_sql_srv_image_get;
extern const fy_sql api_sql_compute_host_get;
extern const fy_sql api_sql_zone_exists;
extern const fy_sql api_sql_quota_lock;
extern const fy_sql api_sql_quota_usage;
extern const fy_sql api_sql_instance_insert;
extern const fy_sql api_sql_network_default;
extern const fy_sql api_sql_network_lock;
extern const fy_sql api_sql_network_free_ip;
extern const fy_sql api_sql_port_insert;
extern const fy_sql api_sql_port_lock;
extern const fy_sql api_sql_port_attach;
extern const fy_sql api_sql_services_list;
extern const fy_sql api_sql_service_update;
extern const fy_sql api_sql_hypervisors_list;
extern const fy_sql api_sql_zones_list;
