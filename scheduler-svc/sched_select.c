/* sched_select — select_destinations: candidates -> filters -> weighers -> claim. */
#include "fy_log.h"
#include "sched.h"

void sched_result_clear(sched_result *r)
{
    sched_host_list_clear(&r->hosts);
    *r = (sched_result){ 0 };
}

static fy_code no_valid_host(fy_err *err)
{
    return fy_fail(err, FY_E_NO_VALID_HOST,
                   "No valid host was found. There are not enough hosts available.");
}

/* Claims on the best host that still has room; a CONFLICT means another
 * scheduler filled it since the candidate query, so the next one is tried. */
static fy_code claim_first(const sched_request *req, sched_result *r, fy_err *err)
{
    for (size_t i = 0; i < r->hosts.n; i++) {
        const sched_host_state *hs = &r->hosts.hosts[i];
        fy_code rc = sched_claim(req->consumer_uuid, req->project_id, hs->node_id, &req->res,
                                 NULL, err);
        if (rc == FY_E_OK) {
            r->chosen = i;
            r->claimed = true;
            return FY_E_OK;
        }
        if (rc != FY_E_CONFLICT)
            return rc;
        fy_debug("claim for %s on %s lost a race, trying the next host", req->consumer_uuid,
                 hs->host);
        r->lost_races++;
    }
    return no_valid_host(err);
}

fy_code sched_select_destinations(const sched_policy *pol, const sched_request *req,
                                  sched_result *ret, fy_err *err)
{
    sched_result r = { 0 };
    fy_code rc = sched_hoststate_candidates(pol, req, &r.hosts, err);
    if (rc != FY_E_OK)
        goto out;
    sched_filter_ctx ctx = { .req = req, .service_down_time = pol->service_down_time };
    sched_filter_hosts(&r.hosts, &ctx);
    rc = sched_weigh_hosts(r.hosts.hosts, r.hosts.n, pol->weigher, err);
    if (rc != FY_E_OK)
        goto out;
    if (r.hosts.n == 0) {
        rc = no_valid_host(err);
        goto out;
    }
    if (req->claim) {
        rc = claim_first(req, &r, err);
        if (rc != FY_E_OK)
            goto out;
    }
    /* Alternates are the next best hosts after the destination; those ranked
     * before it were found full. */
    r.alt_start = r.chosen + 1;
    size_t left = r.hosts.n - r.alt_start;
    size_t want = req->num_alternates > 0 ? (size_t)req->num_alternates : 0;
    r.n_alt = want < left ? want : left;
    *ret = r;
    return FY_E_OK;
out:
    sched_result_clear(&r);
    return rc;
}
