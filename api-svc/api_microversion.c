/* Compute API microversions: negotiation on /v2.1 requests and the response headers
 * that say which version answered (Nova's wsgi.Request.set_api_version_request). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "api.h"
#include "fy_util.h"

static bool is_compute_path(const char *path)
{
    return path && strncmp(path, "/v2.1", 5) == 0 && (path[5] == '\0' || path[5] == '/');
}

/* Copies s[0..n) into buf with surrounding blanks removed. */
static const char *trim_copy(const char *s, size_t n, char *buf, size_t size)
{
    while (n > 0 && isspace((unsigned char)*s))
        s++, n--;
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= size)
        n = size - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

/* "compute 2.90, placement 1.2" -> "2.90"; NULL when no compute entry. */
static const char *find_compute(const char *hdr, char *buf, size_t size)
{
    while (hdr && *hdr) {
        const char *end = strchr(hdr, ',');
        size_t n = end ? (size_t)(end - hdr) : strlen(hdr);
        char item[128];
        trim_copy(hdr, n, item, sizeof item);
        if (strncasecmp(item, "compute", 7) == 0 && isspace((unsigned char)item[7]))
            return trim_copy(item + 8, strlen(item + 8), buf, size);
        hdr = end ? end + 1 : NULL;
    }
    return NULL;
}

const char *api_mv_requested(const fy_req *req, char *buf, size_t size)
{
    const char *v = find_compute(fy_req_header(req, "OpenStack-API-Version"), buf, size);
    if (v)
        return v;
    const char *legacy = fy_req_header(req, "X-OpenStack-Nova-API-Version");
    return legacy ? trim_copy(legacy, strlen(legacy), buf, size) : NULL;
}

/* One number of "X.Y": no leading zeros except "0" itself; at most 9 digits so it
 * fits an int (longer is still well-formed, just unsupported). */
static bool parse_part(const char *s, size_t n, bool allow_zero, long long *ret)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    if (s[0] == '0' && (n > 1 || !allow_zero))
        return false;
    *ret = n > 9 ? -1 : strtoll(s, NULL, 10);
    return true;
}

fy_code api_mv_parse(const char *value, int *major, int *minor, fy_err *err)
{
    *major = *minor = 0;
    if (strcasecmp(value, "latest") == 0) {
        *major = API_MV_MIN_MAJOR;
        *minor = API_MV_MAX_MINOR;
        return FY_E_OK;
    }
    const char *dot = strchr(value, '.');
    long long ma = 0, mi = 0;
    if (!dot || !parse_part(value, (size_t)(dot - value), false, &ma) ||
        !parse_part(dot + 1, strlen(dot + 1), true, &mi))
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "API Version String %s is of invalid format. Must be of format "
                       "MajorNum.MinorNum.", value);
    if (ma >= 0 && mi >= 0) {
        *major = (int)ma;
        *minor = (int)mi;
    }
    bool ok = ma == API_MV_MIN_MAJOR && mi >= API_MV_MIN_MINOR && mi <= API_MV_MAX_MINOR;
    if (!ok)
        return fy_fail(err, FY_E_NOT_ACCEPTABLE,
                       "Version %s is not supported by the API. Minimum is %d.%d and maximum "
                       "is %d.%d.", value, API_MV_MIN_MAJOR, API_MV_MIN_MINOR, API_MV_MIN_MAJOR,
                       API_MV_MAX_MINOR);
    return FY_E_OK;
}

fy_code api_pre_dispatch(fy_req *req, fy_resp *resp, fy_err *err)
{
    (void)resp;
    req->mv_major = req->mv_minor = 0;
    if (!is_compute_path(req->path))
        return FY_E_OK;
    char buf[64];
    const char *v = api_mv_requested(req, buf, sizeof buf);
    if (!v) {
        req->mv_major = API_MV_MIN_MAJOR;
        req->mv_minor = API_MV_MIN_MINOR;
        return FY_E_OK;
    }
    int ma, mi;
    fy_code rc = api_mv_parse(v, &ma, &mi, err);
    /* A rejected version is still echoed in the 406's headers, as Nova does. */
    req->mv_major = ma;
    req->mv_minor = mi;
    return rc;
}

bool api_mv_ge(const fy_req *req, int major, int minor)
{
    return req->mv_major > major || (req->mv_major == major && req->mv_minor >= minor);
}

void api_decorate(fy_req *req, fy_resp *resp)
{
    if (req->mv_major > 0 && is_compute_path(req->path)) {
        fy_resp_add_header(resp, "OpenStack-API-Version", "compute %d.%d", req->mv_major,
                           req->mv_minor);
        fy_resp_add_header(resp, "X-OpenStack-Nova-API-Version", "%d.%d", req->mv_major,
                           req->mv_minor);
        fy_resp_add_header(resp, "Vary", "OpenStack-API-Version");
        fy_resp_add_header(resp, "Vary", "X-OpenStack-Nova-API-Version");
    }
    if (req->request_id)
        fy_resp_add_header(resp, "x-compute-request-id", "%s", req->request_id);
}
