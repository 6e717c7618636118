/* sched_claim — claims, releases and moves of allocations, each atomic. */
#include <stdio.h>
#include <strings.h>

#include "fy_cleanup.h"
#include "fy_db.h"
#include "fy_util.h"
#include "sched.h"
#include "sched_sql.h"

typedef struct claim_args {
    const char *consumer_uuid;
    const char *project_id;
    int node_id;
    const sched_resources *res;
    bool existing;
} claim_args;

static fy_code claim_txn(void *arg, fy_err *err)
{
    claim_args *a = arg;
    char node[24], vcpus[24], mem[24], disk[24];
    snprintf(node, sizeof(node), "%d", a->node_id);
    snprintf(vcpus, sizeof(vcpus), "%lld", a->res->vcpus);
    snprintf(mem, sizeof(mem), "%lld", a->res->memory_mb);
    snprintf(disk, sizeof(disk), "%lld", a->res->disk_gb);
    const char *params[] = { a->consumer_uuid, node, vcpus, mem, disk, a->project_id };
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = fy_db_exec_one(&sched_sql_claim, params, &res, err);
    if (rc != FY_E_OK)
        return rc;
    long long inserted = fy_db_ll(res, 0, "inserted", 0);
    long long updated = fy_db_ll(res, 0, "updated", 0);
    a->existing = inserted == 0;
    if (inserted == 1 && updated == 0)
        return fy_fail(err, FY_E_CONFLICT, "Compute node %d has no room left for this claim.",
                       a->node_id);
    return FY_E_OK;
}

static fy_code check_res(const sched_resources *res, fy_err *err)
{
    if (res->vcpus < 0 || res->vcpus > SCHED_RES_MAX || res->memory_mb < 0 ||
        res->memory_mb > SCHED_RES_MAX || res->disk_gb < 0 || res->disk_gb > SCHED_RES_MAX)
        return fy_fail(err, FY_E_BAD_REQUEST, "resource amounts must be in [0, %lld]",
                       SCHED_RES_MAX);
    return FY_E_OK;
}

fy_code sched_claim(const char *consumer_uuid, const char *project_id, int node_id,
                    const sched_resources *res, bool *ret_existing, fy_err *err)
{
    if (!fy_uuid_valid(consumer_uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "consumer_uuid must be a UUID");
    if (project_id && !fy_uuid_valid(project_id))
        return fy_fail(err, FY_E_BAD_REQUEST, "project_id must be a UUID");
    fy_code rc = check_res(res, err);
    if (rc != FY_E_OK)
        return rc;
    /* A lost claim is undone by rolling back; inside a caller's transaction
     * that would take the caller's work with it. */
    if (fy_db_in_txn())
        return fy_fail(err, FY_E_INTERNAL, "sched_claim must run in its own transaction");
    claim_args a = { consumer_uuid, project_id, node_id, res, false };
    rc = fy_db_txn(claim_txn, &a, false, err);
    if (rc == FY_E_OK && ret_existing)
        *ret_existing = a.existing;
    return rc;
}

typedef struct change_args {
    const fy_sql *stmt;
    const char *const *params;
    long rows;
} change_args;

static fy_code change_txn(void *arg, fy_err *err)
{
    change_args *a = arg;
    _cleanup_pgres_ PGresult *res = NULL;
    fy_code rc = fy_db_exec(a->stmt, a->params, &res, err);
    if (rc != FY_E_OK)
        return rc;
    a->rows = PQntuples(res);
    return FY_E_OK;
}

/* Runs one of the release/move statements in a transaction, so a deadlock
 * between two multi-node releases is retried rather than reported. */
static fy_code run_change(const fy_sql *stmt, const char *const *params, long *ret_rows,
                          fy_err *err)
{
    change_args a = { stmt, params, 0 };
    fy_code rc = fy_db_txn(change_txn, &a, false, err);
    if (rc == FY_E_OK && ret_rows)
        *ret_rows = a.rows;
    return rc;
}

fy_code sched_release(const char *consumer_uuid, const char *host, long *ret_nodes, fy_err *err)
{
    if (!fy_uuid_valid(consumer_uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "consumer_uuid must be a UUID");
    const char *params[] = { consumer_uuid, host };
    return run_change(&sched_sql_release, params, ret_nodes, err);
}

fy_code sched_move(const char *from_consumer, const char *to_consumer, const char *host,
                   long *ret_nodes, fy_err *err)
{
    if (!fy_uuid_valid(from_consumer))
        return fy_fail(err, FY_E_BAD_REQUEST, "from_consumer must be a UUID");
    if (!fy_uuid_valid(to_consumer))
        return fy_fail(err, FY_E_BAD_REQUEST, "to_consumer must be a UUID");
    if (strcasecmp(from_consumer, to_consumer) == 0)
        return fy_fail(err, FY_E_BAD_REQUEST, "from_consumer and to_consumer must differ");
    const char *params[] = { from_consumer, to_consumer, host };
    return run_change(&sched_sql_move, params, ret_nodes, err);
}
