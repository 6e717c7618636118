/* Typed calls to the scheduler and the compute agents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cond.h"
#include "fy_cleanup.h"
#include "fy_httpc.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

#define SCHED_TIMEOUT_MS 30000
/* Releases and power operations are idempotent: a few retries ride out a blip. */
#define IDEMPOTENT_RETRIES 3

static fy_code post(const cond_ctx *ctx, const char *url, const json_t *body, int retries,
                    long timeout_ms, json_t **ret_json, fy_err *err)
{
    fy_httpc_opts opts = {
        .timeout_ms = timeout_ms,
        .retries = retries,
        .service_secret = ctx->cfg.service_secret,
    };
    fy_http_result r = {0};
    fy_code rc = fy_httpc_call("POST", url, body, &opts, &r, err);
    if (rc == FY_E_OK && ret_json)
        *ret_json = r.json ? json_incref(r.json) : json_object();
    fy_http_result_clear(&r);
    return rc;
}

static json_t *resources_json(const cond_resources *res)
{
    return json_pack("{s:I,s:I,s:I}", "vcpus", (json_int_t)res->vcpus, "memory_mb",
                     (json_int_t)res->memory_mb, "disk_gb", (json_int_t)res->disk_gb);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static fy_code dest_from_json(const json_t *j, cond_dest *ret, fy_err *err)
{
    const char *host = fy_json_str(j, "host");
    const char *node = fy_json_str(j, "node");
    if (!host || !*host || strlen(host) >= COND_HOST_MAX || (node && strlen(node) >= COND_HOST_MAX))
        return fy_fail(err, FY_E_UPSTREAM, "scheduler answered a destination without a valid host");
    snprintf(ret->host, sizeof(ret->host), "%s", host);
    snprintf(ret->node, sizeof(ret->node), "%s", node && *node ? node : host);
    return FY_E_OK;
}

static fy_code selection_from_json(const json_t *ans, cond_selection *ret, fy_err *err)
{
    const json_t *dests = json_object_get(ans, "destinations");
    if (!json_is_array(dests) || json_array_size(dests) == 0)
        return fy_fail(err, FY_E_NO_VALID_HOST,
                       "No valid host was found. There are not enough hosts available.");
    cond_selection sel = {0};
    if (dest_from_json(json_array_get(dests, 0), &sel.dest, err))
        return err->code;
    const json_t *alts = json_object_get(ans, "alternates");
    size_t i;
    const json_t *a;
    json_array_foreach(alts, i, a) {
        if (sel.nalts >= COND_MAX_ALTERNATES)
            break;
        if (dest_from_json(a, &sel.alts[sel.nalts], err))
            return err->code;
        sel.nalts++;
    }
    *ret = sel;
    return FY_E_OK;
}

static json_t *strings_json(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

fy_code cond_sched_select(const cond_ctx *ctx, const cond_select *req, cond_selection *ret,
                          fy_err *err)
{
    _cleanup_(json_decrefp) json_t *body = json_pack(
        "{s:s,s:o,s:o,s:o,s:o,s:o*,s:i,s:b}", "consumer_uuid", req->consumer_uuid, "project_id",
        str_or_null(req->project_id), "resources", resources_json(&req->res),
        "availability_zone", str_or_null(req->zone), "force_host", str_or_null(req->force_host),
        "ignore_hosts", strings_json(req->ignore_hosts, req->n_ignore_hosts), "num_alternates",
        req->num_alternates, "claim", 1);
    if (!body || !json_is_array(json_object_get(body, "ignore_hosts")))
        return fy_fail(err, FY_E_NOMEM, NULL);
    _cleanup_free_ char *url = fy_strdup_printf("%s/internal/v1/select_destinations",
                                                ctx->cfg.scheduler_url);
    if (!url)
        return fy_fail(err, FY_E_NOMEM, NULL);
    /* Not retried here: a lost answer may still have claimed (the caller
     * releases the consumer before asking again). */
    _cleanup_(json_decrefp) json_t *ans = NULL;
    if (post(ctx, url, body, 0, SCHED_TIMEOUT_MS, &ans, err))
        return err->code;
    return selection_from_json(ans, ret, err);
}

fy_code cond_sched_claim(const cond_ctx *ctx, const char *consumer_uuid, const char *project_id,
                         const char *host, const cond_resources *res, fy_err *err)
{
    _cleanup_(json_decrefp) json_t *body =
        json_pack("{s:s,s:o,s:s,s:o}", "consumer_uuid", consumer_uuid, "project_id",
                  str_or_null(project_id), "host", host, "resources", resources_json(res));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    _cleanup_free_ char *url = fy_strdup_printf("%s/internal/v1/claims", ctx->cfg.scheduler_url);
    if (!url)
        return fy_fail(err, FY_E_NOMEM, NULL);
    return post(ctx, url, body, 0, SCHED_TIMEOUT_MS, NULL, err);
}

fy_code cond_sched_release(const cond_ctx *ctx, const char *consumer_uuid, const char *host,
                           fy_err *err)
{
    _cleanup_(json_decrefp) json_t *body =
        json_pack("{s:s,s:o}", "consumer_uuid", consumer_uuid, "host", str_or_null(host));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    _cleanup_free_ char *url =
        fy_strdup_printf("%s/internal/v1/allocations/release", ctx->cfg.scheduler_url);
    if (!url)
        return fy_fail(err, FY_E_NOMEM, NULL);
    return post(ctx, url, body, IDEMPOTENT_RETRIES, SCHED_TIMEOUT_MS, NULL, err);
}

fy_code cond_sched_move(const cond_ctx *ctx, const char *from_consumer, const char *to_consumer,
                        const char *host, fy_err *err)
{
    _cleanup_(json_decrefp) json_t *body =
        json_pack("{s:s,s:s,s:o}", "from_consumer", from_consumer, "to_consumer", to_consumer,
                  "host", str_or_null(host));
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    _cleanup_free_ char *url =
        fy_strdup_printf("%s/internal/v1/allocations/move", ctx->cfg.scheduler_url);
    if (!url)
        return fy_fail(err, FY_E_NOMEM, NULL);
    return post(ctx, url, body, IDEMPOTENT_RETRIES, SCHED_TIMEOUT_MS, NULL, err);
}

fy_code cond_agent_url(const char *host, char **ret, fy_err *err)
{
    char cached[512];
    if (cond_urlcache_get(host, cached, sizeof(cached))) {
        *ret = strdup(cached);
        return *ret ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
    }
    const char *p[] = {host};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_sql_service_url, p, &res, err))
        return err->code;
    const char *url = PQntuples(res) > 0 ? fy_db_str(res, 0, "url") : NULL;
    if (!url || !*url)
        return fy_fail(err, FY_E_NOT_FOUND, "no compute service registered on host %s", host);
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    char *copy = strndup(url, n);
    if (!copy)
        return fy_fail(err, FY_E_NOMEM, NULL);
    cond_urlcache_put(host, copy);
    *ret = copy;
    return FY_E_OK;
}

fy_code cond_agent_post_path(const cond_ctx *ctx, const char *host, const char *path,
                             const json_t *body, int retries, long timeout_ms,
                             json_t **ret_json, fy_err *err)
{
    _cleanup_free_ char *base = NULL;
    if (cond_agent_url(host, &base, err))
        return err->code;
    _cleanup_free_ char *url = fy_strdup_printf("%s%s", base, path);
    _cleanup_(json_decrefp) json_t *empty = body ? NULL : json_object();
    if (!url || (!body && !empty))
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_code rc = post(ctx, url, body ? body : empty, retries, timeout_ms, ret_json, err);
    if (rc)
        fy_debug("POST %s on %s: %s", path, host, err->msg);
    if (rc == FY_E_UNAVAILABLE)   /* it may have come back elsewhere */
        cond_urlcache_forget(host);
    return rc;
}

fy_code cond_agent_post(const cond_ctx *ctx, const char *host, const char *instance_uuid,
                        const char *action, const json_t *body, int retries, long timeout_ms,
                        json_t **ret_json, fy_err *err)
{
    _cleanup_free_ char *path =
        fy_strdup_printf("/internal/v1/instances/%s/%s", instance_uuid, action);
    if (!path)
        return fy_fail(err, FY_E_NOMEM, NULL);
    return cond_agent_post_path(ctx, host, path, body, retries, timeout_ms, ret_json, err);
}
