/* fy_health — the /healthz handler every service mounts (public, no auth).
 * Healthy means: the process serves requests and its database answers; while the
 * database is unreachable it answers 503 so orchestrators stop routing to it. */
#pragma once
#include "fy_httpd.h"

fy_code fy_health_handler(fy_req *req, fy_resp *resp, fy_err *err);
