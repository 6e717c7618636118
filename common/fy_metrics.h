/* fy_metrics — a process-wide Prometheus registry: counters, gauges and
 * histograms with labels, rendered in the text exposition format (0.0.4).
 *
 * A metric family is a static const fy_metric_def declared where it is used;
 * the registry creates the family on first use (or fy_metric_register) and a
 * series per distinct set of label values:
 *
 *   static const fy_metric_def m_calls = {
 *       "ferry_db_calls_total", "Database calls.", FY_METRIC_COUNTER, {"statement", NULL}};
 *   fy_metric_inc(&m_calls, FY_LV("api_server_get"), 1);
 *
 * Label values are copied and escaped at render time.  Every call is thread-safe
 * (one mutex; updates are a lookup and an add).  A family keeps at most
 * FY_METRIC_MAX_SERIES series; updates for further label sets are dropped and
 * counted in ferry_metrics_dropped_series_total, so a bad label cannot eat memory.
 *
 * Gauges whose value is only known at scrape time (e.g. heartbeat age) come from
 * collectors: callbacks run by fy_metrics_render before it renders. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define FY_METRIC_MAX_LABELS 4
#define FY_METRIC_MAX_BUCKETS 16
#define FY_METRIC_MAX_SERIES 2000

typedef enum { FY_METRIC_COUNTER, FY_METRIC_GAUGE, FY_METRIC_HISTOGRAM } fy_metric_type;

typedef struct fy_metric_def {
    const char *name;                              /* [a-zA-Z_:][a-zA-Z0-9_:]* */
    const char *help;
    fy_metric_type type;
    const char *labels[FY_METRIC_MAX_LABELS + 1];  /* label names, NULL-terminated */
    /* Histograms: ascending upper bounds, terminated by a value <= the previous
     * one or after FY_METRIC_MAX_BUCKETS (0 entries = fy_metric_default_buckets). */
    double buckets[FY_METRIC_MAX_BUCKETS];
} fy_metric_def;

/* Label values in the order of def->labels: FY_LV("GET", "200"). */
#define FY_LV(...) ((const char *const[]){__VA_ARGS__})

/* Seconds: 5 ms .. 10 s, Prometheus' usual default. */
extern const double fy_metric_default_buckets[11];

/* Makes the family appear (HELP/TYPE) before anything was recorded.  False when
 * the definition is invalid (bad name, too many labels, unsorted buckets). */
bool fy_metric_register(const fy_metric_def *def);

/* Counter or gauge += v (counters ignore v < 0).  lv may be NULL when the family
 * has no labels; a NULL label value renders as "". */
void fy_metric_inc(const fy_metric_def *def, const char *const *lv, double v);
/* Gauge = v. */
void fy_metric_set(const fy_metric_def *def, const char *const *lv, double v);
/* Histogram: records one observation. */
void fy_metric_observe(const fy_metric_def *def, const char *const *lv, double v);
/* Drops every series of the family (a collector about to re-set a gauge whose
 * label sets come and go, e.g. one series per compute host). */
void fy_metric_clear(const fy_metric_def *def);

/* Current value of a counter/gauge series, or a histogram's observation count;
 * 0 when the series does not exist. */
double fy_metric_value(const fy_metric_def *def, const char *const *lv);

typedef void (*fy_metric_collector)(void *arg);
/* Registers fn to run at each render, outside the registry lock. */
void fy_metric_add_collector(fy_metric_collector fn, void *arg);

/* The whole registry as exposition text (malloc'd, NUL-terminated); NULL on
 * allocation failure. */
char *fy_metrics_render(size_t *ret_len);

/* Forgets every family and collector (tests). */
void fy_metrics_reset(void);

/* "/servers/6f1c.../action" -> "/servers/{}/action": replaces path segments that
 * look like identifiers (uuids, numbers, long hex) so URLs can be label values.
 * Writes at most n bytes (NUL included) into out. */
void fy_metric_path_template(const char *path, char *out, size_t n);

/* Recorders for the shared modules, so their own code stays one call:
 * database statements (fy_db) and calls to other services (fy_httpc).  code is a
 * fy_code (0 = success); url is reduced to its path template. */
void fy_metrics_db_done(const char *statement, int code, double seconds);
void fy_metrics_httpc_done(const char *method, const char *url, int code, long status,
                           int attempts, double seconds);
