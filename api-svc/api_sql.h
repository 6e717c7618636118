/* The API's own statements (api_sql.c): identity, flavors, images, health. */
#pragma once
#include "fy_db.h"

extern const fy_sql api_sql_ping;

extern const fy_sql api_sql_token_auth;
extern const fy_sql api_sql_token_insert;
extern const fy_sql api_sql_token_get;
extern const fy_sql api_sql_token_delete;
extern const fy_sql api_sql_token_purge;
extern const fy_sql api_sql_user_by_name;
extern const fy_sql api_sql_user_by_id;
extern const fy_sql api_sql_project_by_name;
extern const fy_sql api_sql_project_by_id;
extern const fy_sql api_sql_projects_list;
extern const fy_sql api_sql_users_list;
extern const fy_sql api_sql_user_first_project;
extern const fy_sql api_sql_user_roles;
extern const fy_sql api_sql_roles_by_names;

extern const fy_sql api_sql_flavor_list;
extern const fy_sql api_sql_flavor_get;
extern const fy_sql api_sql_flavor_clash;
extern const fy_sql api_sql_flavor_insert;
extern const fy_sql api_sql_flavor_delete;

extern const fy_sql api_sql_image_insert;
extern const fy_sql api_sql_image_get;
extern const fy_sql api_sql_image_list;
extern const fy_sql api_sql_image_set_saving;
extern const fy_sql api_sql_image_set_active;
extern const fy_sql api_sql_image_set_queued;
extern const fy_sql api_sql_image_delete;
