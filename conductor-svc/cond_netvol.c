/* Ferry's own network and volume API on the shared database: port bindings per
 * host, volume connections per host.  Each call is one transaction (or part of
 * the caller's) and may be repeated with the same outcome. */
#include <string.h>
#include "cond_netvol.h"
#include "fy_cleanup.h"
#include "fy_db.h"
#include "fy_json.h"
#include "fy_util.h"

static fy_code need_uuid(const char *what, const char *s, fy_err *err)
{
    if (!fy_uuid_valid(s))
        return fy_fail(err, FY_E_BAD_REQUEST, "%s is not a valid uuid", what);
    return FY_E_OK;
}

static fy_code need_host(const char *s, fy_err *err)
{
    if (!s || !*s)
        return fy_fail(err, FY_E_BAD_REQUEST, "a host name is required");
    return FY_E_OK;
}

/* ---- network ---- */

/* A deadlock with another port change is retried like fy_db_txn() does. */
#define NET_DEADLOCK_RETRIES 4

static fy_code batch_retrying(const fy_db_op *ops, size_t n, fy_err *err)
{
    fy_code rc = fy_db_batch(ops, n, err);
    for (int i = 0; rc == FY_E_DB_RETRY && !fy_db_in_txn() && i < NET_DEADLOCK_RETRIES; i++) {
        fy_err_clear(err);
        rc = fy_db_batch(ops, n, err);
    }
    return rc;
}

/* Lock the ports, change their bindings, derive the ports' status: one
 * round trip, one transaction. */
static fy_code net_change(const char *instance_uuid, const char *host, const fy_sql *change,
                          fy_err *err)
{
    if (need_uuid("instance", instance_uuid, err) || need_host(host, err))
        return err->code;
    const char *p1[] = {instance_uuid};
    const char *p2[] = {instance_uuid, host};
    const fy_db_op ops[] = {
        {&cond_nv_sql_ports_lock, p1, NULL},
        {change, p2, NULL},
        {&cond_nv_sql_ports_status, p1, NULL},
    };
    return batch_retrying(ops, ELEMENTSOF(ops), err);
}

fy_code cond_net_setup_on_host(const char *instance_uuid, const char *host, fy_err *err)
{
    return net_change(instance_uuid, host, &cond_nv_sql_binding_setup, err);
}

fy_code cond_net_teardown_on_host(const char *instance_uuid, const char *host, fy_err *err)
{
    return net_change(instance_uuid, host, &cond_nv_sql_binding_teardown, err);
}

/* Only the source changes: the destination's binding stays as setup left it
 * until migrate_finish activates it. */
fy_code cond_net_migrate_start(const char *instance_uuid, const char *source, const char *dest,
                               fy_err *err)
{
    if (need_host(dest, err))
        return err->code;
    return net_change(instance_uuid, source, &cond_nv_sql_binding_deactivate, err);
}

fy_code cond_net_migrate_finish(const char *instance_uuid, const char *dest, fy_err *err)
{
    if (need_uuid("instance", instance_uuid, err) || need_host(dest, err))
        return err->code;
    const char *p1[] = {instance_uuid};
    const char *p2[] = {instance_uuid, dest};
    const fy_db_op ops[] = {
        {&cond_nv_sql_ports_lock, p1, NULL},
        {&cond_nv_sql_binding_activate, p2, NULL},
        {&cond_nv_sql_binding_drop_others, p2, NULL},
        {&cond_nv_sql_ports_status, p1, NULL},
    };
    return batch_retrying(ops, ELEMENTSOF(ops), err);
}

fy_code cond_net_info(const char *instance_uuid, json_t **ret, fy_err *err)
{
    if (need_uuid("instance", instance_uuid, err))
        return err->code;
    const char *p[] = {instance_uuid};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_nv_sql_ports_info, p, &res, err))
        return err->code;
    _cleanup_(json_decrefp) json_t *arr = json_array();
    if (!arr)
        return fy_fail(err, FY_E_NOMEM, NULL);
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *port = json_pack("{s:s,s:s,s:s,s:s}", "port_id", fy_db_str(res, i, "id"),
                                 "mac_address", fy_db_str(res, i, "mac_address"), "fixed_ip",
                                 fy_db_str(res, i, "fixed_ip"), "network_id",
                                 fy_db_str(res, i, "network_id"));
        if (!port || json_array_append_new(arr, port) != 0)
            return fy_fail(err, FY_E_NOMEM, NULL);
    }
    *ret = TAKE_PTR(arr);
    return FY_E_OK;
}

/* ---- volumes ---- */

static fy_code parse_info(const char *text, json_t **ret, fy_err *err)
{
    if (!text) {
        *ret = json_null();
        return FY_E_OK;
    }
    json_t *j = json_loads(text, 0, NULL);
    if (!j)
        return fy_fail(err, FY_E_DB, "unreadable connection_info");
    *ret = j;
    return FY_E_OK;
}

static fy_code bdi_row(PGresult *res, int i, json_t **ret, fy_err *err)
{
    json_t *info = NULL;
    if (parse_info(fy_db_str(res, i, "connection_info"), &info, err))
        return err->code;
    const char *bi = fy_db_str(res, i, "boot_index");
    json_t *row = json_pack("{s:s,s:s,s:s,s:o,s:o}", "attachment_id", fy_db_str(res, i, "id"),
                            "volume_id", fy_db_str(res, i, "volume_id"), "device",
                            fy_db_str(res, i, "device"), "connection_info", info, "boot_index",
                            bi ? json_integer(fy_db_ll(res, i, "boot_index", -1)) : json_null());
    if (!row)
        return fy_fail(err, FY_E_NOMEM, NULL);
    *ret = row;
    return FY_E_OK;
}

fy_code cond_vol_block_device_info(const char *instance_uuid, const char *host, json_t **ret,
                                   fy_err *err)
{
    if (need_uuid("instance", instance_uuid, err) || need_host(host, err))
        return err->code;
    const char *p[] = {instance_uuid, host};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_nv_sql_bdi, p, &res, err))
        return err->code;
    _cleanup_(json_decrefp) json_t *arr = json_array();
    if (!arr)
        return fy_fail(err, FY_E_NOMEM, NULL);
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *row = NULL;
        if (bdi_row(res, i, &row, err))
            return err->code;
        if (json_array_append_new(arr, row) != 0)
            return fy_fail(err, FY_E_NOMEM, NULL);
    }
    *ret = TAKE_PTR(arr);
    return FY_E_OK;
}

typedef struct conn_args {
    const char *attachment, *host;
    char *info;                /* out: connection_info text, owned */
} conn_args;

static fy_code init_txn(void *arg, fy_err *err)
{
    conn_args *a = arg;
    const char *pa[] = {a->attachment};
    _cleanup_pgres_ PGresult *att = NULL;
    fy_code rc = fy_db_exec_one(&cond_nv_sql_attachment_volume, pa, &att, err);
    if (rc == FY_E_NOT_FOUND)
        return fy_fail(err, rc, "volume attachment %s not found", a->attachment);
    if (rc)
        return rc;
    const char *volume = fy_db_str(att, 0, "volume_id");
    _cleanup_(json_decrefp) json_t *info = json_pack(
        "{s:s,s:{s:s,s:s}}", "driver_volume_type", "file", "data", "volume_id", volume, "path",
        fy_db_str(att, 0, "path"));
    _cleanup_free_ char *text = NULL;
    /* "path" at the top level is the contract; "data" is Cinder's shape. */
    if (!info || json_object_set_new(info, "path", json_string(fy_db_str(att, 0, "path"))) != 0 ||
        !(text = fy_json_dump(info)))
        return fy_fail(err, FY_E_NOMEM, NULL);
    const char *pc[] = {a->attachment, a->host, text};
    const char *pv[] = {volume};
    _cleanup_pgres_ PGresult *conn = NULL, *vol = NULL;
    if (fy_db_exec_one(&cond_nv_sql_connection_put, pc, &conn, err) ||
        fy_db_exec(&cond_nv_sql_volume_attached, pv, &vol, err))
        return err->code;
    free(a->info);
    a->info = strdup(fy_db_str(conn, 0, "connection_info"));
    return a->info ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

fy_code cond_vol_initialize_connection(const char *attachment_id, const char *host,
                                       json_t **ret_connection_info, fy_err *err)
{
    if (need_uuid("attachment", attachment_id, err) || need_host(host, err))
        return err->code;
    conn_args a = {.attachment = attachment_id, .host = host};
    fy_code rc = fy_db_txn(init_txn, &a, false, err);
    _cleanup_free_ char *text = a.info;
    if (rc)
        return rc;
    json_t *info = NULL;
    if (parse_info(text, &info, err))
        return err->code;
    if (ret_connection_info)
        *ret_connection_info = info;
    else
        json_decref(info);
    return FY_E_OK;
}

fy_code cond_vol_terminate_connection(const char *attachment_id, const char *host, fy_err *err)
{
    if (need_uuid("attachment", attachment_id, err) || need_host(host, err))
        return err->code;
    const char *p[] = {attachment_id, host};
    _cleanup_pgres_ PGresult *res = NULL;
    return fy_db_exec(&cond_nv_sql_connection_drop, p, &res, err);
}

fy_code cond_vol_roll_detaching(const char *volume_id, fy_err *err)
{
    if (need_uuid("volume", volume_id, err))
        return err->code;
    const char *p[] = {volume_id};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&cond_nv_sql_volume_roll_detaching, p, &res, err))
        return err->code;
    if (fy_db_affected(res) == 0)
        return fy_fail(err, FY_E_NOT_FOUND, "volume %s not found", volume_id);
    return FY_E_OK;
}

fy_code cond_vol_is_volume_backed(const char *instance_uuid, bool *ret, fy_err *err)
{
    if (need_uuid("instance", instance_uuid, err))
        return err->code;
    const char *p[] = {instance_uuid};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec_one(&cond_nv_sql_volume_backed, p, &res, err))
        return err->code;
    *ret = fy_db_bool(res, 0, "backed");
    return FY_E_OK;
}
