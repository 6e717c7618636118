/* SQL of the servers, services, hypervisors and availability-zone APIs.
 * Optional filters are NULL parameters, so each statement has one fixed text. */
#include "api_servers.h"

// clang-format off

#define UTC_Z(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define UTC_US(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
/* $1 is service_down_time in seconds wherever service state is computed. */
#define SVC_UP(s) "(NOT " s ".forced_down AND " s ".last_seen_up > now()" \
    " - make_interval(secs => $1::double precision))"

/* $1 down time, $2 project, $3 uuid, $4 name substring, $5 host, $6 vm_states[],
 * $7 task_states[], $8 marker uuid, $9 limit.  Nova's default order. */
const fy_sql api_sql_servers_select = {
    "api_servers_select",
    "SELECT i.uuid, i.id, i.display_name, i.project_id, i.user_id, i.image_ref,"
    " i.flavor::text AS flavor, i.vm_state, i.task_state, i.power_state, i.host, i.node,"
    " coalesce(i.availability_zone, (SELECT s.zone FROM services s WHERE s.host = i.host"
    "   AND s.\"binary\" = 'ferry-compute'), '') AS az,"
    " i.key_name, i.metadata::text AS metadata, i.locked,"
    " " UTC_US("i.launched_at") " AS launched_at,"
    " " UTC_US("i.terminated_at") " AS terminated_at,"
    " " UTC_Z("i.created_at") " AS created,"
    " " UTC_Z("i.updated_at") " AS updated,"
    " (SELECT json_agg(json_build_object('net', n.name, 'addr', p.fixed_ip, 'mac', p.mac_address)"
    "   ORDER BY p.created_at, p.id) FROM ports p JOIN networks n ON n.id = p.network_id"
    "   WHERE p.device_id = i.uuid)::text AS ports,"
    " (SELECT json_agg(va.volume_id ORDER BY va.boot_index NULLS LAST, va.device)"
    "   FROM volume_attachments va WHERE va.instance_uuid = i.uuid)::text AS volumes,"
    " (SELECT json_build_object('code', f.code, 'message', f.message, 'details', f.details,"
    "   'created', " UTC_Z("f.created_at") ") FROM instance_faults f"
    "   WHERE f.instance_uuid = i.uuid ORDER BY f.id DESC LIMIT 1)::text AS fault,"
    " (SELECT CASE WHEN s.forced_down THEN 'DOWN' WHEN s.disabled THEN 'MAINTENANCE'"
    "   WHEN " SVC_UP("s") " THEN 'UP' ELSE 'UNKNOWN' END"
    "   FROM services s WHERE s.host = i.host AND s.\"binary\" = 'ferry-compute') AS host_status"
    " FROM instances i"
    " WHERE NOT i.deleted"
    "   AND ($2::uuid IS NULL OR i.project_id = $2::uuid)"
    "   AND ($3::uuid IS NULL OR i.uuid = $3::uuid)"
    "   AND ($4::text IS NULL OR strpos(i.display_name, $4::text) > 0)"
    "   AND ($5::text IS NULL OR i.host = $5::text)"
    "   AND ($6::text[] IS NULL OR i.vm_state = ANY($6::text[]))"
    "   AND ($7::text[] IS NULL OR i.task_state = ANY($7::text[]))"
    "   AND ($8::uuid IS NULL OR (i.created_at, i.id) <"
    "        (SELECT m.created_at, m.id FROM instances m WHERE m.uuid = $8::uuid))"
    " ORDER BY i.created_at DESC, i.id DESC"
    " LIMIT $9::bigint",
    9,
};

/* $1 uuid, $2 project (NULL = any) */
const fy_sql api_sql_server_marker = {
    "api_server_marker",
    "SELECT 1 FROM instances WHERE uuid = $1::uuid AND NOT deleted"
    " AND ($2::uuid IS NULL OR project_id = $2::uuid)",
    2,
};

#define SERVER_COLS                                                                                \
    "uuid, id, display_name, project_id, user_id, image_ref, flavor::text AS flavor,"              \
    " old_flavor::text AS old_flavor, new_flavor::text AS new_flavor, vm_state, task_state,"       \
    " power_state, host, node, availability_zone, locked"

const fy_sql api_sql_server_get = {
    "api_server_get",
    "SELECT " SERVER_COLS " FROM instances WHERE uuid = $1::uuid AND NOT deleted",
    1,
};

const fy_sql api_sql_server_lock = {
    "api_server_lock",
    "SELECT " SERVER_COLS " FROM instances WHERE uuid = $1::uuid AND NOT deleted FOR UPDATE",
    1,
};

/* $1 uuid, $2 new task_state, $3 expected current task_state (NULL = must be NULL) */
const fy_sql api_sql_server_set_task = {
    "api_server_set_task",
    "UPDATE instances SET task_state = $2, updated_at = now()"
    " WHERE uuid = $1::uuid AND NOT deleted AND task_state IS NOT DISTINCT FROM $3::text",
    3,
};

const fy_sql api_sql_task_insert = {
    "api_task_insert",
    "INSERT INTO tasks (uuid, kind, instance_uuid, migration_uuid, request_id, params)"
    " VALUES ($1::uuid, $2, $3::uuid, $4::uuid, $5, coalesce($6::jsonb, '{}'::jsonb))",
    6,
};

const fy_sql api_sql_task_notify = {
    "api_task_notify",
    "SELECT pg_notify('ferry_tasks', $1::text)",
    1,
};

/* A client re-sending its request id for the same server keeps the first record. */
const fy_sql api_sql_action_insert = {
    "api_action_insert",
    "INSERT INTO instance_actions (instance_uuid, action, request_id, user_id, project_id)"
    " VALUES ($1::uuid, $2, $3, $4::uuid, $5::uuid)"
    " ON CONFLICT (instance_uuid, request_id) DO NOTHING",
    5,
};

const fy_sql api_sql_srv_flavor_get = {
    "api_srv_flavor_get",
    "SELECT flavorid, name, vcpus, memory_mb, root_gb, ephemeral_gb, swap_mb, is_public,"
    " extra_specs::text AS extra_specs FROM flavors WHERE flavorid = $1",
    1,
};

const fy_sql api_sql_srv_image_get = {
    "api_srv_image_get",
    "SELECT id, status, owner, visibility, min_disk, min_ram, size"
    " FROM images WHERE id = $1::uuid AND status <> 'deleted'",
    1,
};

const fy_sql api_sql_compute_host_get = {
    "api_compute_host_get",
    "SELECT host, zone FROM services WHERE host = $1 AND \"binary\" = 'ferry-compute'",
    1,
};

const fy_sql api_sql_zone_exists = {
    "api_zone_exists",
    "SELECT 1 FROM services WHERE zone = $1 AND \"binary\" = 'ferry-compute' LIMIT 1",
    1,
};

/* Serialises quota checks of one project until commit. */
const fy_sql api_sql_quota_lock = {
    "api_quota_lock",
    "SELECT pg_advisory_xact_lock(hashtextextended('quota:' || $1::text, 0))",
    1,
};

/* Limit and usage of instances, cores and ram (-1 = unlimited), counting live
 * reservations (held by moves in progress). */
const fy_sql api_sql_quota_usage = {
    "api_quota_usage",
    "SELECT r.resource, coalesce(l.hard_limit, d.hard_limit, -1) AS hard_limit,"
    " (SELECT CASE r.resource WHEN 'instances' THEN count(*)"
    "    WHEN 'cores' THEN coalesce(sum((i.flavor->>'vcpus')::bigint), 0)"
    "    ELSE coalesce(sum((i.flavor->>'memory_mb')::bigint), 0) END"
    "   FROM instances i WHERE i.project_id = $1::uuid AND NOT i.deleted)"
    " + (SELECT coalesce(sum(q.delta), 0) FROM quota_reservations q"
    "    WHERE q.project_id = $1::uuid AND q.resource = r.resource AND q.expires_at > now())"
    "   AS used"
    " FROM (VALUES ('instances'), ('cores'), ('ram')) AS r(resource)"
    " LEFT JOIN quota_limits l ON l.project_id = $1::uuid AND l.resource = r.resource"
    " LEFT JOIN quota_defaults d ON d.resource = r.resource",
    1,
};

const fy_sql api_sql_instance_insert = {
    "api_instance_insert",
    "INSERT INTO instances (uuid, display_name, project_id, user_id, image_ref, flavor,"
    " vm_state, task_state, power_state, availability_zone, requested_host, networks_req,"
    " key_name, metadata)"
    " VALUES ($1::uuid, $2, $3::uuid, $4::uuid, $5, $6::jsonb, 'building', 'scheduling', 0,"
    " $7, $8, $9::jsonb, $10, $11::jsonb)",
    11,
};

/* "auto" networking takes the network called "private", else the first by name. */
const fy_sql api_sql_network_default = {
    "api_network_default",
    "SELECT id FROM networks ORDER BY (name = 'private') DESC, name LIMIT 1",
    0,
};

/* Locking the network serialises address allocation in it. */
const fy_sql api_sql_network_lock = {
    "api_network_lock",
    "SELECT id, name, cidr FROM networks WHERE id = $1::uuid FOR UPDATE",
    1,
};

/* Lowest free IPv4 host address, skipping .0 and the gateway .1; at most the
 * first 65534 addresses are considered. */
const fy_sql api_sql_network_free_ip = {
    "api_network_free_ip",
    "SELECT host(network(n.cidr::inet) + g) AS ip"
    " FROM networks n, generate_series(2::bigint, least((1::bigint << (32 - "
    "masklen(n.cidr::inet))) - 2,"
    "   65534)) AS g"
    " WHERE n.id = $1::uuid AND family(n.cidr::inet) = 4"
    "   AND NOT EXISTS (SELECT 1 FROM ports p WHERE p.network_id = n.id"
    "                    AND p.fixed_ip = host(network(n.cidr::inet) + g))"
    " ORDER BY g LIMIT 1",
    1,
};

/* Zero rows affected = MAC collision; the caller draws another. */
const fy_sql api_sql_port_insert = {
    "api_port_insert",
    "INSERT INTO ports (id, network_id, mac_address, fixed_ip, device_id, project_id, status,"
    " preserve_on_delete) VALUES ($1::uuid, $2::uuid, $3, $4, $5::uuid, $6::uuid, 'DOWN', false)"
    " ON CONFLICT (mac_address) DO NOTHING",
    6,
};

const fy_sql api_sql_port_lock = {
    "api_port_lock",
    "SELECT id, project_id, device_id FROM ports WHERE id = $1::uuid FOR UPDATE",
    1,
};

const fy_sql api_sql_port_attach = {
    "api_port_attach",
    "UPDATE ports SET device_id = $2::uuid WHERE id = $1::uuid AND device_id IS NULL",
    2,
};

/* $1 down time, $2 host, $3 binary, $4 uuid, $5 id — all filters optional.
 * Non-compute services are in Nova's "internal" zone. */
const fy_sql api_sql_services_list = {
    "api_services_list",
    "SELECT s.id, s.uuid, s.host, s.\"binary\" AS binary_name,"
    " CASE WHEN s.\"binary\" = 'ferry-compute' THEN s.zone ELSE 'internal' END AS zone,"
    " s.disabled, s.disabled_reason, s.forced_down,"
    " CASE WHEN " SVC_UP("s") " THEN 'up' ELSE 'down' END AS state,"
    " " UTC_US("coalesce(s.last_seen_up, s.updated_at)") " AS updated_at"
    " FROM services s"
    " WHERE ($2::text IS NULL OR s.host = $2::text)"
    "   AND ($3::text IS NULL OR s.\"binary\" = $3::text)"
    "   AND ($4::uuid IS NULL OR s.uuid = $4::uuid)"
    "   AND ($5::integer IS NULL OR s.id = $5::integer)"
    " ORDER BY s.id",
    5,
};

/* $1 id, $2 disabled (NULL = keep), $3 reason, $4 forced_down (NULL = keep).
 * Enabling clears the reason, as Nova does. */
const fy_sql api_sql_service_update = {
    "api_service_update",
    "UPDATE services SET disabled = coalesce($2::boolean, disabled),"
    " disabled_reason = CASE WHEN $2::boolean IS NULL THEN disabled_reason"
    "   WHEN $2::boolean THEN $3::text ELSE NULL END,"
    " forced_down = coalesce($4::boolean, forced_down), updated_at = now()"
    " WHERE id = $1::integer",
    4,
};

/* $1 down time, $2 id, $3 uuid, $4 hostname substring, $5 marker id, $6 marker uuid,
 * $7 limit. */
const fy_sql api_sql_hypervisors_list = {
    "api_hypervisors_list",
    "SELECT c.id, c.uuid, c.host, c.hypervisor_hostname, c.hypervisor_type,"
    " c.hypervisor_version, c.host_ip, c.cpu_info::text AS cpu_info, c.vcpus, c.memory_mb,"
    " c.local_gb, c.vcpus_used, c.memory_mb_used, c.local_gb_used,"
    " s.id AS service_id, s.uuid AS service_uuid, s.host AS service_host, s.disabled,"
    " s.url AS service_url,"
    " s.disabled_reason, CASE WHEN " SVC_UP("s") " THEN 'up' ELSE 'down' END AS state,"
    " (SELECT count(*) FROM instances i WHERE i.host = c.host AND NOT i.deleted) AS running_vms,"
    " (SELECT count(*) FROM instances i WHERE i.host = c.host AND NOT i.deleted"
    "   AND i.task_state IS NOT NULL) AS current_workload,"
    " (SELECT json_agg(json_build_object('name', i.display_name, 'uuid', i.uuid) ORDER BY i.id)"
    "   FROM instances i WHERE i.host = c.host AND NOT i.deleted)::text AS servers"
    " FROM compute_nodes c JOIN services s ON s.id = c.service_id"
    " WHERE ($2::integer IS NULL OR c.id = $2::integer)"
    "   AND ($3::uuid IS NULL OR c.uuid = $3::uuid)"
    "   AND ($4::text IS NULL OR strpos(c.hypervisor_hostname, $4::text) > 0)"
    "   AND ($5::integer IS NULL OR c.id > $5::integer)"
    "   AND ($6::uuid IS NULL OR c.id > (SELECT m.id FROM compute_nodes m WHERE m.uuid = $6::uuid))"
    " ORDER BY c.id LIMIT $7::bigint",
    7,
};

const fy_sql api_sql_zones_list = {
    "api_zones_list",
    "SELECT zone, bool_or(NOT disabled) AS available FROM services"
    " WHERE \"binary\" = 'ferry-compute' GROUP BY zone ORDER BY zone",
    0,
};
// clang-format on
