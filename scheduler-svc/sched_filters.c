/* sched_filters — the exact host filters, as pure functions of a host state.
 *
 * The candidate query applies the same conditions coarsely in SQL; these run
 * again on its rows so the decision rests on one definition that tests can
 * exercise without a database. */
#include <string.h>

#include "fy_util.h"
#include "sched.h"

/* Nova's ComputeFilter: the service is up (heartbeat fresh, not forced down)
 * and enabled. */
bool sched_filter_compute(const sched_host_state *hs, const sched_filter_ctx *ctx)
{
    if (hs->disabled || hs->forced_down)
        return false;
    return hs->heartbeat_age_s >= 0 && hs->heartbeat_age_s <= (double)ctx->service_down_time;
}

/* Capacity test shared by the resource filters and written exactly as the SQL
 * does it, so both round the same way: total x ratio - used >= requested. */
static bool has_room(long long total, double ratio, long long used, long long want)
{
    return (double)total * ratio - (double)used >= (double)want;
}

bool sched_filter_ram(const sched_host_state *hs, const sched_filter_ctx *ctx)
{
    return has_room(hs->memory_mb, hs->ram_ratio, hs->memory_mb_used, ctx->req->res.memory_mb);
}

bool sched_filter_core(const sched_host_state *hs, const sched_filter_ctx *ctx)
{
    return has_room(hs->vcpus, hs->cpu_ratio, hs->vcpus_used, ctx->req->res.vcpus);
}

bool sched_filter_disk(const sched_host_state *hs, const sched_filter_ctx *ctx)
{
    return has_room(hs->local_gb, hs->disk_ratio, hs->local_gb_used, ctx->req->res.disk_gb);
}

bool sched_filter_az(const sched_host_state *hs, const sched_filter_ctx *ctx)
{
    const char *az = ctx->req->availability_zone;
    return !az || fy_streq(hs->zone, az);
}

bool sched_filter_ignore_hosts(const sched_host_state *hs, const sched_filter_ctx *ctx)
{
    const sched_request *req = ctx->req;
    for (size_t i = 0; i < req->n_ignore_hosts; i++)
        if (fy_streq(hs->host, req->ignore_hosts[i]))
            return false;
    return true;
}

/* A forced host may be named by its service host or its hypervisor node name. */
bool sched_filter_force_host(const sched_host_state *hs, const sched_filter_ctx *ctx)
{
    const char *want = ctx->req->force_host;
    return !want || fy_streq(hs->host, want) || fy_streq(hs->node, want);
}

/* Cheapest and most selective first. */
const sched_filter sched_filters[] = {
    {"ForceHostFilter", sched_filter_force_host},
    {"IgnoreHostsFilter", sched_filter_ignore_hosts},
    {"ComputeFilter", sched_filter_compute},
    {"AvailabilityZoneFilter", sched_filter_az},
    {"RamFilter", sched_filter_ram},
    {"CoreFilter", sched_filter_core},
    {"DiskFilter", sched_filter_disk},
};
const size_t sched_nfilters = sizeof(sched_filters) / sizeof(sched_filters[0]);

const char *sched_filters_reject(const sched_host_state *hs, const sched_filter_ctx *ctx)
{
    for (size_t i = 0; i < sched_nfilters; i++)
        if (!sched_filters[i].fn(hs, ctx))
            return sched_filters[i].name;
    return NULL;
}

void sched_filter_hosts(sched_host_list *l, const sched_filter_ctx *ctx)
{
    size_t kept = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (sched_filters_reject(&l->hosts[i], ctx)) {
            sched_host_state_clear(&l->hosts[i]);
            continue;
        }
        if (kept != i)
            l->hosts[kept] = l->hosts[i];
        kept++;
    }
    l->n = kept;
}
