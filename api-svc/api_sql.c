/* Every statement of the API's identity, flavor and image endpoints, in one place.
 * Text parameters are compared as text where the input may not be a valid uuid, so
 * a malformed id is "not found" rather than a cast error. */
#include "api_sql.h"

/* Keystone prints microseconds, Glance whole seconds. */
#define KS_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
#define GL_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

const fy_sql api_sql_ping = {"api_ping", "SELECT 1", 0};

/* --- identity --- */

const fy_sql api_sql_token_auth = {
    "api_token_auth",
    "SELECT t.user_id, t.project_id, t.roles, u.name AS user_name, p.name AS project_name"
    "  FROM tokens t JOIN users u ON u.id = t.user_id JOIN projects p ON p.id = t.project_id"
    " WHERE t.digest = $1 AND t.expires_at > now() AND u.enabled",
    1};

const fy_sql api_sql_token_insert = {
    "api_token_insert",
    "INSERT INTO tokens (digest, user_id, project_id, roles, expires_at)"
    " VALUES ($1, $2::uuid, $3::uuid, $4, now() + make_interval(secs => $5::int))"
    " RETURNING " KS_TS("issued_at") " AS issued_at, " KS_TS("expires_at") " AS expires_at",
    5};

const fy_sql api_sql_token_get = {
    "api_token_get",
    "SELECT t.user_id, u.name AS user_name, u.domain_id AS user_domain,"
    "       t.project_id, p.name AS project_name, p.domain_id AS project_domain, t.roles,"
    "       " KS_TS("t.issued_at") " AS issued_at, " KS_TS("t.expires_at") " AS expires_at"
    "  FROM tokens t JOIN users u ON u.id = t.user_id JOIN projects p ON p.id = t.project_id"
    " WHERE t.digest = $1 AND t.expires_at > now() AND u.enabled",
    1};

const fy_sql api_sql_token_delete = {
    "api_token_delete", "DELETE FROM tokens WHERE digest = $1 AND expires_at > now()", 1};

/* Expired tokens are kept a day (a late validation says "expired", not "unknown")
 * and then dropped; run on issue so the table cannot grow without bound. */
const fy_sql api_sql_token_purge = {
    "api_token_purge", "DELETE FROM tokens WHERE expires_at < now() - interval '1 day'", 0};

const fy_sql api_sql_user_by_name = {
    "api_user_by_name",
    "SELECT id, name, domain_id, password_hash, enabled FROM users WHERE name = $1", 1};

const fy_sql api_sql_user_by_id = {
    "api_user_by_id",
    "SELECT id, name, domain_id, password_hash, enabled FROM users WHERE id::text = lower($1)",
    1};

const fy_sql api_sql_project_by_name = {
    "api_project_by_name", "SELECT id, name, domain_id FROM projects WHERE name = $1", 1};

const fy_sql api_sql_project_by_id = {
    "api_project_by_id",
    "SELECT id, name, domain_id FROM projects WHERE id::text = lower($1)", 1};

/* $1 name or NULL, $2 id or NULL (a non-admin's own). */
const fy_sql api_sql_projects_list = {
    "api_projects_list",
    "SELECT id, name, domain_id FROM projects"
    " WHERE ($1::text IS NULL OR name = $1::text) AND ($2::text IS NULL OR id::text = $2::text)"
    " ORDER BY name",
    2};

/* $1 name or NULL, $2 id or NULL (a non-admin's own). */
const fy_sql api_sql_users_list = {
    "api_users_list",
    "SELECT id, name, domain_id, enabled FROM users"
    " WHERE ($1::text IS NULL OR name = $1::text) AND ($2::text IS NULL OR id::text = $2::text)"
    " ORDER BY name",
    2};

const fy_sql api_sql_user_first_project = {
    "api_user_first_project",
    "SELECT p.id, p.name, p.domain_id FROM projects p"
    " WHERE EXISTS (SELECT 1 FROM role_assignments ra"
    "                WHERE ra.user_id = $1::uuid AND ra.project_id = p.id)"
    " ORDER BY p.name LIMIT 1",
    1};

const fy_sql api_sql_user_roles = {
    "api_user_roles",
    "SELECT r.id, r.name FROM role_assignments ra JOIN roles r ON r.id = ra.role_id"
    " WHERE ra.user_id = $1::uuid AND ra.project_id = $2::uuid ORDER BY r.name",
    2};

const fy_sql api_sql_roles_by_names = {
    "api_roles_by_names",
    "SELECT id, name FROM roles WHERE name = ANY (string_to_array($1, ',')) ORDER BY name", 1};

/* --- flavors --- */

#define FLAVOR_COLS                                                                          \
    "flavorid, name, vcpus, memory_mb, root_gb, ephemeral_gb, swap_mb, rxtx_factor,"        \
    " is_public, description, extra_specs::text AS extra_specs"

/* $1 minRam, $2 minDisk, $3 is_public (NULL = both), $4 marker, $5 limit */
const fy_sql api_sql_flavor_list = {
    "api_flavor_list",
    "SELECT " FLAVOR_COLS " FROM flavors"
    " WHERE ($1::int IS NULL OR memory_mb >= $1::int)"
    "   AND ($2::int IS NULL OR root_gb >= $2::int)"
    "   AND ($3::bool IS NULL OR is_public = $3::bool)"
    "   AND ($4::text IS NULL OR flavorid > $4::text)"
    " ORDER BY flavorid LIMIT $5::int",
    5};

const fy_sql api_sql_flavor_get = {
    "api_flavor_get", "SELECT " FLAVOR_COLS " FROM flavors WHERE flavorid = $1", 1};

const fy_sql api_sql_flavor_clash = {
    "api_flavor_clash", "SELECT flavorid, name FROM flavors WHERE flavorid = $1 OR name = $2",
    2};

const fy_sql api_sql_flavor_insert = {
    "api_flavor_insert",
    "INSERT INTO flavors (flavorid, name, vcpus, memory_mb, root_gb, ephemeral_gb, swap_mb,"
    "                     rxtx_factor, is_public, description)"
    " VALUES ($1, $2, $3::int, $4::int, $5::int, $6::int, $7::int, $8::float8, $9::bool, $10)"
    " RETURNING " FLAVOR_COLS,
    10};

const fy_sql api_sql_flavor_delete = {
    "api_flavor_delete", "DELETE FROM flavors WHERE flavorid = $1", 1};

/* --- images --- */

#define IMAGE_COLS                                                                           \
    "id, name, status, disk_format, container_format, size, checksum, os_hash_algo,"        \
    " os_hash_value, owner, visibility, min_disk, min_ram, protected,"                       \
    " properties::text AS properties, " GL_TS("created_at") " AS created_at, "              \
    GL_TS("updated_at") " AS updated_at"

const fy_sql api_sql_image_insert = {
    "api_image_insert",
    "INSERT INTO images (id, name, disk_format, container_format, owner, visibility,"
    "                    min_disk, min_ram, protected, properties)"
    " VALUES ($1::uuid, $2, $3, $4, $5::uuid, $6, $7::int, $8::int, $9::bool, $10::jsonb)"
    " RETURNING " IMAGE_COLS,
    10};

const fy_sql api_sql_image_get = {
    "api_image_get",
    "SELECT " IMAGE_COLS " FROM images WHERE id::text = lower($1) AND status <> 'deleted'", 1};

/* $1 see all (admin), $2 caller's project, $3 visibility, $4 name, $5 status,
 * $6 marker id, $7 limit.  Newest first, as Glance. */
const fy_sql api_sql_image_list = {
    "api_image_list",
    "SELECT " IMAGE_COLS " FROM images i"
    " WHERE status <> 'deleted'"
    "   AND ($1::bool OR visibility = 'public' OR owner::text = $2"
    "        OR ($3::text = 'community' AND visibility = 'community'))"
    "   AND ($3::text IS NULL OR visibility = $3::text)"
    "   AND ($4::text IS NULL OR name = $4::text)"
    "   AND ($5::text IS NULL OR status = $5::text)"
    "   AND ($6::text IS NULL OR (created_at, id) <"
    "        (SELECT m.created_at, m.id FROM images m WHERE m.id::text = lower($6::text)))"
    " ORDER BY created_at DESC, id DESC LIMIT $7::int",
    7};

const fy_sql api_sql_image_set_saving = {
    "api_image_set_saving",
    "UPDATE images SET status = 'saving', updated_at = now()"
    " WHERE id = $1::uuid AND status = 'queued'",
    1};

const fy_sql api_sql_image_set_active = {
    "api_image_set_active",
    "UPDATE images SET status = 'active', size = $2::bigint, checksum = $3,"
    "       os_hash_algo = 'sha512', os_hash_value = $4, updated_at = now()"
    " WHERE id = $1::uuid AND status = 'saving'",
    4};

const fy_sql api_sql_image_set_queued = {
    "api_image_set_queued",
    "UPDATE images SET status = 'queued', updated_at = now()"
    " WHERE id = $1::uuid AND status = 'saving'",
    1};

const fy_sql api_sql_image_delete = {
    "api_image_delete", "DELETE FROM images WHERE id = $1::uuid AND NOT protected", 1};
