/* The compute agent's SQL statements (compute_sql.c). */
#pragma once
#include "fy_db.h"

extern const fy_sql compute_sql_node_upsert;
extern const fy_sql compute_sql_step_get;
extern const fy_sql compute_sql_step_put;
extern const fy_sql compute_sql_step_forget;
extern const fy_sql compute_sql_mig_progress;
extern const fy_sql compute_sql_mig_instance;
extern const fy_sql compute_sql_job_begin;
extern const fy_sql compute_sql_job_end;
extern const fy_sql compute_sql_job_get;
extern const fy_sql compute_sql_job_recover;
extern const fy_sql compute_sql_job_adopted;
extern const fy_sql compute_sql_power_sync;
extern const fy_sql compute_sql_jobs_running;
extern const fy_sql compute_sql_reconcile_strays;
extern const fy_sql compute_sql_reconcile_mine;
extern const fy_sql compute_sql_reconcile_lost;
extern const fy_sql compute_sql_reconcile_settle;
extern const fy_sql compute_sql_reconcile_event;
