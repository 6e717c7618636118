/* SQL of the migration, instance-action, limits and quota-set APIs.
 * Optional filters are NULL parameters, so each statement has one fixed text. */
#include "api_migrations.h"
// clang-format off
#define UTC_US(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"

/* Nova keeps a migration "in progress" until one of these. */
#define MIG_DONE "('completed', 'confirmed', 'reverted', 'error', 'failed', 'cancelled', 'done')"

#define MIG_COLS \
    "m.id, m.uuid, m.instance_uuid, m.migration_type, m.status, m.source_compute," \
    " m.source_node, m.dest_compute, m.dest_node, m.dest_host, m.old_instance_type_id," \
    " m.new_instance_type_id, m.memory_total, m.memory_processed, m.memory_remaining," \
    " m.disk_total, m.disk_processed, m.disk_remaining, m.user_id, m.project_id," \
    " " UTC_US("m.created_at") " AS created_at, " UTC_US("m.updated_at") " AS updated_at"

/* $1 uuid, $2 instance, $3 type, $4 status, $5 source host, $6 source node,
 * $7 dest host, $8 old flavorid, $9 new flavorid, $10 user, $11 project */
const fy_sql api_sql_mig_insert = {
    "api_mig_insert",
    "INSERT INTO migrations (uuid, instance_uuid, migration_type, status, source_compute,"
    " source_node, dest_compute, old_flavor_id, new_flavor_id, old_instance_type_id,"
    " new_instance_type_id, user_id, project_id)"
    " VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7, $8, $9,"
    " (SELECT id FROM flavors WHERE flavorid = $8), (SELECT id FROM flavors WHERE flavorid = $9),"
    " $10::uuid, $11::uuid)",
    11,
};

const fy_sql api_sql_mig_instance_new_flavor = {
    "api_mig_instance_new_flavor",
    "UPDATE instances SET new_flavor = $2::jsonb, updated_at = now()"
    " WHERE uuid = $1::uuid AND NOT deleted",
    2,
};

/* Status and the reason of a failure (the conductor records it on the migration,
 * else on the task). */
const fy_sql api_sql_mig_status = {
    "api_mig_status",
    "SELECT m.status, coalesce(m.migrate_data->>'error',"
    " (SELECT t.error FROM tasks t WHERE t.migration_uuid = m.uuid ORDER BY t.id DESC LIMIT 1))"
    " AS error FROM migrations m WHERE m.uuid = $1::uuid",
    1,
};

/* $1 id (text, matched as such so a bad id is simply not found), $2 instance */
const fy_sql api_sql_mig_get = {
    "api_mig_get",
    "SELECT " MIG_COLS " FROM migrations m"
    " WHERE m.id::text = $1 AND m.instance_uuid = $2::uuid",
    2,
};

const fy_sql api_sql_mig_finished = {
    "api_mig_finished",
    "SELECT m.uuid, m.id FROM migrations m WHERE m.instance_uuid = $1::uuid"
    " AND m.status = 'finished' ORDER BY m.id DESC LIMIT 1 FOR UPDATE",
    1,
};

/* $1 uuid, $2 expected status, $3 new status */
const fy_sql api_sql_mig_set_status = {
    "api_mig_set_status",
    "UPDATE migrations SET status = $3, updated_at = now() WHERE uuid = $1::uuid AND status = $2",
    3,
};

/* Records an abort / force-complete request: $1 id, $2 instance, $3 flag name,
 * $4 statuses in which the request is valid (text[]). */
const fy_sql api_sql_mig_flag = {
    "api_mig_flag",
    "UPDATE migrations SET migrate_data = migrate_data || jsonb_build_object($3::text, true),"
    " updated_at = now()"
    " WHERE id::text = $1 AND instance_uuid = $2::uuid AND migration_type = 'live-migration'"
    "   AND status = ANY($4::text[])"
    " RETURNING uuid",
    4,
};

const fy_sql api_sql_mig_jobs_notify = {
    "api_mig_jobs_notify",
    "SELECT pg_notify('ferry_jobs', $1::text)",
    1,
};

const fy_sql api_sql_mig_server_list = {
    "api_mig_server_list",
    "SELECT " MIG_COLS " FROM migrations m"
    " WHERE m.instance_uuid = $1::uuid AND m.migration_type = 'live-migration'"
    "   AND m.status NOT IN " MIG_DONE
    " ORDER BY m.created_at DESC, m.id DESC",
    1,
};

/* $1 host (source or dest), $2 status, $3 instance uuid, $4 source host, $5 type,
 * $6 changes-since, $7 changes-before, $8 user, $9 project, $10 marker uuid,
 * $11 limit.  Ids are compared as text so a malformed filter matches nothing. */
const fy_sql api_sql_mig_list = {
    "api_mig_list",
    "SELECT " MIG_COLS " FROM migrations m"
    " WHERE ($1::text IS NULL OR m.source_compute = $1 OR m.dest_compute = $1)"
    "   AND ($2::text IS NULL OR m.status = $2)"
    "   AND ($3::text IS NULL OR m.instance_uuid::text = lower($3))"
    "   AND ($4::text IS NULL OR m.source_compute = $4)"
    "   AND ($5::text IS NULL OR m.migration_type = $5)"
    "   AND ($6::timestamptz IS NULL OR m.updated_at >= $6::timestamptz)"
    "   AND ($7::timestamptz IS NULL OR m.updated_at <= $7::timestamptz)"
    "   AND ($8::text IS NULL OR m.user_id::text = lower($8))"
    "   AND ($9::text IS NULL OR m.project_id::text = lower($9))"
    "   AND ($10::text IS NULL OR (m.created_at, m.id) <"
    "        (SELECT k.created_at, k.id FROM migrations k WHERE k.uuid::text = lower($10)))"
    " ORDER BY m.created_at DESC, m.id DESC"
    " LIMIT $11::bigint",
    11,
};

const fy_sql api_sql_mig_marker = {
    "api_mig_marker",
    "SELECT 1 FROM migrations WHERE uuid::text = lower($1)",
    1,
};

/* $1 project, $2 resource, $3 delta, $4 consumer */
const fy_sql api_sql_reservation_insert = {
    "api_reservation_insert",
    "INSERT INTO quota_reservations (uuid, project_id, resource, delta, consumer_uuid, expires_at)"
    " VALUES (gen_random_uuid(), $1::uuid, $2, $3::bigint, $4::uuid, now() + interval '1 hour')",
    4,
};

#define ACTION_COLS \
    "a.id, a.action, a.instance_uuid, a.request_id, a.user_id, a.project_id," \
    " " UTC_US("a.start_time") " AS start_time, a.message, " UTC_US("a.updated_at") " AS updated_at"

/* $1 instance, $2 marker request id, $3 changes-since, $4 changes-before, $5 limit */
const fy_sql api_sql_actions_list = {
    "api_actions_list",
    "SELECT " ACTION_COLS " FROM instance_actions a"
    " WHERE a.instance_uuid = $1::uuid"
    "   AND ($2::text IS NULL OR (a.start_time, a.id) <"
    "        (SELECT k.start_time, k.id FROM instance_actions k"
    "          WHERE k.instance_uuid = $1::uuid AND k.request_id = $2))"
    "   AND ($3::timestamptz IS NULL OR a.updated_at >= $3::timestamptz)"
    "   AND ($4::timestamptz IS NULL OR a.updated_at <= $4::timestamptz)"
    " ORDER BY a.start_time DESC, a.id DESC LIMIT $5::bigint",
    5,
};

const fy_sql api_sql_action_marker = {
    "api_action_marker",
    "SELECT 1 FROM instance_actions WHERE instance_uuid = $1::uuid AND request_id = $2",
    2,
};

const fy_sql api_sql_action_get = {
    "api_action_get",
    "SELECT " ACTION_COLS " FROM instance_actions a"
    " WHERE a.instance_uuid = $1::uuid AND a.request_id = $2",
    2,
};

const fy_sql api_sql_action_events = {
    "api_action_events",
    "SELECT e.event, " UTC_US("e.start_time") " AS start_time,"
    " " UTC_US("e.finish_time") " AS finish_time, e.result, e.traceback, e.host, e.details"
    " FROM instance_action_events e WHERE e.action_id = $1::integer"
    " ORDER BY e.start_time DESC, e.id DESC",
    1,
};

/* Every known resource with its default and the project's limit ($1 may be NULL). */
const fy_sql api_sql_quota_get = {
    "api_quota_get",
    "SELECT d.resource, d.hard_limit AS default_limit,"
    " coalesce(l.hard_limit, d.hard_limit) AS hard_limit"
    " FROM quota_defaults d"
    " LEFT JOIN quota_limits l ON l.project_id = $1::uuid AND l.resource = d.resource"
    " ORDER BY d.resource",
    1,
};

/* What the project's instances hold, and what moves in progress have reserved. */
const fy_sql api_sql_quota_in_use = {
    "api_quota_in_use",
    "SELECT r.resource,"
    " (SELECT CASE r.resource WHEN 'instances' THEN count(*)"
    "    WHEN 'cores' THEN coalesce(sum((i.flavor->>'vcpus')::bigint), 0)"
    "    ELSE coalesce(sum((i.flavor->>'memory_mb')::bigint), 0) END"
    "   FROM instances i WHERE i.project_id = $1::uuid AND NOT i.deleted) AS in_use,"
    " (SELECT coalesce(sum(q.delta), 0) FROM quota_reservations q"
    "   WHERE q.project_id = $1::uuid AND q.resource = r.resource AND q.expires_at > now())"
    "   AS reserved"
    " FROM (VALUES ('instances'), ('cores'), ('ram')) AS r(resource)",
    1,
};

const fy_sql api_sql_quota_set = {
    "api_quota_set",
    "INSERT INTO quota_limits (project_id, resource, hard_limit) VALUES ($1::uuid, $2, $3::bigint)"
    " ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = EXCLUDED.hard_limit",
    3,
};

const fy_sql api_sql_quota_clear = {
    "api_quota_clear",
    "DELETE FROM quota_limits WHERE project_id = $1::uuid",
    1,
};
const fy_sql api_sql_time_after = {
    "api_time_after",
    "SELECT $1::timestamptz > $2::timestamptz AS after",
    2,
};
// clang-format on
