/* The libvirt virt driver: real QEMU guests on a libvirt daemon.
 *
 * This is the only file of the agent that includes libvirt's header; domain
 * XML and qemu-img live in compute_libvirt_xml.c / compute_libvirt_disk.c.
 *
 * The client: libvirt's default event loop runs on a thread of its own,
 * started once before the first connection; connections keep alive and are
 * reopened when the daemon went away; a quiet error handler stops libvirt
 * printing, and each failed call's error is copied into fy_err at once.
 * Lifecycle events keep instances.power_state in line with the hypervisor.
 *
 * A guest is a persistent domain whose uuid is the instance's; Ferry's own
 * bookkeeping (flavor, VIFs, volumes) is in the domain's metadata, so it
 * moves with the definition.  Its disk is <instances_path>/<uuid>/disk. */
#include <errno.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "compute_disk.h"
#include "compute_driver.h"
#include "compute_libvirt.h"
#include "compute_mig.h"
#include "compute_sql.h"
#include "fy_db.h"
#include "fy_json.h"
#include "fy_log.h"
#include "fy_util.h"

#define LV_LOCK_STRIPES 64
#define SHARED_TEST_PREFIX ".ferry-shared-"
#define RESIZE_SFX "_resize"
#define KEEPALIVE_INTERVAL_S 5
#define KEEPALIVE_COUNT 3
/* A migration taken over after a restart: how often libvirt is asked whether
 * it still runs, and how many answers in a row may fail (the daemon away)
 * before the job counts as over. */
#define ADOPT_POLL_MS 200
#define ADOPT_UNKNOWN_MAX 150

typedef struct lv_priv {
    char *uri;
    char *images;        /* instances_path, as this process sees it */
    char *images_hv;     /* the same directory as the hypervisor sees it */
    char *host;
    bool post_copy;
    pthread_mutex_t conn_lock;
    virConnectPtr conn;
    int lifecycle_cb;
    virConnectPtr peer;  /* the last destination asked for statistics, kept open */
    char *peer_uri;
    pthread_mutex_t locks[LV_LOCK_STRIPES];
} lv_priv;

/* ---- libvirt plumbing ---- */

static void lv_domain_freep(virDomainPtr *d)
{
    if (*d)
        virDomainFree(*d);
}
#define _cleanup_domain_ _cleanup_(lv_domain_freep)

static void lv_conn_closep(virConnectPtr *c)
{
    if (*c)
        virConnectClose(*c);
}
#define _cleanup_conn_ _cleanup_(lv_conn_closep)

static void lv_unlockp(pthread_mutex_t **m)
{
    if (*m)
        pthread_mutex_unlock(*m);
}
#define _cleanup_lv_unlock_ _cleanup_(lv_unlockp)

/* libvirt's own message for the call that just failed on this thread. */
static fy_code lv_fail(fy_err *err, const char *what, const char *uuid)
{
    virErrorPtr e = virGetLastError();
    return fy_fail(err, FY_E_DRIVER, "%s %s: %s", what, uuid ? uuid : "",
                   e && e->message ? e->message : "unknown libvirt error");
}

static int lv_last_code(void)
{
    virErrorPtr e = virGetLastError();
    return e ? e->code : VIR_ERR_OK;
}

static void lv_quiet(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;
}

static pthread_once_t event_once = PTHREAD_ONCE_INIT;
static bool event_ok;

static void *event_main(void *arg)
{
    (void)arg;
    for (;;) {
        if (virEventRunDefaultImpl() < 0) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/* Once per process: libvirt wants its event implementation registered before
 * the first connection, and something must run it. */
static void event_start(void)
{
    virSetErrorFunc(NULL, lv_quiet);
    if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0)
        return;
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    event_ok = pthread_create(&t, &a, event_main, NULL) == 0;
    pthread_attr_destroy(&a);
}

static pthread_mutex_t *lock_guest(lv_priv *p, const char *uuid)
{
    uint32_t h = 2166136261u;
    for (const char *c = uuid; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    pthread_mutex_t *m = &p->locks[h % LV_LOCK_STRIPES];
    pthread_mutex_lock(m);
    return m;
}

/* ---- power state ---- */

static int power_of(int state)
{
    switch (state) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED: return COMPUTE_POWER_RUNNING;
    case VIR_DOMAIN_PAUSED: return COMPUTE_POWER_PAUSED;
    case VIR_DOMAIN_SHUTDOWN:
    case VIR_DOMAIN_SHUTOFF: return COMPUTE_POWER_SHUTDOWN;
    case VIR_DOMAIN_CRASHED: return COMPUTE_POWER_CRASHED;
    case VIR_DOMAIN_PMSUSPENDED: return COMPUTE_POWER_SUSPENDED;
    default: return COMPUTE_POWER_NOSTATE;
    }
}

static void power_sync(const char *host, const char *uuid, int power)
{
    char ps[8];
    snprintf(ps, sizeof(ps), "%d", power);
    const char *params[] = {uuid, host, ps};
    fy_err err = {0};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&compute_sql_power_sync, params, &res, &err))
        fy_debug("power state of %s not recorded: %s", uuid, err.msg);
}

/* The power state a lifecycle event leaves, or -1 for events that belong to a
 * migration (the flows record those states themselves). */
static int event_power(int event, int detail)
{
    switch (event) {
    case VIR_DOMAIN_EVENT_STARTED:
        return detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED ? -1 : COMPUTE_POWER_RUNNING;
    case VIR_DOMAIN_EVENT_RESUMED:
        return detail == VIR_DOMAIN_EVENT_RESUMED_MIGRATED ? -1 : COMPUTE_POWER_RUNNING;
    case VIR_DOMAIN_EVENT_SUSPENDED:
        return detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED ||
                       detail == VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY
                   ? -1 : COMPUTE_POWER_PAUSED;
    case VIR_DOMAIN_EVENT_STOPPED:
        if (detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED)
            return -1;
        return detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED ? COMPUTE_POWER_CRASHED
                                                          : COMPUTE_POWER_SHUTDOWN;
    case VIR_DOMAIN_EVENT_SHUTDOWN: return COMPUTE_POWER_SHUTDOWN;
    case VIR_DOMAIN_EVENT_PMSUSPENDED: return COMPUTE_POWER_SUSPENDED;
    case VIR_DOMAIN_EVENT_CRASHED: return COMPUTE_POWER_CRASHED;
    default: return -1;
    }
}

static int on_lifecycle(virConnectPtr c, virDomainPtr dom, int event, int detail, void *opaque)
{
    (void)c;
    lv_priv *p = opaque;
    char uuid[VIR_UUID_STRING_BUFLEN];
    int power = event_power(event, detail);
    if (power >= 0 && virDomainGetUUIDString(dom, uuid) == 0)
        power_sync(p->host, uuid, power);
    return 0;
}

/* ---- connections ---- */

static fy_code open_conn(const char *uri, virConnectPtr *ret, fy_err *err)
{
    virConnectPtr c = virConnectOpen(uri);
    if (!c)
        return lv_fail(err, "connecting to", uri);
    if (virConnectSetKeepAlive(c, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT) < 0)
        fy_debug("no keepalive on %s", uri);
    *ret = c;
    return FY_E_OK;
}

/* The shared connection (a new reference), reopened when the daemon went
 * away. */
static fy_code get_conn(lv_priv *p, virConnectPtr *ret, fy_err *err)
{
    pthread_mutex_lock(&p->conn_lock);
    fy_code rc = FY_E_OK;
    if (p->conn && virConnectIsAlive(p->conn) != 1) {
        if (p->lifecycle_cb >= 0)
            virConnectDomainEventDeregisterAny(p->conn, p->lifecycle_cb);
        virConnectClose(p->conn);
        p->conn = NULL;
        p->lifecycle_cb = -1;
    }
    if (!p->conn && (rc = open_conn(p->uri, &p->conn, err)) == FY_E_OK) {
        p->lifecycle_cb = virConnectDomainEventRegisterAny(
            p->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle),
            p, NULL);
        if (p->lifecycle_cb < 0)
            fy_warn("no lifecycle events from %s: %s", p->uri,
                    virGetLastErrorMessage());
    }
    if (rc == FY_E_OK) {
        virConnectRef(p->conn);
        *ret = p->conn;
    }
    pthread_mutex_unlock(&p->conn_lock);
    return rc;
}

/* A connection to another host's daemon (a new reference): the last one is
 * kept, as opening one costs tens of milliseconds after every migration. */
static fy_code get_peer_conn(lv_priv *p, const char *uri, virConnectPtr *ret, fy_err *err)
{
    pthread_mutex_lock(&p->conn_lock);
    if (p->peer && (!fy_streq(p->peer_uri, uri) || virConnectIsAlive(p->peer) != 1)) {
        virConnectClose(p->peer);
        p->peer = NULL;
        free(p->peer_uri);
        p->peer_uri = NULL;
    }
    fy_code rc = FY_E_OK;
    if (!p->peer && (rc = open_conn(uri, &p->peer, err)) == FY_E_OK &&
        !(p->peer_uri = strdup(uri))) {
        virConnectClose(p->peer);
        p->peer = NULL;
        rc = fy_fail(err, FY_E_NOMEM, NULL);
    }
    if (rc == FY_E_OK) {
        virConnectRef(p->peer);
        *ret = p->peer;
    }
    pthread_mutex_unlock(&p->conn_lock);
    return rc;
}

/* FY_E_NOT_FOUND when no domain has this uuid. */
static fy_code lookup_on(virConnectPtr c, const char *uuid, virDomainPtr *ret, fy_err *err)
{
    virDomainPtr d = virDomainLookupByUUIDString(c, uuid);
    if (d) {
        *ret = d;
        return FY_E_OK;
    }
    if (lv_last_code() == VIR_ERR_NO_DOMAIN)
        return fy_fail(err, FY_E_NOT_FOUND, "instance %s not found on this host", uuid);
    return lv_fail(err, "looking up", uuid);
}

static fy_code lookup(lv_priv *p, const char *uuid, virDomainPtr *ret, fy_err *err)
{
    _cleanup_conn_ virConnectPtr c = NULL;
    if (!fy_uuid_valid(uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid instance uuid '%s'", uuid ? uuid : "");
    if (get_conn(p, &c, err))
        return err->code;
    return lookup_on(c, uuid, ret, err);
}

static int dom_state(virDomainPtr d, int *reason)
{
    int st = VIR_DOMAIN_NOSTATE, rs = 0;
    if (virDomainGetState(d, &st, &rs, 0) < 0)
        return VIR_DOMAIN_NOSTATE;
    if (reason)
        *reason = rs;
    return st;
}

/* ---- paths ---- */

static char *guest_dir(const lv_priv *p, const char *uuid, const char *sfx)
{
    return fy_strdup_printf("%s/%s%s", p->images, uuid, sfx);
}

static char *guest_file(const lv_priv *p, const char *uuid, const char *sfx, const char *file)
{
    return fy_strdup_printf("%s/%s%s/%s", p->images, uuid, sfx, file);
}

static bool exists(const char *path)
{
    return path && access(path, F_OK) == 0;
}

/* A guest has a disk when it boots an image or its flavor asks for one. */
static bool wants_disk(const json_t *flavor, const char *image_id)
{
    return image_id || fy_json_int(flavor, "root_gb", 0) > 0;
}

/* ---- metadata and info ---- */

static json_t *get_meta(virDomainPtr d)
{
    char *xml = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, COMPUTE_LV_META_NS, 0);
    json_t *m = xml ? compute_lv_meta_parse(xml) : NULL;
    free(xml);
    return m ? m : json_object();
}

static fy_code set_meta(virDomainPtr d, const char *uuid, const json_t *meta, fy_err *err)
{
    _cleanup_free_ char *xml = compute_lv_meta_xml(meta);
    if (!xml)
        return fy_fail(err, FY_E_NOMEM, NULL);
    unsigned flags = VIR_DOMAIN_AFFECT_CONFIG;
    if (virDomainIsActive(d) == 1)
        flags |= VIR_DOMAIN_AFFECT_LIVE;
    if (virDomainSetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, xml, COMPUTE_LV_META_KEY,
                             COMPUTE_LV_META_NS, flags) < 0)
        return lv_fail(err, "recording metadata of", uuid);
    return FY_E_OK;
}

static fy_code make_info(lv_priv *p, virDomainPtr d, const char *uuid, json_t **ret, fy_err *err)
{
    _cleanup_free_ char *disk = guest_file(p, uuid, "", "disk");
    if (!disk)
        return fy_fail(err, FY_E_NOMEM, NULL);
    struct stat st;
    long long size = 0, allocated = 0;
    bool has_disk = stat(disk, &st) == 0;
    if (has_disk) {
        size = st.st_size;
        allocated = (long long)st.st_blocks * 512;
    }
    int reason = 0;
    int ps = power_of(dom_state(d, &reason));
    json_t *meta = get_meta(d);
    json_t *vifs = json_object_get(meta, "vifs");
    json_t *vols = json_object_get(meta, "volumes");
    const char *name = virDomainGetName(d);
    json_t *info = json_pack("{s:s, s:s?, s:i, s:s, s:s?, s:I, s:I, s:o, s:o, s:O?, s:O?, s:O?,"
                             " s:b, s:b}",
                             "uuid", uuid, "name", name, "power_state", ps, "state",
                             compute_power_state_name(ps), "disk_path", has_disk ? disk : NULL,
                             "disk_size", (json_int_t)size, "disk_allocated",
                             (json_int_t)allocated, "vifs",
                             json_is_array(vifs) ? json_incref(vifs) : json_array(), "volumes",
                             json_is_array(vols) ? json_incref(vols) : json_array(), "flavor",
                             json_object_get(meta, "flavor"), "image_id",
                             json_object_get(meta, "image_id"), "created_at",
                             json_object_get(meta, "created_at"), "persistent",
                             virDomainIsPersistent(d) == 1, "incoming",
                             virDomainIsPersistent(d) != 1);
    json_decref(meta);
    if (!info)
        return fy_fail(err, FY_E_NOMEM, NULL);
    *ret = info;
    return FY_E_OK;
}

static json_t *new_meta(long long instance_id, const json_t *flavor, const char *image_id,
                        const json_t *vifs, const json_t *volumes)
{
    char now[32];
    fy_time_iso(time(NULL), now);
    return json_pack("{s:I, s:O, s:s?, s:O, s:O, s:s}", "instance_id", (json_int_t)instance_id,
                     "flavor", flavor, "image_id", image_id, "vifs",
                     vifs ? vifs : json_array(), "volumes", volumes ? volumes : json_array(),
                     "created_at", now);
}

/* Defines (or redefines) the persistent guest. */
static fy_code define(lv_priv *p, virConnectPtr c, const char *uuid, long long instance_id,
                      const json_t *meta, bool with_disk, virDomainPtr *ret, fy_err *err)
{
    const json_t *flavor = json_object_get(meta, "flavor");
    char name[32];
    snprintf(name, sizeof(name), "instance-%08llx", (unsigned long long)instance_id);
    _cleanup_free_ char *disk = with_disk ? fy_strdup_printf("%s/%s/disk", p->images_hv, uuid)
                                          : NULL;
    compute_lv_domain d = {
        .name = name,
        .uuid = uuid,
        .memory_mb = fy_json_int(flavor, "memory_mb", 64),
        .vcpus = fy_json_int(flavor, "vcpus", 1),
        .disk_path = disk,
        .kernel = fy_json_str(json_object_get(flavor, "extra_specs"), "ferry:kernel"),
        .meta = meta,
    };
    if (d.memory_mb <= 0 || d.vcpus <= 0)
        return fy_fail(err, FY_E_BAD_REQUEST, "flavor of %s needs memory_mb and vcpus", uuid);
    _cleanup_free_ char *xml = compute_lv_domain_xml(&d);
    if (!xml || (with_disk && !disk))
        return fy_fail(err, FY_E_NOMEM, NULL);
    virDomainPtr dom = virDomainDefineXML(c, xml);
    if (!dom)
        return lv_fail(err, "defining", uuid);
    *ret = dom;
    return FY_E_OK;
}

static fy_code start(virDomainPtr d, const char *uuid, fy_err *err)
{
    if (virDomainIsActive(d) == 1)
        return FY_E_OK;
    if (virDomainCreate(d) < 0)
        return lv_fail(err, "starting", uuid);
    return FY_E_OK;
}

static fy_code stop(virDomainPtr d, const char *uuid, fy_err *err)
{
    if (virDomainIsActive(d) != 1)
        return FY_E_OK;
    if (virDomainDestroy(d) < 0 && lv_last_code() != VIR_ERR_OPERATION_INVALID)
        return lv_fail(err, "stopping", uuid);
    return FY_E_OK;
}

/* Stops and forgets a domain; the disk stays. */
static fy_code remove_domain(virDomainPtr d, const char *uuid, fy_err *err)
{
    if (stop(d, uuid, err))
        return err->code;
    if (virDomainIsPersistent(d) == 1 &&
        virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                      VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA) < 0 &&
        lv_last_code() != VIR_ERR_NO_DOMAIN)
        return lv_fail(err, "undefining", uuid);
    return FY_E_OK;
}

/* ---- guests ---- */

static fy_code lv_get_info(compute_driver *drv, const char *uuid, json_t **ret, fy_err *err)
{
    lv_priv *p = drv->priv;
    _cleanup_domain_ virDomainPtr d = NULL;
    if (lookup(p, uuid, &d, err))
        return err->code;
    return make_info(p, d, uuid, ret, err);
}

static fy_code build_disk(lv_priv *p, const compute_spawn_spec *s, fy_err *err)
{
    _cleanup_free_ char *dir = guest_dir(p, s->uuid, "");
    _cleanup_free_ char *part = guest_file(p, s->uuid, "", "disk.part");
    _cleanup_free_ char *disk = guest_file(p, s->uuid, "", "disk");
    if (!dir || !part || !disk)
        return fy_fail(err, FY_E_NOMEM, NULL);
    int r = fy_mkdir_p(dir, 0755);
    if (r < 0)
        return fy_fail(err, FY_E_IO, "mkdir %s: %s", dir, strerror(-r));
    if (compute_lv_disk_create(part, s->image_path, s->root_gb << 30, err))
        return err->code;
    if (rename(part, disk) < 0)
        return fy_fail(err, FY_E_IO, "rename %s: %s", part, strerror(errno));
    return FY_E_OK;
}

static fy_code lv_spawn(compute_driver *drv, const compute_spawn_spec *s, json_t **ret,
                        fy_err *err)
{
    lv_priv *p = drv->priv;
    if (s->root_gb < 0 || !json_is_object(s->flavor) || !json_is_array(s->vifs))
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid spawn request for %s", s->uuid);
    if (!fy_uuid_valid(s->uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid instance uuid");
    _cleanup_lv_unlock_ pthread_mutex_t *lock = lock_guest(p, s->uuid);
    _cleanup_conn_ virConnectPtr c = NULL;
    _cleanup_domain_ virDomainPtr d = NULL;
    if (get_conn(p, &c, err))
        return err->code;
    fy_code rc = lookup_on(c, s->uuid, &d, err);
    if (rc == FY_E_OK)
        return make_info(p, d, s->uuid, ret, err);   /* a repeated spawn */
    if (rc != FY_E_NOT_FOUND)
        return rc;
    fy_err_clear(err);
    bool with_disk = s->image_path || s->root_gb > 0;
    if (with_disk && build_disk(p, s, err))
        return fy_err_prefix(err, "spawn %s", s->uuid);
    json_t *meta = new_meta(s->instance_id, s->flavor, s->image_id, s->vifs, NULL);
    if (!meta)
        return fy_fail(err, FY_E_NOMEM, NULL);
    rc = define(p, c, s->uuid, s->instance_id, meta, with_disk, &d, err);
    json_decref(meta);
    if (rc == FY_E_OK && (rc = start(d, s->uuid, err)) != FY_E_OK) {
        fy_err e2 = {0};
        remove_domain(d, s->uuid, &e2);
    }
    if (rc) {
        _cleanup_free_ char *dir = guest_dir(p, s->uuid, "");
        fy_err e2 = {0};
        if (dir)
            compute_lv_remove_tree(dir, &e2);
        return rc;
    }
    return make_info(p, d, s->uuid, ret, err);
}

static fy_code lv_destroy(compute_driver *drv, const char *uuid, fy_err *err)
{
    lv_priv *p = drv->priv;
    if (!fy_uuid_valid(uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid instance uuid");
    _cleanup_lv_unlock_ pthread_mutex_t *lock = lock_guest(p, uuid);
    _cleanup_domain_ virDomainPtr d = NULL;
    fy_code rc = lookup(p, uuid, &d, err);
    if (rc && rc != FY_E_NOT_FOUND)
        return rc;
    fy_err_clear(err);
    if (d && remove_domain(d, uuid, err))
        return err->code;
    _cleanup_free_ char *dir = guest_dir(p, uuid, "");
    return dir ? compute_lv_remove_tree(dir, err) : fy_fail(err, FY_E_NOMEM, NULL);
}

static fy_code set_power(compute_driver *drv, const char *uuid, bool on, json_t **ret,
                         fy_err *err)
{
    lv_priv *p = drv->priv;
    if (!fy_uuid_valid(uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid instance uuid");
    _cleanup_lv_unlock_ pthread_mutex_t *lock = lock_guest(p, uuid);
    _cleanup_domain_ virDomainPtr d = NULL;
    if (lookup(p, uuid, &d, err))
        return err->code;
    /* Off is a hard stop: these guests run no OS that would honour ACPI. */
    if (on ? start(d, uuid, err) : stop(d, uuid, err))
        return err->code;
    return make_info(p, d, uuid, ret, err);
}

static fy_code lv_power_on(compute_driver *drv, const char *uuid, json_t **ret, fy_err *err)
{
    return set_power(drv, uuid, true, ret, err);
}

static fy_code lv_power_off(compute_driver *drv, const char *uuid, json_t **ret, fy_err *err)
{
    return set_power(drv, uuid, false, ret, err);
}

static int cmp_info(const void *a, const void *b)
{
    return strcmp(fy_json_str(*(json_t *const *)a, "uuid"),
                  fy_json_str(*(json_t *const *)b, "uuid"));
}

/* Persistent domains only: an incoming migration is not a guest of this host
 * until it finished. */
static fy_code lv_list(compute_driver *drv, json_t **ret, fy_err *err)
{
    lv_priv *p = drv->priv;
    _cleanup_conn_ virConnectPtr c = NULL;
    if (get_conn(p, &c, err))
        return err->code;
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(c, &doms, VIR_CONNECT_LIST_DOMAINS_PERSISTENT);
    if (n < 0)
        return lv_fail(err, "listing domains on", p->uri);
    json_t **infos = calloc((size_t)n + 1, sizeof(*infos));
    fy_code rc = infos ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
    int k = 0;
    for (int i = 0; i < n; i++) {
        char uuid[VIR_UUID_STRING_BUFLEN];
        fy_err e2 = {0};
        if (rc == FY_E_OK && virDomainGetUUIDString(doms[i], uuid) == 0 &&
            make_info(p, doms[i], uuid, &infos[k], &e2) == FY_E_OK)
            k++;
        virDomainFree(doms[i]);
    }
    free(doms);
    json_t *arr = rc == FY_E_OK ? json_array() : NULL;
    if (infos && k > 1)
        qsort(infos, (size_t)k, sizeof(*infos), cmp_info);
    for (int i = 0; i < k; i++)
        if (!arr || json_array_append_new(arr, infos[i]) < 0)
            json_decref(infos[i]);
    free(infos);
    if (!arr)
        return rc ? rc : fy_fail(err, FY_E_NOMEM, NULL);
    *ret = arr;
    return FY_E_OK;
}

/* ---- devices (Ferry's networks and volumes are bookkeeping in the metadata) ---- */

/* Sets key to value (stolen), and/or replaces the volume drop_volume with
 * add_bdm (either may be NULL), in one locked read-modify-write. */
static fy_code edit_meta(lv_priv *p, const char *uuid, const char *key, json_t *value,
                         const char *drop_volume, const json_t *add_bdm, fy_err *err)
{
    if (!fy_uuid_valid(uuid)) {
        json_decref(value);
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid instance uuid");
    }
    _cleanup_lv_unlock_ pthread_mutex_t *lock = lock_guest(p, uuid);
    _cleanup_domain_ virDomainPtr d = NULL;
    if (lookup(p, uuid, &d, err)) {
        json_decref(value);
        return err->code;
    }
    json_t *meta = get_meta(d);
    if (key)
        json_object_set_new(meta, key, value);
    json_t *vols = json_object_get(meta, "volumes");
    if (!json_is_array(vols)) {
        vols = json_array();
        json_object_set_new(meta, "volumes", vols);
    }
    for (size_t i = json_array_size(vols); drop_volume && i-- > 0;)
        if (fy_streq(fy_json_str(json_array_get(vols, i), "volume_id"), drop_volume))
            json_array_remove(vols, i);
    if (add_bdm)
        json_array_append_new(vols, json_deep_copy(add_bdm));
    fy_code rc = set_meta(d, uuid, meta, err);
    json_decref(meta);
    return rc;
}

static fy_code lv_plug_vifs(compute_driver *drv, const char *uuid, const json_t *vifs,
                            fy_err *err)
{
    if (!json_is_array(vifs))
        return fy_fail(err, FY_E_BAD_REQUEST, "vifs must be an array");
    return edit_meta(drv->priv, uuid, "vifs", json_deep_copy(vifs), NULL, NULL, err);
}

static fy_code lv_unplug_vifs(compute_driver *drv, const char *uuid, fy_err *err)
{
    return edit_meta(drv->priv, uuid, "vifs", json_array(), NULL, NULL, err);
}

static fy_code lv_attach_volume(compute_driver *drv, const char *uuid, const json_t *bdm,
                                fy_err *err)
{
    const char *vol = fy_json_str(bdm, "volume_id");
    if (!fy_uuid_valid(vol))
        return fy_fail(err, FY_E_BAD_REQUEST, "a volume needs a volume_id");
    return edit_meta(drv->priv, uuid, NULL, NULL, vol, bdm, err);
}

static fy_code lv_detach_volume(compute_driver *drv, const char *uuid, const char *volume_id,
                                fy_err *err)
{
    fy_code rc = edit_meta(drv->priv, uuid, NULL, NULL, volume_id, NULL, err);
    if (rc == FY_E_NOT_FOUND) {
        fy_err_clear(err);
        return FY_E_OK;
    }
    return rc;
}

/* ---- live migration: checks and the destination's steps ---- */

static bool md_shared(const compute_mig_spec *s)
{
    return compute_md_bool(s->migrate_data, "is_shared_instance_path", false);
}

static bool md_block(const compute_mig_spec *s)
{
    if (fy_streq(s->block_migration, "true"))
        return true;
    if (fy_streq(s->block_migration, "false"))
        return false;
    return compute_md_bool(s->migrate_data, "block_migration", !md_shared(s));
}

/* The shared-storage test file named by the peer: one plain name in images. */
static char *test_file_path(const lv_priv *p, const json_t *md)
{
    const char *name = fy_json_str(md, "shared_test_file");
    if (!name || strncmp(name, SHARED_TEST_PREFIX, strlen(SHARED_TEST_PREFIX)) != 0 ||
        strchr(name, '/') || strlen(name) > 80)
        return NULL;
    return fy_strdup_printf("%s/%s", p->images, name);
}

static void remove_test_file(const lv_priv *p, const json_t *md)
{
    _cleanup_free_ char *test = test_file_path(p, md);
    if (test)
        unlink(test);
}

static json_t *block_json(const char *mode)
{
    if (fy_streq(mode, "auto"))
        return json_string("auto");
    return json_boolean(fy_streq(mode, "true"));
}

static fy_code lv_check_dest(compute_driver *drv, const compute_mig_spec *s, json_t **ret,
                             fy_err *err)
{
    lv_priv *p = drv->priv;
    long long mem = fy_json_int(s->flavor, "memory_mb", 0);
    long long need_mb = fy_json_int(s->flavor, "root_gb", 0) * 1024;
    if (mem > s->host_memory_mb)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "Unable to migrate %s to %s: Lack of memory(host:%lld <= instance:%lld)",
                       s->uuid, s->host, s->host_memory_mb, mem);
    if (fy_streq(s->block_migration, "true") && need_mb > s->disk_available_mb)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "Unable to migrate %s: Disk of instance is too large(available on "
                       "destination host:%lld < need:%lld)",
                       s->uuid, s->disk_available_mb, need_mb);
    _cleanup_conn_ virConnectPtr c = NULL;
    if (get_conn(p, &c, err))
        return fy_err_prefix(err, "hypervisor of %s", s->host);
    char id[FY_UUID_LEN + 1];
    fy_uuid_v4(id);
    _cleanup_free_ char *name = fy_strdup_printf(SHARED_TEST_PREFIX "%s", id);
    _cleanup_free_ char *path = name ? fy_strdup_printf("%s/%s", p->images, name) : NULL;
    if (!path)
        return fy_fail(err, FY_E_NOMEM, NULL);
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return fy_fail(err, FY_E_IO, "create %s: %s", path, strerror(errno));
    /* libvirt_uri tells the source where to send the guest. */
    *ret = json_pack("{s:s, s:s, s:o, s:I, s:s}", "shared_test_file", name,
                     "dest_instances_path", p->images, "block_migration",
                     block_json(s->block_migration), "disk_available_mb",
                     (json_int_t)s->disk_available_mb, "libvirt_uri", p->uri);
    return *ret ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

/* The virtual size of the guest's disk (0 when diskless). */
static fy_code disk_size_of(lv_priv *p, const char *uuid, long long *ret, fy_err *err)
{
    _cleanup_free_ char *disk = guest_file(p, uuid, "", "disk");
    if (!disk)
        return fy_fail(err, FY_E_NOMEM, NULL);
    *ret = 0;
    if (!exists(disk))
        return FY_E_OK;
    return compute_lv_disk_virtual_size(disk, ret, err);
}

static fy_code lv_check_source(compute_driver *drv, const compute_mig_spec *s, json_t **ret,
                               fy_err *err)
{
    lv_priv *p = drv->priv;
    _cleanup_domain_ virDomainPtr d = NULL;
    fy_code rc = lookup(p, s->uuid, &d, err);
    if (rc == FY_E_NOT_FOUND || (rc == FY_E_OK && virDomainIsActive(d) != 1))
        return fy_fail(err, FY_E_MIGRATION_PRECHECK, "Instance %s is not running on host %s",
                       s->uuid, s->host);
    if (rc)
        return rc;
    long long disk_size = 0;
    if (disk_size_of(p, s->uuid, &disk_size, err))
        return err->code;
    _cleanup_free_ char *test = test_file_path(p, s->migrate_data);
    bool shared = exists(test);
    bool volume_backed = compute_md_bool(s->migrate_data, "is_volume_backed",
                                         !s->image_id && json_array_size(s->volumes) > 0);
    bool local_disk = disk_size > 0;
    bool block;
    if (fy_streq(s->block_migration, "true"))
        block = true;
    else if (fy_streq(s->block_migration, "false"))
        block = false;
    else
        block = !shared && local_disk;
    if (block && shared)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "%s is not on local storage: Block migration can not be used with "
                       "shared storage.", s->host);
    if (!block && !shared && local_disk)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK,
                       "%s is not on shared storage: Shared storage live-migration requires "
                       "either shared storage or boot-from-volume with no local disks.",
                       s->host);
    *ret = json_pack("{s:b, s:b, s:b, s:b, s:I}", "is_shared_instance_path", shared,
                     "is_volume_backed", volume_backed, "is_shared_block_storage",
                     volume_backed && !local_disk, "block_migration", block, "disk_virtual_size",
                     (json_int_t)disk_size);
    return *ret ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

static fy_code lv_check_dest_cleanup(compute_driver *drv, const compute_mig_spec *s,
                                     fy_err *err)
{
    _cleanup_free_ char *test = test_file_path(drv->priv, s->migrate_data);
    if (test && unlink(test) < 0 && errno != ENOENT)
        return fy_fail(err, FY_E_IO, "unlink %s: %s", test, strerror(errno));
    return FY_E_OK;
}

/* Block migration copies into a disk that must already exist with the same
 * virtual size and format. */
static fy_code lv_pre_live_migration(compute_driver *drv, const compute_mig_spec *s,
                                     json_t **ret, fy_err *err)
{
    lv_priv *p = drv->priv;
    if (!json_is_object(s->flavor))
        return fy_fail(err, FY_E_BAD_REQUEST, "instance.flavor is needed");
    _cleanup_lv_unlock_ pthread_mutex_t *lock = lock_guest(p, s->uuid);
    _cleanup_domain_ virDomainPtr d = NULL;
    fy_code rc = lookup(p, s->uuid, &d, err);
    if (rc && rc != FY_E_NOT_FOUND)
        return rc;
    fy_err_clear(err);
    if (d && virDomainIsActive(d) == 1 && virDomainIsPersistent(d) == 1)
        return fy_fail(err, FY_E_MIGRATION_PRECHECK, "Instance %s already runs on %s", s->uuid,
                       s->host);
    long long size = fy_json_int(s->migrate_data, "disk_virtual_size", 0);
    if (md_block(s) && !md_shared(s) && size > 0) {
        _cleanup_free_ char *dir = guest_dir(p, s->uuid, "");
        _cleanup_free_ char *disk = guest_file(p, s->uuid, "", "disk");
        if (!dir || !disk)
            return fy_fail(err, FY_E_NOMEM, NULL);
        int r = fy_mkdir_p(dir, 0755);
        if (r < 0)
            return fy_fail(err, FY_E_IO, "mkdir %s: %s", dir, strerror(-r));
        if (compute_lv_disk_create(disk, NULL, size, err))
            return err->code;
    }
    json_t *vols = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(s->volumes, i, v)
        json_array_append_new(vols, json_string(fy_json_str(v, "volume_id")));
    *ret = json_pack("{s:b, s:O, s:o}", "pre_live_migration_done", 1, "vifs", s->vifs,
                     "connected_volumes", vols);
    return *ret ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

static fy_code lv_post_lm_dest(compute_driver *drv, const compute_mig_spec *s, json_t **ret,
                               fy_err *err)
{
    lv_priv *p = drv->priv;
    _cleanup_lv_unlock_ pthread_mutex_t *lock = lock_guest(p, s->uuid);
    _cleanup_conn_ virConnectPtr c = NULL;
    _cleanup_domain_ virDomainPtr d = NULL;
    if (get_conn(p, &c, err) || lookup_on(c, s->uuid, &d, err))
        return err->code;
    if (virDomainIsPersistent(d) != 1) {
        /* PERSIST_DEST normally did this; make the guest survive a restart. */
        char *xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_SECURE);
        virDomainPtr nd = xml ? virDomainDefineXML(c, xml) : NULL;
        free(xml);
        if (!nd)
            return lv_fail(err, "persisting", s->uuid);
        virDomainFree(nd);
    }
    int reason = 0;
    /* A guest paused to force the switch-over runs again once it arrived. */
    if (dom_state(d, &reason) == VIR_DOMAIN_PAUSED && virDomainResume(d) < 0)
        return lv_fail(err, "resuming", s->uuid);
    if (json_array_size(s->vifs) > 0) {
        json_t *meta = get_meta(d);
        json_object_set(meta, "vifs", (json_t *)s->vifs);
        fy_code rc = set_meta(d, s->uuid, meta, err);
        json_decref(meta);
        if (rc)
            return rc;
    }
    return make_info(p, d, s->uuid, ret, err);
}

static fy_code lv_rollback_lm_dest(compute_driver *drv, const compute_mig_spec *s, fy_err *err)
{
    lv_priv *p = drv->priv;
    _cleanup_lv_unlock_ pthread_mutex_t *lock = lock_guest(p, s->uuid);
    _cleanup_domain_ virDomainPtr d = NULL;
    fy_code rc = lookup(p, s->uuid, &d, err);
    if (rc && rc != FY_E_NOT_FOUND)
        return rc;
    fy_err_clear(err);
    if (d && virDomainIsPersistent(d) == 1 && virDomainIsActive(d) == 1)
        return FY_E_OK;   /* the guest lives here: never destroy it */
    if (d && remove_domain(d, s->uuid, err))
        return err->code;
    if (!s->destroy_disks || md_shared(s))
        return FY_E_OK;
    _cleanup_free_ char *dir = guest_dir(p, s->uuid, "");
    return dir ? compute_lv_remove_tree(dir, err) : fy_fail(err, FY_E_NOMEM, NULL);
}

static fy_code lv_post_lm_source(compute_driver *drv, const compute_mig_spec *s, fy_err *err)
{
    lv_priv *p = drv->priv;
    _cleanup_lv_unlock_ pthread_mutex_t *lock = lock_guest(p, s->uuid);
    _cleanup_domain_ virDomainPtr d = NULL;
    fy_code rc = lookup(p, s->uuid, &d, err);
    if (rc && rc != FY_E_NOT_FOUND)
        return rc;
    fy_err_clear(err);
    if (d && virDomainIsActive(d) == 1)
        return fy_fail(err, FY_E_CONFLICT, "instance %s still runs on %s", s->uuid, s->host);
    if (d && remove_domain(d, s->uuid, err))   /* UNDEFINE_SOURCE normally did this */
        return err->code;
    if (!s->destroy_disks || md_shared(s))
        return FY_E_OK;   /* a shared disk is the destination's now */
    _cleanup_free_ char *dir = guest_dir(p, s->uuid, "");
    return dir ? compute_lv_remove_tree(dir, err) : fy_fail(err, FY_E_NOMEM, NULL);
}

/* ---- live migration: the job ----
 *
 * virDomainMigrateToURI3 blocks until the end, so it runs on a thread of its
 * own with a connection of its own; the monitor polls job statistics, and
 * aborts or forces, on the shared connection.
 *
 * With PEER2PEER the migration is libvirtd's own job: it goes on when the
 * agent dies.  A restarted agent takes such a job over (lv_reconcile): a
 * thread of its own then waits for libvirt's job to end, and the end is told
 * by where the guest runs afterwards (ended_where). */

struct compute_lm_job {
    lv_priv *p;
    char uuid[FY_UUID_LEN + 1];
    char *dest_uri;
    unsigned long flags;
    unsigned long long bandwidth;
    virDomainPtr dom;             /* on the shared connection; NULL when taken over
                                   * after the guest left */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    bool done;                    /* under lock, with the fields below */
    bool stopping;                /* released: a taken-over job stops waiting */
    bool abort_pending, force_pending, aborted, suspended;
    compute_lm_stats last;
    compute_lm_stats final;
};

static compute_lm_job *job_alloc(lv_priv *p, const char *uuid, const char *dest_uri)
{
    compute_lm_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->dest_uri = strdup(dest_uri))) {
        free(j);
        return NULL;
    }
    pthread_mutex_init(&j->lock, NULL);
    j->p = p;
    snprintf(j->uuid, sizeof(j->uuid), "%s", uuid);
    return j;
}

static void fill_progress(compute_lm_stats *s, virTypedParameterPtr par, int n)
{
    unsigned long long v;
    if (virTypedParamsGetULLong(par, n, VIR_DOMAIN_JOB_MEMORY_TOTAL, &v) == 1)
        s->memory_total = (long long)v;
    if (virTypedParamsGetULLong(par, n, VIR_DOMAIN_JOB_MEMORY_PROCESSED, &v) == 1)
        s->memory_processed = (long long)v;
    if (virTypedParamsGetULLong(par, n, VIR_DOMAIN_JOB_MEMORY_REMAINING, &v) == 1)
        s->memory_remaining = (long long)v;
    if (virTypedParamsGetULLong(par, n, VIR_DOMAIN_JOB_DISK_TOTAL, &v) == 1)
        s->disk_total = (long long)v;
    if (virTypedParamsGetULLong(par, n, VIR_DOMAIN_JOB_DISK_PROCESSED, &v) == 1)
        s->disk_processed = (long long)v;
    if (virTypedParamsGetULLong(par, n, VIR_DOMAIN_JOB_DISK_REMAINING, &v) == 1)
        s->disk_remaining = (long long)v;
    if (virTypedParamsGetULLong(par, n, VIR_DOMAIN_JOB_DOWNTIME, &v) == 1)
        s->downtime_ms = (long long)v;
}

/* The destination keeps the statistics of the incoming migration that just
 * completed; they hold the real downtime. */
static void completed_stats(lv_priv *p, const char *dest_uri, const char *uuid,
                            compute_lm_stats *s)
{
    _cleanup_conn_ virConnectPtr c = NULL;
    _cleanup_domain_ virDomainPtr d = NULL;
    fy_err err = {0};
    if (get_peer_conn(p, dest_uri, &c, &err) || lookup_on(c, uuid, &d, &err))
        return;
    int type = 0, n = 0;
    virTypedParameterPtr par = NULL;
    if (virDomainGetJobStats(d, &type, &par, &n, VIR_DOMAIN_JOB_STATS_COMPLETED) == 0) {
        fill_progress(s, par, n);
        virTypedParamsFree(par, n);
    }
}

/* Whether uri's hypervisor runs uuid as a guest of its own (active and
 * persistent: an incoming migration is not, until it completed). */
static bool runs_at(const char *uri, const char *uuid)
{
    _cleanup_conn_ virConnectPtr c = NULL;
    _cleanup_domain_ virDomainPtr d = NULL;
    fy_err err = {0};
    if (!uri || !*uri || open_conn(uri, &c, &err) || lookup_on(c, uuid, &d, &err))
        return false;
    return virDomainIsActive(d) == 1 && virDomainIsPersistent(d) == 1;
}

/* Whether libvirt runs an outgoing migration of the domain; *known false when
 * it could not be asked. */
static bool migrating_out(virDomainPtr d, bool *known)
{
    int type = VIR_DOMAIN_JOB_NONE, n = 0, op = -1;
    virTypedParameterPtr par = NULL;
    if (virDomainGetJobStats(d, &type, &par, &n, 0) < 0) {
        int code = lv_last_code();
        *known = code == VIR_ERR_NO_DOMAIN || code == VIR_ERR_OPERATION_INVALID;
        return false;
    }
    *known = true;
    bool has_op = virTypedParamsGetInt(par, n, VIR_DOMAIN_JOB_OPERATION, &op) == 1;
    virTypedParamsFree(par, n);
    return (type == VIR_DOMAIN_JOB_BOUNDED || type == VIR_DOMAIN_JOB_UNBOUNDED) &&
           (!has_op || op == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT);
}

/* The end of a migration nobody saw end, from where the guest is now.  libvirt
 * stops the source guest within its job when the migration completed, so a
 * guest still active here means it failed. */
static void ended_where(compute_lm_job *j, compute_lm_stats *end)
{
    _cleanup_conn_ virConnectPtr c = NULL;
    _cleanup_domain_ virDomainPtr d = NULL;
    fy_err e = {0};
    bool here = get_conn(j->p, &c, &e) == FY_E_OK &&
                lookup_on(c, j->uuid, &d, &e) == FY_E_OK && virDomainIsActive(d) == 1;
    if (!here && runs_at(j->dest_uri, j->uuid)) {
        end->state = COMPUTE_LM_COMPLETED;
        completed_stats(j->p, j->dest_uri, j->uuid, end);
        end->memory_remaining = end->disk_remaining = 0;
        return;
    }
    end->state = COMPUTE_LM_FAILED;
    if (here)
        fy_fail(&end->error, FY_E_DRIVER,
                "The live migration of %s did not complete; the guest still runs on %s",
                j->uuid, j->p->host);
    else
        fy_fail(&end->error, FY_E_DRIVER,
                "The live migration of %s ended with the guest running on neither host",
                j->uuid);
}

static void *migrate_main(void *arg)
{
    compute_lm_job *j = arg;
    compute_lm_stats end = {.state = COMPUTE_LM_FAILED};
    _cleanup_conn_ virConnectPtr c = NULL;
    _cleanup_domain_ virDomainPtr d = NULL;
    virTypedParameterPtr par = NULL;
    int npar = 0, maxpar = 0;
    if (open_conn(j->p->uri, &c, &end.error) || lookup_on(c, j->uuid, &d, &end.error))
        goto out;
    if (j->bandwidth > 0)
        virTypedParamsAddULLong(&par, &npar, &maxpar, VIR_MIGRATE_PARAM_BANDWIDTH, j->bandwidth);
    fy_debug("migrating %s to %s (flags 0x%lx)", j->uuid, j->dest_uri, j->flags);
    if (virDomainMigrateToURI3(d, j->dest_uri, par, (unsigned)npar, (unsigned)j->flags) == 0) {
        end.state = COMPUTE_LM_COMPLETED;
        completed_stats(j->p, j->dest_uri, j->uuid, &end);
        end.memory_remaining = end.disk_remaining = 0;
    } else {
        bool aborted = lv_last_code() == VIR_ERR_OPERATION_ABORTED;
        lv_fail(&end.error, "live migration of", j->uuid);
        pthread_mutex_lock(&j->lock);
        if (aborted || j->aborted)
            end.state = COMPUTE_LM_CANCELLED;
        bool resume = j->suspended;
        pthread_mutex_unlock(&j->lock);
        /* A guest paused to force the end keeps running where it is. */
        if (resume && virDomainResume(d) < 0)
            fy_warn("cannot resume %s after the failed migration: %s", j->uuid,
                    virGetLastErrorMessage());
    }
out:
    virTypedParamsFree(par, npar);
    pthread_mutex_lock(&j->lock);
    if (end.state != COMPUTE_LM_COMPLETED) {
        end.memory_total = j->last.memory_total;
        end.memory_processed = j->last.memory_processed;
        end.memory_remaining = j->last.memory_remaining;
    }
    j->final = end;
    j->done = true;
    pthread_mutex_unlock(&j->lock);
    compute_live_job_kick();
    return NULL;
}

static bool job_stopping(compute_lm_job *j)
{
    pthread_mutex_lock(&j->lock);
    bool stop = j->stopping;
    pthread_mutex_unlock(&j->lock);
    return stop;
}

/* A migration taken over after a restart: waits until libvirt no longer runs
 * it (asking anew each time: the daemon may have been reconnected), then
 * tells its end from where the guest is. */
static void *adopted_main(void *arg)
{
    compute_lm_job *j = arg;
    for (int unknown = 0; !job_stopping(j);) {
        _cleanup_conn_ virConnectPtr c = NULL;
        _cleanup_domain_ virDomainPtr d = NULL;
        fy_err e = {0};
        bool known = false, busy = false;
        if (get_conn(j->p, &c, &e) == FY_E_OK) {
            fy_code rc = lookup_on(c, j->uuid, &d, &e);
            if (rc == FY_E_NOT_FOUND)
                known = true;
            else if (rc == FY_E_OK)
                busy = migrating_out(d, &known);
        }
        if (busy)
            unknown = 0;
        else if (known || ++unknown >= ADOPT_UNKNOWN_MAX)
            break;
        struct timespec ts = {0, ADOPT_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    compute_lm_stats end = {0};
    ended_where(j, &end);
    pthread_mutex_lock(&j->lock);
    if (end.state != COMPUTE_LM_COMPLETED) {
        if (j->aborted)
            end.state = COMPUTE_LM_CANCELLED;
        end.memory_total = j->last.memory_total;
        end.memory_processed = j->last.memory_processed;
        end.memory_remaining = j->last.memory_remaining;
    }
    bool resume = j->suspended && end.state != COMPUTE_LM_COMPLETED;
    pthread_mutex_unlock(&j->lock);
    if (resume && j->dom && virDomainResume(j->dom) < 0)
        fy_warn("cannot resume %s after the failed migration: %s", j->uuid,
                virGetLastErrorMessage());
    pthread_mutex_lock(&j->lock);
    j->final = end;
    j->done = true;
    pthread_mutex_unlock(&j->lock);
    compute_live_job_kick();
    return NULL;
}

static void job_free(compute_lm_job *j)
{
    if (!j)
        return;
    if (j->thread_started) {
        pthread_mutex_lock(&j->lock);
        bool done = j->done;
        j->stopping = true;
        pthread_mutex_unlock(&j->lock);
        if (!done && j->dom)
            virDomainAbortJob(j->dom);
        pthread_join(j->thread, NULL);
    }
    if (j->dom)
        virDomainFree(j->dom);
    pthread_mutex_destroy(&j->lock);
    free(j->dest_uri);
    free(j);
}

static fy_code lv_lm_start(compute_driver *drv, const compute_mig_spec *s,
                           const compute_lm_params *params, compute_lm_job **ret, fy_err *err)
{
    lv_priv *p = drv->priv;
    const char *dest = fy_json_str(s->migrate_data, "libvirt_uri");
    if (!dest)
        return fy_fail(err, FY_E_BAD_REQUEST,
                       "migrate_data has no libvirt_uri of the destination (from its check)");
    if (params->fail_half_way)
        return fy_fail(err, FY_E_DRIVER, "injected fault at live_migration_job");
    compute_lm_job *j = job_alloc(p, s->uuid, dest);
    if (!j)
        return fy_fail(err, FY_E_NOMEM, NULL);
    j->bandwidth = params->bandwidth_mibps > 0 ? (unsigned long long)params->bandwidth_mibps : 0;
    j->flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST |
               VIR_MIGRATE_UNDEFINE_SOURCE;
    /* A local directory both hypervisors see is not a file system libvirt
     * trusts as shared: UNSAFE says the caller checked (the test file). */
    j->flags |= md_block(s) && !md_shared(s) ? VIR_MIGRATE_NON_SHARED_DISK : VIR_MIGRATE_UNSAFE;
    if (p->post_copy)
        j->flags |= VIR_MIGRATE_POSTCOPY;
    if (lookup(p, s->uuid, &j->dom, err)) {
        job_free(j);
        return err->code;
    }
    int r = pthread_create(&j->thread, NULL, migrate_main, j);
    if (r) {
        job_free(j);
        return fy_fail(err, FY_E_INTERNAL, "cannot start the migration thread: %s", strerror(r));
    }
    j->thread_started = true;
    *ret = j;
    return FY_E_OK;
}

/* Abort and force asked for before libvirt's job began are retried here. */
static void retry_pending(compute_lm_job *j)
{
    if (!j->dom)
        return;
    if (j->abort_pending && virDomainAbortJob(j->dom) == 0)
        j->abort_pending = false;
    if (j->force_pending) {
        bool ok = j->p->post_copy ? virDomainMigrateStartPostCopy(j->dom, 0) == 0
                                  : virDomainSuspend(j->dom) == 0;
        if (ok) {
            j->force_pending = false;
            j->suspended = !j->p->post_copy;
        }
    }
}

static fy_code lv_lm_stats(compute_driver *drv, compute_lm_job *j, compute_lm_stats *s,
                           fy_err *err)
{
    (void)drv;
    (void)err;
    pthread_mutex_lock(&j->lock);
    if (j->done) {
        *s = j->final;
        pthread_mutex_unlock(&j->lock);
        return FY_E_OK;
    }
    retry_pending(j);
    pthread_mutex_unlock(&j->lock);
    int type = 0, n = 0;
    virTypedParameterPtr par = NULL;
    compute_lm_stats cur = {.state = COMPUTE_LM_RUNNING};
    /* Before libvirt's job starts, and after it ended (domain gone), there is
     * nothing to read: the previous sample stands until the thread reports. */
    if (j->dom && virDomainGetJobStats(j->dom, &type, &par, &n, 0) == 0 &&
        type != VIR_DOMAIN_JOB_NONE) {
        fill_progress(&cur, par, n);
        cur.downtime_ms = 0;
    }
    virTypedParamsFree(par, n);
    pthread_mutex_lock(&j->lock);
    if (cur.memory_total > 0 || cur.disk_total > 0)
        j->last = cur;
    *s = j->last;
    s->state = COMPUTE_LM_RUNNING;
    pthread_mutex_unlock(&j->lock);
    return FY_E_OK;
}

static fy_code lv_lm_set_downtime(compute_driver *drv, compute_lm_job *j, long long ms,
                                  fy_err *err)
{
    (void)drv;
    if (ms <= 0)
        return fy_fail(err, FY_E_BAD_REQUEST, "max downtime must be positive");
    if (!j->dom)
        return fy_fail(err, FY_E_CONFLICT, "live migration of %s is no longer running", j->uuid);
    if (virDomainMigrateSetMaxDowntime(j->dom, (unsigned long long)ms, 0) < 0)
        return lv_fail(err, "setting the max downtime of", j->uuid);
    return FY_E_OK;
}

static fy_code act(compute_lm_job *j, bool abort_it, fy_err *err)
{
    pthread_mutex_lock(&j->lock);
    bool done = j->done;
    if (!done) {
        if (abort_it) {
            j->aborted = true;
            j->abort_pending = true;
        } else {
            j->force_pending = true;
        }
        retry_pending(j);
    }
    pthread_mutex_unlock(&j->lock);
    if (done)
        return fy_fail(err, FY_E_CONFLICT, "live migration of %s is no longer running", j->uuid);
    return FY_E_OK;
}

static fy_code lv_lm_abort(compute_driver *drv, compute_lm_job *j, fy_err *err)
{
    (void)drv;
    return act(j, true, err);
}

static fy_code lv_lm_force(compute_driver *drv, compute_lm_job *j, fy_err *err)
{
    (void)drv;
    return act(j, false, err);
}

static void lv_lm_release(compute_driver *drv, compute_lm_job *j)
{
    (void)drv;
    job_free(j);
}

/* ---- cold migration / resize ----
 *
 * The source keeps what a revert needs in <uuid>_resize/: the disk, the
 * inactive definition (domain.xml, old flavor) and the power state before the
 * move (power).  The destination gets the disk in <uuid>/ (pushed to its
 * transfer endpoint, or copied when storage is shared) and a new definition. */

static bool storage_shared(const lv_priv *p, const compute_mig_spec *s)
{
    if (s->shared_storage || s->same_host)
        return true;
    _cleanup_free_ char *test = test_file_path(p, s->migrate_data);
    return exists(test);
}

static fy_code write_text(const char *path, const char *text, fy_err *err)
{
    return fy_write_file_atomic(path, text, strlen(text), err);
}

static int kept_power(const lv_priv *p, const char *uuid)
{
    _cleanup_free_ char *path = guest_file(p, uuid, RESIZE_SFX, "power");
    _cleanup_free_ char *text = NULL;
    fy_err e = {0};
    long long v = COMPUTE_POWER_RUNNING;
    if (path && fy_read_file(path, 64, &text, NULL, &e) == FY_E_OK)
        fy_parse_ll(text, 0, 16, &v);
    return (int)v;
}

/* Stops the guest and moves its disk and definition aside. */
static fy_code set_aside(lv_priv *p, virConnectPtr c, const compute_mig_spec *s, int *ret_power,
                         fy_err *err)
{
    _cleanup_free_ char *kept = guest_dir(p, s->uuid, RESIZE_SFX);
    _cleanup_free_ char *kept_xml = guest_file(p, s->uuid, RESIZE_SFX, "domain.xml");
    _cleanup_free_ char *kept_disk = guest_file(p, s->uuid, RESIZE_SFX, "disk");
    _cleanup_free_ char *kept_pw = guest_file(p, s->uuid, RESIZE_SFX, "power");
    _cleanup_free_ char *disk = guest_file(p, s->uuid, "", "disk");
    if (!kept || !kept_xml || !kept_disk || !kept_pw || !disk)
        return fy_fail(err, FY_E_NOMEM, NULL);
    _cleanup_domain_ virDomainPtr d = NULL;
    fy_code rc = lookup_on(c, s->uuid, &d, err);
    if (rc == FY_E_NOT_FOUND && exists(kept_xml)) {
        fy_err_clear(err);   /* set aside by an earlier attempt */
        *ret_power = kept_power(p, s->uuid);
        return FY_E_OK;
    }
    if (rc)
        return rc;
    json_t *meta = get_meta(d);
    long long old_gb = fy_json_int(json_object_get(meta, "flavor"), "root_gb", 0);
    json_decref(meta);
    if (fy_json_int(s->flavor, "root_gb", old_gb) < old_gb)
        return fy_fail(err, FY_E_BAD_REQUEST, "Unable to resize disk down.");
    *ret_power = power_of(dom_state(d, NULL));
    if (stop(d, s->uuid, err))
        return err->code;
    _cleanup_free_ char *xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE |
                                                          VIR_DOMAIN_XML_SECURE);
    if (!xml)
        return lv_fail(err, "reading the definition of", s->uuid);
    char pw[8];
    snprintf(pw, sizeof(pw), "%d", *ret_power);
    int r = fy_mkdir_p(kept, 0755);
    if (r < 0)
        return fy_fail(err, FY_E_IO, "mkdir %s: %s", kept, strerror(-r));
    if (write_text(kept_xml, xml, err) || write_text(kept_pw, pw, err))
        return err->code;
    if (exists(disk) && rename(disk, kept_disk) < 0)
        return fy_fail(err, FY_E_IO, "rename %s: %s", disk, strerror(errno));
    return remove_domain(d, s->uuid, err);
}

/* Brings the kept guest back in place (revert, or a failed move). */
static fy_code restore(lv_priv *p, virConnectPtr c, const char *uuid, bool power_on,
                       virDomainPtr *ret, fy_err *err)
{
    _cleanup_free_ char *dir = guest_dir(p, uuid, "");
    _cleanup_free_ char *kept = guest_dir(p, uuid, RESIZE_SFX);
    _cleanup_free_ char *kept_xml = guest_file(p, uuid, RESIZE_SFX, "domain.xml");
    _cleanup_free_ char *kept_disk = guest_file(p, uuid, RESIZE_SFX, "disk");
    _cleanup_free_ char *disk = guest_file(p, uuid, "", "disk");
    _cleanup_free_ char *xml = NULL;
    if (!dir || !kept || !kept_xml || !kept_disk || !disk)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (fy_read_file(kept_xml, 1 << 20, &xml, NULL, err))
        return err->code == FY_E_NOT_FOUND || err->code == FY_E_IO
                   ? fy_fail(err, FY_E_NOT_FOUND, "nothing of %s is kept on this host", uuid)
                   : err->code;
    if (exists(kept_disk)) {
        if (compute_lv_remove_tree(dir, err))
            return err->code;
        int r = fy_mkdir_p(dir, 0755);
        if (r < 0)
            return fy_fail(err, FY_E_IO, "mkdir %s: %s", dir, strerror(-r));
        if (rename(kept_disk, disk) < 0)
            return fy_fail(err, FY_E_IO, "rename %s: %s", kept_disk, strerror(errno));
    }
    virDomainPtr d = virDomainDefineXML(c, xml);
    if (!d)
        return lv_fail(err, "redefining", uuid);
    if (power_on && start(d, uuid, err)) {
        virDomainFree(d);
        return err->code;
    }
    *ret = d;
    return compute_lv_remove_tree(kept, err);
}

static fy_code push_disk(const lv_priv *p, const compute_mig_spec *s, bool shared, char sha[65],
                         fy_err *err)
{
    _cleanup_free_ char *kept_disk = guest_file(p, s->uuid, RESIZE_SFX, "disk");
    _cleanup_free_ char *dir = guest_dir(p, s->uuid, "");
    _cleanup_free_ char *part = guest_file(p, s->uuid, "", "disk.part");
    _cleanup_free_ char *disk = guest_file(p, s->uuid, "", "disk");
    if (!kept_disk || !dir || !part || !disk)
        return fy_fail(err, FY_E_NOMEM, NULL);
    if (!exists(kept_disk))
        return FY_E_OK;   /* diskless */
    if (!shared) {
        compute_xfer x = {
            .dest_url = s->peer_url, .service_secret = s->service_secret,
            .migration_uuid = s->migration_uuid, .instance_uuid = s->uuid, .path = kept_disk,
        };
        return compute_transfer_push(&x, sha, err);
    }
    int r = fy_mkdir_p(dir, 0755);
    if (r < 0)
        return fy_fail(err, FY_E_IO, "mkdir %s: %s", dir, strerror(-r));
    if (compute_disk_create(part, kept_disk, 0, err))
        return err->code;
    if (rename(part, disk) < 0)
        return fy_fail(err, FY_E_IO, "rename %s: %s", disk, strerror(errno));
    return FY_E_OK;
}

static fy_code lv_migrate_disk(compute_driver *drv, const compute_mig_spec *s, json_t **ret,
                               fy_err *err)
{
    lv_priv *p = drv->priv;
    if (!fy_uuid_valid(s->uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid instance uuid");
    _cleanup_lv_unlock_ pthread_mutex_t *lock = lock_guest(p, s->uuid);
    _cleanup_conn_ virConnectPtr c = NULL;
    int power = COMPUTE_POWER_RUNNING;
    if (get_conn(p, &c, err) || set_aside(p, c, s, &power, err))
        return err->code;
    bool shared = storage_shared(p, s);
    char sha[65] = "";
    if (push_disk(p, s, shared, sha, err)) {
        fy_err e2 = {0};
        virDomainPtr d = NULL;
        if (restore(p, c, s->uuid, power == COMPUTE_POWER_RUNNING, &d, &e2) == FY_E_OK)
            virDomainFree(d);
        else
            fy_warn("cannot restore %s after the failed move: %s", s->uuid, e2.msg);
        return err->code;
    }
    remove_test_file(p, s->migrate_data);
    _cleanup_free_ char *kept_disk = guest_file(p, s->uuid, RESIZE_SFX, "disk");
    struct stat st;
    long long size = kept_disk && stat(kept_disk, &st) == 0 ? (long long)st.st_size : 0;
    *ret = json_pack("{s:I, s:b, s:s, s:i}", "disk_size", (json_int_t)size, "shared_storage",
                     shared, "sha256", sha, "power_state", power);
    return *ret ? FY_E_OK : fy_fail(err, FY_E_NOMEM, NULL);
}

static fy_code lv_finish_migration(compute_driver *drv, const compute_mig_spec *s, json_t **ret,
                                   fy_err *err)
{
    lv_priv *p = drv->priv;
    if (!fy_uuid_valid(s->uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid instance uuid");
    if (!json_is_object(s->flavor))
        return fy_fail(err, FY_E_BAD_REQUEST, "flavor is needed");
    _cleanup_lv_unlock_ pthread_mutex_t *lock = lock_guest(p, s->uuid);
    _cleanup_conn_ virConnectPtr c = NULL;
    _cleanup_domain_ virDomainPtr d = NULL;
    if (get_conn(p, &c, err))
        return err->code;
    fy_code rc = lookup_on(c, s->uuid, &d, err);
    if (rc == FY_E_OK)
        return make_info(p, d, s->uuid, ret, err);   /* a repeated call */
    if (rc != FY_E_NOT_FOUND)
        return rc;
    fy_err_clear(err);
    _cleanup_free_ char *disk = guest_file(p, s->uuid, "", "disk");
    if (!disk)
        return fy_fail(err, FY_E_NOMEM, NULL);
    bool with_disk = exists(disk);
    if (!with_disk && wants_disk(s->flavor, s->image_id))
        return fy_fail(err, FY_E_DRIVER, "the disk of %s did not arrive on %s", s->uuid, s->host);
    if (with_disk && compute_lv_disk_grow(disk, fy_json_int(s->flavor, "root_gb", 0) << 30, err))
        return err->code;
    json_t *meta = new_meta(s->instance_id, s->flavor, s->image_id, s->vifs, s->volumes);
    if (!meta)
        return fy_fail(err, FY_E_NOMEM, NULL);
    rc = define(p, c, s->uuid, s->instance_id, meta, with_disk, &d, err);
    json_decref(meta);
    if (rc == FY_E_OK && s->power_on)
        rc = start(d, s->uuid, err);
    remove_test_file(p, s->migrate_data);
    return rc ? rc : make_info(p, d, s->uuid, ret, err);
}

static fy_code lv_confirm_migration(compute_driver *drv, const compute_mig_spec *s,
                                    fy_err *err)
{
    lv_priv *p = drv->priv;
    if (!fy_uuid_valid(s->uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid instance uuid");
    _cleanup_lv_unlock_ pthread_mutex_t *lock = lock_guest(p, s->uuid);
    _cleanup_free_ char *kept = guest_dir(p, s->uuid, RESIZE_SFX);
    return kept ? compute_lv_remove_tree(kept, err) : fy_fail(err, FY_E_NOMEM, NULL);
}

static fy_code lv_revert_dest(compute_driver *drv, const compute_mig_spec *s, fy_err *err)
{
    lv_priv *p = drv->priv;
    if (!fy_uuid_valid(s->uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid instance uuid");
    _cleanup_lv_unlock_ pthread_mutex_t *lock = lock_guest(p, s->uuid);
    _cleanup_free_ char *dir = guest_dir(p, s->uuid, "");
    _cleanup_free_ char *kept = guest_dir(p, s->uuid, RESIZE_SFX);
    if (!dir || !kept)
        return fy_fail(err, FY_E_NOMEM, NULL);
    remove_test_file(p, s->migrate_data);
    _cleanup_domain_ virDomainPtr d = NULL;
    fy_code rc = lookup(p, s->uuid, &d, err);
    if (rc && rc != FY_E_NOT_FOUND)
        return rc;
    fy_err_clear(err);
    /* On a shared path the source restores its kept directory afterwards; if
     * it already has (a repeated call), the guest there is the source's. */
    if (!exists(kept) && (s->same_host || s->shared_storage))
        return FY_E_OK;
    if (d && remove_domain(d, s->uuid, err))
        return err->code;
    return compute_lv_remove_tree(dir, err);
}

static fy_code lv_finish_revert(compute_driver *drv, const compute_mig_spec *s, json_t **ret,
                                fy_err *err)
{
    lv_priv *p = drv->priv;
    if (!fy_uuid_valid(s->uuid))
        return fy_fail(err, FY_E_BAD_REQUEST, "invalid instance uuid");
    _cleanup_lv_unlock_ pthread_mutex_t *lock = lock_guest(p, s->uuid);
    _cleanup_conn_ virConnectPtr c = NULL;
    _cleanup_domain_ virDomainPtr d = NULL;
    if (get_conn(p, &c, err))
        return err->code;
    fy_code rc = restore(p, c, s->uuid, s->power_on, &d, err);
    if (rc == FY_E_NOT_FOUND) {
        /* Restored by an earlier attempt. */
        fy_err_clear(err);
        if (lookup_on(c, s->uuid, &d, err))
            return err->code;
        if (s->power_on && start(d, s->uuid, err))
            return err->code;
    } else if (rc) {
        return rc;
    }
    return make_info(p, d, s->uuid, ret, err);
}

/* ---- after a restart ---- */

static void sync_all_power(lv_priv *p, virConnectPtr c, const char *host)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(c, &doms, VIR_CONNECT_LIST_DOMAINS_PERSISTENT);
    for (int i = 0; i < n; i++) {
        char uuid[VIR_UUID_STRING_BUFLEN];
        if (virDomainGetUUIDString(doms[i], uuid) == 0)
            power_sync(host, uuid, power_of(dom_state(doms[i], NULL)));
        virDomainFree(doms[i]);
    }
    free(doms);
    (void)p;
}

/* A live migration this host's job record says is running: libvirt may still
 * run it (PEER2PEER is the daemon's own job), or it ended while the agent was
 * away.  Either way it becomes a job of this agent again, whose end is libvirt's
 * word: recorded once libvirt's job is over, from where the guest runs. */
static void take_over(compute_driver *drv, virConnectPtr c, const char *host,
                      const char *migration, const char *uuid, const json_t *md)
{
    lv_priv *p = drv->priv;
    const char *dest = fy_json_str(md, "libvirt_uri");
    compute_lm_job *j = fy_uuid_valid(uuid) ? job_alloc(p, uuid, dest ? dest : "") : NULL;
    if (!j) {
        fy_warn("migration %s: cannot take over its job", migration);
        return;
    }
    fy_err e = {0};
    bool known = false;
    bool running = lookup_on(c, uuid, &j->dom, &e) == FY_E_OK && migrating_out(j->dom, &known);
    int r = pthread_create(&j->thread, NULL, adopted_main, j);
    if (r) {
        fy_warn("migration %s: cannot take over its job: %s", migration, strerror(r));
        job_free(j);
        return;
    }
    j->thread_started = true;
    fy_warn("migration %s: left by a restart; libvirt %s", migration,
            running ? "still runs it: waiting for its end" : "no longer runs it");
    if (compute_live_job_adopt(drv, host, migration, uuid, j,
                               fy_json_bool(md, "abort_requested", false),
                               fy_json_bool(md, "force_complete_requested", false), &e))
        fy_warn("migration %s: cannot take over its job: %s", migration, e.msg);
}

static fy_code lv_reconcile(compute_driver *drv, const char *host, fy_err *err)
{
    lv_priv *p = drv->priv;
    _cleanup_conn_ virConnectPtr c = NULL;
    if (get_conn(p, &c, err))
        return err->code;
    sync_all_power(p, c, host);
    const char *params[] = {host};
    _cleanup_pgres_ PGresult *res = NULL;
    if (fy_db_exec(&compute_sql_jobs_running, params, &res, err))
        return err->code;
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *md = json_loads(fy_db_str(res, i, "migrate_data"), 0, NULL);
        take_over(drv, c, host, fy_db_str(res, i, "migration_uuid"),
                  fy_db_str(res, i, "instance_uuid"), md);
        json_decref(md);
    }
    return FY_E_OK;
}

/* ---- set-up ---- */

static void lv_cleanup(compute_driver *drv)
{
    lv_priv *p = drv->priv;
    if (!p)
        return;
    if (p->conn) {
        if (p->lifecycle_cb >= 0)
            virConnectDomainEventDeregisterAny(p->conn, p->lifecycle_cb);
        virConnectClose(p->conn);
    }
    if (p->peer)
        virConnectClose(p->peer);
    free(p->peer_uri);
    for (int i = 0; i < LV_LOCK_STRIPES; i++)
        pthread_mutex_destroy(&p->locks[i]);
    pthread_mutex_destroy(&p->conn_lock);
    free(p->uri);
    free(p->images);
    free(p->images_hv);
    free(p->host);
    free(p);
    drv->priv = NULL;
}

static fy_code lv_init(compute_driver *drv, const compute_driver_conf *conf, fy_err *err)
{
    if (!conf->instances_path || conf->instances_path[0] != '/')
        return fy_fail(err, FY_E_CONFIG, "instances_path must be an absolute path");
    if (!conf->libvirt_uri || !*conf->libvirt_uri)
        return fy_fail(err, FY_E_CONFIG, "libvirt_uri is needed by the libvirt driver");
    pthread_once(&event_once, event_start);
    if (!event_ok)
        return fy_fail(err, FY_E_DRIVER, "cannot start libvirt's event loop: %s",
                       virGetLastErrorMessage());
    lv_priv *p = calloc(1, sizeof(*p));
    if (!p)
        return fy_fail(err, FY_E_NOMEM, NULL);
    const char *hv = conf->libvirt_images_dir && *conf->libvirt_images_dir
                         ? conf->libvirt_images_dir : conf->instances_path;
    p->uri = strdup(conf->libvirt_uri);
    p->images = strdup(conf->instances_path);
    p->images_hv = strdup(hv);
    p->host = strdup(conf->host ? conf->host : "");
    p->post_copy = conf->lm_permit_post_copy;
    p->lifecycle_cb = -1;
    pthread_mutex_init(&p->conn_lock, NULL);
    for (int i = 0; i < LV_LOCK_STRIPES; i++)
        pthread_mutex_init(&p->locks[i], NULL);
    drv->priv = p;
    if (!p->uri || !p->images || !p->images_hv || !p->host) {
        lv_cleanup(drv);
        return fy_fail(err, FY_E_NOMEM, NULL);
    }
    int r = fy_mkdir_p(p->images, 0755);
    if (r < 0) {
        fy_fail(err, FY_E_IO, "mkdir %s: %s", p->images, strerror(-r));
        lv_cleanup(drv);
        return err->code;
    }
    /* Connect now: a hypervisor that cannot be reached is a start-up error. */
    virConnectPtr c = NULL;
    if (get_conn(p, &c, err)) {
        lv_cleanup(drv);
        return err->code;
    }
    virConnectClose(c);
    return FY_E_OK;
}

const compute_driver_ops compute_libvirt_ops = {
    .name = "libvirt",
    .init = lv_init,
    .cleanup = lv_cleanup,
    .spawn = lv_spawn,
    .destroy = lv_destroy,
    .power_on = lv_power_on,
    .power_off = lv_power_off,
    .get_info = lv_get_info,
    .list = lv_list,
    .check_can_live_migrate_destination = lv_check_dest,
    .check_can_live_migrate_source = lv_check_source,
    .check_can_live_migrate_destination_cleanup = lv_check_dest_cleanup,
    .pre_live_migration = lv_pre_live_migration,
    .live_migration_start = lv_lm_start,
    .live_migration_stats = lv_lm_stats,
    .live_migration_set_max_downtime = lv_lm_set_downtime,
    .live_migration_abort = lv_lm_abort,
    .live_migration_force_complete = lv_lm_force,
    .live_migration_release = lv_lm_release,
    .post_live_migration_source = lv_post_lm_source,
    .post_live_migration_at_destination = lv_post_lm_dest,
    .rollback_live_migration_at_destination = lv_rollback_lm_dest,
    .plug_vifs = lv_plug_vifs,
    .unplug_vifs = lv_unplug_vifs,
    .attach_volume = lv_attach_volume,
    .detach_volume = lv_detach_volume,
    .migrate_disk_and_power_off = lv_migrate_disk,
    .finish_migration = lv_finish_migration,
    .confirm_migration = lv_confirm_migration,
    .revert_migration_dest = lv_revert_dest,
    .finish_revert_migration = lv_finish_revert,
    .reconcile = lv_reconcile,
};
