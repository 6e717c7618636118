/* The embedded schema migrations (generated into schema_sql.c). */
#pragma once
typedef struct fy_schema_step {
    int version;
    const char *name;
    const char *sql;
} fy_schema_step;
extern const fy_schema_step fy_schema_steps[];
extern const unsigned fy_schema_nsteps;
