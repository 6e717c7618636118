/* sched_hoststate — host states loaded from compute_nodes joined with services. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fy_cleanup.h"
#include "fy_db.h"
#include "fy_json.h"
#include "sched.h"
#include "sched_sql.h"

void sched_host_state_clear(sched_host_state *hs)
{
    free(hs->host);
    free(hs->node);
    free(hs->url);
    free(hs->zone);
    *hs = (sched_host_state){ 0 };
}

void sched_host_list_clear(sched_host_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        sched_host_state_clear(&l->hosts[i]);
    free(l->hosts);
    *l = (sched_host_list){ 0 };
}

static bool dup_col(PGresult *res, int row, const char *col, char **ret)
{
    const char *v = fy_db_str(res, row, col);
    if (!v) {
        *ret = NULL;
        return true;
    }
    *ret = strdup(v);
    return *ret != NULL;
}

static fy_code read_row(PGresult *res, int row, sched_host_state *ret, fy_err *err)
{
    sched_host_state hs = {
        .node_id = (int)fy_db_ll(res, row, "node_id", 0),
        .vcpus = fy_db_ll(res, row, "vcpus", 0),
        .memory_mb = fy_db_ll(res, row, "memory_mb", 0),
        .local_gb = fy_db_ll(res, row, "local_gb", 0),
        .vcpus_used = fy_db_ll(res, row, "vcpus_used", 0),
        .memory_mb_used = fy_db_ll(res, row, "memory_mb_used", 0),
        .local_gb_used = fy_db_ll(res, row, "local_gb_used", 0),
        .cpu_ratio = fy_db_double(res, row, "cpu_allocation_ratio", 0),
        .ram_ratio = fy_db_double(res, row, "ram_allocation_ratio", 0),
        .disk_ratio = fy_db_double(res, row, "disk_allocation_ratio", 0),
        .disabled = fy_db_bool(res, row, "disabled"),
        .forced_down = fy_db_bool(res, row, "forced_down"),
        .heartbeat_age_s = fy_db_double(res, row, "heartbeat_age", -1),
    };
    /* A clock step can make a fresh heartbeat look slightly in the future. */
    if (hs.heartbeat_age_s < 0 && fy_db_str(res, row, "heartbeat_age"))
        hs.heartbeat_age_s = 0;
    if (!dup_col(res, row, "host", &hs.host) || !dup_col(res, row, "node", &hs.node) ||
        !dup_col(res, row, "url", &hs.url) || !dup_col(res, row, "zone", &hs.zone)) {
        sched_host_state_clear(&hs);
        return fy_fail(err, FY_E_NOMEM, NULL);
    }
    *ret = hs;
    return FY_E_OK;
}

static fy_code read_rows(PGresult *res, sched_host_list *ret, fy_err *err)
{
    int n = PQntuples(res);
    sched_host_list l = { 0 };
    if (n > 0) {
        l.hosts = calloc((size_t)n, sizeof(*l.hosts));
        if (!l.hosts)
            return fy_fail(err, FY_E_NOMEM, NULL);
    }
    for (int i = 0; i < n; i++) {
        fy_code rc = read_row(res, i, &l.hosts[l.n], err);
        if (rc != FY_E_OK) {
            sched_host_list_clear(&l);
            return rc;
        }
        l.n++;
    }
    *ret = l;
    return FY_E_OK;
}

/* The ignore list travels as one JSON parameter, so its length never changes
 * the statement. */
static char *ignore_json(const sched_request *req)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    for (size_t i = 0; i < req->n_ignore_hosts; i++) {
        if (json_array_append_new(arr, json_string(req->ignore_hosts[i])) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    char *s = fy_json_dump(arr);
    json_decref(arr);
    return s;
}

/* The candidate query's conditions on capacity are arithmetic over several
 * columns, which PostgreSQL cannot estimate; it then expects very few hosts to
 * fit and prefers reading and sorting all of them over walking the free-RAM
 * index and stopping early.  Sorting is made a last resort on the scheduler's
 * connections (its other statements never sort), once per connection. */
static __thread PGconn *tuned_conn;
static __thread int tuned_pid;

static fy_code tune_session(fy_err *err)
{
    PGconn *conn = NULL;
    fy_code rc = fy_db_conn(&conn, err);
    if (rc != FY_E_OK)
        return rc;
    if (conn == tuned_conn && PQbackendPID(conn) == tuned_pid)
        return FY_E_OK;
    rc = fy_db_exec(&sched_sql_tune, NULL, NULL, err);
    if (rc != FY_E_OK)
        return rc;
    tuned_conn = conn;
    tuned_pid = PQbackendPID(conn);
    return FY_E_OK;
}

fy_code sched_hoststate_candidates(const sched_policy *pol, const sched_request *req,
                                   sched_host_list *ret, fy_err *err)
{
    _cleanup_free_ char *ignore = ignore_json(req);
    if (!ignore)
        return fy_fail(err, FY_E_NOMEM, NULL);
    char down[24], vcpus[24], mem[24], disk[24], limit[24];
    snprintf(down, sizeof(down), "%d", pol->service_down_time);
    snprintf(vcpus, sizeof(vcpus), "%lld", req->res.vcpus);
    snprintf(mem, sizeof(mem), "%lld", req->res.memory_mb);
    snprintf(disk, sizeof(disk), "%lld", req->res.disk_gb);
    snprintf(limit, sizeof(limit), "%d", pol->max_candidates);
    const char *params[] = { down, req->availability_zone, req->force_host, ignore,
                             vcpus, mem, disk, limit };
    const fy_sql *stmt = pol->weigher == SCHED_WEIGH_PACK ? &sched_sql_candidates_pack
                                                          : &sched_sql_candidates_spread;
    fy_code rc = tune_session(err);
    if (rc != FY_E_OK)
        return rc;
    _cleanup_pgres_ PGresult *res = NULL;
    rc = fy_db_exec(stmt, params, &res, err);
    if (rc != FY_E_OK)
        return rc;
    return read_rows(res, ret, err);
}

fy_code sched_hoststate_get(const char *host, sched_host_state *ret, fy_err *err)
{
    const char *params[] = { host };
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = fy_db_exec(&sched_sql_host_get, params, &res, err);
    if (rc != FY_E_OK)
        return rc;
    if (PQntuples(res) < 1)
        return fy_fail(err, FY_E_NOT_FOUND, "Compute host %.255s could not be found.", host);
    return read_row(res, 0, ret, err);
}
