/* sched — ferry-scheduler: picks a destination host and claims its resources.
 *
 * A request goes: candidate host states from PostgreSQL (coarse filter and
 * order in one statement, at most max_candidates rows) -> exact filters in C
 * -> weighers -> a conditional claim on the best host, falling back to the
 * next one when another scheduler took the room first. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include "fy_config.h"
#include "fy_err.h"
#include "fy_httpd.h"

/* ---- configuration (sched_config.c) ---- */

typedef struct sched_config {
    char *db_url;
    char *service_secret;
    char *host;
    char *bind;
    long long port;
    bool reuse_port;          /* share the port with other scheduler processes (SO_REUSEPORT) */
    long long threads;
    char *log_level;
    char *log_format;
    long long report_interval;
    long long service_down_time;
    char *weigher;
    long long max_candidates;
} sched_config;

extern const fy_cfg_opt sched_config_table[];
extern const size_t sched_config_table_len;

/* Loads defaults -> file (may be NULL) -> environment, fills host from
 * gethostname() when unset and validates weigher.  cfg must start zeroed. */
fy_code sched_config_load(const char *file, sched_config *cfg, fy_err *err);
void sched_config_free(sched_config *cfg);

/* ---- requests and host states ---- */

typedef struct sched_resources {
    long long vcpus;
    long long memory_mb;
    long long disk_gb;
} sched_resources;

/* Largest amount of any resource one request may ask for (an SQL integer). */
#define SCHED_RES_MAX 2147483647LL
#define SCHED_IGNORE_MAX 1000

typedef struct sched_request {
    const char *consumer_uuid;       /* required when claim */
    const char *project_id;          /* may be NULL */
    sched_resources res;
    const char *availability_zone;   /* NULL = any */
    const char *force_host;          /* NULL = any; matches host or node name */
    const char *const *ignore_hosts;
    size_t n_ignore_hosts;
    int num_alternates;
    bool claim;
} sched_request;

typedef struct sched_host_state {
    int node_id;
    char *host;                      /* compute_nodes.host */
    char *node;                      /* compute_nodes.hypervisor_hostname */
    char *url;                       /* services.url, may be NULL */
    char *zone;                      /* services.zone */
    long long vcpus, memory_mb, local_gb;
    long long vcpus_used, memory_mb_used, local_gb_used;
    double cpu_ratio, ram_ratio, disk_ratio;
    bool disabled;
    bool forced_down;
    double heartbeat_age_s;          /* < 0: never reported */
    double weight;                   /* set by sched_weigh_hosts */
} sched_host_state;

typedef struct sched_host_list {
    sched_host_state *hosts;
    size_t n;
} sched_host_list;

void sched_host_state_clear(sched_host_state *hs);
void sched_host_list_clear(sched_host_list *l);

typedef enum { SCHED_WEIGH_SPREAD, SCHED_WEIGH_PACK } sched_weigher;

/* What a scheduler process decides with, from its configuration. */
typedef struct sched_policy {
    sched_weigher weigher;
    int max_candidates;
    int service_down_time;
} sched_policy;

/* ---- host states from the database (sched_hoststate.c) ---- */

/* Up, enabled hosts with room for req, best first for pol's weigher, at most
 * pol->max_candidates.  ret must start zeroed; it is owned by the caller. */
fy_code sched_hoststate_candidates(const sched_policy *pol, const sched_request *req,
                                   sched_host_list *ret, fy_err *err);
/* The host state of compute node `host`; FY_E_NOT_FOUND when there is none. */
fy_code sched_hoststate_get(const char *host, sched_host_state *ret, fy_err *err);

/* ---- filters (sched_filters.c): pure functions, true = host passes ---- */

typedef struct sched_filter_ctx {
    const sched_request *req;
    int service_down_time;
} sched_filter_ctx;

typedef bool (*sched_filter_fn)(const sched_host_state *hs, const sched_filter_ctx *ctx);

typedef struct sched_filter {
    const char *name;
    sched_filter_fn fn;
} sched_filter;

extern const sched_filter sched_filters[];
extern const size_t sched_nfilters;

bool sched_filter_compute(const sched_host_state *hs, const sched_filter_ctx *ctx);
bool sched_filter_ram(const sched_host_state *hs, const sched_filter_ctx *ctx);
bool sched_filter_core(const sched_host_state *hs, const sched_filter_ctx *ctx);
bool sched_filter_disk(const sched_host_state *hs, const sched_filter_ctx *ctx);
bool sched_filter_az(const sched_host_state *hs, const sched_filter_ctx *ctx);
bool sched_filter_ignore_hosts(const sched_host_state *hs, const sched_filter_ctx *ctx);
bool sched_filter_force_host(const sched_host_state *hs, const sched_filter_ctx *ctx);

/* Name of the first filter rejecting hs, or NULL when every filter passes. */
const char *sched_filters_reject(const sched_host_state *hs, const sched_filter_ctx *ctx);
/* Drops (and frees) the hosts some filter rejects, keeping the order of the rest. */
void sched_filter_hosts(sched_host_list *l, const sched_filter_ctx *ctx);

/* ---- weighers (sched_weighers.c) ---- */

bool sched_weigher_from_name(const char *name, sched_weigher *ret);
const char *sched_weigher_name(sched_weigher w);
/* The RAM weigher's raw value: free RAM in MB (may be negative when overcommitted). */
double sched_weigh_ram_raw(const sched_host_state *hs);
/* Nova's normalisation: (x - min) / (max - min) into out; all 0 when max == min. */
void sched_normalize(const double *in, size_t n, double *out);
/* Sets each host's weight (normalised raw value x multiplier: +1 spread, -1 pack)
 * and sorts best first; equal weights keep their order. */
fy_code sched_weigh_hosts(sched_host_state *hosts, size_t n, sched_weigher w, fy_err *err);

/* ---- claims (sched_claim.c): each runs in its own transaction, so none may
 * be called while the calling thread has one open ---- */

/* Claims res on node node_id for consumer.  Succeeds without counting twice when
 * the consumer already holds an allocation there (*ret_existing = true).
 * FY_E_CONFLICT when the node has no room left. */
fy_code sched_claim(const char *consumer_uuid, const char *project_id, int node_id,
                    const sched_resources *res, bool *ret_existing, fy_err *err);
/* Drops consumer's allocations (on `host` only, or everywhere when host is NULL)
 * and gives their resources back; idempotent.  *ret_nodes = nodes released. */
fy_code sched_release(const char *consumer_uuid, const char *host, long *ret_nodes, fy_err *err);
/* Hands from_consumer's allocations (on `host`, or everywhere when NULL) to
 * to_consumer, adding to any it already holds there; usage is unchanged.
 * Idempotent.  *ret_nodes = allocations moved. */
fy_code sched_move(const char *from_consumer, const char *to_consumer, const char *host,
                   long *ret_nodes, fy_err *err);

/* ---- selection (sched_select.c) ---- */

typedef struct sched_result {
    sched_host_list hosts;   /* filtered and weighed, best first */
    size_t chosen;           /* index of the destination in hosts */
    bool claimed;
    size_t alt_start, n_alt; /* alternates: hosts[alt_start .. alt_start + n_alt) */
    int lost_races;          /* claims lost to other schedulers before `chosen` */
} sched_result;

/* Chooses (and with req->claim, claims) a destination.  FY_E_NO_VALID_HOST when
 * no host fits.  ret must start zeroed; clear it with sched_result_clear. */
fy_code sched_select_destinations(const sched_policy *pol, const sched_request *req,
                                  sched_result *ret, fy_err *err);
void sched_result_clear(sched_result *r);

/* ---- HTTP service (sched_server.c) ---- */

typedef struct sched_ctx {
    const sched_config *cfg;
    sched_policy policy;
} sched_ctx;

extern const fy_route sched_routes[];
extern const size_t sched_nroutes;

fy_code sched_policy_from_config(const sched_config *cfg, sched_policy *ret, fy_err *err);
/* Starts the HTTP server on ctx->cfg's bind/port (port 0 = ephemeral). */
fy_code sched_server_start(sched_ctx *ctx, fy_httpd **ret, fy_err *err);

fy_code sched_h_select_destinations(fy_req *req, fy_resp *resp, fy_err *err);
fy_code sched_h_claim(fy_req *req, fy_resp *resp, fy_err *err);
fy_code sched_h_release(fy_req *req, fy_resp *resp, fy_err *err);
fy_code sched_h_move(fy_req *req, fy_resp *resp, fy_err *err);
