/* sched_server — the scheduler's internal endpoints (docs/internals.md). */
#include "fy_health.h"
#include <stddef.h>
#include <stdlib.h>

#include <jansson.h>

#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_metrics.h"
#include "fy_metrics_http.h"
#include "fy_util.h"
#include "sched.h"

#define SCHED_MAX_BODY (64 * 1024)
#define SCHED_ALTERNATES_MAX 50
#define NAME_MAX_LEN 255

/* ---- request bodies ---- */

static fy_code parse_resources(const json_t *obj, sched_resources *ret, fy_err *err)
{
    static const fy_jspec spec[] = {
        {"vcpus", FY_J_INT, FY_J_REQUIRED, offsetof(sched_resources, vcpus), FY_JNOPRESENT,
         0, SCHED_RES_MAX},
        {"memory_mb", FY_J_INT, FY_J_REQUIRED, offsetof(sched_resources, memory_mb),
         FY_JNOPRESENT, 0, SCHED_RES_MAX},
        {"disk_gb", FY_J_INT, FY_J_REQUIRED, offsetof(sched_resources, disk_gb), FY_JNOPRESENT,
         0, SCHED_RES_MAX},
    };
    return fy_json_parse(obj, spec, ELEMENTSOF(spec), ret, false, "resources", err);
}

static fy_code need_body(const fy_req *req, fy_err *err)
{
    if (!req->json || !json_is_object(req->json))
        return fy_fail(err, FY_E_BAD_REQUEST, "The request body must be a JSON object.");
    return FY_E_OK;
}

/* ignore_hosts: null, absent or an array of host names. */
static fy_code parse_ignore(const json_t *v, const char ***ret, size_t *ret_n, fy_err *err)
{
    *ret = NULL;
    *ret_n = 0;
    if (!v || json_is_null(v))
        return FY_E_OK;
    if (!json_is_array(v))
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Invalid input for field/attribute ignore_hosts. "
                       "Value is not of type 'array'");
    size_t n = json_array_size(v);
    if (n > SCHED_IGNORE_MAX)
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Invalid input for field/attribute ignore_hosts. "
                       "Too many items (at most %d)", SCHED_IGNORE_MAX);
    if (n == 0)
        return FY_E_OK;
    const char **names = calloc(n, sizeof(*names));
    if (!names)
        return fy_fail(err, FY_E_NOMEM, NULL);
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(v, i);
        if (!json_is_string(s) || json_string_length(s) == 0 ||
            json_string_length(s) > NAME_MAX_LEN) {
            free(names);
            return fy_fail(err, FY_E_BAD_REQUEST,
                           "Invalid input for field/attribute ignore_hosts[%zu]. "
                           "Value is not a host name", i);
        }
        names[i] = json_string_value(s);
    }
    *ret = names;
    *ret_n = n;
    return FY_E_OK;
}

typedef struct select_body {
    const char *consumer_uuid;
    const char *project_id;
    json_t *resources;
    const char *availability_zone;
    const char *force_host;
    json_t *ignore_hosts;
    long long num_alternates;
    bool claim, has_claim;
} select_body;

/* Fills req from the body; *ret_ignore owns the ignore list's array. */
static fy_code parse_select(const json_t *body, sched_request *ret, const char ***ret_ignore,
                            fy_err *err)
{
    static const fy_jspec spec[] = {
        {"consumer_uuid", FY_J_STRING, FY_J_NULLABLE | FY_J_UUID,
         offsetof(select_body, consumer_uuid), FY_JNOPRESENT, 0, 0},
        {"project_id", FY_J_STRING, FY_J_NULLABLE | FY_J_UUID, offsetof(select_body, project_id),
         FY_JNOPRESENT, 0, 0},
        {"resources", FY_J_OBJECT, FY_J_REQUIRED, offsetof(select_body, resources),
         FY_JNOPRESENT, 0, 0},
        {"availability_zone", FY_J_STRING, FY_J_NULLABLE,
         offsetof(select_body, availability_zone), FY_JNOPRESENT, 1, NAME_MAX_LEN},
        {"force_host", FY_J_STRING, FY_J_NULLABLE, offsetof(select_body, force_host),
         FY_JNOPRESENT, 1, NAME_MAX_LEN},
        {"ignore_hosts", FY_J_ANY, 0, offsetof(select_body, ignore_hosts), FY_JNOPRESENT, 0, 0},
        {"num_alternates", FY_J_INT, 0, offsetof(select_body, num_alternates), FY_JNOPRESENT, 0,
         SCHED_ALTERNATES_MAX},
        {"claim", FY_J_BOOL, 0, offsetof(select_body, claim), offsetof(select_body, has_claim),
         0, 0},
    };
    select_body b = { 0 };
    fy_code rc = fy_json_parse(body, spec, ELEMENTSOF(spec), &b, false, NULL, err);
    if (rc != FY_E_OK)
        return rc;
    sched_request r = {
        .consumer_uuid = b.consumer_uuid,
        .project_id = b.project_id,
        .availability_zone = b.availability_zone,
        .force_host = b.force_host,
        .num_alternates = (int)b.num_alternates,
        .claim = b.has_claim ? b.claim : true,
    };
    rc = parse_resources(b.resources, &r.res, err);
    if (rc != FY_E_OK)
        return rc;
    if (r.claim && !r.consumer_uuid)
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "Missing required field: consumer_uuid (needed when claim is true)");
    const char **ignore = NULL;
    rc = parse_ignore(b.ignore_hosts, &ignore, &r.n_ignore_hosts, err);
    if (rc != FY_E_OK)
        return rc;
    r.ignore_hosts = ignore;
    *ret_ignore = ignore;
    *ret = r;
    return FY_E_OK;
}

/* ---- responses ---- */

static json_t *host_json(const sched_host_state *hs, int claimed)
{
    json_t *o = json_pack("{s:s, s:s, s:s?}", "host", hs->host, "node", hs->node ? hs->node : hs->host,
                          "url", hs->url);
    if (o && claimed >= 0)
        json_object_set_new(o, "claimed", json_boolean(claimed));
    return o;
}

static json_t *result_json(const sched_result *r)
{
    json_t *dests = json_array(), *alts = json_array();
    if (!dests || !alts)
        goto fail;
    if (json_array_append_new(dests, host_json(&r->hosts.hosts[r->chosen], r->claimed)) != 0)
        goto fail;
    for (size_t i = 0; i < r->n_alt; i++)
        if (json_array_append_new(alts, host_json(&r->hosts.hosts[r->alt_start + i], -1)) != 0)
            goto fail;
    return json_pack("{s:o, s:o}", "destinations", dests, "alternates", alts);
fail:
    json_decref(dests);
    json_decref(alts);
    return NULL;
}

static fy_code reply(fy_resp *resp, json_t *body, fy_err *err)
{
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}

/* ---- handlers ---- */

static const fy_metric_def m_decision = {
    "ferry_scheduler_decision_duration_seconds",
    "Time to choose (and claim) a destination, by result (chosen or the error code).",
    FY_METRIC_HISTOGRAM, {"result", NULL},
    {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}};

fy_code sched_h_select_destinations(fy_req *req, fy_resp *resp, fy_err *err)
{
    const sched_ctx *ctx = req->svc;
    fy_code rc = need_body(req, err);
    if (rc != FY_E_OK)
        return rc;
    sched_request sreq;
    _cleanup_free_ const char **ignore = NULL;
    rc = parse_select(req->json, &sreq, &ignore, err);
    if (rc != FY_E_OK)
        return rc;

    uint64_t t0 = fy_now_us();
    sched_result r = { 0 };
    rc = sched_select_destinations(&ctx->policy, &sreq, &r, err);
    double ms = (double)(fy_now_us() - t0) / 1000.0;
    fy_metric_observe(&m_decision, FY_LV(rc == FY_E_OK ? "chosen" : fy_code_name(rc)), ms / 1000);
    if (rc != FY_E_OK) {
        fy_info("select_destinations for %s: no host (%s) in %.2f ms",
                sreq.consumer_uuid ? sreq.consumer_uuid : "-", fy_code_name(rc), ms);
        return rc;
    }
    fy_info("select_destinations for %s: chose %s (%s, %zu candidates, %d lost races) in %.2f ms",
            sreq.consumer_uuid ? sreq.consumer_uuid : "-", r.hosts.hosts[r.chosen].host,
            r.claimed ? "claimed" : "not claimed", r.hosts.n, r.lost_races, ms);
    rc = reply(resp, result_json(&r), err);
    sched_result_clear(&r);
    return rc;
}

typedef struct claim_body {
    const char *consumer_uuid;
    const char *project_id;
    const char *host;
    json_t *resources;
} claim_body;

fy_code sched_h_claim(fy_req *req, fy_resp *resp, fy_err *err)
{
    static const fy_jspec spec[] = {
        {"consumer_uuid", FY_J_STRING, FY_J_REQUIRED | FY_J_UUID,
         offsetof(claim_body, consumer_uuid), FY_JNOPRESENT, 0, 0},
        {"project_id", FY_J_STRING, FY_J_NULLABLE | FY_J_UUID, offsetof(claim_body, project_id),
         FY_JNOPRESENT, 0, 0},
        {"host", FY_J_STRING, FY_J_REQUIRED | FY_J_NONEMPTY, offsetof(claim_body, host),
         FY_JNOPRESENT, 1, NAME_MAX_LEN},
        {"resources", FY_J_OBJECT, FY_J_REQUIRED, offsetof(claim_body, resources), FY_JNOPRESENT,
         0, 0},
    };
    fy_code rc = need_body(req, err);
    if (rc != FY_E_OK)
        return rc;
    claim_body b = { 0 };
    rc = fy_json_parse(req->json, spec, ELEMENTSOF(spec), &b, false, NULL, err);
    if (rc != FY_E_OK)
        return rc;
    sched_resources res;
    rc = parse_resources(b.resources, &res, err);
    if (rc != FY_E_OK)
        return rc;

    sched_host_state hs = { 0 };
    rc = sched_hoststate_get(b.host, &hs, err);
    if (rc != FY_E_OK)
        return rc;
    bool existing = false;
    rc = sched_claim(b.consumer_uuid, b.project_id, hs.node_id, &res, &existing, err);
    if (rc == FY_E_CONFLICT)
        fy_fail(err, FY_E_CONFLICT, "Host %.255s has not enough free resources for %s.",
                hs.host, b.consumer_uuid);
    if (rc == FY_E_OK) {
        fy_info("claim for %s on %s: %s", b.consumer_uuid, hs.host,
                existing ? "already held" : "claimed");
        rc = reply(resp, host_json(&hs, 1), err);
    }
    sched_host_state_clear(&hs);
    return rc;
}

typedef struct release_body {
    const char *consumer_uuid;
    const char *host;
} release_body;

fy_code sched_h_release(fy_req *req, fy_resp *resp, fy_err *err)
{
    static const fy_jspec spec[] = {
        {"consumer_uuid", FY_J_STRING, FY_J_REQUIRED | FY_J_UUID,
         offsetof(release_body, consumer_uuid), FY_JNOPRESENT, 0, 0},
        {"host", FY_J_STRING, FY_J_NULLABLE, offsetof(release_body, host), FY_JNOPRESENT, 1,
         NAME_MAX_LEN},
    };
    fy_code rc = need_body(req, err);
    if (rc != FY_E_OK)
        return rc;
    release_body b = { 0 };
    rc = fy_json_parse(req->json, spec, ELEMENTSOF(spec), &b, false, NULL, err);
    if (rc != FY_E_OK)
        return rc;
    long nodes = 0;
    rc = sched_release(b.consumer_uuid, b.host, &nodes, err);
    if (rc != FY_E_OK)
        return rc;
    fy_info("release for %s on %s: %ld node(s)", b.consumer_uuid, b.host ? b.host : "all hosts",
            nodes);
    return reply(resp, json_pack("{s:I}", "released", (json_int_t)nodes), err);
}

typedef struct move_body {
    const char *from_consumer;
    const char *to_consumer;
    const char *host;
} move_body;

fy_code sched_h_move(fy_req *req, fy_resp *resp, fy_err *err)
{
    static const fy_jspec spec[] = {
        {"from_consumer", FY_J_STRING, FY_J_REQUIRED | FY_J_UUID,
         offsetof(move_body, from_consumer), FY_JNOPRESENT, 0, 0},
        {"to_consumer", FY_J_STRING, FY_J_REQUIRED | FY_J_UUID, offsetof(move_body, to_consumer),
         FY_JNOPRESENT, 0, 0},
        {"host", FY_J_STRING, FY_J_NULLABLE, offsetof(move_body, host), FY_JNOPRESENT, 1,
         NAME_MAX_LEN},
    };
    fy_code rc = need_body(req, err);
    if (rc != FY_E_OK)
        return rc;
    move_body b = { 0 };
    rc = fy_json_parse(req->json, spec, ELEMENTSOF(spec), &b, false, NULL, err);
    if (rc != FY_E_OK)
        return rc;
    long moved = 0;
    rc = sched_move(b.from_consumer, b.to_consumer, b.host, &moved, err);
    if (rc != FY_E_OK)
        return rc;
    fy_info("move %s -> %s on %s: %ld allocation(s)", b.from_consumer, b.to_consumer,
            b.host ? b.host : "all hosts", moved);
    return reply(resp, json_pack("{s:I}", "moved", (json_int_t)moved), err);
}

/* ---- server ---- */

const fy_route sched_routes[] = {
    {"GET", "/healthz", fy_health_handler, FY_R_PUBLIC},
    {"GET", "/readyz", fy_health_handler, FY_R_PUBLIC},
    {"GET", "/metrics", fy_metrics_handler, FY_R_PUBLIC},
    {"POST", "/internal/v1/select_destinations", sched_h_select_destinations, FY_R_INTERNAL},
    {"POST", "/internal/v1/claims", sched_h_claim, FY_R_INTERNAL},
    {"POST", "/internal/v1/allocations/release", sched_h_release, FY_R_INTERNAL},
    {"POST", "/internal/v1/allocations/move", sched_h_move, FY_R_INTERNAL},
};
const size_t sched_nroutes = ELEMENTSOF(sched_routes);

fy_code sched_policy_from_config(const sched_config *cfg, sched_policy *ret, fy_err *err)
{
    sched_policy p = {
        .max_candidates = (int)cfg->max_candidates,
        .service_down_time = (int)cfg->service_down_time,
    };
    if (!sched_weigher_from_name(cfg->weigher, &p.weigher))
        return fy_fail(err, FY_E_CONFIG, "weigher: '%.64s' is not one of spread, pack",
                       cfg->weigher ? cfg->weigher : "");
    *ret = p;
    return FY_E_OK;
}

fy_code sched_server_start(sched_ctx *ctx, fy_httpd **ret, fy_err *err)
{
    fy_httpd_conf conf = {
        .bind_addr = ctx->cfg->bind,
        .port = (int)ctx->cfg->port,
        .reuse_port = ctx->cfg->reuse_port,
        .threads = (unsigned)ctx->cfg->threads,
        .max_body = SCHED_MAX_BODY,
        .max_upload = SCHED_MAX_BODY,
        .upload_dir = "/tmp",
        .routes = sched_routes,
        .nroutes = sched_nroutes,
        .svc = ctx,
        .service_secret = ctx->cfg->service_secret,
        .finished = fy_metrics_http_finished,
    };
    /* Liveness of every service is the scheduler's business: report it here once. */
    fy_metrics_collect_heartbeats();
    return fy_httpd_start(&conf, ret, err);
}
