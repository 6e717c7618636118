/* ferry-manage's SQL.  The *_ensure statements insert unless a row with the
 * same unique name exists, and return the id either way. */
#include "fy_service.h"
#include "manage.h"

const fy_sql manage_sql_project_ensure = {
    "manage_project_ensure",
    "WITH ins AS (INSERT INTO projects (id, name) VALUES ($1::uuid, $2)"
    " ON CONFLICT (name) DO NOTHING RETURNING id)"
    " SELECT id, true AS created FROM ins"
    " UNION ALL SELECT id, false FROM projects WHERE name = $2 LIMIT 1",
    2};

const fy_sql manage_sql_project_insert = {
    "manage_project_insert", "INSERT INTO projects (id, name) VALUES ($1::uuid, $2) RETURNING id",
    2};

const fy_sql manage_sql_role_ensure = {
    "manage_role_ensure",
    "WITH ins AS (INSERT INTO roles (id, name) VALUES ($1::uuid, $2)"
    " ON CONFLICT (name) DO NOTHING RETURNING id)"
    " SELECT id, true AS created FROM ins"
    " UNION ALL SELECT id, false FROM roles WHERE name = $2 LIMIT 1",
    2};

/* Bootstrap re-run: the admin's password is replaced and the account enabled. */
const fy_sql manage_sql_user_upsert = {
    "manage_user_upsert",
    "INSERT INTO users (id, name, password_hash) VALUES ($1::uuid, $2, $3)"
    " ON CONFLICT (name) DO UPDATE SET password_hash = EXCLUDED.password_hash, enabled = true"
    " RETURNING id, (xmax = 0) AS created",
    3};

const fy_sql manage_sql_user_insert = {
    "manage_user_insert",
    "INSERT INTO users (id, name, password_hash) VALUES ($1::uuid, $2, $3) RETURNING id", 3};

const fy_sql manage_sql_role_assign = {
    "manage_role_assign",
    "INSERT INTO role_assignments (user_id, project_id, role_id)"
    " VALUES ($1::uuid, $2::uuid, $3::uuid) ON CONFLICT DO NOTHING",
    3};

/* Existing flavors are left as the operator changed them. */
const fy_sql manage_sql_flavor_ensure = {
    "manage_flavor_ensure",
    "INSERT INTO flavors (flavorid, name, vcpus, memory_mb, root_gb)"
    " VALUES ($1, $2, $3::integer, $4::integer, $5::integer) ON CONFLICT DO NOTHING",
    5};

const fy_sql manage_sql_network_ensure = {
    "manage_network_ensure",
    "INSERT INTO networks (id, name, cidr) VALUES ($1::uuid, $2, $3) ON CONFLICT (name) DO NOTHING",
    3};

const fy_sql manage_sql_service_list = {
    "manage_service_list",
    "SELECT id, host, \"binary\", zone, disabled, disabled_reason, forced_down,"
    " " FY_SERVICE_UP_SQL("$1") " AS up,"
    " to_char(last_seen_up AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS last_seen"
    " FROM services ORDER BY host, \"binary\"",
    1};
