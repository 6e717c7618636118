/* SQL of the network and volume APIs (api_network_sql.c, api_volume_sql.c). */
#pragma once
#include "fy_db.h"

extern const fy_sql api_sql_net_list, api_sql_net_ports_list, api_sql_net_port_get,
    api_sql_net_port_insert, api_sql_net_port_delete;

extern const fy_sql api_sql_vol_insert, api_sql_vol_list, api_sql_vol_get, api_sql_vol_delete,
    api_sql_vol_lock, api_sql_vol_reserve, api_sql_vol_att_devices,
    api_sql_vol_att_insert, api_sql_vol_connection_insert, api_sql_vol_instance_lock,
    api_sql_vol_server_attachments, api_sql_vol_usage;

/* The largest volume the volume API creates (Cinder's per_volume_gigabytes). */
#define API_VOLUME_MAX_GB 1024

/* ---- block device mappings at server create (api_volume.c) ---- */
#include <jansson.h>
#include "fy_httpd.h"

#define API_MAX_BDMS 16
typedef struct api_bdm {
    char volume_id[40];
    int boot_index;     /* -1: not bootable */
} api_bdm;
typedef struct api_bdm_list {
    api_bdm v[API_MAX_BDMS];
    int n;
} api_bdm_list;

/* Validates server.block_device_mapping_v2 (volume -> volume mappings of existing
 * volumes the caller may use, all available): FY_E_BAD_REQUEST / FY_E_NOT_FOUND. */
fy_code api_bdm_parse(const fy_req *req, const json_t *bdms, api_bdm_list *ret, fy_err *err);
/* Inside the create transaction: reserves each volume ('attaching' until the
 * conductor connects it on the chosen host) and records its attachment. */
fy_code api_bdm_attach(const fy_req *req, const api_bdm_list *l, const char *instance_uuid,
                       fy_err *err);
