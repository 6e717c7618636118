/* compute_host — facts about the hypervisor host itself, for the API's
 * os-hypervisors show. */
#pragma once
#include <stddef.h>
#include "fy_err.h"
#include "fy_httpd.h"

/* The line `uptime` prints (" 16:50:02 up  1:40,  0 user,  load average: ..."),
 * built from /proc/uptime, /proc/loadavg and the login records. */
fy_code compute_host_uptime(char *buf, size_t len, fy_err *err);

/* GET /internal/v1/host/uptime -> {"uptime": "<that line>"} */
fy_code compute_host_handle_uptime(fy_req *req, fy_resp *resp, fy_err *err);
