/* sched_sql — every statement the scheduler runs (sched_sql.c). */
#pragma once
#include "fy_db.h"

/* Host-state rows (candidates, one host) carry the columns sched_hoststate.c reads. */
extern const fy_sql sched_sql_candidates_spread;
extern const fy_sql sched_sql_candidates_pack;
extern const fy_sql sched_sql_tune;
extern const fy_sql sched_sql_host_get;
extern const fy_sql sched_sql_claim;
extern const fy_sql sched_sql_release;
extern const fy_sql sched_sql_move;
