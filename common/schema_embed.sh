#!/bin/sh
# Turns common/schema/NNN_name.sql files into a C table (common/schema_sql.c).
set -e
echo '/* Generated from common/schema by schema_embed.sh; do not edit. */'
echo '#include "fy_schema_sql.h"'
echo 'const fy_schema_step fy_schema_steps[] = {'
for f in "$@"; do
    base=$(basename "$f" .sql)
    ver=$(echo "$base" | sed 's/^0*\([0-9][0-9]*\)_.*/\1/')
    printf '    {%s, "%s",\n' "$ver" "$base"
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/     "/' -e 's/$/\\n"/' "$f"
    printf '    },\n'
done
echo '};'
echo 'const unsigned fy_schema_nsteps = sizeof(fy_schema_steps) / sizeof(fy_schema_steps[0]);'
