/* fy_service — a service's row in `services`: registration and heartbeat.
 *
 * Whether a service is up is decided in SQL by whoever needs it, with
 * FY_SERVICE_UP_SQL below: its heartbeat is recent enough and it is not
 * forced down. */
#pragma once
#include <stdbool.h>
#include "fy_err.h"

/* SQL condition on a `services` row; secs is a placeholder such as "$2" bound to
 * the down time in seconds (service_down_time). */
#define FY_SERVICE_UP_SQL(secs) \
    "(last_seen_up > now() - make_interval(secs => (" secs ")::double precision)" \
    " AND NOT forced_down)"

/* Creates or refreshes the (host, binary) row: a new row gets a fresh uuid; an
 * existing one gets the new url, last_seen_up = now() and report_count + 1.
 * zone may be NULL ("nova"); it is set only when the row is created. */
fy_code fy_service_register(const char *host, const char *binary, const char *url,
                            const char *zone, int *ret_service_id, fy_err *err);

/* last_seen_up = now(), report_count + 1.  FY_E_NOT_FOUND if the row is gone. */
fy_code fy_service_heartbeat(int service_id, fy_err *err);

/* Starts a thread heartbeating every interval_s seconds on its own connection.
 * While the database is unreachable it logs one warning per outage and keeps
 * trying.  FY_E_CONFLICT if one is already running. */
fy_code fy_service_heartbeat_start(int service_id, int interval_s, fy_err *err);
/* Stops and joins the thread (no-op if none). */
void fy_service_heartbeat_stop(void);
