/* Every SQL statement of the conductor's network and volume API. */
#include "cond_netvol.h"

/* ---- network ---- */

/* Serialises binding changes of one instance's ports, so that two hosts set up
 * at once cannot both end up ACTIVE. */
const fy_sql cond_nv_sql_ports_lock = {
    "cond_nv_ports_lock",
    "SELECT id FROM ports WHERE device_id = $1 ORDER BY id FOR UPDATE",
    1,
};

/* ACTIVE unless the port is ACTIVE on another host; an existing binding takes
 * the same rule, so setting up the source again after a failed move re-activates it. */
const fy_sql cond_nv_sql_binding_setup = {
    "cond_nv_binding_setup",
    "INSERT INTO port_bindings (port_id, host, status)"
    " SELECT p.id, $2,"
    "        CASE WHEN EXISTS (SELECT 1 FROM port_bindings b"
    "                           WHERE b.port_id = p.id AND b.host <> $2"
    "                             AND b.status = 'ACTIVE')"
    "             THEN 'INACTIVE' ELSE 'ACTIVE' END"
    "   FROM ports p WHERE p.device_id = $1"
    " ON CONFLICT (port_id, host) DO UPDATE SET status = EXCLUDED.status",
    2,
};

/* A port is ACTIVE while it has an ACTIVE binding somewhere, DOWN otherwise. */
const fy_sql cond_nv_sql_ports_status = {
    "cond_nv_ports_status",
    "UPDATE ports p SET status = CASE WHEN EXISTS (SELECT 1 FROM port_bindings b"
    "                                              WHERE b.port_id = p.id"
    "                                                AND b.status = 'ACTIVE')"
    "                                 THEN 'ACTIVE' ELSE 'DOWN' END"
    " WHERE p.device_id = $1",
    1,
};

const fy_sql cond_nv_sql_binding_teardown = {
    "cond_nv_binding_teardown",
    "DELETE FROM port_bindings"
    " WHERE host = $2 AND port_id IN (SELECT id FROM ports WHERE device_id = $1)",
    2,
};

const fy_sql cond_nv_sql_binding_deactivate = {
    "cond_nv_binding_deactivate",
    "UPDATE port_bindings SET status = 'INACTIVE'"
    " WHERE host = $2 AND port_id IN (SELECT id FROM ports WHERE device_id = $1)",
    2,
};

const fy_sql cond_nv_sql_binding_activate = {
    "cond_nv_binding_activate",
    "INSERT INTO port_bindings (port_id, host, status)"
    " SELECT id, $2, 'ACTIVE' FROM ports WHERE device_id = $1"
    " ON CONFLICT (port_id, host) DO UPDATE SET status = 'ACTIVE'",
    2,
};

const fy_sql cond_nv_sql_binding_drop_others = {
    "cond_nv_binding_drop_others",
    "DELETE FROM port_bindings"
    " WHERE host <> $2 AND port_id IN (SELECT id FROM ports WHERE device_id = $1)",
    2,
};

const fy_sql cond_nv_sql_ports_info = {
    "cond_nv_ports_info",
    "SELECT id, mac_address, fixed_ip, network_id FROM ports"
    " WHERE device_id = $1 ORDER BY created_at, id",
    1,
};

/* ---- volumes ---- */

/* Root disk first, then by device name. */
const fy_sql cond_nv_sql_bdi = {
    "cond_nv_bdi",
    "SELECT a.id, a.volume_id, a.device, a.boot_index, c.connection_info::text AS connection_info"
    "  FROM volume_attachments a"
    "  LEFT JOIN volume_connections c ON c.attachment_id = a.id AND c.host = $2"
    " WHERE a.instance_uuid = $1"
    " ORDER BY a.boot_index IS NULL OR a.boot_index < 0, a.boot_index, a.device, a.id",
    2,
};

const fy_sql cond_nv_sql_attachment_volume = {
    "cond_nv_attachment_volume",
    "SELECT a.volume_id, v.path FROM volume_attachments a JOIN volumes v ON v.id = a.volume_id"
    " WHERE a.id = $1 FOR UPDATE OF a",
    1,
};

/* The connection of a host is made once; asking again returns the same one. */
const fy_sql cond_nv_sql_connection_put = {
    "cond_nv_connection_put",
    "INSERT INTO volume_connections (attachment_id, host, connection_info)"
    " VALUES ($1, $2, $3::jsonb)"
    " ON CONFLICT (attachment_id, host) DO UPDATE SET attachment_id = EXCLUDED.attachment_id"
    " RETURNING connection_info::text AS connection_info",
    3,
};

/* A reserved volume is in use once a host is connected to it. */
const fy_sql cond_nv_sql_volume_attached = {
    "cond_nv_volume_attached",
    "UPDATE volumes SET status = 'in-use' WHERE id = $1 AND status = 'attaching'",
    1,
};

const fy_sql cond_nv_sql_connection_drop = {
    "cond_nv_connection_drop",
    "DELETE FROM volume_connections WHERE attachment_id = $1 AND host = $2",
    2,
};

/* Zero rows only when the volume does not exist. */
const fy_sql cond_nv_sql_volume_roll_detaching = {
    "cond_nv_volume_roll_detaching",
    "UPDATE volumes SET status = CASE WHEN status = 'detaching' THEN 'in-use' ELSE status END"
    " WHERE id = $1",
    1,
};

const fy_sql cond_nv_sql_volume_backed = {
    "cond_nv_volume_backed",
    "SELECT EXISTS (SELECT 1 FROM volume_attachments"
    "                WHERE instance_uuid = $1 AND boot_index = 0) AS backed",
    1,
};
