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

/* Progress of a live migration; only while it is running, so a late sample
 * never overwrites what the conductor wrote after the end. */
const fy_sql compute_sql_mig_progress = {
    "compute_mig_progress",
    "UPDATE migrations SET memory_total = $2::bigint, memory_processed = $3::bigint,"
    " memory_remaining = $4::bigint, disk_total = $5::bigint, disk_processed = $6::bigint,"
    " disk_remaining = $7::bigint, updated_at = now()"
    " WHERE uuid = $1::uuid AND status = 'running'",
    7,
};

const fy_sql compute_sql_mig_instance = {
    "compute_mig_instance",
    "SELECT instance_uuid::text AS instance_uuid FROM migrations WHERE uuid = $1::uuid",
    1,
};

/* Claims the job of a migration; no row comes back when one already exists
 * (running, or ended before a restart), so it is never started twice. */
const fy_sql compute_sql_job_begin = {
    "compute_job_begin",
    "INSERT INTO migration_jobs (migration_uuid, kind, host, state)"
    " VALUES ($1::uuid, $2, $3, 'running') ON CONFLICT (migration_uuid, kind) DO NOTHING"
    " RETURNING state",
    3,
};

/* The end of a job and its notification, in one statement (one commit). */
const fy_sql compute_sql_job_end = {
    "compute_job_end",
    "WITH j AS (INSERT INTO migration_jobs (migration_uuid, kind, host, state, error,"
    " error_code, downtime_ms) VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::bigint)"
    " ON CONFLICT (migration_uuid, kind) DO UPDATE SET state = EXCLUDED.state,"
    " error = EXCLUDED.error, error_code = EXCLUDED.error_code,"
    " downtime_ms = EXCLUDED.downtime_ms, host = EXCLUDED.host, updated_at = now()"
    " RETURNING migration_uuid)"
    " SELECT pg_notify('ferry_jobs', migration_uuid::text) FROM j",
    7,
};

const fy_sql compute_sql_job_get = {
    "compute_job_get",
    "SELECT state, error, error_code, downtime_ms FROM migration_jobs"
    " WHERE migration_uuid = $1::uuid AND kind = $2",
    2,
};

/* A job taken over after a restart says so on its record: the conductor sees
 * that an agent is back and settling it. */
const fy_sql compute_sql_job_adopted = {
    "compute_live_job_adopted",
    "UPDATE migration_jobs SET updated_at = now()"
    " WHERE migration_uuid = $1::uuid AND kind = $2 AND host = $3 AND state = 'running'",
    3,
};

/* Jobs this host left running, but those taken over (their uuids in $3), cannot
 * be running any more. */
const fy_sql compute_sql_job_recover = {
    "compute_live_job_recover",
    "WITH j AS (UPDATE migration_jobs SET state = 'failed', error = $2,"
    " error_code = 'DRIVER', updated_at = now() WHERE host = $1 AND state = 'running'"
    " AND NOT (migration_uuid = ANY ($3::uuid[])) RETURNING migration_uuid)"
    " SELECT pg_notify('ferry_jobs', migration_uuid::text) FROM j",
    3,
};

/* The hypervisor's view of a guest's power.  Only while no task runs on it:
 * a task (stop, migration, ...) writes the state it leaves behind itself. */
const fy_sql compute_sql_power_sync = {
    "compute_power_sync",
    "UPDATE instances SET power_state = $3::integer, updated_at = now()"
    " WHERE uuid = $1::uuid AND host = $2 AND task_state IS NULL AND deleted_at IS NULL"
    " AND power_state IS DISTINCT FROM $3::integer",
    3,
};

/* Live-migration jobs this host left running, with what is needed to tell
 * where the guest ended up. */
const fy_sql compute_sql_jobs_running = {
    "compute_jobs_running",
    "SELECT j.migration_uuid::text AS migration_uuid, m.instance_uuid::text AS instance_uuid,"
    " coalesce(m.migrate_data, '{}'::jsonb)::text AS migrate_data"
    " FROM migration_jobs j JOIN migrations m ON m.uuid = j.migration_uuid"
    " WHERE j.host = $1 AND j.kind = 'live_migration' AND j.state = 'running'",
    1,
};

/* ---- reconciliation at start (compute_reconcile.c) ---- */

/* The conductor owns an instance while a task of it is unfinished or a move
 * touching this host is in flight; reconciliation leaves such instances alone. */
#define RECONCILE_OWNED(uuid)                                                                   \
    "(EXISTS (SELECT 1 FROM tasks t WHERE t.instance_uuid = " uuid                              \
    "         AND t.state IN ('queued', 'running'))"                                             \
    " OR EXISTS (SELECT 1 FROM migrations m WHERE m.instance_uuid = " uuid                      \
    "         AND $1 IN (m.source_compute, m.dest_compute) AND m.status NOT IN"                \
    "         ('completed', 'confirmed', 'reverted', 'error', 'failed', 'cancelled')))"

/* $1 host, $2 uuid[] of the guests the hypervisor has: those the database does not
 * place here (unknown, deleted, or on another host) and nobody is moving; shared
 * when the instance's host uses this host's instances path (its disk is ours too). */
const fy_sql compute_sql_reconcile_strays = {
    "compute_reconcile_strays",
    "SELECT g.uuid::text AS uuid, i.uuid IS NOT NULL AND NOT i.deleted AS known, i.host,"
    "       coalesce((SELECT o.instances_path = me.instances_path AND o.instances_path <> ''"
    "                   FROM compute_nodes o, compute_nodes me"
    "                  WHERE o.host = i.host AND me.host = $1), false) AS shared"
    "  FROM unnest($2::uuid[]) AS g(uuid) LEFT JOIN instances i ON i.uuid = g.uuid"
    " WHERE (i.uuid IS NULL OR i.deleted OR i.host IS DISTINCT FROM $1)"
    "   AND NOT " RECONCILE_OWNED("g.uuid"),
    2,
};

/* $1 host: the instances the database places here that nobody is working on. */
const fy_sql compute_sql_reconcile_mine = {
    "compute_reconcile_mine",
    "SELECT i.uuid::text AS uuid, i.vm_state, i.task_state FROM instances i"
    " WHERE i.host = $1 AND NOT i.deleted AND NOT " RECONCILE_OWNED("i.uuid"),
    1,
};

/* $1 host, $2 instance, $3 message: the guest is gone; the instance goes ERROR
 * with a fault.  Guarded so that a task claimed meanwhile wins. */
const fy_sql compute_sql_reconcile_lost = {
    "compute_reconcile_lost",
    "WITH i AS (UPDATE instances SET vm_state = 'error', task_state = NULL, power_state = 0,"
    "                  updated_at = now()"
    "            WHERE uuid = $2::uuid AND host = $1 AND NOT deleted AND vm_state <> 'error'"
    "              AND NOT " RECONCILE_OWNED("$2::uuid") " RETURNING uuid),"
    " f AS (INSERT INTO instance_faults (instance_uuid, code, message, details, host)"
    "       SELECT uuid, 500, $3, '', $1 FROM i)"
    " SELECT uuid FROM i",
    3,
};

/* $1 host, $2 instance, $3 power state: a task state nobody will finish is
 * cleared, the vm state following what the hypervisor shows. */
const fy_sql compute_sql_reconcile_settle = {
    "compute_reconcile_settle",
    "UPDATE instances SET task_state = NULL, power_state = $3::integer, updated_at = now(),"
    "       vm_state = CASE WHEN $3::integer = 1 THEN 'active'"
    "                       WHEN $3::integer = 4 THEN 'stopped' ELSE vm_state END"
    " WHERE uuid = $2::uuid AND host = $1 AND NOT deleted AND task_state IS NOT NULL"
    "   AND task_state <> 'deleting' AND NOT " RECONCILE_OWNED("$2::uuid")
    " RETURNING uuid",
    3,
};

/* $1 host, $2 instance, $3 request id, $4 result (Success, Error), $5 what was done:
 * the instance action "reconcile" with its one event. */
const fy_sql compute_sql_reconcile_event = {
    "compute_reconcile_event",
    "WITH a AS (INSERT INTO instance_actions (instance_uuid, action, request_id, project_id,"
    "                                         finish_time, message)"
    "           SELECT uuid, 'reconcile', $3, project_id, now(), $5 FROM instances"
    "            WHERE uuid = $2::uuid RETURNING id)"
    " INSERT INTO instance_action_events (action_id, event, finish_time, result, host, details)"
    " SELECT id, 'compute_init_instance', now(), $4, $1, $5 FROM a",
    5,
};
