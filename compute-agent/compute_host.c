/* The host's uptime line, in the format of procps' `uptime`, which is what
 * Nova's libvirt driver returns for os-hypervisors show. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <utmpx.h>
#include "compute_host.h"
#include "fy_cleanup.h"
#include "fy_json.h"
#include "fy_util.h"

#define PROC_FILE_MAX 256

/* The utmpx iteration is process-global state. */
static pthread_mutex_t utmp_lock = PTHREAD_MUTEX_INITIALIZER;

static int count_users(void)
{
    int n = 0;
    pthread_mutex_lock(&utmp_lock);
    setutxent();
    for (struct utmpx *u; (u = getutxent()) != NULL;)
        if (u->ut_type == USER_PROCESS && u->ut_user[0])
            n++;
    endutxent();
    pthread_mutex_unlock(&utmp_lock);
    return n;
}

/* The first three numbers of a /proc file; at least `want` must be there. */
static fy_code read_numbers(const char *path, double n[3], int want, fy_err *err)
{
    _cleanup_free_ char *text = NULL;
    fy_code rc = fy_read_file(path, PROC_FILE_MAX, &text, NULL, err);
    if (rc != FY_E_OK)
        return rc;
    if (sscanf(text, "%lf %lf %lf", &n[0], &n[1], &n[2]) < want)
        return fy_fail(err, FY_E_INTERNAL, "cannot parse %s", path);
    return FY_E_OK;
}

/* " up 3 days,  1:40," / " up 12 min," as procps prints the duration. */
static size_t format_duration(char *buf, size_t len, long secs)
{
    long days = secs / 86400, hours = secs / 3600 % 24, mins = secs / 60 % 60;
    size_t n = 0;
    if (days > 0)
        n += (size_t)snprintf(buf, len, "%ld %s, ", days, days != 1 ? "days" : "day");
    if (n >= len)
        return n;
    if (hours)
        n += (size_t)snprintf(buf + n, len - n, "%2ld:%02ld, ", hours, mins);
    else
        n += (size_t)snprintf(buf + n, len - n, "%ld min, ", mins);
    return n;
}

fy_code compute_host_uptime(char *buf, size_t len, fy_err *err)
{
    double up[3] = {0}, load[3] = {0};
    fy_code rc = read_numbers("/proc/uptime", up, 1, err);
    if (rc != FY_E_OK || (rc = read_numbers("/proc/loadavg", load, 3, err)) != FY_E_OK)
        return rc;
    time_t now = time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm))
        return fy_fail(err, FY_E_INTERNAL, "cannot read the local time");
    char duration[64];
    format_duration(duration, sizeof(duration), (long)up[0]);
    int users = count_users();
    int n = snprintf(buf, len, " %02d:%02d:%02d up %s%2d %s,  load average: %.2f, %.2f, %.2f",
                     tm.tm_hour, tm.tm_min, tm.tm_sec, duration, users,
                     users > 1 ? "users" : "user", load[0], load[1], load[2]);
    if (n < 0 || (size_t)n >= len)
        return fy_fail(err, FY_E_INTERNAL, "uptime line too long");
    return FY_E_OK;
}

fy_code compute_host_handle_uptime(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)req;
    char line[160];
    fy_code rc = compute_host_uptime(line, sizeof(line), err);
    if (rc != FY_E_OK)
        return rc;
    json_t *body = json_pack("{s:s}", "uptime", line);
    if (!body)
        return fy_fail(err, FY_E_NOMEM, NULL);
    fy_resp_json(resp, 200, body);
    return FY_E_OK;
}
