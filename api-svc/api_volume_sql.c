/* Every SQL statement of the volume API (Cinder subset) and of server volume
 * attachments. */
#include "api_netvol.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"

const fy_sql api_sql_vol_insert = {
    "api_vol_insert",
    "INSERT INTO volumes (id, name, size_gb, project_id, status, path)"
    " VALUES ($1::uuid, $2, $3::integer, $4::uuid, 'available', $5)",
    5,
};

#define VOL_SELECT                                                                          \
    "SELECT v.id, v.name, v.size_gb, v.project_id, v.status, " TS("v.created_at")          \
    "       AS created_at,"                                                                 \
    "       (SELECT json_agg(json_build_object('id', a.id, 'attachment_id', a.id,"          \
    "                                          'volume_id', a.volume_id,"                   \
    "                                          'server_id', a.instance_uuid,"               \
    "                                          'device', a.device, 'host_name', i.host)"    \
    "                        ORDER BY a.id)"                                                \
    "          FROM volume_attachments a JOIN instances i ON i.uuid = a.instance_uuid"      \
    "         WHERE a.volume_id = v.id)::text AS attachments"                               \
    "  FROM volumes v"

/* $1 NULL lists every project's volumes (admins with all_tenants). */
const fy_sql api_sql_vol_list = {
    "api_vol_list",
    VOL_SELECT " WHERE $1::uuid IS NULL OR v.project_id = $1::uuid"
    " ORDER BY v.created_at DESC, v.id LIMIT 1000",
    1,
};

const fy_sql api_sql_vol_get = {
    "api_vol_get",
    VOL_SELECT " WHERE v.id = $1::uuid",
    1,
};

/* Only an unattached volume goes; the caller removes its file. */
const fy_sql api_sql_vol_delete = {
    "api_vol_delete",
    "DELETE FROM volumes v WHERE v.id = $1::uuid AND v.status IN ('available', 'error')"
    "   AND NOT EXISTS (SELECT 1 FROM volume_attachments a WHERE a.volume_id = v.id)"
    " RETURNING v.path",
    1,
};

const fy_sql api_sql_vol_lock = {
    "api_vol_lock",
    "SELECT id, project_id, status, path FROM volumes WHERE id = $1::uuid FOR UPDATE",
    1,
};

const fy_sql api_sql_vol_reserve = {
    "api_vol_reserve",
    "UPDATE volumes SET status = $2 WHERE id = $1::uuid AND status = 'available'",
    2,
};

const fy_sql api_sql_vol_instance_lock = {
    "api_vol_instance_lock",
    "SELECT uuid, project_id, host, vm_state, task_state FROM instances"
    " WHERE uuid = $1::uuid AND NOT deleted FOR UPDATE",
    1,
};

const fy_sql api_sql_vol_att_devices = {
    "api_vol_att_devices",
    "SELECT device FROM volume_attachments WHERE instance_uuid = $1::uuid",
    1,
};

const fy_sql api_sql_vol_att_insert = {
    "api_vol_att_insert",
    "INSERT INTO volume_attachments (id, volume_id, instance_uuid, device, boot_index)"
    " VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5::integer)",
    5,
};

const fy_sql api_sql_vol_connection_insert = {
    "api_vol_connection_insert",
    "INSERT INTO volume_connections (attachment_id, host, connection_info)"
    " VALUES ($1::uuid, $2, $3::jsonb) ON CONFLICT (attachment_id, host) DO NOTHING",
    3,
};

const fy_sql api_sql_vol_server_attachments = {
    "api_vol_server_attachments",
    "SELECT id, volume_id, device, boot_index FROM volume_attachments"
    " WHERE instance_uuid = $1::uuid ORDER BY boot_index NULLS LAST, device, id",
    1,
};

/* A project's volume count and gigabytes (Cinder's quota usage and limits). */
const fy_sql api_sql_vol_usage = {
    "api_vol_usage",
    "SELECT count(*) AS volumes, coalesce(sum(size_gb), 0) AS gigabytes"
    "  FROM volumes WHERE project_id = $1::uuid",
    1,
};
