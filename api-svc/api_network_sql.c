/* Every SQL statement of the network API (Neutron subset). */
#include "api_netvol.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

const fy_sql api_sql_net_list = {
    "api_net_list",
    "SELECT id, name, cidr FROM networks ORDER BY name",
    0,
};

/* binding_host: where the port's ACTIVE binding is (Neutron's binding:host_id). */
#define PORT_SELECT                                                                       \
    "SELECT p.id, p.network_id, p.name, p.mac_address, p.fixed_ip, p.device_id,"          \
    "       p.project_id, p.status, " TS("p.created_at") " AS created_at,"               \
    "       (SELECT b.host FROM port_bindings b WHERE b.port_id = p.id"                   \
    "         AND b.status = 'ACTIVE' ORDER BY b.host LIMIT 1) AS binding_host"          \
    "  FROM ports p"

/* NULL filters match everything; $1 is the caller's project (NULL for admins). */
const fy_sql api_sql_net_ports_list = {
    "api_net_ports_list",
    PORT_SELECT
    " WHERE ($1::uuid IS NULL OR p.project_id = $1::uuid)"
    "   AND ($2::uuid IS NULL OR p.device_id = $2::uuid)"
    "   AND ($3::uuid IS NULL OR p.network_id = $3::uuid)"
    " ORDER BY p.created_at, p.id LIMIT 1000",
    3,
};

const fy_sql api_sql_net_port_get = {
    "api_net_port_get",
    PORT_SELECT " WHERE p.id = $1::uuid",
    1,
};

/* Ports made through this API outlive the servers they are attached to. Zero rows
 * affected = MAC collision; the caller draws another. */
const fy_sql api_sql_net_port_insert = {
    "api_net_port_insert",
    "INSERT INTO ports (id, network_id, name, mac_address, fixed_ip, project_id, status,"
    " preserve_on_delete) VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6::uuid, 'DOWN', true)"
    " ON CONFLICT (mac_address) DO NOTHING",
    6,
};

/* Only a port no server uses. */
const fy_sql api_sql_net_port_delete = {
    "api_net_port_delete",
    "DELETE FROM ports WHERE id = $1::uuid AND device_id IS NULL",
    1,
};
