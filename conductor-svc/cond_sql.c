/* Every SQL statement of the conductor. */
#include "cond.h"

/* ---- tasks ---- */

/* The documented claim, plus one guard: a task waits while an older task of
 * the same instance is unfinished, so a delete never races the build before it. */
const fy_sql cond_sql_task_claim = {
    "cond_task_claim",
    "UPDATE tasks SET state = 'running', owner = $1, lease_until = now() + $2::interval,"
    "       attempts = attempts + 1, updated_at = now()"
    " WHERE id = (SELECT t.id FROM tasks t"
    "              WHERE (t.state = 'queued' OR (t.state = 'running' AND t.lease_until < now()))"
    "                AND NOT EXISTS (SELECT 1 FROM tasks p"
    "                                 WHERE p.instance_uuid = t.instance_uuid AND p.id < t.id"
    "                                   AND p.state IN ('queued', 'running'))"
    "              ORDER BY t.id FOR UPDATE SKIP LOCKED LIMIT 1)"
    " RETURNING id, uuid, kind, instance_uuid, migration_uuid, request_id, params::text AS params,"
    "           step, attempts",
    2,
};

const fy_sql cond_sql_task_step = {
    "cond_task_step",
    "UPDATE tasks SET step = $3, lease_until = now() + $4::interval, updated_at = now()"
    " WHERE id = $1 AND owner = $2 AND state = 'running'",
    4,
};

const fy_sql cond_sql_task_step_params = {
    "cond_task_step_params",
    "UPDATE tasks SET step = $3, lease_until = now() + $4::interval, params = $5::jsonb,"
    "       updated_at = now()"
    " WHERE id = $1 AND owner = $2 AND state = 'running'",
    5,
};

const fy_sql cond_sql_task_finish = {
    "cond_task_finish",
    "UPDATE tasks SET state = $3, error = $4, lease_until = NULL, updated_at = now()"
    " WHERE id = $1 AND owner = $2 AND state = 'running'",
    4,
};

/* owner is cleared so the renewal of this conductor's leases skips it. */
const fy_sql cond_sql_task_release = {
    "cond_task_release",
    "UPDATE tasks SET owner = NULL, lease_until = now() + $3::interval, error = $4,"
    "       updated_at = now()"
    " WHERE id = $1 AND owner = $2 AND state = 'running'",
    4,
};

const fy_sql cond_sql_task_renew = {
    "cond_task_renew",
    "UPDATE tasks SET lease_until = now() + $2::interval"
    " WHERE state = 'running' AND owner IS NOT NULL AND left(owner, length($1)) = $1",
    2,
};

const fy_sql cond_sql_task_get = {
    "cond_task_get",
    "SELECT uuid, kind, instance_uuid, migration_uuid, request_id, params::text AS params, state,"
    "       step, owner, attempts, error,"
    "       to_char(lease_until AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS lease_until,"
    "       to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS created_at,"
    "       to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS updated_at"
    "  FROM tasks WHERE uuid = $1",
    1,
};

/* Only the newest delete of each instance: older ones are superseded. */
const fy_sql cond_sql_task_requeue_deletes = {
    "cond_task_requeue_deletes",
    "UPDATE tasks t SET state = 'queued', owner = NULL, lease_until = NULL, error = NULL,"
    "       updated_at = now()"
    "  FROM instances i"
    " WHERE t.kind = 'delete' AND t.state = 'failed' AND i.uuid = t.instance_uuid"
    "   AND NOT i.deleted AND i.task_state = 'deleting'"
    "   AND t.id = (SELECT max(x.id) FROM tasks x"
    "                WHERE x.instance_uuid = t.instance_uuid AND x.kind = 'delete')",
    0,
};

/* ---- instances ---- */

const fy_sql cond_sql_instance_get = {
    "cond_instance_get",
    "SELECT uuid, id, display_name, project_id, user_id, image_ref, flavor::text AS flavor,"
    "       vm_state, task_state, power_state, host, node, availability_zone, requested_host,"
    "       deleted"
    "  FROM instances WHERE uuid = $1",
    1,
};

/* A build binds only while still building and not being deleted. */
const fy_sql cond_sql_instance_bind = {
    "cond_instance_bind",
    "UPDATE instances SET host = $2, node = $3, task_state = 'spawning',"
    "       availability_zone = COALESCE(availability_zone,"
    "           (SELECT zone FROM services WHERE host = $2 AND \"binary\" = 'ferry-compute')),"
    "       updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted AND vm_state = 'building'"
    "   AND task_state IS DISTINCT FROM 'deleting'",
    3,
};

const fy_sql cond_sql_instance_active = {
    "cond_instance_active",
    "UPDATE instances SET vm_state = 'active', task_state = NULL, power_state = $2,"
    "       launched_at = now(), updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted AND vm_state = 'building'"
    "   AND task_state IS DISTINCT FROM 'deleting'",
    2,
};

/* A pending delete keeps its task_state: the delete task runs next. */
const fy_sql cond_sql_instance_error = {
    "cond_instance_error",
    "UPDATE instances SET vm_state = 'error',"
    "       task_state = CASE WHEN task_state = 'deleting' THEN task_state END,"
    "       updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted",
    1,
};

const fy_sql cond_sql_instance_deleted = {
    "cond_instance_deleted",
    "UPDATE instances SET deleted = true, deleted_at = now(), terminated_at = now(),"
    "       vm_state = 'deleted', task_state = NULL, power_state = 0, updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted",
    1,
};

const fy_sql cond_sql_instance_power = {
    "cond_instance_power",
    "UPDATE instances SET vm_state = $2, power_state = $3, task_state = NULL, updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted AND task_state IS DISTINCT FROM 'deleting'",
    3,
};

const fy_sql cond_sql_instance_task_clear = {
    "cond_instance_task_clear",
    "UPDATE instances SET task_state = NULL, updated_at = now()"
    " WHERE uuid = $1 AND NOT deleted AND task_state IS DISTINCT FROM 'deleting'",
    1,
};

/* ---- ports, bindings, volumes ---- */

const fy_sql cond_sql_bindings_drop_other = {
    "cond_bindings_drop_other",
    "DELETE FROM port_bindings"
    " WHERE host <> $2 AND port_id IN (SELECT id FROM ports WHERE device_id = $1)",
    2,
};

const fy_sql cond_sql_bindings_add = {
    "cond_bindings_add",
    "INSERT INTO port_bindings (port_id, host, status)"
    " SELECT id, $2, 'ACTIVE' FROM ports WHERE device_id = $1"
    " ON CONFLICT (port_id, host) DO UPDATE SET status = 'ACTIVE'",
    2,
};

const fy_sql cond_sql_ports_activate = {
    "cond_ports_activate",
    "UPDATE ports SET status = 'ACTIVE' WHERE device_id = $1",
    1,
};

const fy_sql cond_sql_ports_list = {
    "cond_ports_list",
    "SELECT id, mac_address, fixed_ip, network_id FROM ports"
    " WHERE device_id = $1 ORDER BY created_at, id",
    1,
};

const fy_sql cond_sql_bindings_drop_all = {
    "cond_bindings_drop_all",
    "DELETE FROM port_bindings WHERE port_id IN (SELECT id FROM ports WHERE device_id = $1)",
    1,
};

const fy_sql cond_sql_ports_delete_owned = {
    "cond_ports_delete_owned",
    "DELETE FROM ports WHERE device_id = $1 AND NOT preserve_on_delete",
    1,
};

const fy_sql cond_sql_ports_detach = {
    "cond_ports_detach",
    "UPDATE ports SET device_id = NULL, status = 'DOWN' WHERE device_id = $1",
    1,
};

const fy_sql cond_sql_volumes_free = {
    "cond_volumes_free",
    "UPDATE volumes SET status = 'available'"
    " WHERE id IN (SELECT volume_id FROM volume_attachments WHERE instance_uuid = $1)",
    1,
};

const fy_sql cond_sql_attachments_drop = {
    "cond_attachments_drop",
    "DELETE FROM volume_attachments WHERE instance_uuid = $1",
    1,
};

/* ---- faults, actions, services ---- */

const fy_sql cond_sql_fault_add = {
    "cond_fault_add",
    "INSERT INTO instance_faults (instance_uuid, code, message, details, host)"
    " VALUES ($1, $2, $3, $4, $5)",
    5,
};

/* A rescheduled build starts the same event again on its next host. */
const fy_sql cond_sql_event_start = {
    "cond_event_start",
    "INSERT INTO instance_action_events (action_id, event, host, start_time)"
    " SELECT id, $3, $4, COALESCE($5::timestamptz, now()) FROM instance_actions"
    "  WHERE instance_uuid = $1 AND request_id = $2"
    " ON CONFLICT (action_id, event, (COALESCE(host, ''))) DO UPDATE"
    "    SET host = EXCLUDED.host, start_time = EXCLUDED.start_time, finish_time = NULL,"
    "        result = NULL, traceback = NULL",
    5,
};

const fy_sql cond_sql_event_finish = {
    "cond_event_finish",
    "UPDATE instance_action_events e"
    "   SET finish_time = COALESCE($6::timestamptz, now()), result = $4, traceback = $5"
    "  FROM instance_actions a"
    " WHERE a.id = e.action_id AND a.instance_uuid = $1 AND a.request_id = $2 AND e.event = $3"
    /* The latest attempt of the event (one per host tried). */
    "   AND e.id = (SELECT max(e2.id) FROM instance_action_events e2"
    "                WHERE e2.action_id = a.id AND e2.event = $3)",
    6,
};

const fy_sql cond_sql_action_finish = {
    "cond_action_finish",
    "UPDATE instance_actions SET finish_time = COALESCE($4::timestamptz, now()),"
    "       message = COALESCE($3, message), updated_at = now()"
    " WHERE instance_uuid = $1 AND request_id = $2",
    4,
};

const fy_sql cond_sql_service_url = {
    "cond_service_url",
    "SELECT url FROM services WHERE host = $1 AND \"binary\" = 'ferry-compute'",
    1,
};

const fy_sql cond_sql_pending_move = {
    "cond_pending_move",
    "SELECT uuid::text AS uuid FROM migrations"
    " WHERE instance_uuid = $1 AND migration_type IN ('migration', 'resize')"
    "   AND status = 'finished'"
    " ORDER BY id DESC LIMIT 1",
    1,
};
