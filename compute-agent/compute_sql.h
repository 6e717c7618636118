/* The compute agent's SQL statements (compute_sql.c). */
#pragma once
#include "fy_db.h"

extern const fy_sql compute_sql_node_upsert;
extern const fy_sql compute_sql_step_get;
extern const fy_sql compute_sql_step_put;
extern const fy_sql compute_sql_step_forget;
