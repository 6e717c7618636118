/* Every SQL statement of the compute agent. */
#include "compute_sql.h"

/* Keyed by host: the row survives a lost node_uuid file, and the agent adopts
 * the uuid already recorded (allocations refer to the row, not the file). */
const fy_sql compute_sql_node_upsert = {
    "compute_node_upsert",
    "INSERT INTO compute_nodes (uuid, service_id, host, hypervisor_hostname, hypervisor_type,"
    " hypervisor_version, cpu_model, cpu_info, vcpus, memory_mb, local_gb,"
    " cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio, host_ip, instances_path)"
    " VALUES ($1::uuid, $2::integer, $3, $4, $5, $6::integer, $7, $8::jsonb, $9::integer,"
    " $10::integer, $11::integer, $12::float8, $13::float8, $14::float8, $15, $16)"
    " ON CONFLICT (host) DO UPDATE SET service_id = EXCLUDED.service_id,"
    " hypervisor_hostname = EXCLUDED.hypervisor_hostname,"
    " hypervisor_type = EXCLUDED.hypervisor_type,"
    " hypervisor_version = EXCLUDED.hypervisor_version, cpu_model = EXCLUDED.cpu_model,"
    " cpu_info = EXCLUDED.cpu_info, vcpus = EXCLUDED.vcpus, memory_mb = EXCLUDED.memory_mb,"
    " local_gb = EXCLUDED.local_gb, cpu_allocation_ratio = EXCLUDED.cpu_allocation_ratio,"
    " ram_allocation_ratio = EXCLUDED.ram_allocation_ratio,"
    " disk_allocation_ratio = EXCLUDED.disk_allocation_ratio, host_ip = EXCLUDED.host_ip,"
    " instances_path = EXCLUDED.instances_path, updated_at = now()"
    " RETURNING id, uuid::text AS uuid",
    16,
};

const fy_sql compute_sql_step_get = {
    "compute_step_get",
    "SELECT result::text AS result FROM agent_steps WHERE key = $1",
    1,
};

/* A concurrent identical call may have recorded first; the first one wins. */
const fy_sql compute_sql_step_put = {
    "compute_step_put",
    "INSERT INTO agent_steps (key, host, result) VALUES ($1, $2, $3::jsonb)"
    " ON CONFLICT (key) DO NOTHING",
    3,
};

/* Forgets every step of one subject on one host (prefix "<subject>:"). */
const fy_sql compute_sql_step_forget = {
    "compute_step_forget",
    "DELETE FROM agent_steps WHERE host = $1 AND left(key, length($2)) = $2",
    2,
};
