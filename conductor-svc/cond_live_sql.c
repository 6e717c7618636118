/* SQL of the live-migration task. */
#include "cond_live.h"

const fy_sql cond_live_sql_host_facts = {
    "cond_live_host_facts",
    "SELECT s.host, n.id IS NOT NULL AS has_node,"
    "       (NOT s.forced_down AND s.last_seen_up IS NOT NULL"
    "        AND s.last_seen_up >= now() - $2::interval) AS up,"
    "       n.hypervisor_hostname, n.hypervisor_type, n.hypervisor_version, n.memory_mb,"
    "       n.memory_mb_used, n.ram_allocation_ratio"
    "  FROM services s LEFT JOIN compute_nodes n ON n.service_id = s.id"
    " WHERE s.host = $1 AND s.\"binary\" = 'ferry-compute'",
    2,
};

const fy_sql cond_live_sql_job_get = {
    "cond_live_job_get",
    "SELECT state, error, error_code FROM migration_jobs"
    " WHERE migration_uuid = $1 AND kind = 'live_migration'",
    1,
};

/* The one write that moves the instance (Nova's post_live_migration_at_destination). */
const fy_sql cond_live_sql_instance_moved = {
    "cond_live_instance_moved",
    "UPDATE instances SET host = $2, node = $3, power_state = $4, task_state = NULL,"
    "       updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted AND task_state = 'migrating'",
    4,
};

const fy_sql cond_live_sql_instance_back = {
    "cond_live_instance_back",
    "UPDATE instances SET task_state = NULL, updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted AND task_state = 'migrating'",
    1,
};

/* Abort and force-complete are actions of their own, recorded by the API. */
const fy_sql cond_live_sql_named_event_start = {
    "cond_live_named_event_start",
    "INSERT INTO instance_action_events (action_id, event, host)"
    " SELECT id, $3, $4 FROM instance_actions WHERE instance_uuid = $1 AND action = $2"
    "  ORDER BY id DESC LIMIT 1"
    " ON CONFLICT (action_id, event, (COALESCE(host, ''))) DO NOTHING",
    4,
};

const fy_sql cond_live_sql_named_event_finish = {
    "cond_live_named_event_finish",
    "WITH a AS (SELECT id FROM instance_actions WHERE instance_uuid = $1 AND action = $2"
    "            ORDER BY id DESC LIMIT 1),"
    "     e AS (UPDATE instance_action_events SET finish_time = now(), result = $4,"
    "                  traceback = $5"
    "            WHERE action_id = (SELECT id FROM a) AND event = $3 AND finish_time IS NULL)"
    " UPDATE instance_actions SET finish_time = now(), updated_at = now(),"
    "        message = CASE WHEN $4 = 'Error' THEN 'Error' ELSE message END"
    "  WHERE id = (SELECT id FROM a)",
    5,
};

/* The source host is lost: forced down, or neither its heartbeat nor the job
 * record (touched by an agent taking the job over after a restart) moved for
 * $2. */
const fy_sql cond_live_sql_source_lost = {
    "cond_live_source_lost",
    "SELECT s.forced_down OR ((s.last_seen_up IS NULL"
    "        OR s.last_seen_up < now() - $2::interval)"
    "       AND NOT EXISTS (SELECT 1 FROM migration_jobs j"
    "                        WHERE j.migration_uuid = $3::uuid AND j.kind = 'live_migration'"
    "                          AND j.updated_at >= now() - $2::interval)) AS lost"
    "  FROM services s WHERE s.host = $1 AND s.\"binary\" = 'ferry-compute'",
    3,
};
