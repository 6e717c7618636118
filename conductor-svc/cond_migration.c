/* Migration record writes: guarded status transitions, migrate_data merges,
 * the destination and storage facts, and the agent step call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cond_migration.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_metrics_http.h"
#include "fy_util.h"

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

fy_code cond_mig_load(const char *uuid, cond_migration *ret, fy_err *err)
{
    const char *p[] = {uuid};
    PGresult *res = NULL;
    if (fy_db_exec_one(&cond_mig_sql_get, p, &res, err))
        return err->code;
    cond_migration m = {
        .res = res,
        .id = fy_db_ll(res, 0, "id", 0),
        .uuid = fy_db_str(res, 0, "uuid"),
        .instance_uuid = fy_db_str(res, 0, "instance_uuid"),
        .migration_type = fy_db_str(res, 0, "migration_type"),
        .source_compute = nonempty(fy_db_str(res, 0, "source_compute")),
        .source_node = nonempty(fy_db_str(res, 0, "source_node")),
        .dest_compute = nonempty(fy_db_str(res, 0, "dest_compute")),
        .dest_node = nonempty(fy_db_str(res, 0, "dest_node")),
        .dest_host = nonempty(fy_db_str(res, 0, "dest_host")),
        .old_flavor_id = fy_db_str(res, 0, "old_flavor_id"),
        .new_flavor_id = fy_db_str(res, 0, "new_flavor_id"),
        .status = fy_mig_status_from_name(fy_db_str(res, 0, "status")),
        .block_migration = fy_db_bool(res, 0, "block_migration"),
        .shared_storage = fy_db_bool(res, 0, "shared_storage"),
    };
    const char *md = fy_db_str(res, 0, "migrate_data");
    json_error_t jerr;
    m.migrate_data = md ? json_loads(md, 0, &jerr) : json_object();
    if (!json_is_object(m.migrate_data)) {
        json_decref(m.migrate_data);
        m.migrate_data = json_object();
    }
    if (!m.migrate_data) {
        PQclear(res);
        return fy_fail(err, FY_E_NOMEM, NULL);
    }
    *ret = m;
    return FY_E_OK;
}

void cond_mig_clear(cond_migration *m)
{
    if (!m)
        return;
    json_decref(m->migrate_data);
    if (m->res)
        PQclear(m->res);
    memset(m, 0, sizeof(*m));
}

static fy_code status_read(const char *uuid, fy_mig_status *ret, fy_err *err)
{
    const char *p[] = {uuid};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_mig_sql_status_get, p, &res, err))
        return err->code;
    *ret = PQntuples(res) == 1 ? fy_mig_status_from_name(fy_db_str(res, 0, "status"))
                               : FY_MIG_INVALID;
    return FY_E_OK;
}

/* One guarded write; message non-NULL also records migrate_data.error. */
static fy_code status_write(const char *uuid, fy_mig_status from, fy_mig_status to,
                            const char *message, fy_mig_status *ret_status, fy_err *err)
{
    if (!fy_mig_can_transition(from, to))
        return fy_fail(err, FY_E_INTERNAL, "migration %s: %s -> %s is not a valid transition",
                       uuid, fy_mig_status_name(from), fy_mig_status_name(to));
    const char *p[] = {uuid, fy_mig_status_name(from), fy_mig_status_name(to), message};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(message ? &cond_mig_sql_status_error : &cond_mig_sql_status, p, &res, err))
        return err->code;
    if (fy_db_affected(res) == 1) {
        fy_debug("migration %s: %s -> %s", uuid, fy_mig_status_name(from),
                 fy_mig_status_name(to));
        if (fy_mig_is_terminal(to))
            fy_metrics_migration_ended(uuid);
        if (ret_status)
            *ret_status = to;
        return FY_E_OK;
    }
    fy_mig_status now = FY_MIG_INVALID;
    if (status_read(uuid, &now, err))
        return err->code;
    if (ret_status)
        *ret_status = now;
    if (now == to)
        return FY_E_OK;     /* an earlier run of this step wrote it */
    return fy_fail(err, FY_E_CONFLICT, "migration %s is %s, not %s", uuid,
                   now == FY_MIG_INVALID ? "gone" : fy_mig_status_name(now),
                   fy_mig_status_name(from));
}

fy_code cond_mig_set_status(const char *uuid, fy_mig_status from, fy_mig_status to,
                            fy_mig_status *ret_status, fy_err *err)
{
    return status_write(uuid, from, to, NULL, ret_status, err);
}

static fy_code status_any(const char *uuid, const fy_mig_status *from, size_t nfrom,
                          fy_mig_status to, const char *message, fy_err *err)
{
    fy_mig_status now = FY_MIG_INVALID;
    if (status_read(uuid, &now, err))
        return err->code;
    if (now == to)
        return FY_E_OK;
    for (size_t i = 0; i < nfrom; i++)
        if (from[i] == now)
            return status_write(uuid, now, to, message, NULL, err);
    return fy_fail(err, FY_E_CONFLICT, "migration %s is %s; cannot move it to %s", uuid,
                   now == FY_MIG_INVALID ? "gone" : fy_mig_status_name(now),
                   fy_mig_status_name(to));
}

fy_code cond_mig_set_status_any(const char *uuid, const fy_mig_status *from, size_t nfrom,
                                fy_mig_status to, fy_err *err)
{
    return status_any(uuid, from, nfrom, to, NULL, err);
}

fy_code cond_mig_fail(const char *uuid, const fy_mig_status *from, size_t nfrom,
                      fy_mig_status to, const char *message, fy_err *err)
{
    return status_any(uuid, from, nfrom, to, message ? message : "", err);
}

static fy_code exec_simple(const fy_sql *stmt, const char *const *p, fy_err *err)
{
    _cleanup_pgres_ PGresult *res = NULL;
    return fy_db_exec(stmt, p, &res, err);
}

fy_code cond_mig_merge_data(const char *uuid, const json_t *data, fy_err *err)
{
    if (!json_is_object(data) || json_object_size(data) == 0)
        return FY_E_OK;
    _cleanup_free_ char *text = fy_json_dump(data);
    if (!text)
        return fy_fail(err, FY_E_NOMEM, NULL);
    const char *p[] = {uuid, text};
    return exec_simple(&cond_mig_sql_merge, p, err);
}

fy_code cond_mig_set_dest(const char *uuid, const char *host, const char *node, fy_err *err)
{
    const char *p[] = {uuid, host, node ? node : host};
    return exec_simple(&cond_mig_sql_dest, p, err);
}

static const char *tristate(const bool *b)
{
    return !b ? NULL : *b ? "true" : "false";
}

fy_code cond_mig_set_storage(const char *uuid, const bool *block_migration,
                             const bool *shared_storage, fy_err *err)
{
    const char *p[] = {uuid, tristate(block_migration), tristate(shared_storage)};
    return exec_simple(&cond_mig_sql_storage, p, err);
}

fy_code cond_mig_record_decision(const char *uuid, const char *host, const char *node,
                                 bool block_migration, bool shared_storage,
                                 const json_t *data, fy_err *err)
{
    _cleanup_free_ char *text = json_is_object(data) ? fy_json_dump(data) : strdup("{}");
    if (!text)
        return fy_fail(err, FY_E_NOMEM, NULL);
    const char *pd[] = {uuid, host, node ? node : host};
    const char *ps[] = {uuid, tristate(&block_migration), tristate(&shared_storage)};
    const char *pm[] = {uuid, text};
    const fy_db_op ops[] = {
        {&cond_mig_sql_dest, pd, NULL},
        {&cond_mig_sql_storage, ps, NULL},
        {&cond_mig_sql_merge, pm, NULL},
    };
    return fy_db_batch(ops, ELEMENTSOF(ops), err);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *cond_mig_body_migration(const cond_migration *m)
{
    return json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "uuid", m->uuid, "instance_uuid",
                     m->instance_uuid, "migration_type", str_or_null(m->migration_type),
                     "source_compute", str_or_null(m->source_compute), "dest_compute",
                     str_or_null(m->dest_compute), "source_node", str_or_null(m->source_node),
                     "dest_node", str_or_null(m->dest_node));
}

json_t *cond_mig_body_instance(const cond_instance *inst)
{
    return json_pack("{s:s,s:I,s:o,s:O,s:o,s:o,s:o,s:o,s:i,s:o}", "uuid", inst->uuid, "id",
                     (json_int_t)inst->id, "display_name", str_or_null(inst->display_name),
                     "flavor", inst->flavor, "old_flavor", json_null(), "image_ref",
                     str_or_null(inst->image_ref), "project_id", str_or_null(inst->project_id),
                     "vm_state", str_or_null(inst->vm_state), "power_state", inst->power_state,
                     "host", str_or_null(inst->host));
}

fy_code cond_mig_agent_step(const cond_ctx *ctx, const char *host, const char *migration_uuid,
                            const char *step, const json_t *body, int retries, long timeout_ms,
                            json_t **ret_json, fy_err *err)
{
    _cleanup_free_ char *path =
        fy_strdup_printf("/internal/v1/migrations/%s/%s", migration_uuid, step);
    if (!path)
        return fy_fail(err, FY_E_NOMEM, NULL);
    return cond_agent_post_path(ctx, host, path, body, retries, timeout_ms, ret_json, err);
}
