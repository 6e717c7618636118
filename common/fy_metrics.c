#include "fy_metrics.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fy_cleanup.h"
#include "fy_err.h"

const double fy_metric_default_buckets[11] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                              0.5,   1,    2.5,   5,    10};

typedef struct series {
    struct series *next;
    uint64_t hash;
    char *lv[FY_METRIC_MAX_LABELS];
    double value;                      /* counter/gauge value, histogram sum */
    uint64_t count;                    /* histogram observations */
    uint64_t buckets[FY_METRIC_MAX_BUCKETS]; /* non-cumulative counts per bound */
} series;

typedef struct family {
    struct family *next;
    const fy_metric_def *def;
    int nlabels, nbuckets;
    const double *bounds;
    series *head, **tail;
    size_t nseries;
} family;

#define MAX_COLLECTORS 16

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static family *g_families, **g_ftail = &g_families;
static struct {
    fy_metric_collector fn;
    void *arg;
} g_collectors[MAX_COLLECTORS];
static size_t g_ncollectors;
static uint64_t g_dropped;

static bool name_ok(const char *s, bool colon)
{
    if (!s || !*s || isdigit((unsigned char)*s))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && !(colon && *s == ':'))
            return false;
    return true;
}

static int count_buckets(const fy_metric_def *def, const double **ret_bounds)
{
    int n = 0;
    while (n < FY_METRIC_MAX_BUCKETS && (n == 0 ? def->buckets[0] > 0
                                                : def->buckets[n] > def->buckets[n - 1]))
        n++;
    if (n == 0) {
        *ret_bounds = fy_metric_default_buckets;
        return (int)ELEMENTSOF(fy_metric_default_buckets);
    }
    *ret_bounds = def->buckets;
    return n;
}

static bool def_valid(const fy_metric_def *def, int *ret_nlabels)
{
    if (!name_ok(def->name, true))
        return false;
    int n = 0;
    while (n <= FY_METRIC_MAX_LABELS && def->labels[n]) {
        /* "le" is the histogram bucket label and must not be user-defined */
        if (!name_ok(def->labels[n], false) || strcmp(def->labels[n], "le") == 0)
            return false;
        n++;
    }
    if (n > FY_METRIC_MAX_LABELS)
        return false;
    *ret_nlabels = n;
    return true;
}

/* Caller holds g_lock.  Two definitions with one name share a family when their
 * shapes agree, so a metric may be declared in two files. */
static family *family_get(const fy_metric_def *def)
{
    for (family *f = g_families; f; f = f->next)
        if (f->def == def)
            return f;
    int nlabels;
    if (!def_valid(def, &nlabels))
        return NULL;
    for (family *f = g_families; f; f = f->next)
        if (strcmp(f->def->name, def->name) == 0)
            return f->def->type == def->type && f->nlabels == nlabels ? f : NULL;
    family *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->def = def;
    f->nlabels = nlabels;
    if (def->type == FY_METRIC_HISTOGRAM)
        f->nbuckets = count_buckets(def, &f->bounds);
    f->tail = &f->head;
    *g_ftail = f;
    g_ftail = &f->next;
    return f;
}

static uint64_t hash_lv(const char *const *lv, int n)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        for (const char *s = lv && lv[i] ? lv[i] : ""; *s; s++)
            h = (h ^ (unsigned char)*s) * 1099511628211ull;
        h = (h ^ 0x1f) * 1099511628211ull;
    }
    return h;
}

static bool lv_equal(const series *s, const char *const *lv, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s->lv[i], lv && lv[i] ? lv[i] : "") != 0)
            return false;
    return true;
}

static void series_free(series *s, int n)
{
    for (int i = 0; i < n; i++)
        free(s->lv[i]);
    free(s);
}

static series *series_new(uint64_t h, const char *const *lv, int n)
{
    series *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->hash = h;
    for (int i = 0; i < n; i++) {
        s->lv[i] = strdup(lv && lv[i] ? lv[i] : "");
        if (!s->lv[i]) {
            series_free(s, i);
            return NULL;
        }
    }
    return s;
}

/* Caller holds g_lock.  create=false only looks. */
static series *series_get(const fy_metric_def *def, const char *const *lv, bool create)
{
    family *f = create ? family_get(def) : NULL;
    if (!create)
        for (f = g_families; f && f->def != def && strcmp(f->def->name, def->name); f = f->next)
            ;
    if (!f)
        return NULL;
    uint64_t h = hash_lv(lv, f->nlabels);
    for (series *s = f->head; s; s = s->next)
        if (s->hash == h && lv_equal(s, lv, f->nlabels))
            return s;
    if (!create)
        return NULL;
    if (f->nseries >= FY_METRIC_MAX_SERIES) {
        g_dropped++;
        return NULL;
    }
    series *s = series_new(h, lv, f->nlabels);
    if (!s)
        return NULL;
    *f->tail = s;
    f->tail = &s->next;
    f->nseries++;
    return s;
}

bool fy_metric_register(const fy_metric_def *def)
{
    pthread_mutex_lock(&g_lock);
    bool ok = family_get(def) != NULL;
    pthread_mutex_unlock(&g_lock);
    return ok;
}

void fy_metric_inc(const fy_metric_def *def, const char *const *lv, double v)
{
    if (def->type == FY_METRIC_HISTOGRAM || (def->type == FY_METRIC_COUNTER && !(v >= 0)))
        return;
    pthread_mutex_lock(&g_lock);
    series *s = series_get(def, lv, true);
    if (s)
        s->value += v;
    pthread_mutex_unlock(&g_lock);
}

void fy_metric_set(const fy_metric_def *def, const char *const *lv, double v)
{
    if (def->type != FY_METRIC_GAUGE)
        return;
    pthread_mutex_lock(&g_lock);
    series *s = series_get(def, lv, true);
    if (s)
        s->value = v;
    pthread_mutex_unlock(&g_lock);
}

void fy_metric_observe(const fy_metric_def *def, const char *const *lv, double v)
{
    if (def->type != FY_METRIC_HISTOGRAM || isnan(v))
        return;
    pthread_mutex_lock(&g_lock);
    series *s = series_get(def, lv, true);
    if (s) {
        family *f = family_get(def);
        int i = 0;
        while (i < f->nbuckets && v > f->bounds[i])
            i++;
        if (i < f->nbuckets)
            s->buckets[i]++;
        s->count++;
        s->value += v;
    }
    pthread_mutex_unlock(&g_lock);
}

void fy_metric_clear(const fy_metric_def *def)
{
    pthread_mutex_lock(&g_lock);
    for (family *f = g_families; f; f = f->next) {
        if (f->def != def && strcmp(f->def->name, def->name) != 0)
            continue;
        for (series *s = f->head, *next; s; s = next) {
            next = s->next;
            series_free(s, f->nlabels);
        }
        f->head = NULL;
        f->tail = &f->head;
        f->nseries = 0;
        break;
    }
    pthread_mutex_unlock(&g_lock);
}

double fy_metric_value(const fy_metric_def *def, const char *const *lv)
{
    pthread_mutex_lock(&g_lock);
    series *s = series_get(def, lv, false);
    double v = !s ? 0 : def->type == FY_METRIC_HISTOGRAM ? (double)s->count : s->value;
    pthread_mutex_unlock(&g_lock);
    return v;
}

void fy_metric_add_collector(fy_metric_collector fn, void *arg)
{
    pthread_mutex_lock(&g_lock);
    bool known = false;
    for (size_t i = 0; i < g_ncollectors; i++)
        known |= g_collectors[i].fn == fn && g_collectors[i].arg == arg;
    if (!known && g_ncollectors < MAX_COLLECTORS) {
        g_collectors[g_ncollectors].fn = fn;
        g_collectors[g_ncollectors].arg = arg;
        g_ncollectors++;
    }
    pthread_mutex_unlock(&g_lock);
}

/* ---- rendering ---- */

static void put_num(FILE *out, double v)
{
    if (isnan(v)) {
        fputs("NaN", out);
        return;
    }
    if (isinf(v)) {
        fputs(v > 0 ? "+Inf" : "-Inf", out);
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        fprintf(out, "%.0f", v);
        return;
    }
    /* shortest text that reads back as the same double */
    char buf[40];
    snprintf(buf, sizeof(buf), "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, sizeof(buf), "%.17g", v);
    fputs(buf, out);
}

static void put_escaped(FILE *out, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", out);
        else if (*s == '\n')
            fputs("\\n", out);
        else if (quote && *s == '"')
            fputs("\\\"", out);
        else
            fputc(*s, out);
    }
}

/* {a="x",b="y"[,le="0.5"]} — nothing when there are no labels at all. */
static void put_labels(FILE *out, const family *f, const series *s, const char *le)
{
    if (f->nlabels == 0 && !le)
        return;
    fputc('{', out);
    for (int i = 0; i < f->nlabels; i++) {
        fprintf(out, "%s%s=\"", i ? "," : "", f->def->labels[i]);
        put_escaped(out, s->lv[i], true);
        fputc('"', out);
    }
    if (le)
        fprintf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    fputc('}', out);
}

static void put_histogram(FILE *out, const family *f, const series *s)
{
    const char *name = f->def->name;
    uint64_t cum = 0;
    char le[40];
    for (int i = 0; i < f->nbuckets; i++) {
        cum += s->buckets[i];
        snprintf(le, sizeof(le), "%.15g", f->bounds[i]);
        fprintf(out, "%s_bucket", name);
        put_labels(out, f, s, le);
        fprintf(out, " %llu\n", (unsigned long long)cum);
    }
    fprintf(out, "%s_bucket", name);
    put_labels(out, f, s, "+Inf");
    fprintf(out, " %llu\n%s_sum", (unsigned long long)s->count, name);
    put_labels(out, f, s, NULL);
    fputc(' ', out);
    put_num(out, s->value);
    fprintf(out, "\n%s_count", name);
    put_labels(out, f, s, NULL);
    fprintf(out, " %llu\n", (unsigned long long)s->count);
}

static const char *type_name(fy_metric_type t)
{
    return t == FY_METRIC_COUNTER ? "counter" : t == FY_METRIC_GAUGE ? "gauge" : "histogram";
}

static void put_family(FILE *out, const family *f)
{
    fprintf(out, "# HELP %s ", f->def->name);
    put_escaped(out, f->def->help ? f->def->help : "", false);
    fprintf(out, "\n# TYPE %s %s\n", f->def->name, type_name(f->def->type));
    for (const series *s = f->head; s; s = s->next) {
        if (f->def->type == FY_METRIC_HISTOGRAM) {
            put_histogram(out, f, s);
            continue;
        }
        fputs(f->def->name, out);
        put_labels(out, f, s, NULL);
        fputc(' ', out);
        put_num(out, s->value);
        fputc('\n', out);
    }
}

static void run_collectors(void)
{
    pthread_mutex_lock(&g_lock);
    size_t n = g_ncollectors;
    __typeof__(g_collectors[0]) copy[MAX_COLLECTORS];
    memcpy(copy, g_collectors, n * sizeof(copy[0]));
    pthread_mutex_unlock(&g_lock);
    for (size_t i = 0; i < n; i++)
        copy[i].fn(copy[i].arg);
}

char *fy_metrics_render(size_t *ret_len)
{
    run_collectors();
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out)
        return NULL;
    pthread_mutex_lock(&g_lock);
    for (const family *f = g_families; f; f = f->next)
        put_family(out, f);
    if (g_dropped)
        fprintf(out,
                "# HELP ferry_metrics_dropped_series_total Updates dropped because a family "
                "reached its series limit.\n# TYPE ferry_metrics_dropped_series_total counter\n"
                "ferry_metrics_dropped_series_total %llu\n",
                (unsigned long long)g_dropped);
    pthread_mutex_unlock(&g_lock);
    bool failed = ferror(out);
    if (fclose(out) != 0 || failed) {
        free(buf);
        return NULL;
    }
    if (ret_len)
        *ret_len = len;
    return buf;
}

void fy_metrics_reset(void)
{
    pthread_mutex_lock(&g_lock);
    for (family *f = g_families, *next; f; f = next) {
        next = f->next;
        for (series *s = f->head, *sn; s; s = sn) {
            sn = s->next;
            series_free(s, f->nlabels);
        }
        free(f);
    }
    g_families = NULL;
    g_ftail = &g_families;
    g_ncollectors = 0;
    g_dropped = 0;
    pthread_mutex_unlock(&g_lock);
}

/* ---- path templates ---- */

static bool segment_is_id(const char *s, size_t n)
{
    if (n == 0)
        return false;
    if (n > 64)
        return true;
    size_t digits = 0, hex = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        digits += isdigit(ch) != 0;
        hex += isxdigit(ch) || ch == '-';
    }
    return digits == n || (n >= 8 && hex == n && digits > 0);
}

void fy_metric_path_template(const char *path, char *out, size_t n)
{
    if (n == 0)
        return;
    size_t o = 0;
    const char *p = path ? path : "";
    while (*p && o + 1 < n) {
        if (*p == '/') {
            out[o++] = *p++;
            continue;
        }
        size_t len = strcspn(p, "/");
        const char *seg = segment_is_id(p, len) ? "{}" : p;
        size_t seglen = seg == p ? len : 2;
        size_t room = n - 1 - o;
        size_t take = seglen < room ? seglen : room;
        memcpy(out + o, seg, take);
        o += take;
        p += len;
    }
    out[o] = '\0';
}

/* ---- recorders for fy_db and fy_httpc ---- */

static const fy_metric_def m_db_seconds = {
    "ferry_db_query_duration_seconds", "Database statement latency, by statement.",
    FY_METRIC_HISTOGRAM, {"statement", NULL}, {0}};
static const fy_metric_def m_db_errors = {
    "ferry_db_errors_total", "Database statements that failed, by statement and error code.",
    FY_METRIC_COUNTER, {"statement", "code", NULL}, {0}};
static const fy_metric_def m_httpc_seconds = {
    "ferry_http_client_request_duration_seconds",
    "Calls to other services (all attempts), by method, path template and status.",
    FY_METRIC_HISTOGRAM, {"method", "path", "status", NULL}, {0}};
static const fy_metric_def m_httpc_errors = {
    "ferry_http_client_errors_total",
    "Calls to other services that failed, by method, path template and error code.",
    FY_METRIC_COUNTER, {"method", "path", "code", NULL}, {0}};
static const fy_metric_def m_httpc_retries = {
    "ferry_http_client_retries_total", "Extra attempts made by calls to other services.",
    FY_METRIC_COUNTER, {"method", "path", NULL}, {0}};

void fy_metrics_db_done(const char *statement, int code, double seconds)
{
    const char *st = statement ? statement : "simple";
    fy_metric_observe(&m_db_seconds, FY_LV(st), seconds);
    if (code != FY_E_OK)
        fy_metric_inc(&m_db_errors, FY_LV(st, fy_code_name((fy_code)code)), 1);
}

/* "http://h:1/internal/v1/instances/<uuid>/spawn?x=1" -> "/internal/v1/instances/{}/spawn" */
static void url_template(const char *url, char *out, size_t n)
{
    const char *p = url ? url : "";
    const char *scheme = strstr(p, "://");
    if (scheme) {
        p = scheme + 3;
        p += strcspn(p, "/?#");
    }
    char path[512];
    size_t len = strcspn(p, "?#");
    if (len >= sizeof(path))
        len = sizeof(path) - 1;
    memcpy(path, p, len);
    path[len] = '\0';
    fy_metric_path_template(path[0] ? path : "/", out, n);
}

void fy_metrics_httpc_done(const char *method, const char *url, int code, long status,
                           int attempts, double seconds)
{
    char path[256], st[16];
    url_template(url, path, sizeof(path));
    snprintf(st, sizeof(st), "%ld", status);
    const char *m = method ? method : "GET";
    fy_metric_observe(&m_httpc_seconds, FY_LV(m, path, st), seconds);
    if (code != FY_E_OK)
        fy_metric_inc(&m_httpc_errors, FY_LV(m, path, fy_code_name((fy_code)code)), 1);
    if (attempts > 1)
        fy_metric_inc(&m_httpc_retries, FY_LV(m, path), attempts - 1);
}
