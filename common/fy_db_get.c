/* fy_db_get — typed column getters by column name. */
#include <errno.h>
#include <stdlib.h>
#include "fy_db.h"

const char *fy_db_str(PGresult *res, int row, const char *col)
{
    if (!res || !col || row < 0 || row >= PQntuples(res))
        return NULL;
    int f = PQfnumber(res, col);
    if (f < 0 || PQgetisnull(res, row, f))
        return NULL;
    return PQgetvalue(res, row, f);
}

long long fy_db_ll(PGresult *res, int row, const char *col, long long def)
{
    const char *s = fy_db_str(res, row, col);
    if (!s || !*s)
        return def;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return (errno || *end) ? def : v;
}

bool fy_db_bool(PGresult *res, int row, const char *col)
{
    const char *s = fy_db_str(res, row, col);
    return s && (s[0] == 't' || s[0] == 'T' || s[0] == '1');
}

double fy_db_double(PGresult *res, int row, const char *col, double def)
{
    const char *s = fy_db_str(res, row, col);
    if (!s || !*s)
        return def;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    return (errno || *end) ? def : v;
}
