/* sched_weighers — orders the hosts that passed the filters.
 *
 * Like Nova's RAMWeigher: the raw value is free RAM, normalised over the
 * candidates to [0, 1] and multiplied by +1 (spread: emptiest first) or -1
 * (pack: fullest first); the highest weight wins. */
#include <stdlib.h>
#include <string.h>

#include "fy_cleanup.h"
#include "fy_util.h"
#include "sched.h"

bool sched_weigher_from_name(const char *name, sched_weigher *ret)
{
    if (fy_streq(name, "spread")) {
        *ret = SCHED_WEIGH_SPREAD;
        return true;
    }
    if (fy_streq(name, "pack")) {
        *ret = SCHED_WEIGH_PACK;
        return true;
    }
    return false;
}

const char *sched_weigher_name(sched_weigher w)
{
    return w == SCHED_WEIGH_PACK ? "pack" : "spread";
}

/* Nova's HostState.free_ram_mb: physical RAM minus what is allocated. */
double sched_weigh_ram_raw(const sched_host_state *hs)
{
    return (double)hs->memory_mb - (double)hs->memory_mb_used;
}

void sched_normalize(const double *in, size_t n, double *out)
{
    if (n == 0)
        return;
    double lo = in[0], hi = in[0];
    for (size_t i = 1; i < n; i++) {
        if (in[i] < lo)
            lo = in[i];
        if (in[i] > hi)
            hi = in[i];
    }
    for (size_t i = 0; i < n; i++)
        out[i] = hi == lo ? 0.0 : (in[i] - lo) / (hi - lo);
}

/* Sort key: weight descending, then the incoming position, so ties keep the
 * candidate query's order and the result is the same on every run. */
typedef struct weighed {
    double weight;
    size_t pos;
} weighed;

static int cmp_weighed(const void *a, const void *b)
{
    const weighed *x = a, *y = b;
    if (x->weight != y->weight)
        return x->weight > y->weight ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

fy_code sched_weigh_hosts(sched_host_state *hosts, size_t n, sched_weigher w, fy_err *err)
{
    if (n == 0)
        return FY_E_OK;
    _cleanup_free_ double *raw = calloc(n, sizeof(*raw));
    _cleanup_free_ weighed *order = calloc(n, sizeof(*order));
    _cleanup_free_ sched_host_state *sorted = calloc(n, sizeof(*sorted));
    if (!raw || !order || !sorted)
        return fy_fail(err, FY_E_NOMEM, NULL);

    for (size_t i = 0; i < n; i++)
        raw[i] = sched_weigh_ram_raw(&hosts[i]);
    sched_normalize(raw, n, raw);
    double multiplier = w == SCHED_WEIGH_PACK ? -1.0 : 1.0;
    for (size_t i = 0; i < n; i++) {
        hosts[i].weight = multiplier * raw[i];
        order[i] = (weighed){ .weight = hosts[i].weight, .pos = i };
    }
    qsort(order, n, sizeof(*order), cmp_weighed);
    for (size_t i = 0; i < n; i++)
        sorted[i] = hosts[order[i].pos];
    memcpy(hosts, sorted, n * sizeof(*hosts));
    return FY_E_OK;
}
