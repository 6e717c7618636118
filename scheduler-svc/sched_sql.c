/* sched_sql — the scheduler's SQL, all parameterised.
 *
 * Usage lives in compute_nodes.*_used and changes only together with the
 * allocations rows, in one statement, so a node row is the single place where
 * concurrent claims meet (its row lock orders them; READ COMMITTED re-checks
 * the room condition on the newest row version). */
#include "sched_sql.h"

#define HOST_COLUMNS                                                                   \
    "SELECT cn.id AS node_id, cn.host, cn.hypervisor_hostname AS node, s.url, s.zone," \
    " cn.vcpus, cn.memory_mb, cn.local_gb,"                                            \
    " cn.vcpus_used, cn.memory_mb_used, cn.local_gb_used,"                             \
    " cn.cpu_allocation_ratio, cn.ram_allocation_ratio, cn.disk_allocation_ratio,"     \
    " s.disabled, s.forced_down,"                                                      \
    " EXTRACT(EPOCH FROM (now() - s.last_seen_up))::float8 AS heartbeat_age"           \
    " FROM compute_nodes cn JOIN services s ON s.id = cn.service_id"

/* $1 service_down_time (s), $2 zone or NULL, $3 forced host/node or NULL,
 * $4 JSON array of ignored hosts, $5 vcpus, $6 memory_mb, $7 disk_gb, $8 limit.
 * The capacity tests are written as in sched_filters.c. */
#define CANDIDATE_WHERE                                                                 \
    " WHERE NOT s.disabled AND NOT s.forced_down"                                       \
    " AND now() - s.last_seen_up <= make_interval(secs => $1::float8)"                  \
    " AND ($2::text IS NULL OR s.zone = $2::text)"                                      \
    " AND ($3::text IS NULL OR cn.host = $3::text OR cn.hypervisor_hostname = $3::text)" \
    " AND cn.host <> ALL (ARRAY(SELECT jsonb_array_elements_text($4::jsonb)))"          \
    " AND cn.vcpus * cn.cpu_allocation_ratio - cn.vcpus_used >= $5::int"                \
    " AND cn.memory_mb * cn.ram_allocation_ratio - cn.memory_mb_used >= $6::int"        \
    " AND cn.local_gb * cn.disk_allocation_ratio - cn.local_gb_used >= $7::int"

/* Ordered by the RAM weigher's raw value (free RAM), so the LIMIT keeps the
 * hosts the weigher would rank first.  With an index on
 * ((memory_mb - memory_mb_used) DESC, id) PostgreSQL walks it (forwards for
 * spread, backwards for pack) and stops after the first max_candidates hosts
 * that fit, instead of reading and sorting every host.
 *
 * The heartbeat test is written as an expression of the column on purpose:
 * last_seen_up is rewritten all the time, so its statistics always say that
 * hardly any row is recent, and a plan built on that (a nested loop over all
 * hosts) is very slow.  The expression gets a neutral estimate instead. */
const fy_sql sched_sql_candidates_spread = {
    "sched_candidates_spread",
    HOST_COLUMNS CANDIDATE_WHERE
    " ORDER BY cn.memory_mb - cn.memory_mb_used DESC, cn.id LIMIT $8::int",
    8,
};

const fy_sql sched_sql_candidates_pack = {
    "sched_candidates_pack",
    HOST_COLUMNS CANDIDATE_WHERE
    " ORDER BY cn.memory_mb - cn.memory_mb_used ASC, cn.id DESC LIMIT $8::int",
    8,
};

/* Session settings for the candidate query's plan: see sched_hoststate.c.
 * JIT goes too: the cost penalty on sorting would otherwise push a short
 * query over jit_above_cost and spend far longer compiling than running it. */
const fy_sql sched_sql_tune = {
    "sched_tune",
    "SELECT set_config('enable_sort', 'off', false), set_config('jit', 'off', false)",
    0,
};

const fy_sql sched_sql_host_get = {
    "sched_host_get",
    HOST_COLUMNS " WHERE cn.host = $1::text",
    1,
};

/* $1 consumer, $2 node id, $3 vcpus, $4 memory_mb, $5 disk_gb, $6 project or NULL.
 * The allocation row is inserted first: a consumer already holding one on the
 * node inserts nothing and so adds nothing (inserted = 0).  inserted = 1 with
 * updated = 0 means no room: the caller rolls the transaction back. */
const fy_sql sched_sql_claim = {
    "sched_claim",
    "WITH ins AS ("
    " INSERT INTO allocations (consumer_uuid, node_id, vcpus, memory_mb, disk_gb, project_id)"
    " VALUES ($1::uuid, $2::int, $3::int, $4::int, $5::int, $6::uuid)"
    " ON CONFLICT (consumer_uuid, node_id) DO NOTHING"
    " RETURNING node_id),"
    " upd AS ("
    " UPDATE compute_nodes cn SET vcpus_used = cn.vcpus_used + $3::int,"
    " memory_mb_used = cn.memory_mb_used + $4::int,"
    " local_gb_used = cn.local_gb_used + $5::int, updated_at = now()"
    " WHERE cn.id IN (SELECT node_id FROM ins)"
    " AND cn.vcpus * cn.cpu_allocation_ratio - cn.vcpus_used >= $3::int"
    " AND cn.memory_mb * cn.ram_allocation_ratio - cn.memory_mb_used >= $4::int"
    " AND cn.local_gb * cn.disk_allocation_ratio - cn.local_gb_used >= $5::int"
    " RETURNING cn.id)"
    " SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM upd) AS updated",
    6,
};

/* $1 consumer, $2 host or NULL (all hosts).  Deleting the rows is what makes a
 * repeat harmless: a second release finds nothing to give back. */
const fy_sql sched_sql_release = {
    "sched_release",
    "WITH del AS ("
    " DELETE FROM allocations a WHERE a.consumer_uuid = $1::uuid"
    " AND ($2::text IS NULL OR a.node_id IN (SELECT id FROM compute_nodes WHERE host = $2::text))"
    " RETURNING a.node_id, a.vcpus, a.memory_mb, a.disk_gb)"
    " UPDATE compute_nodes cn SET vcpus_used = cn.vcpus_used - del.vcpus,"
    " memory_mb_used = cn.memory_mb_used - del.memory_mb,"
    " local_gb_used = cn.local_gb_used - del.disk_gb, updated_at = now()"
    " FROM del WHERE cn.id = del.node_id"
    " RETURNING cn.id",
    2,
};

/* $1 from consumer, $2 to consumer, $3 host or NULL (all hosts).  Usage is
 * unchanged: only the owner of the resources changes. */
const fy_sql sched_sql_move = {
    "sched_move",
    "WITH src AS ("
    " DELETE FROM allocations a WHERE a.consumer_uuid = $1::uuid"
    " AND ($3::text IS NULL OR a.node_id IN (SELECT id FROM compute_nodes WHERE host = $3::text))"
    " RETURNING a.node_id, a.vcpus, a.memory_mb, a.disk_gb, a.project_id)"
    " INSERT INTO allocations AS t (consumer_uuid, node_id, vcpus, memory_mb, disk_gb, project_id)"
    " SELECT $2::uuid, node_id, vcpus, memory_mb, disk_gb, project_id FROM src"
    " ON CONFLICT (consumer_uuid, node_id) DO UPDATE SET"
    " vcpus = t.vcpus + EXCLUDED.vcpus, memory_mb = t.memory_mb + EXCLUDED.memory_mb,"
    " disk_gb = t.disk_gb + EXCLUDED.disk_gb"
    " RETURNING t.node_id",
    3,
};
