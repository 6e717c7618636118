/* cond_netvol — Ferry's own network and volume API (the seed's network API and
 * volume API), behind one interface so Neutron / Cinder back-ends can be added.
 * Every function is idempotent and runs in its own transaction unless the
 * caller holds one (fy_db_txn nests). */
#pragma once
#include <jansson.h>
#include "fy_err.h"

/* Network API. */
fy_code cond_net_setup_on_host(const char *instance_uuid, const char *host, fy_err *err);
fy_code cond_net_teardown_on_host(const char *instance_uuid, const char *host, fy_err *err);
fy_code cond_net_migrate_start(const char *instance_uuid, const char *source, const char *dest,
                               fy_err *err);
fy_code cond_net_migrate_finish(const char *instance_uuid, const char *dest, fy_err *err);
/* [{"port_id", "mac_address", "fixed_ip", "network_id"}] of the instance's ports. */
fy_code cond_net_info(const char *instance_uuid, json_t **ret, fy_err *err);

/* Volume API. */
/* [{"attachment_id", "volume_id", "device", "connection_info"}] for host (connection_info
 * null when the attachment has no connection there). */
fy_code cond_vol_block_device_info(const char *instance_uuid, const char *host, json_t **ret,
                                   fy_err *err);
fy_code cond_vol_initialize_connection(const char *attachment_id, const char *host,
                                       json_t **ret_connection_info, fy_err *err);
fy_code cond_vol_terminate_connection(const char *attachment_id, const char *host, fy_err *err);
fy_code cond_vol_roll_detaching(const char *volume_id, fy_err *err);
/* Does the instance boot from a volume (an attachment with boot_index 0)? */
fy_code cond_vol_is_volume_backed(const char *instance_uuid, bool *ret, fy_err *err);

/* ---- SQL (cond_netvol_sql.c) ---- */
#include "fy_db.h"
extern const fy_sql cond_nv_sql_ports_lock, cond_nv_sql_binding_setup, cond_nv_sql_ports_status,
    cond_nv_sql_binding_teardown, cond_nv_sql_binding_deactivate, cond_nv_sql_binding_activate,
    cond_nv_sql_binding_drop_others, cond_nv_sql_ports_info;
extern const fy_sql cond_nv_sql_bdi, cond_nv_sql_attachment_volume, cond_nv_sql_connection_put,
    cond_nv_sql_volume_attached, cond_nv_sql_connection_drop, cond_nv_sql_volume_roll_detaching,
    cond_nv_sql_volume_backed;
